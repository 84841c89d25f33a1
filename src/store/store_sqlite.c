/* store_sqlite.c: the local SQLite driver: tables per class, schema
 * upgrades, cached statements. */
#include "store_driver.h"

#include "fault_vfs.h"
#include "store_schema.h"

#include <sqlite3.h>
#include <string.h>

typedef struct ClassStatements {
    sqlite3_stmt *put;    /* INSERT OR REPLACE, all stored columns */
    sqlite3_stmt *del;
    sqlite3_stmt **set;   /* per field index (NULL for derived fields) */
} ClassStatements;

typedef struct SqliteStore {
    Store base;
    sqlite3 *db;
    char *dir;              /* the directory holding the database, for OUT_OF_SPACE */
    ClassStatements *stmts; /* [class index], persisted classes only */
} SqliteStore;

/* Sets the error for SQLite's last failure: a full disk is XAPI's
 * OUT_OF_SPACE [location], anything else INTERNAL_ERROR. */
static int sqlite_fail(SqliteStore *s, XapiError **err, const char *what)
{
    if ((sqlite3_extended_errcode(s->db) & 0xff) == SQLITE_FULL)
        return xapi_error_set(err, "OUT_OF_SPACE", s->dir, NULL);
    return xapi_error_internal(err, "sqlite: %s: %s", what, sqlite3_errmsg(s->db));
}

static int exec(SqliteStore *s, const char *sql, XapiError **err)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sqlite_fail(s, err, sql);
    return 0;
}

/* Writes happen only inside store_begin/store_commit. */
static int check_in_transaction(SqliteStore *s, XapiError **err)
{
    if (sqlite3_get_autocommit(s->db))
        return xapi_error_internal(err, "sqlite: write outside a transaction");
    return 0;
}

static GHashTable *existing_columns(SqliteStore *s, const char *table)
{
    GHashTable *cols = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autofree char *sql = g_strdup_printf("PRAGMA table_info(\"%s\")", table);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK)
        while (sqlite3_step(st) == SQLITE_ROW)
            g_hash_table_add(cols, g_strdup((const char *)sqlite3_column_text(st, 1)));
    sqlite3_finalize(st);
    return cols;
}

static int ensure_table(SqliteStore *s, const DmClass *cls, XapiError **err)
{
    if (exec(s, store_schema_class(cls)->create, err) < 0)
        return -1;
    /* A newer datamodel may have added fields: add their columns. */
    g_autoptr(GHashTable) cols = existing_columns(s, cls->name);
    g_autoptr(GPtrArray) alters = store_schema_missing_columns(cls, cols);
    for (guint i = 0; i < alters->len; i++)
        if (exec(s, alters->pdata[i], err) < 0)
            return -1;
    return 0;
}

static int prepare(SqliteStore *s, const char *sql, sqlite3_stmt **st, XapiError **err)
{
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
        return sqlite_fail(s, err, sql);
    return 0;
}

static int prepare_class(SqliteStore *s, const DmClass *cls, XapiError **err)
{
    ClassStatements *cs = &s->stmts[cls->index];
    const StoreClassSql *sql = store_schema_class(cls);
    if (prepare(s, sql->put, &cs->put, err) < 0 || prepare(s, sql->del, &cs->del, err) < 0)
        return -1;
    cs->set = g_new0(sqlite3_stmt *, cls->n_fields);
    return 0;
}

static const StoreDriver sqlite_driver;
static void sqlite_close(Store *base);

Store *store_sqlite_open(const char *path, XapiError **err)
{
    SqliteStore *s = g_new0(SqliteStore, 1);
    s->base.driver = &sqlite_driver;
    s->dir = g_path_get_dirname(path);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
    if (sqlite3_open_v2(path, &s->db, flags, fault_vfs_name()) != SQLITE_OK) {
        xapi_error_internal(err, "sqlite: cannot open %s: %s", path,
                            s->db ? sqlite3_errmsg(s->db) : "out of memory");
        sqlite_close(&s->base);
        return NULL;
    }
    sqlite3_busy_timeout(s->db, 5000);
    s->stmts = g_new0(ClassStatements, dm_n_classes);
    /* Reads are served from memory (src/db): SQLite's page cache only
     * helps writes find their B-tree pages, which the OS caches anyway. */
    if (exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-256;",
             err) < 0 ||
        exec(s, STORE_SCHEMA_META_CREATE, err) < 0 ||
        exec(s, "BEGIN", err) < 0)
        goto fail;
    for (unsigned c = 0; c < dm_n_classes; c++) {
        if (!dm_classes[c].persist)
            continue;
        if (ensure_table(s, &dm_classes[c], err) < 0 || prepare_class(s, &dm_classes[c], err) < 0) {
            exec(s, "ROLLBACK", NULL);
            goto fail;
        }
    }
    if (exec(s, "COMMIT", err) < 0)
        goto fail;
    return &s->base;
fail:
    sqlite_close(&s->base);
    return NULL;
}

static void sqlite_close(Store *base)
{
    SqliteStore *s = (SqliteStore *)base;
    if (!s)
        return;
    for (unsigned c = 0; s->stmts && c < dm_n_classes; c++) {
        ClassStatements *cs = &s->stmts[c];
        sqlite3_finalize(cs->put);
        sqlite3_finalize(cs->del);
        for (unsigned i = 0; cs->set && i < dm_classes[c].n_fields; i++)
            sqlite3_finalize(cs->set[i]);
        g_free(cs->set);
    }
    g_free(s->stmts);
    sqlite3_close(s->db);
    g_free(s->dir);
    g_free(s);
}

