/* store_dqlite.c: the store driver over dqlite's wire protocol. */
#include "store_dqlite.h"

#include <string.h>

#include "store_driver.h"
#include "store_schema.h"

typedef struct DqliteStore {
    Store base;
    StoreDqliteSource source;
    DqliteConn *conn;     /* NULL or broken: reconnect at the next request */
    bool in_transaction;
    /* One request at a time on conn: settings are read outside db's lock
     * (a login's password check) while a write may be under way. */
    GRecMutex lock;
} DqliteStore;

static const StoreDriver dqlite_driver;

static bool quorum_lost(DqliteStore *s)
{
    return s->source.quorum_lost && s->source.quorum_lost(s->source.ctx);
}

/* Turns a failed request's error into the caller's: HOST_IS_SLAVE when
 * the node does not lead and another one does; with no leader known (a
 * node cut off from its quorum), an INTERNAL_ERROR that says whether the
 * write is refused or in doubt (leadership lost during its COMMIT: Raft
 * may still commit it, if a peer got it before the cut). */
static int request_failed(DqliteStore *s, const char *sql, XapiError **err)
{
    uint64_t code = s->conn ? dqlite_conn_failure_code(s->conn) : 0;
    if (code != DQLITE_WIRE_NOT_LEADER && code != DQLITE_WIRE_LEADERSHIP_LOST)
        return -1;
    g_autofree char *leader = quorum_lost(s) ? NULL : s->source.other_leader(s->source.ctx);
    if (err && *err) {
        xapi_error_free(*err);
        *err = NULL;
    }
    if (leader)
        return xapi_error_set(err, "HOST_IS_SLAVE", leader, NULL);
    if (code == DQLITE_WIRE_LEADERSHIP_LOST && strcmp(sql, "COMMIT") == 0)
        return xapi_error_internal(err, "the pool's database lost its leader during this "
                                        "write, and no other is known: it may yet be committed");
    return xapi_error_internal(err, "the pool's database has no leader this host can reach "
                                    "(its quorum is lost): not written");
}

static DqliteConn *conn_get(DqliteStore *s, XapiError **err)
{
    if (s->conn && dqlite_conn_usable(s->conn))
        return s->conn;
    dqlite_conn_close(s->conn);
    s->conn = s->source.connect(s->source.ctx, s->source.timeout_ms, err);
    return s->conn;
}

static int run(DqliteStore *s, const char *sql, const char *const *params, unsigned n,
               XapiError **err)
{
    g_rec_mutex_lock(&s->lock);
    DqliteConn *c = conn_get(s, err);
    int rc = 0;
    if (!c || dqlite_conn_exec(c, sql, params, n, NULL, err) < 0)
        rc = request_failed(s, sql, err);
    g_rec_mutex_unlock(&s->lock);
    return rc;
}

static int query(DqliteStore *s, const char *sql, const char *const *params, unsigned n,
                 DqliteRowFn fn, void *ctx, XapiError **err)
{
    g_rec_mutex_lock(&s->lock);
    DqliteConn *c = conn_get(s, err);
    int rc = c ? dqlite_conn_query(c, sql, params, n, fn, ctx, err) : -1;
    if (c && rc < 0 && dqlite_conn_failure_code(c))
        rc = request_failed(s, sql, err);
    g_rec_mutex_unlock(&s->lock);
    return rc;
}

static int check_in_transaction(DqliteStore *s, XapiError **err)
{
    if (!s->in_transaction)
        return xapi_error_internal(err, "dqlite: write outside a transaction");
    return 0;
}

static int dq_begin(Store *base, XapiError **err)
{
    DqliteStore *s = (DqliteStore *)base;
    if (quorum_lost(s))
        return xapi_error_internal(err, "the pool's database has no leader this host can "
                                        "reach (its quorum is lost): not written");
    if (run(s, "BEGIN", NULL, 0, err) < 0)
        return -1;
    s->in_transaction = true;
    return 0;
}

static int dq_commit(Store *base, XapiError **err)
{
    DqliteStore *s = (DqliteStore *)base;
    int rc = run(s, "COMMIT", NULL, 0, err);
    if (rc == 0)
        s->in_transaction = false;
    return rc;
}

static void dq_rollback(Store *base)
{
    DqliteStore *s = (DqliteStore *)base;
    if (!s->in_transaction)
        return;
    s->in_transaction = false;
    g_rec_mutex_lock(&s->lock);
    XapiError *ignored = NULL;
    if (s->conn && dqlite_conn_usable(s->conn) &&
        dqlite_conn_exec(s->conn, "ROLLBACK", NULL, 0, NULL, &ignored) < 0) {
        /* A node that lost leadership refuses even ROLLBACK and would keep
         * the transaction open on its SQLite connection: closing ours
         * closes that one, which rolls back. */
        dqlite_conn_close(s->conn);
        s->conn = NULL;
    }
    g_rec_mutex_unlock(&s->lock);
    xapi_error_free(ignored);
}

static int dq_put_row(Store *base, const DmClass *cls, const char *ref, const char *const *texts,
                      XapiError **err)
{
    DqliteStore *s = (DqliteStore *)base;
    if (check_in_transaction(s, err) < 0)
        return -1;
    const StoreClassSql *sql = store_schema_class(cls);
    g_autofree const char **params = g_new0(const char *, sql->n_columns + 1);
    unsigned n = 0;
    params[n++] = ref;
    for (unsigned i = 0; i < cls->n_fields; i++)
        if (!cls->fields[i].derived)
            params[n++] = texts[i];
    return run(s, sql->put, params, n, err);
}

