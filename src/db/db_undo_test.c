/* db_undo_test.c: a write that is aborted, or whose COMMIT fails, leaves
 * memory exactly as before (rows, derived sets in order, uuid index,
 * generations) and publishes no change; the store's fault shim
 * (XAPID_SQLITE_FAULTS) makes the commit fail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <glib/gstdio.h>

#include "db.h"
#include "db_text.h"

static char *state_dir;
static char *fault_file;

static void set_faults(const char *mode)
{
    g_assert(g_file_set_contents(fault_file, mode, -1, NULL));
}

static DbRow *insert(const char *cls, const char *field, Xv *value)
{
    DbRow *row = db_row_new(dm_class_by_name(cls));
    if (field)
        db_row_put(row, field, value);
    assert_int_equal(db_insert(row, NULL), 0);
    return row;
}

static gint compare_refs(gconstpointer a, gconstpointer b)
{
    return strcmp(((const DbRow *const *)a)[0]->ref, ((const DbRow *const *)b)[0]->ref);
}

static bool collect(DbRow *row, void *ctx)
{
    g_ptr_array_add(ctx, row);
    return true;
}

/* Everything memory holds, as text: every row of every class by ref, with
 * its generations and every field (derived sets in their order). */
static char *dump(void)
{
    GString *out = g_string_new(NULL);
    db_read_begin();
    for (unsigned c = 0; c < dm_n_classes; c++) {
        g_autoptr(GPtrArray) rows = g_ptr_array_new();
        db_foreach(&dm_classes[c], collect, rows);
        g_ptr_array_sort(rows, compare_refs);
        for (guint r = 0; r < rows->len; r++) {
            DbRow *row = rows->pdata[r];
            g_string_append_printf(out, "%s %s %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT "\n",
                                   row->cls->name, row->ref, row->created, row->modified);
            for (unsigned i = 0; i < row->cls->n_fields; i++) {
                const DmField *f = &row->cls->fields[i];
                g_autofree char *text = db_text_from_value(f->type, &row->fields[i]);
                g_string_append_printf(out, "  %s=%s\n", f->name, text);
            }
            const char *uuid = row->cls->uuid_field >= 0
                                   ? xv_str(&row->fields[row->cls->uuid_field])
                                   : NULL;
            if (uuid && *uuid)
                g_string_append_printf(out, "  by-uuid=%d\n",
                                       db_lookup_uuid(row->cls, uuid) == row);
        }
    }
    g_string_append_printf(out, "generation %" G_GUINT64_FORMAT "\n", db_generation());
    db_read_end();
    return g_string_free(out, FALSE);
}

static void count_change(const DmClass *cls, const char *ref, void *ctx)
{
    (void)cls, (void)ref;
    ++*(int *)ctx;
}

static void count_deletion(const DbDeletion *d, void *ctx)
{
    (void)d;
    ++*(int *)ctx;
}

typedef struct {
    char *vm_a, *vm_b, *vbd, *vdi;
} World;

static void world_make(World *w)
{
    assert_int_equal(db_write_begin(NULL), 0);
    DbRow *a = insert("VM", "name_label", xv_new_string("a"));
    DbRow *b = insert("VM", "name_label", xv_new_string("b"));
    DbRow *vdi = insert("VDI", NULL, NULL);
    w->vm_a = g_strdup(a->ref);
    w->vm_b = g_strdup(b->ref);
    w->vdi = g_strdup(vdi->ref);
    for (int i = 0; i < 3; i++) { /* several entries, so that order matters */
        DbRow *vbd = insert("VBD", "VM", xv_new_string(w->vm_a));
        db_set_by_name(vbd, "VDI", xv_new_string(w->vdi), NULL);
        if (i == 1)
            w->vbd = g_strdup(vbd->ref);
    }
    assert_int_equal(db_write_commit(NULL), 0);
}

static void world_clear(World *w)
{
    g_free(w->vm_a), g_free(w->vm_b), g_free(w->vbd), g_free(w->vdi);
}

