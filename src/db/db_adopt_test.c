/* db_adopt_test.c: a member's replica adopting the pool's store when it
 * turns master (db_adopt_store): rows changed, added and gone since the
 * replica's last batch become changes at one generation above every one
 * before (an event.from token from before sees them, deletions included),
 * and later writes go to the store with no commit hook. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <glib/gstdio.h>
#include <string.h>

#include "db.h"
#include "store.h"

static char *state_dir;

static int refuse_ship(uint64_t *generation, XapiError **err)
{
    (void)generation;
    return xapi_error_internal(err, "test: no master to ship to");
}

static void put_vm(const char *ref, const char *name)
{
    DbRow *row = db_row_new_with_ref(dm_class_by_name("VM"), ref);
    db_row_put(row, "name_label", xv_new_string(name));
    db_row_put(row, "uuid", xv_new_string(ref + strlen("OpaqueRef:"))); /* the same on both */
    assert_int_equal(db_insert(row, NULL), 0);
}

static const char *name_of(const char *ref)
{
    DbRow *row = db_lookup(dm_class_by_name("VM"), ref);
    return row ? xv_str(db_get(row, "name_label")) : NULL;
}

typedef struct {
    GPtrArray *changed;
    GPtrArray *deleted;
} Seen;

static void note_changed(const DmClass *cls, const char *ref, void *ctx)
{
    (void)cls;
    g_ptr_array_add(((Seen *)ctx)->changed, g_strdup(ref));
}

static void note_deleted(const DbDeletion *d, void *ctx)
{
    g_ptr_array_add(((Seen *)ctx)->deleted, g_strdup(d->ref));
}

static bool holds(GPtrArray *refs, const char *ref)
{
    for (guint i = 0; i < refs->len; i++)
        if (strcmp(refs->pdata[i], ref) == 0)
            return true;
    return false;
}

static void test_a_replica_adopts_the_store(void **unused)
{
    (void)unused;
    /* The pool's database as the old master left it. */
    assert_int_equal(db_open(state_dir, NULL), 0);
    assert_int_equal(db_write_begin(NULL), 0);
    put_vm("OpaqueRef:a", "renamed at the master");
    put_vm("OpaqueRef:b", "created at the master");
    put_vm("OpaqueRef:same", "unchanged");
    assert_int_equal(db_write_commit(NULL), 0);
    db_close();

    /* A member's replica, one batch behind: a's old name, no b, c which
     * the master deleted since. */
    assert_int_equal(db_open(NULL, NULL), 0);
    db_set_commit_hook(refuse_ship);
    uint64_t token = (uint64_t)g_get_real_time();
    assert_int_equal(db_replica_begin(token, NULL), 0);
    put_vm("OpaqueRef:a", "old name");
    put_vm("OpaqueRef:c", "deleted at the master");
    put_vm("OpaqueRef:same", "unchanged");
    assert_int_equal(db_replica_commit(false, NULL), 0);

    g_autofree char *path = g_build_filename(state_dir, "xapid.db", NULL);
    Store *store = store_open(path, NULL);
    assert_non_null(store);
    assert_int_equal(db_adopt_store(store, NULL), 0);
    assert_true(db_generation() > token);

    Seen seen = {g_ptr_array_new_with_free_func(g_free), g_ptr_array_new_with_free_func(g_free)};
    db_read_begin();
    assert_string_equal(name_of("OpaqueRef:a"), "renamed at the master");
    assert_string_equal(name_of("OpaqueRef:b"), "created at the master");
    assert_null(name_of("OpaqueRef:c"));
    assert_true(db_foreach_change(token, note_changed, &seen));
    db_foreach_deletion(dm_class_by_name("VM"), token, note_deleted, &seen);
    db_read_end();
    assert_true(holds(seen.changed, "OpaqueRef:a"));
    assert_true(holds(seen.changed, "OpaqueRef:b"));
    assert_false(holds(seen.changed, "OpaqueRef:same"));
    assert_true(holds(seen.deleted, "OpaqueRef:c"));
    g_ptr_array_unref(seen.changed);
    g_ptr_array_unref(seen.deleted);

    /* A second adoption is refused: it writes to its store now. */
    XapiError *err = NULL;
    assert_int_equal(db_adopt_store(NULL, &err), -1);
    xapi_error_free(err);
    assert_int_equal(db_update("VM", "OpaqueRef:b", "name_label",
                               xv_new_string("written by the new master"), NULL), 0);
    db_close();
    assert_int_equal(db_open(state_dir, NULL), 0);
    db_read_begin();
    assert_string_equal(name_of("OpaqueRef:b"), "written by the new master");
    assert_null(name_of("OpaqueRef:c"));
    db_read_end();
    db_close();
}

int main(void)
{
    state_dir = g_dir_make_tmp("xapid-db-adopt-XXXXXX", NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_replica_adopts_the_store),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", state_dir);
    (void)system(cmd);
    g_free(state_dir);
    return rc;
}
