/* store_test.c: the SQLite store: round trips, rollback, schema upgrade
 * from an older datamodel, and commits that survive SIGKILL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store.h"

typedef struct {
    GHashTable *rows; /* ref -> name_label text ("" for NULL) */
    int null_columns;  /* texts that were NULL in the last row seen */
} Loaded;

static int collect(void *ctx, const DmClass *cls, const char *ref, const char *const *texts)
{
    Loaded *l = ctx;
    const DmField *label = dm_field_by_name(cls, "name_label");
    g_hash_table_insert(l->rows, g_strdup(ref), g_strdup(texts[label->index] ? texts[label->index] : ""));
    l->null_columns = 0;
    for (unsigned i = 0; i < cls->n_fields; i++)
        l->null_columns += !cls->fields[i].derived && texts[i] == NULL;
    return 0;
}

static Loaded load(Store *s, const char *cls_name)
{
    Loaded l = {g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free), 0};
    assert_int_equal(store_load_class(s, dm_class_by_name(cls_name), collect, &l, NULL), 0);
    return l;
}

/* A row whose every stored field holds its name, name_label = label. */
static int put_vm(Store *s, const char *ref, const char *label)
{
    const DmClass *vm = dm_class_by_name("VM");
    const char **texts = g_new0(const char *, vm->n_fields);
    for (unsigned i = 0; i < vm->n_fields; i++)
        texts[i] = vm->fields[i].name;
    texts[dm_field_by_name(vm, "name_label")->index] = label;
    int rc = store_put_row(s, vm, ref, texts, NULL);
    g_free(texts);
    return rc;
}

static char *temp_db(void)
{
    char *dir = g_dir_make_tmp("xapid-store-XXXXXX", NULL);
    char *path = g_build_filename(dir, "t.db", NULL);
    g_free(dir);
    return path;
}

static void remove_db(char *path)
{
    g_autofree char *dir = g_path_get_dirname(path);
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    g_free(path);
}

static void test_round_trip_set_delete_rollback(void **state)
{
    char *path = temp_db();
    Store *s = store_open(path, NULL);
    assert_non_null(s);
    const DmClass *vm = dm_class_by_name("VM");
    assert_int_equal(store_begin(s, NULL), 0);
    assert_int_equal(put_vm(s, "OpaqueRef:a", "first"), 0);
    assert_int_equal(put_vm(s, "OpaqueRef:b", "second"), 0);
    assert_int_equal(store_commit(s, NULL), 0);
    assert_int_equal(store_begin(s, NULL), 0);
    assert_int_equal(store_set_field(s, vm, "OpaqueRef:a", dm_field_by_name(vm, "name_label"),
                                     "renamed", NULL), 0);
    assert_int_equal(store_delete_row(s, vm, "OpaqueRef:b", NULL), 0);
    assert_int_equal(store_commit(s, NULL), 0);
    assert_int_equal(store_begin(s, NULL), 0);
    assert_int_equal(put_vm(s, "OpaqueRef:c", "rolled back"), 0);
    store_rollback(s);
    assert_int_equal(store_meta_set(s, "k", "v", NULL), 0);
    store_close(s);

    s = store_open(path, NULL);
    Loaded l = load(s, "VM");
    assert_int_equal(g_hash_table_size(l.rows), 1);
    assert_string_equal(g_hash_table_lookup(l.rows, "OpaqueRef:a"), "renamed");
    g_autofree char *meta = store_meta_get(s, "k");
    assert_string_equal(meta, "v");
    assert_null(store_meta_get(s, "missing"));
    g_hash_table_destroy(l.rows);
    store_close(s);
    remove_db(path);
}

/* A database written by an older datamodel lacks columns: they are added,
 * and read back as NULL (the loader then uses the field's default). */
static void test_schema_upgrade_adds_columns(void **state)
{
    char *path = temp_db();
    sqlite3 *raw;
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw,
                                  "CREATE TABLE \"VM\" (\"_ref\" TEXT PRIMARY KEY, \"uuid\" TEXT, "
                                  "\"name_label\" TEXT);"
                                  "INSERT INTO \"VM\" VALUES ('OpaqueRef:old', 'u', 'legacy');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(raw);
    Store *s = store_open(path, NULL);
    assert_non_null(s);
    Loaded l = load(s, "VM");
    assert_string_equal(g_hash_table_lookup(l.rows, "OpaqueRef:old"), "legacy");
    const DmClass *vm = dm_class_by_name("VM");
    unsigned stored = 0;
    for (unsigned i = 0; i < vm->n_fields; i++)
        stored += !vm->fields[i].derived;
    assert_int_equal(l.null_columns, stored - 2); /* all but uuid and name_label */
    g_hash_table_destroy(l.rows);
    store_close(s);
    remove_db(path);
}

/* Commits are durable when the process dies without closing anything. */
static void test_commits_survive_sigkill(void **state)
{
    char *path = temp_db();
    pid_t child = fork();
    if (child == 0) {
        Store *s = store_open(path, NULL);
        for (int i = 0; s && i < 200; i++) {
            g_autofree char *ref = g_strdup_printf("OpaqueRef:%d", i);
            if (store_begin(s, NULL) < 0 || put_vm(s, ref, "x") < 0 || store_commit(s, NULL) < 0)
                _exit(1);
        }
        raise(SIGKILL);
        _exit(2);
    }
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    Store *s = store_open(path, NULL);
    Loaded l = load(s, "VM");
    assert_int_equal(g_hash_table_size(l.rows), 200);
    g_hash_table_destroy(l.rows);
    store_close(s);
    remove_db(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_set_delete_rollback),
        cmocka_unit_test(test_schema_upgrade_adds_columns),
        cmocka_unit_test(test_commits_survive_sigkill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