/* Every kind of change the db makes, in one write, on rows old and new. */
static void mutate(const World *w)
{
    const DmClass *vm_cls = dm_class_by_name("VM");
    DbRow *c = insert("VM", "name_label", xv_new_string("c"));
    DbRow *extra = insert("VBD", "VM", xv_new_string(c->ref));
    DbRow *vbd = db_lookup_any(w->vbd);
    assert_int_equal(db_set_by_name(vbd, "VM", xv_new_string(w->vm_b), NULL), 0);
    DbRow *a = db_lookup(vm_cls, w->vm_a);
    assert_int_equal(db_set_by_name(a, "uuid", xv_new_string("0000-new-uuid"), NULL), 0);
    assert_int_equal(db_set_by_name(a, "name_label", xv_new_string("renamed"), NULL), 0);
    assert_int_equal(db_delete(db_lookup_any(w->vdi), NULL), 0);
    assert_int_equal(db_delete(extra, NULL), 0);
    assert_int_equal(db_delete(c, NULL), 0);
    db_touch(db_lookup(vm_cls, w->vm_b));
    assert_int_equal(db_meta_put("undo-test", "written", NULL), 0);
}

static void assert_nothing_published(uint64_t since)
{
    int changes = 0, deletions = 0;
    db_read_begin();
    assert_true(db_foreach_change(since, count_change, &changes));
    for (unsigned c = 0; c < dm_n_classes; c++)
        db_foreach_deletion(&dm_classes[c], since, count_deletion, &deletions);
    db_read_end();
    assert_int_equal(changes, 0);
    assert_int_equal(deletions, 0);
}

static void test_abort_puts_memory_back(void **state)
{
    (void)state;
    assert_int_equal(db_open(state_dir, NULL), 0);
    World w;
    world_make(&w);
    g_autofree char *before = dump();
    uint64_t since = db_generation();

    assert_int_equal(db_write_begin(NULL), 0);
    mutate(&w);
    db_write_abort();

    g_autofree char *after = dump();
    assert_string_equal(before, after);
    assert_nothing_published(since);
    assert_false(db_wait_for_change(since, g_get_monotonic_time()));
    g_autofree char *meta = db_meta_get("undo-test");
    assert_null(meta);
    world_clear(&w);
    db_close();
}

static void test_failed_commit_leaves_no_trace(void **state)
{
    (void)state;
    assert_int_equal(db_open(state_dir, NULL), 0);
    World w;
    world_make(&w);
    g_autofree char *before = dump();
    uint64_t since = db_generation();

    const char *modes[] = {"ioerr", "full"};
    for (unsigned m = 0; m < G_N_ELEMENTS(modes); m++) {
        assert_int_equal(db_write_begin(NULL), 0);
        set_faults(modes[m]);
        g_autoptr(XapiError) err = NULL;
        /* The statements may fail already (then the caller aborts), or
         * only the COMMIT: both must leave memory as it was. */
        DbRow *a = db_lookup(dm_class_by_name("VM"), w.vm_a);
        if (db_set_by_name(a, "name_label", xv_new_string("lost"), &err) < 0) {
            db_write_abort();
        } else {
            mutate(&w);
            assert_int_equal(db_write_commit(&err), -1);
        }
        set_faults("");
        assert_non_null(err);
        assert_string_equal(err->code, m == 1 ? "OUT_OF_SPACE" : "INTERNAL_ERROR");
        g_autofree char *after = dump();
        assert_string_equal(before, after);
        assert_nothing_published(since);
    }

    /* Without faults, writing works again, without reopening. */
    assert_int_equal(db_update("VM", w.vm_a, "name_label", xv_new_string("kept"), NULL), 0);
    db_close();

    /* What a restart finds: the write that committed, none that failed;
     * the first write after loading undoes nothing of the load. */
    assert_int_equal(db_open(state_dir, NULL), 0);
    assert_int_equal(db_write_begin(NULL), 0);
    db_write_abort();
    db_read_begin();
    DbRow *a = db_lookup(dm_class_by_name("VM"), w.vm_a);
    assert_non_null(a);
    assert_string_equal(xv_str(db_get(a, "name_label")), "kept");
    assert_non_null(db_lookup_any(w.vdi));
    assert_int_equal(xv_len(db_get(a, "VBDs")), 3);
    db_read_end();
    world_clear(&w);
    db_close();
}

static int setup(void **state)
{
    (void)state;
    state_dir = g_dir_make_tmp("xapid-db-undo-XXXXXX", NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", state_dir);
    (void)system(cmd);
    g_clear_pointer(&state_dir, g_free);
    return 0;
}

int main(void)
{
    g_autofree char *dir = g_dir_make_tmp("xapid-faults-XXXXXX", NULL);
    fault_file = g_build_filename(dir, "faults", NULL);
    g_setenv("XAPID_SQLITE_FAULTS", fault_file, TRUE);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_abort_puts_memory_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_commit_leaves_no_trace, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    g_unlink(fault_file);
    g_rmdir(dir);
    g_free(fault_file);
    return rc;
}
