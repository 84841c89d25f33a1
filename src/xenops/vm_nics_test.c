/* vm_nics_test.c: where NICs go in the boot order (HVM_boot_params:order
 * with 'n') and what the disks' positions become. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "vm_nics.h"

static DbRow *vm_with_order(const char *order)
{
    DbRow *vm = db_row_new(dm_class_by_name("VM"));
    Xv *params = xv_new_struct();
    xv_struct_set_string(params, "order", order);
    db_row_put(vm, "HVM_boot_params", params);
    return vm;
}

static void test_network_between_disk_and_cd(void **state)
{
    DbRow *vm = vm_with_order("cnd");
    /* As vm_disks.c numbers them for "cnd": the disk 0, the CD 1. */
    HvDisk disks[2] = {{.slot = 0, .bootindex = 0}, {.slot = 3, .cdrom = true, .bootindex = 1}};
    HvNic nics[2] = {{.device = 0, .bootindex = -1}, {.device = 1, .bootindex = -1}};
    vm_nics_boot_order(vm, nics, 2, disks, 2);
    assert_int_equal(disks[0].bootindex, 0);
    assert_int_equal(nics[0].bootindex, 1);
    assert_int_equal(nics[1].bootindex, 2);
    assert_int_equal(disks[1].bootindex, 3);
    db_row_free(vm);
}

static void test_no_n_no_network_boot(void **state)
{
    DbRow *vm = vm_with_order("dc");
    HvDisk disks[1] = {{.slot = 0, .bootindex = 0}};
    HvNic nics[1] = {{.device = 0, .bootindex = -1}};
    vm_nics_boot_order(vm, nics, 1, disks, 1);
    assert_int_equal(nics[0].bootindex, -1);
    assert_int_equal(disks[0].bootindex, 0);
    db_row_free(vm);
}

static void test_network_first(void **state)
{
    DbRow *vm = vm_with_order("nc");
    HvDisk disks[1] = {{.slot = 0, .bootindex = 0}};
    HvNic nics[1] = {{.device = 0, .bootindex = -1}};
    vm_nics_boot_order(vm, nics, 1, disks, 1);
    assert_int_equal(nics[0].bootindex, 0);
    assert_int_equal(disks[0].bootindex, 1);
    db_row_free(vm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_network_between_disk_and_cd),
        cmocka_unit_test(test_no_n_no_network_boot),
        cmocka_unit_test(test_network_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
