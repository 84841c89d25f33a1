/* pool_wire.c: JSON forms of rows, change batches and write sets. */
#include "pool_wire.h"

#include <string.h>

#include "db_text.h"

static bool sent(const DmField *f)
{
    return !f->derived;
}

json_object *pool_wire_row(const DbRow *row)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "c", json_object_new_string(row->cls->name));
    json_object_object_add(o, "r", json_object_new_string(row->ref));
    json_object_object_add(o, "cr", json_object_new_int64((int64_t)row->created));
    json_object_object_add(o, "mo", json_object_new_int64((int64_t)row->modified));
    json_object *fields = json_object_new_object();
    for (unsigned i = 0; i < row->cls->n_fields; i++) {
        const DmField *f = &row->cls->fields[i];
        if (!sent(f))
            continue;
        g_autofree char *text = db_text_from_value(f->type, &row->fields[i]);
        json_object_object_add(fields, f->name, json_object_new_string(text));
    }
    json_object_object_add(o, "f", fields);
    return o;
}

static const char *member_string(json_object *o, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

static uint64_t member_uint(json_object *o, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? (uint64_t)json_object_get_int64(v) : 0;
}

int pool_wire_fill_row(DbRow *row, json_object *fields, bool inserted, XapiError **err)
{
    if (!fields || !json_object_is_type(fields, json_type_object))
        return 0;
    json_object_object_foreach(fields, name, value)
    {
        const DmField *f = dm_field_by_name(row->cls, name);
        if (!f || !sent(f) || !json_object_is_type(value, json_type_string))
            continue; /* a field this build does not have */
        Xv *v = db_text_to_value(f->type, json_object_get_string(value), err);
        if (!v)
            return -1;
        if (inserted) {
            db_row_put(row, name, v);
        } else if (xv_equal(&row->fields[f->index], v)) {
            xv_free(v);
        } else if (db_set(row, f, v, err) < 0) {
            return -1;
        }
    }
    return 0;
}

static const DmClass *class_of(json_object *o, const char **ref, XapiError **err)
{
    const char *name = member_string(o, "c");
    *ref = member_string(o, "r");
    const DmClass *cls = name ? dm_class_by_name(name) : NULL;
    if (!cls || !*ref) {
        xapi_error_internal(err, "pool: a row without a known class or a ref");
        return NULL;
    }
    return cls;
}

int pool_wire_put_row(json_object *o, DbRow **inserted_row, XapiError **err)
{
    *inserted_row = NULL;
    const char *ref;
    const DmClass *cls = class_of(o, &ref, err);
    if (!cls)
        return -1;
    json_object *fields = NULL;
    json_object_object_get_ex(o, "f", &fields);
    DbRow *row = db_lookup(cls, ref);
    if (row)
        return pool_wire_fill_row(row, fields, false, err);
    row = db_row_new_with_ref(cls, ref);
    if (pool_wire_fill_row(row, fields, true, err) < 0) {
        db_row_free(row);
        return -1;
    }
    if (db_insert(row, err) < 0)
        return -1;
    *inserted_row = row;
    return 0;
}

/* ---- the master's side ---------------------------------------------------- */

typedef struct {
    GHashTable *seen;
    json_object *rows;
} ChangeScan;

static void add_changed(const DmClass *cls, const char *ref, void *ctx)
{
    ChangeScan *scan = ctx;
    if (!g_hash_table_add(scan->seen, (gpointer)ref))
        return;
    const DbRow *row = db_lookup(cls, ref);
    if (row)
        json_object_array_add(scan->rows, pool_wire_row(row));
}

static bool add_row(DbRow *row, void *ctx)
{
    json_object_array_add(ctx, pool_wire_row(row));
    return true;
}

static void add_deleted(const DbDeletion *d, void *ctx)
{
    json_object *pair = json_object_new_array();
    json_object_array_add(pair, json_object_new_string(((const char **)ctx)[1]));
    json_object_array_add(pair, json_object_new_string(d->ref));
    json_object_array_add(((json_object **)ctx)[0], pair);
}

json_object *pool_wire_changes(uint64_t since)
{
    json_object *batch = json_object_new_object();
    json_object *rows = json_object_new_array();
    json_object *deleted = json_object_new_array();
    bool resync = since == 0 || since < db_changes_oldest();
    for (unsigned c = 0; c < dm_n_classes && !resync; c++)
        resync = db_deletions_forgotten(&dm_classes[c]) > since;
    if (!resync) {
        ChangeScan scan = {g_hash_table_new(g_str_hash, g_str_equal), rows};
        resync = !db_foreach_change(since, add_changed, &scan);
        g_hash_table_destroy(scan.seen);
    }
    if (resync) {
        json_object_put(rows);
        rows = json_object_new_array();
        for (unsigned c = 0; c < dm_n_classes; c++)
            db_foreach(&dm_classes[c], add_row, rows);
    } else {
        for (unsigned c = 0; c < dm_n_classes; c++) {
            void *ctx[2] = {deleted, (void *)dm_classes[c].name};
            db_foreach_deletion(&dm_classes[c], since, add_deleted, ctx);
        }
    }
    json_object_object_add(batch, "generation", json_object_new_int64((int64_t)db_generation()));
    json_object_object_add(batch, "resync", json_object_new_boolean(resync));
    json_object_object_add(batch, "rows", rows);
    json_object_object_add(batch, "deleted", deleted);
    return batch;
}

static json_object *op_new(const char *op, const DbRow *row)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "op", json_object_new_string(op));
    json_object_object_add(o, "c", json_object_new_string(row->cls->name));
    json_object_object_add(o, "r", json_object_new_string(row->ref));
    return o;
}

