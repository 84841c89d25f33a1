/* db_test.c: the object database: defaults, relations both ways, uuid
 * index, persistence across reopen, DB text round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <glib/gstdio.h>

#include "db.h"
#include "db_text.h"

static char *state_dir;

static DbRow *insert(const char *cls, const char *field, Xv *value)
{
    DbRow *row = db_row_new(dm_class_by_name(cls));
    if (field)
        db_row_put(row, field, value);
    assert_int_equal(db_insert(row, NULL), 0);
    return row;
}

static bool contains(const Xv *set, const char *ref)
{
    for (guint i = 0; i < xv_len(set); i++)
        if (g_str_equal(xv_str(xv_at(set, i)), ref))
            return true;
    return false;
}

static void test_defaults_relations_and_reopen(void **state)
{
    state_dir = g_dir_make_tmp("xapid-db-XXXXXX", NULL);
    assert_int_equal(db_open(state_dir, NULL), 0);
    assert_int_equal(db_write_begin(NULL), 0);
    DbRow *vm = insert("VM", "name_label", xv_new_string("v1"));
    g_autofree char *vm_ref = g_strdup(vm->ref);
    g_autofree char *vm_uuid = g_strdup(xv_str(db_get(vm, "uuid")));
    DbRow *vbd = insert("VBD", "VM", xv_new_string(vm_ref));
    g_autofree char *vbd_ref = g_strdup(vbd->ref);
    assert_int_equal(db_write_commit(NULL), 0);

    db_read_begin();
    assert_string_equal(xv_str(db_get(vm, "power_state")), "Halted");
    assert_int_equal(xv_len(db_get(vm, "other_config")), 0);
    assert_true(contains(db_get(vm, "VBDs"), vbd_ref));
    assert_ptr_equal(db_lookup_uuid(dm_class_by_name("VM"), vm_uuid), vm);
    assert_ptr_equal(db_lookup_any(vbd_ref), vbd);
    assert_null(db_lookup(dm_class_by_name("host"), vm_ref));
    db_read_end();

    /* Moving the VBD to another VM updates both reverse sets. */
    assert_int_equal(db_write_begin(NULL), 0);
    DbRow *vm2 = insert("VM", NULL, NULL);
    g_autofree char *vm2_ref = g_strdup(vm2->ref);
    assert_int_equal(db_set_by_name(vbd, "VM", xv_new_string(vm2_ref), NULL), 0);
    assert_int_equal(db_write_commit(NULL), 0);
    assert_false(contains(db_get(vm, "VBDs"), vbd_ref));
    assert_true(contains(db_get(vm2, "VBDs"), vbd_ref));

    /* Reopen: rows and derived sets come back from SQLite. */
    db_close();
    assert_int_equal(db_open(state_dir, NULL), 0);
    db_read_begin();
    DbRow *again = db_lookup(dm_class_by_name("VM"), vm2_ref);
    assert_non_null(again);
    assert_true(contains(db_get(again, "VBDs"), vbd_ref));
    DbRow *first = db_lookup(dm_class_by_name("VM"), vm_ref);
    assert_string_equal(xv_str(db_get(first, "name_label")), "v1");
    db_read_end();

    /* Deleting the VBD empties the VM's set. */
    assert_int_equal(db_write_begin(NULL), 0);
    assert_int_equal(db_delete(db_lookup_any(vbd_ref), NULL), 0);
    assert_int_equal(db_write_commit(NULL), 0);
    assert_int_equal(xv_len(db_get(again, "VBDs")), 0);
    db_close();
}

static void test_db_text_round_trips(void **state)
{
    const DmClass *vm = dm_class_by_name("VM");
    const char *fields[] = {"name_label", "user_version", "is_a_template", "other_config",
                            "tags", "power_state", "snapshot_time", "current_operations"};
    for (unsigned i = 0; i < G_N_ELEMENTS(fields); i++) {
        const DmField *f = dm_field_by_name(vm, fields[i]);
        assert_non_null(f);
        g_autoptr(Xv) v = db_field_default(f);
        g_autofree char *text = db_text_from_value(f->type, v);
        g_autoptr(Xv) back = db_text_to_value(f->type, text, NULL);
        assert_non_null(back);
        assert_true(xv_equal(v, back));
    }
    const DmField *oc = dm_field_by_name(vm, "other_config");
    g_autoptr(Xv) map = xv_new_struct();
    xv_struct_set_string(map, "k\"ey", "v\\al");
    g_autofree char *text = db_text_from_value(oc->type, map);
    g_autoptr(Xv) back = db_text_to_value(oc->type, text, NULL);
    assert_true(xv_equal(map, back));
    g_autoptr(XapiError) err = NULL;
    assert_null(db_text_to_value(dm_field_by_name(vm, "user_version")->type, "12x", &err));
    assert_string_equal(err->code, "INTERNAL_ERROR");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_relations_and_reopen),
        cmocka_unit_test(test_db_text_round_trips),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (state_dir) {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", state_dir);
        (void)system(cmd);
    }
    return rc;
}