static int sqlite_begin(Store *base, XapiError **err)
{
    return exec((SqliteStore *)base, "BEGIN IMMEDIATE", err);
}

static int sqlite_commit(Store *base, XapiError **err)
{
    return exec((SqliteStore *)base, "COMMIT", err);
}

static void sqlite_rollback(Store *base)
{
    SqliteStore *s = (SqliteStore *)base;
    if (!sqlite3_get_autocommit(s->db))
        exec(s, "ROLLBACK", NULL);
}

static int step_done(SqliteStore *s, sqlite3_stmt *st, XapiError **err)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        return sqlite_fail(s, err, "write");
    return 0;
}

static int sqlite_put_row(Store *base, const DmClass *cls, const char *ref, const char *const *texts,
                  XapiError **err)
{
    SqliteStore *s = (SqliteStore *)base;
    if (check_in_transaction(s, err) < 0)
        return -1;
    sqlite3_stmt *st = s->stmts[cls->index].put;
    int col = 1;
    sqlite3_bind_text(st, col++, ref, -1, SQLITE_STATIC);
    for (unsigned i = 0; i < cls->n_fields; i++)
        if (!cls->fields[i].derived)
            sqlite3_bind_text(st, col++, texts[i], -1, SQLITE_STATIC);
    return step_done(s, st, err);
}

static int sqlite_set_field(Store *base, const DmClass *cls, const char *ref, const DmField *field,
                    const char *text, XapiError **err)
{
    SqliteStore *s = (SqliteStore *)base;
    if (check_in_transaction(s, err) < 0)
        return -1;
    sqlite3_stmt **st = &s->stmts[cls->index].set[field->index];
    if (!*st) {
        g_autofree char *sql = store_schema_update_sql(cls, field);
        if (prepare(s, sql, st, err) < 0)
            return -1;
    }
    sqlite3_bind_text(*st, 1, text, -1, SQLITE_STATIC);
    sqlite3_bind_text(*st, 2, ref, -1, SQLITE_STATIC);
    return step_done(s, *st, err);
}

static int sqlite_delete_row(Store *base, const DmClass *cls, const char *ref, XapiError **err)
{
    SqliteStore *s = (SqliteStore *)base;
    if (check_in_transaction(s, err) < 0)
        return -1;
    sqlite3_stmt *st = s->stmts[cls->index].del;
    sqlite3_bind_text(st, 1, ref, -1, SQLITE_STATIC);
    return step_done(s, st, err);
}

static int sqlite_load_class(Store *base, const DmClass *cls, StoreRowCallback cb, void *ctx,
                     XapiError **err)
{
    SqliteStore *s = (SqliteStore *)base;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, store_schema_class(cls)->select, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sqlite_fail(s, err, "load");
    g_autofree const char **texts = g_new0(const char *, cls->n_fields + 1);
    int result = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int col = 1;
        for (unsigned i = 0; i < cls->n_fields; i++)
            texts[i] = cls->fields[i].derived ? NULL
                                              : (const char *)sqlite3_column_text(st, col++);
        if (cb(ctx, cls, (const char *)sqlite3_column_text(st, 0), texts) != 0) {
            result = -1;
            break;
        }
    }
    if (result == 0 && rc != SQLITE_DONE)
        result = sqlite_fail(s, err, "load");
    sqlite3_finalize(st);
    return result;
}

static char *sqlite_meta_get(Store *base, const char *key)
{
    SqliteStore *s = (SqliteStore *)base;
    sqlite3_stmt *st = NULL;
    char *value = NULL;
    if (sqlite3_prepare_v2(s->db, STORE_SCHEMA_META_GET, -1, &st, NULL) !=
        SQLITE_OK)
        return NULL;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        value = g_strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return value;
}

static int sqlite_meta_set(Store *base, const char *key, const char *value, XapiError **err)
{
    SqliteStore *s = (SqliteStore *)base;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, STORE_SCHEMA_META_SET,
                           -1, &st, NULL) != SQLITE_OK)
        return sqlite_fail(s, err, "meta");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sqlite_fail(s, err, "meta");
}

static int sqlite_meta_delete(Store *base, const char *key, XapiError **err)
{
    SqliteStore *s = (SqliteStore *)base;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, STORE_SCHEMA_META_DELETE, -1, &st, NULL) !=
        SQLITE_OK)
        return sqlite_fail(s, err, "meta");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sqlite_fail(s, err, "meta");
}

static GPtrArray *sqlite_meta_keys(Store *base, const char *prefix)
{
    SqliteStore *s = (SqliteStore *)base;
    GPtrArray *keys = g_ptr_array_new_with_free_func(g_free);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, STORE_SCHEMA_META_KEYS, -1,
                           &st, NULL) != SQLITE_OK)
        return keys;
    sqlite3_bind_int(st, 1, (int)strlen(prefix));
    sqlite3_bind_text(st, 2, prefix, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW)
        g_ptr_array_add(keys, g_strdup((const char *)sqlite3_column_text(st, 0)));
    sqlite3_finalize(st);
    return keys;
}

static const StoreDriver sqlite_driver = {
    .name = "sqlite",
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .put_row = sqlite_put_row,
    .set_field = sqlite_set_field,
    .delete_row = sqlite_delete_row,
    .load_class = sqlite_load_class,
    .meta_get = sqlite_meta_get,
    .meta_set = sqlite_meta_set,
    .meta_delete = sqlite_meta_delete,
    .meta_keys = sqlite_meta_keys,
    .close = sqlite_close,
};