static int dq_set_field(Store *base, const DmClass *cls, const char *ref, const DmField *field,
                        const char *text, XapiError **err)
{
    DqliteStore *s = (DqliteStore *)base;
    if (check_in_transaction(s, err) < 0)
        return -1;
    g_autofree char *sql = store_schema_update_sql(cls, field);
    const char *params[] = {text, ref};
    return run(s, sql, params, 2, err);
}

static int dq_delete_row(Store *base, const DmClass *cls, const char *ref, XapiError **err)
{
    DqliteStore *s = (DqliteStore *)base;
    if (check_in_transaction(s, err) < 0)
        return -1;
    const char *params[] = {ref};
    return run(s, store_schema_class(cls)->del, params, 1, err);
}

typedef struct {
    const DmClass *cls;
    StoreRowCallback cb;
    void *ctx;
    const char **texts;
} LoadRows;

static int load_row(void *ctx, unsigned n, const char *const *values)
{
    LoadRows *l = ctx;
    unsigned col = 1;
    for (unsigned i = 0; i < l->cls->n_fields; i++)
        l->texts[i] = l->cls->fields[i].derived || col >= n ? NULL : values[col++];
    return l->cb(l->ctx, l->cls, values[0] ? values[0] : "", l->texts);
}

static int dq_load_class(Store *base, const DmClass *cls, StoreRowCallback cb, void *ctx,
                         XapiError **err)
{
    DqliteStore *s = (DqliteStore *)base;
    g_autofree const char **texts = g_new0(const char *, cls->n_fields + 1);
    LoadRows l = {cls, cb, ctx, texts};
    return query(s, store_schema_class(cls)->select, NULL, 0, load_row, &l, err) < 0 ? -1 : 0;
}

static int first_value(void *ctx, unsigned n, const char *const *values)
{
    char **out = ctx;
    if (!*out && n > 0 && values[0])
        *out = g_strdup(values[0]);
    return 0;
}

static char *dq_meta_get(Store *base, const char *key)
{
    char *value = NULL;
    const char *params[] = {key};
    query((DqliteStore *)base, STORE_SCHEMA_META_GET, params, 1, first_value, &value, NULL);
    return value;
}

static int dq_meta_set(Store *base, const char *key, const char *value, XapiError **err)
{
    const char *params[] = {key, value};
    return run((DqliteStore *)base, STORE_SCHEMA_META_SET, params, 2, err);
}

static int dq_meta_delete(Store *base, const char *key, XapiError **err)
{
    const char *params[] = {key};
    return run((DqliteStore *)base, STORE_SCHEMA_META_DELETE, params, 1, err);
}

static int add_key(void *ctx, unsigned n, const char *const *values)
{
    if (n > 0 && values[0])
        g_ptr_array_add(ctx, g_strdup(values[0]));
    return 0;
}

static GPtrArray *dq_meta_keys(Store *base, const char *prefix)
{
    GPtrArray *keys = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *len = g_strdup_printf("%zu", strlen(prefix));
    const char *params[] = {len, prefix};
    query((DqliteStore *)base, STORE_SCHEMA_META_KEYS, params, 2, add_key, keys, NULL);
    return keys;
}

static void dq_close(Store *base)
{
    DqliteStore *s = (DqliteStore *)base;
    dqlite_conn_close(s->conn);
    g_rec_mutex_clear(&s->lock);
    g_free(s);
}

static int add_column(void *ctx, unsigned n, const char *const *values)
{
    if (n > 1 && values[1])
        g_hash_table_add(ctx, g_strdup(values[1]));
    return 0;
}

static int ensure_tables(DqliteStore *s, XapiError **err)
{
    if (run(s, STORE_SCHEMA_META_CREATE, NULL, 0, err) < 0)
        return -1;
    for (unsigned c = 0; c < dm_n_classes; c++) {
        const DmClass *cls = &dm_classes[c];
        const StoreClassSql *sql = store_schema_class(cls);
        if (!sql)
            continue;
        if (sql->n_columns + 1 > DQLITE_WIRE_MAX_PARAMS)
            return xapi_error_internal(err, "dqlite: class %s has too many columns", cls->name);
        if (run(s, sql->create, NULL, 0, err) < 0)
            return -1;
        g_autoptr(GHashTable) cols = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_autofree char *info = store_schema_table_info_sql(cls);
        if (query(s, info, NULL, 0, add_column, cols, err) < 0)
            return -1;
        g_autoptr(GPtrArray) alters = store_schema_missing_columns(cls, cols);
        for (guint i = 0; i < alters->len; i++)
            if (run(s, alters->pdata[i], NULL, 0, err) < 0)
                return -1;
    }
    return 0;
}

Store *store_dqlite_open(const StoreDqliteSource *source, XapiError **err)
{
    DqliteStore *s = g_new0(DqliteStore, 1);
    s->base.driver = &dqlite_driver;
    g_rec_mutex_init(&s->lock);
    s->source = *source;
    if (!s->source.timeout_ms)
        s->source.timeout_ms = 5000;
    if (ensure_tables(s, err) < 0) {
        dq_close(&s->base);
        return NULL;
    }
    return &s->base;
}

static const StoreDriver dqlite_driver = {
    .name = "dqlite",
    .begin = dq_begin,
    .commit = dq_commit,
    .rollback = dq_rollback,
    .put_row = dq_put_row,
    .set_field = dq_set_field,
    .delete_row = dq_delete_row,
    .load_class = dq_load_class,
    .meta_get = dq_meta_get,
    .meta_set = dq_meta_set,
    .meta_delete = dq_meta_delete,
    .meta_keys = dq_meta_keys,
    .close = dq_close,
};
