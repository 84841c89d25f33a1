/* rbac_test.c: permission names and holders, protected map keys (with
 * wildcards) for add_to_/remove_from_, and the per-key rule of set_ of a
 * protected map (XAPI's set_map_with_rbac). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "rbac.h"

/* The permission a call of wire with args (strings) needs. */
static char *permission(const char *wire, unsigned *roles, ...)
{
    Call call = {.msg = dm_message_by_wire_name(wire), .args = xv_new_array()};
    assert_non_null(call.msg);
    va_list ap;
    va_start(ap, roles);
    for (const char *a = va_arg(ap, const char *); a; a = va_arg(ap, const char *))
        xv_array_append_string(call.args, a);
    va_end(ap);
    char *p = rbac_call_permission(&call, roles);
    xv_free(call.args);
    return p;
}

static void test_message_and_key_permissions(void **state)
{
    unsigned roles;
    g_autofree char *start = permission("VM.start", &roles, "OpaqueRef:x", NULL);
    assert_string_equal(start, "vm.start");
    assert_int_equal(roles, RBAC_R_VM_OP);
    g_autofree char *folder =
        permission("VM.add_to_other_config", &roles, "OpaqueRef:x", "folder", "/a", NULL);
    assert_string_equal(folder, "vm.add_to_other_config/key:folder");
    assert_int_equal(roles, RBAC_R_VM_OP);
    g_autofree char *custom = permission("VM.remove_from_other_config", &roles, "OpaqueRef:x",
                                         "XenCenter.CustomFields.colour", NULL);
    assert_string_equal(custom, "vm.remove_from_other_config/key:xencenter.customfields.*");
    g_autofree char *pci =
        permission("VM.add_to_other_config", &roles, "OpaqueRef:x", "pci", "0/0", NULL);
    assert_string_equal(pci, "vm.add_to_other_config/key:pci");
    assert_int_equal(roles, RBAC_R_POOL_ADMIN);
    g_autofree char *plain =
        permission("VM.add_to_other_config", &roles, "OpaqueRef:x", "folderx", "", NULL);
    assert_string_equal(plain, "vm.add_to_other_config"); /* no wildcard on folder */
    assert_int_equal(roles, dm_message_by_wire_name("VM.add_to_other_config")->roles);
    g_autofree char *sr =
        permission("SR.add_to_other_config", &roles, "OpaqueRef:x", "folder", "", NULL);
    assert_string_equal(sr, "sr.add_to_other_config/key:folder");
}

static void test_holders_and_lists(void **state)
{
    assert_int_equal(rbac_roles_of_permission("vm.add_to_other_config/key:pci"),
                     RBAC_R_POOL_ADMIN);
    assert_int_equal(rbac_roles_of_permission("http/get_export"), RBAC_R_VM_ADMIN);
    assert_int_equal(rbac_roles_of_permission("task.destroy/any"), RBAC_R_POOL_OP);
    assert_int_equal(rbac_roles_of_permission("no.such"), 0);
    g_autoptr(Xv) ro = rbac_permissions_of_roles(DM_ROLE_READ_ONLY);
    assert_string_equal(xv_str(xv_at(ro, 0)), "read-only");
    assert_int_equal(rbac_roles_of_permissions(ro), DM_ROLE_READ_ONLY);
    g_autoptr(Xv) two = rbac_permissions_of_roles(DM_ROLE_VM_ADMIN | DM_ROLE_READ_ONLY);
    assert_int_equal(rbac_roles_of_permissions(two), DM_ROLE_VM_ADMIN | DM_ROLE_READ_ONLY);
    bool has_get = false, has_start = false;
    for (guint i = 0; i < xv_len(ro); i++) {
        has_get |= strcmp(xv_str(xv_at(ro, i)), "vm.get_record") == 0;
        has_start |= strcmp(xv_str(xv_at(ro, i)), "vm.start") == 0;
    }
    assert_true(has_get);
    assert_false(has_start);
    g_autoptr(Xv) none = rbac_permissions_of_roles(0);
    assert_int_equal(xv_len(none), 0);
    XapiError *err = NULL;
    assert_int_equal(rbac_deny(&err, "sr.create", RBAC_R_POOL_OP), -1);
    assert_string_equal(err->params->pdata[1], "No permission in user session. (Roles with "
                                               "this permission: pool-admin, pool-operator)");
    xapi_error_free(err);
}

/* A string map of key, value pairs up to a NULL key. */
static Xv *map(const char *key, ...)
{
    Xv *m = xv_new_struct();
    va_list ap;
    va_start(ap, key);
    for (const char *k = key; k; k = va_arg(ap, const char *))
        xv_struct_set_string(m, k, va_arg(ap, const char *));
    va_end(ap);
    return m;
}

static void test_set_of_protected_map(void **state)
{
    const DmMessage *set = dm_message_by_wire_name("VM.set_other_config");
    assert_true(rbac_is_keyed_map_set(set));
    assert_false(rbac_is_keyed_map_set(dm_message_by_wire_name("VM.set_name_label")));
    assert_false(rbac_is_keyed_map_set(dm_message_by_wire_name("VM.add_to_other_config")));
    g_autoptr(Xv) old = map("pci", "0/1", "a", "1", NULL);
    unsigned needed = 0;
    g_autoptr(Xv) kept = map("pci", "0/1", "b", "2", NULL);
    assert_null(rbac_map_set_missing(set, old, kept, DM_ROLE_VM_ADMIN, &needed));
    g_autoptr(Xv) changed = map("pci", "0/2", NULL);
    g_autofree char *add = rbac_map_set_missing(set, old, changed, DM_ROLE_VM_ADMIN, &needed);
    assert_string_equal(add, "vm.add_to_other_config/key:pci");
    assert_int_equal(needed, RBAC_R_POOL_ADMIN);
    assert_null(rbac_map_set_missing(set, old, changed, DM_ROLE_POOL_ADMIN, &needed));
    g_autoptr(Xv) removed = map("a", "1", NULL);
    g_autofree char *rm = rbac_map_set_missing(set, old, removed, DM_ROLE_VM_ADMIN, &needed);
    assert_string_equal(rm, "vm.remove_from_other_config/key:pci");
    g_autoptr(Xv) folder = map("folder", "/x", NULL);
    assert_null(rbac_map_set_missing(set, NULL, folder, DM_ROLE_VM_OPERATOR, &needed));
    g_autofree char *ro = rbac_map_set_missing(set, NULL, folder, DM_ROLE_READ_ONLY, &needed);
    assert_string_equal(ro, "vm.add_to_other_config/key:folder");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_and_key_permissions),
        cmocka_unit_test(test_holders_and_lists),
        cmocka_unit_test(test_set_of_protected_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
