/* vm_fields_test.c: the memory and vCPU rules and the VM.start refusals
 * on records built here (no daemon). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "vm_fields.h"

#define MiB (INT64_C(1) << 20)

/* A startable record: 256 MiB pinned, 1 of 2 vCPUs, destroy on crash. */
static Xv *record(void)
{
    Xv *r = xv_new_struct();
    xv_struct_set(r, "memory_static_min", xv_new_int(64 * MiB));
    xv_struct_set(r, "memory_dynamic_min", xv_new_int(256 * MiB));
    xv_struct_set(r, "memory_target", xv_new_int(256 * MiB));
    xv_struct_set(r, "memory_dynamic_max", xv_new_int(256 * MiB));
    xv_struct_set(r, "memory_static_max", xv_new_int(256 * MiB));
    xv_struct_set(r, "VCPUs_max", xv_new_int(2));
    xv_struct_set(r, "VCPUs_at_startup", xv_new_int(1));
    xv_struct_set_string(r, "actions_after_crash", "destroy");
    xv_struct_set_string(r, "domain_type", "unspecified");
    xv_struct_set_string(r, "PV_kernel", "");
    xv_struct_set(r, "bios_strings", xv_new_struct());
    xv_struct_set(r, "HVM_boot_params", xv_new_struct());
    xv_struct_set(r, "has_vendor_device", xv_new_bool(false));
    return r;
}

/* The error of checking r ("" when it passes), with its first param. */
static char *start_error(const Xv *r)
{
    XapiError *err = NULL;
    if (vm_fields_check_start(r, &err) == 0)
        return g_strdup("");
    char *text = g_strdup_printf("%s %s", err->code,
                                 err->params->len ? (char *)err->params->pdata[0] : "");
    xapi_error_free(err);
    return text;
}

static void assert_start(Xv *r, const char *expected)
{
    g_autofree char *got = start_error(r);
    assert_string_equal(got, expected);
    xv_free(r);
}

static void test_memory_order(void **state)
{
    (void)state;
    VmMemory ok = {64, 128, 128, 256, 256};
    assert_int_equal(vm_memory_check_order(&ok, NULL), 0);
    VmMemory bad[] = {{300, 300, 0, 256, 256}, {64, 300, 0, 256, 256},
                      {64, 128, 0, 512, 256}, {0, 0, 0, 0, -1}};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        XapiError *err = NULL;
        assert_int_equal(vm_memory_check_order(&bad[i], &err), -1);
        assert_string_equal(err->code, "MEMORY_CONSTRAINT_VIOLATION_ORDER");
        assert_int_equal(err->params->len, 0);
        xapi_error_free(err);
    }
}

static void test_vcpus(void **state)
{
    (void)state;
    assert_int_equal(vm_vcpus_check(1, 1, 1, NULL), 0);
    XapiError *err = NULL;
    assert_int_equal(vm_vcpus_check(3, 2, 3, &err), -1);
    assert_string_equal(err->code, "INVALID_VALUE");
    assert_string_equal(err->params->pdata[1], "3");
    xapi_error_free(err);
    assert_int_equal(vm_vcpus_check(0, 2, 0, NULL), -1);
}