static void add_write(DbWriteKind kind, const DbRow *row, const DmField *field, void *ctx)
{
    json_object *ops = ctx;
    json_object *o = NULL;
    switch (kind) {
    case DB_WRITE_INSERT:
        o = pool_wire_row(row);
        json_object_object_add(o, "op", json_object_new_string("insert"));
        break;
    case DB_WRITE_SET: {
        o = op_new("set", row);
        json_object *fields = json_object_new_object();
        g_autofree char *text = db_text_from_value(field->type, &row->fields[field->index]);
        json_object_object_add(fields, field->name, json_object_new_string(text));
        json_object_object_add(o, "f", fields);
        break;
    }
    case DB_WRITE_TOUCH:
        o = op_new("touch", row);
        break;
    case DB_WRITE_DELETE:
        o = op_new("delete", row);
        break;
    }
    json_object_array_add(ops, o);
}

json_object *pool_wire_write_set(void)
{
    json_object *ws = json_object_new_object();
    json_object *ops = json_object_new_array();
    db_foreach_write(add_write, ops);
    json_object_object_add(ws, "ops", ops);
    return ws;
}

int pool_wire_apply_write_set(json_object *ws, XapiError **err)
{
    json_object *ops = NULL;
    if (!json_object_object_get_ex(ws, "ops", &ops) || !json_object_is_type(ops, json_type_array))
        return xapi_error_internal(err, "pool: a write set without ops");
    g_autoptr(GPtrArray) inserted = g_ptr_array_new();
    size_t n = json_object_array_length(ops);
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(ops, i);
        const char *op = member_string(o, "op");
        const char *ref;
        const DmClass *cls = class_of(o, &ref, err);
        if (!cls || !op)
            return -1;
        if (strcmp(op, "insert") == 0) {
            DbRow *row;
            if (pool_wire_put_row(o, &row, err) < 0)
                return -1;
            if (row)
                g_ptr_array_add(inserted, row);
            continue;
        }
        DbRow *row = db_lookup(cls, ref);
        if (!row) {
            if (strcmp(op, "delete") == 0)
                continue; /* already gone */
            return xapi_error_set(err, "HANDLE_INVALID", cls->name, ref, NULL);
        }
        json_object *fields = NULL;
        json_object_object_get_ex(o, "f", &fields);
        int rc = 0;
        if (strcmp(op, "set") == 0)
            rc = pool_wire_fill_row(row, fields, false, err);
        else if (strcmp(op, "touch") == 0)
            db_touch(row);
        else if (strcmp(op, "delete") == 0)
            rc = db_delete(row, err);
        else
            rc = xapi_error_internal(err, "pool: unknown write %s", op);
        if (rc < 0)
            return -1;
    }
    for (guint i = 0; i < inserted->len; i++)
        db_link_relations(inserted->pdata[i]);
    return 0;
}

/* ---- the member's side ---------------------------------------------------- */

typedef struct {
    GHashTable *keep; /* refs in the resync */
    GPtrArray *gone;
} ResyncScan;

static bool note_absent(DbRow *row, void *ctx)
{
    ResyncScan *scan = ctx;
    if (!g_hash_table_contains(scan->keep, row->ref))
        g_ptr_array_add(scan->gone, row);
    return true;
}

