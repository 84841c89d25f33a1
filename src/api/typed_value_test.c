/* typed_value_test.c: wire values -> typed values: enums matched as XAPI
 * matches them (case-insensitive but for bond_mode and event_operation),
 * stored in the datamodel's spelling; empty refs kept as given. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "typed_value.h"

static const DmType *field_type(const char *cls, const char *field)
{
    const DmField *f = dm_field_by_name(dm_class_by_name(cls), field);
    assert_non_null(f);
    return f->type;
}

/* The typed value of s for cls.field, or NULL with *code set. */
static Xv *parse(const char *cls, const char *field, const char *s, char **code)
{
    g_autoptr(Xv) wire = xv_new_string(s);
    XapiError *err = NULL;
    Xv *v = typed_value_from_wire(field_type(cls, field), wire, field, &err);
    *code = err ? g_strdup(err->code) : NULL;
    xapi_error_free(err);
    return v;
}

static void assert_enum(const char *cls, const char *field, const char *wire,
                        const char *stored)
{
    g_autofree char *code = NULL;
    g_autoptr(Xv) v = parse(cls, field, wire, &code);
    assert_null(code);
    assert_string_equal(xv_str(v), stored);
}

static void assert_rejected(const char *cls, const char *field, const char *wire)
{
    g_autofree char *code = NULL;
    g_autoptr(Xv) v = parse(cls, field, wire, &code);
    assert_null(v);
    assert_string_equal(code, "INVALID_VALUE");
}

static void test_enums_any_case(void **state)
{
    (void)state;
    /* what nova and the Java SDK send */
    assert_enum("VM", "power_state", "HALTED", "Halted");
    assert_enum("VM", "power_state", "halted", "Halted");
    assert_enum("VM", "actions_after_crash", "DESTROY", "destroy");
    assert_enum("VM", "actions_after_shutdown", "Destroy", "destroy");
    assert_enum("VBD", "type", "disk", "Disk");
    assert_enum("VBD", "type", "DISK", "Disk");
    assert_enum("VBD", "type", "cd", "CD");
    assert_enum("VBD", "mode", "rw", "RW");
    assert_enum("VDI", "type", "User", "user");
    assert_enum("VDI", "type", "USER", "user");
    assert_enum("VM", "domain_type", "HVM", "hvm");
    assert_rejected("VM", "power_state", "Halt");
    assert_rejected("VBD", "type", "");
}

static void test_exact_enums(void **state)
{
    (void)state;
    assert_enum("Bond", "mode", "active-backup", "active-backup");
    assert_rejected("Bond", "mode", "Active-Backup");
    assert_rejected("Bond", "mode", "LACP");
}

static void test_enum_elements_and_keys(void **state)
{
    (void)state;
    /* a set of enums and a map keyed by an enum */
    g_autoptr(Xv) set = xv_new_array();
    xv_array_append_string(set, "START");
    xv_array_append_string(set, "Clean_Shutdown");
    XapiError *err = NULL;
    g_autoptr(Xv) ops = typed_value_from_wire(field_type("VM", "allowed_operations"), set,
                                              "allowed_operations", &err);
    assert_null(err);
    assert_string_equal(xv_str(xv_at(ops, 0)), "start");
    assert_string_equal(xv_str(xv_at(ops, 1)), "clean_shutdown");
    g_autoptr(Xv) map = xv_new_struct();
    xv_struct_set_string(map, "Start", "no");
    g_autoptr(Xv) blocked = typed_value_from_wire(field_type("VM", "blocked_operations"), map,
                                                  "blocked_operations", &err);
    assert_null(err);
    assert_non_null(xv_struct_get(blocked, "start"));
}

static void test_empty_ref_kept(void **state)
{
    (void)state;
    g_autofree char *code = NULL;
    g_autoptr(Xv) v = parse("VM", "affinity", "", &code);
    assert_null(code);
    assert_string_equal(xv_str(v), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enums_any_case),
        cmocka_unit_test(test_exact_enums),
        cmocka_unit_test(test_enum_elements_and_keys),
        cmocka_unit_test(test_empty_ref_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