static void test_start_refusals(void **state)
{
    (void)state;
    assert_start(record(), "");
    Xv *r = record();
    xv_struct_set(r, "memory_dynamic_min", xv_new_int(64 * MiB));
    xv_struct_set(r, "memory_dynamic_max", xv_new_int(128 * MiB));
    assert_start(r, ""); /* the balloon */
    r = record();
    xv_struct_set(r, "memory_dynamic_max", xv_new_int(0)); /* left out at create */
    xv_struct_set(r, "memory_dynamic_min", xv_new_int(0));
    assert_start(r, "");
    r = record();
    xv_struct_set(r, "memory_static_min", xv_new_int(512 * MiB));
    assert_start(r, "MEMORY_CONSTRAINT_VIOLATION ");
    r = record();
    xv_struct_set(r, "VCPUs_at_startup", xv_new_int(3));
    assert_start(r, "VALUE_NOT_SUPPORTED VCPUs-at-startup");
    r = record();
    xv_struct_set(r, "VCPUs_max", xv_new_int(0));
    assert_start(r, "INVALID_VALUE VCPUs_max");
    r = record();
    xv_struct_set_string(r, "actions_after_crash", "rename_restart");
    assert_start(r, "VALUE_NOT_SUPPORTED VM.actions_after_crash");
    r = record(); /* a dump is kept (vm_crashdump.c checks its SR) */
    xv_struct_set_string(r, "actions_after_crash", "coredump_and_destroy");
    assert_start(r, "");
    r = record();
    xv_struct_set_string(r, "domain_type", "pv");
    assert_start(r, "VALUE_NOT_SUPPORTED domain_type");
    r = record(); /* pygrub is run at the start (vm_bootloader.c): accepted here */
    xv_struct_set_string(r, "domain_type", "pv");
    xv_struct_set_string(r, "PV_bootloader", "pygrub");
    assert_start(r, "");
    r = record();
    xv_struct_set_string(r, "domain_type", "pv");
    xv_struct_set_string(r, "PV_bootloader", "pygrub");
    xv_struct_set_string(r, "PV_bootloader_args", "--entry=1");
    assert_start(r, "VALUE_NOT_SUPPORTED PV_bootloader_args");
    r = record();
    xv_struct_set_string(r, "PV_bootloader", "eliloader"); /* unspecified, no policy: PV */
    xv_struct_set_string(r, "HVM_boot_policy", "");
    assert_start(r, "VALUE_NOT_SUPPORTED PV_bootloader");
    r = record();
    xv_struct_set_string(r, "PV_bootloader", "pygrub"); /* HVM: the bootloader is unused */
    xv_struct_set_string(r, "HVM_boot_policy", "BIOS order");
    assert_start(r, "");
    r = record();
    xv_struct_set_string(r, "domain_type", "pv");
    xv_struct_set_string(r, "PV_kernel", "/boot/guest/vmlinuz");
    assert_start(r, "");
    r = record();
    Xv *strings = xv_new_struct();
    xv_struct_set_string(strings, "bios-vendor", "Xen");
    xv_struct_set(r, "bios_strings", strings);
    assert_start(r, ""); /* SMBIOS */
    r = record();
    strings = xv_new_struct();
    xv_struct_set_string(strings, "hp-rombios", "COMPAQ");
    xv_struct_set(r, "bios_strings", strings);
    assert_start(r, "VALUE_NOT_SUPPORTED bios_strings");
    r = record();
    Xv *platform = xv_new_struct();
    xv_struct_set_string(platform, "device_id", "0002");
    xv_struct_set(r, "platform", platform);
    assert_start(r, "VALUE_NOT_SUPPORTED platform:device_id");
    r = record();
    Xv *boot = xv_new_struct();
    xv_struct_set_string(boot, "firmware", "coreboot");
    xv_struct_set(r, "HVM_boot_params", boot);
    assert_start(r, "INVALID_VALUE HVM_boot_params:firmware");
    r = record();
    xv_struct_set(r, "has_vendor_device", xv_new_bool(true));
    assert_start(r, "VALUE_NOT_SUPPORTED has_vendor_device");
}

static void test_overhead_grows(void **state)
{
    (void)state;
    int64_t small = vm_memory_overhead(256 * MiB, 1);
    assert_true(small > 0 && small < 256 * MiB);
    assert_true(vm_memory_overhead(16384 * MiB, 1) > small);
    assert_true(vm_memory_overhead(256 * MiB, 8) > small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_order),
        cmocka_unit_test(test_vcpus),
        cmocka_unit_test(test_start_refusals),
        cmocka_unit_test(test_overhead_grows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