static int delete_absent(json_object *rows, XapiError **err)
{
    ResyncScan scan = {g_hash_table_new(g_str_hash, g_str_equal), g_ptr_array_new()};
    size_t n = json_object_array_length(rows);
    for (size_t i = 0; i < n; i++) {
        const char *ref = member_string(json_object_array_get_idx(rows, i), "r");
        if (ref)
            g_hash_table_add(scan.keep, (gpointer)ref);
    }
    for (unsigned c = 0; c < dm_n_classes; c++)
        db_foreach(&dm_classes[c], note_absent, &scan);
    int rc = 0;
    for (guint i = 0; i < scan.gone->len && rc == 0; i++)
        rc = db_delete(scan.gone->pdata[i], err);
    g_hash_table_destroy(scan.keep);
    g_ptr_array_unref(scan.gone);
    return rc;
}

static int apply_rows(json_object *batch, bool resync, XapiError **err)
{
    json_object *rows = NULL, *deleted = NULL;
    if (!json_object_object_get_ex(batch, "rows", &rows) ||
        !json_object_is_type(rows, json_type_array))
        return xapi_error_internal(err, "pool: a batch without rows");
    if (resync && delete_absent(rows, err) < 0)
        return -1;
    g_autoptr(GPtrArray) inserted = g_ptr_array_new();
    size_t n = json_object_array_length(rows);
    for (size_t i = 0; i < n; i++) {
        DbRow *row;
        if (pool_wire_put_row(json_object_array_get_idx(rows, i), &row, err) < 0)
            return -1;
        if (row)
            g_ptr_array_add(inserted, row);
    }
    for (guint i = 0; i < inserted->len; i++)
        db_link_relations(inserted->pdata[i]);
    /* The master's generations, so that event.from on this host sees what
     * it would see on the master. */
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(rows, i);
        const char *ref;
        const DmClass *cls = class_of(o, &ref, err);
        DbRow *row = cls ? db_lookup(cls, ref) : NULL;
        if (row)
            db_replica_row_generations(row, member_uint(o, "cr"), member_uint(o, "mo"));
    }
    if (json_object_object_get_ex(batch, "deleted", &deleted) &&
        json_object_is_type(deleted, json_type_array)) {
        size_t m = json_object_array_length(deleted);
        for (size_t i = 0; i < m; i++) {
            json_object *pair = json_object_array_get_idx(deleted, i);
            const DmClass *cls = dm_class_by_name(
                json_object_get_string(json_object_array_get_idx(pair, 0)));
            DbRow *row = cls ? db_lookup(cls, json_object_get_string(
                                                  json_object_array_get_idx(pair, 1)))
                             : NULL;
            if (row && db_delete(row, err) < 0)
                return -1;
        }
    }
    return 0;
}

int pool_wire_apply_batch(json_object *batch, XapiError **err)
{
    uint64_t generation = member_uint(batch, "generation");
    json_object *r = NULL;
    bool resync = json_object_object_get_ex(batch, "resync", &r) && json_object_get_boolean(r);
    if (!generation)
        return xapi_error_internal(err, "pool: a batch without a generation");
    if (db_replica_begin(generation, err) < 0)
        return -1;
    if (apply_rows(batch, resync, err) < 0) {
        db_replica_abort();
        return -1;
    }
    return db_replica_commit(resync, err);
}

json_object *pool_wire_parse(const char *text, size_t len, XapiError **err)
{
    json_tokener *tok = json_tokener_new_ex(64);
    json_object *o = json_tokener_parse_ex(tok, text, (int)len);
    bool ok = o && json_tokener_get_error(tok) == json_tokener_success;
    json_tokener_free(tok);
    if (!ok) {
        json_object_put(o);
        xapi_error_internal(err, "pool: a reply that is not JSON");
        return NULL;
    }
    return o;
}

json_object *pool_wire_error(const XapiError *e)
{
    json_object *o = json_object_new_object();
    json_object *desc = json_object_new_array();
    json_object_array_add(desc, json_object_new_string(e ? e->code : "INTERNAL_ERROR"));
    for (guint i = 0; e && i < e->params->len; i++)
        json_object_array_add(desc, json_object_new_string(e->params->pdata[i]));
    json_object_object_add(o, "error", desc);
    return o;
}

int pool_wire_take_error(json_object *o, XapiError **err)
{
    json_object *desc = NULL;
    if (!json_object_object_get_ex(o, "error", &desc) ||
        !json_object_is_type(desc, json_type_array) || !json_object_array_length(desc))
        return xapi_error_internal(err, "pool: a failure without a description");
    g_autoptr(GPtrArray) params = g_ptr_array_new();
    size_t n = json_object_array_length(desc);
    for (size_t i = 1; i < n; i++)
        g_ptr_array_add(params, (gpointer)json_object_get_string(json_object_array_get_idx(desc, i)));
    return xapi_error_setv(err, json_object_get_string(json_object_array_get_idx(desc, 0)),
                           (const char *const *)params->pdata, params->len);
}
