/* implicit.c: the generic engine for implicit messages. */
#include "implicit.h"

#include <string.h>

#include "db.h"
#include "db_text.h"
#include "field_checks.h"
#include "filter.h"
#include "operations.h"
#include "typed_value.h"

int implicit_handle_invalid(Call *call, const DmClass *cls, const char *ref)
{
    return xapi_error_set(&call->error, "HANDLE_INVALID", cls->name, ref, NULL);
}

char *implicit_uuid_of(Call *call, const char *class_name, const char *ref)
{
    const DmClass *cls = dm_class_by_name(class_name);
    db_read_begin();
    DbRow *row = db_lookup(cls, ref);
    char *uuid = row ? g_strdup(xv_str(db_get(row, "uuid"))) : NULL;
    db_read_end();
    if (!uuid)
        implicit_handle_invalid(call, cls, ref);
    return uuid;
}

static const char *arg_str(const Call *call, unsigned i)
{
    return xv_str(call_arg(call, i));
}

static const char *target_class_name(const DmField *f)
{
    const DmType *t = f->type->kind == DM_SET ? f->type->elem : f->type;
    return t->kind == DM_REF ? t->class_name : NULL;
}

int implicit_check_refs(Call *call, const DmField *field, const Xv *value)
{
    const char *target_name = target_class_name(field);
    if (field->derived || !target_name)
        return 0;
    const DmClass *target = dm_class_by_name(target_name);
    if (!target || !target->stored)
        return 0;
    for (guint i = 0; i < (value->kind == XV_ARRAY ? xv_len(value) : 1); i++) {
        const Xv *ref = value->kind == XV_ARRAY ? xv_at(value, i) : value;
        const char *r = xv_str(ref);
        /* "" is XAPI's Ref.Other "": stored as given, no reference */
        if (r && *r && strcmp(r, "OpaqueRef:NULL") != 0 && !db_lookup(target, r))
            return implicit_handle_invalid(call, target, r);
    }
    return 0;
}

/* ---- reads -------------------------------------------------------------- */

static int read_field_or_record(Call *call, Xv **result)
{
    const DmMessage *msg = call->msg;
    const char *self = arg_str(call, 0);
    int rc = 0;
    db_read_begin();
    const DbRow *row = db_lookup(msg->cls, self);
    if (!row)
        rc = implicit_handle_invalid(call, msg->cls, self);
    else if (msg->implicit_kind == DM_IMPLICIT_GET_FIELD)
        *result = xv_dup(&row->fields[msg->field->index]);
    else
        *result = db_row_record(row);
    db_read_end();
    return rc;
}

static int get_by_uuid(Call *call, Xv **result)
{
    const char *uuid = arg_str(call, 0);
    db_read_begin();
    const DbRow *row = db_lookup_uuid(call->msg->cls, uuid);
    if (row)
        *result = xv_new_string(row->ref);
    db_read_end();
    if (!row)
        return xapi_error_set(&call->error, "UUID_INVALID", call->msg->cls->name, uuid, NULL);
    return 0;
}

typedef struct {
    Xv *out;                  /* refs (get_all*, get_by_name_label) */
    GPtrArray *refs;          /* or the refs of records to produce lazily */
    const char *label;        /* get_by_name_label */
    const FilterExpr *filter; /* _where */
} Collect;

static char *filter_lookup(void *ctx, const char *name)
{
    const DbRow *row = ctx;
    const DmField *f = dm_field_by_name(row->cls, name);
    if (!f && strstr(name, "__")) {
        /* XAPI's column names join nested names with "__" (name__label). */
        g_auto(GStrv) parts = g_strsplit(name, "__", -1);
        g_autofree char *flat = g_strjoinv("_", parts);
        f = dm_field_by_name(row->cls, flat);
    }
    return f ? db_text_from_value(f->type, &row->fields[f->index]) : NULL;
}

static bool collect_row(DbRow *row, void *ctx)
{
    Collect *c = ctx;
    if (c->label && strcmp(xv_str(&row->fields[row->cls->name_label_field]), c->label) != 0)
        return true;
    if (c->filter && !filter_eval(c->filter, filter_lookup, row))
        return true;
    if (c->refs)
        g_ptr_array_add(c->refs, row);
    else
        xv_array_append_string(c->out, row->ref);
    return true;
}

/* get_all_records: the records are written one at a time while the reply
 * is written, each under a short read lock; a row deleted meanwhile is
 * left out. */
typedef struct {
    const DmClass *cls;
    GPtrArray *refs;
    Xv *view; /* the record being written; one array reused for every row */
} LazyRecords;

/* The record is a view of the row's fields, written while the read lock
 * is held: no copy of the values. */
static bool visit_record(void *ctx, guint i, XvEmit emit, void *emit_ctx)
{
    LazyRecords *lr = ctx;
    db_read_begin();
    const DbRow *row = db_lookup(lr->cls, lr->refs->pdata[i]);
    if (row) {
        if (!lr->view)
            lr->view = xv_new_struct_view(row->cls->n_fields);
        XvMember *m = xv_struct_view_reset(lr->view, row->cls->n_fields);
        for (unsigned f = 0; f < row->cls->n_fields; f++)
            m[f] = (XvMember){.key = (char *)row->cls->fields[f].name, .static_key = true,
                              .value = row->fields[f]};
        emit(lr->refs->pdata[i], lr->view, emit_ctx);
    }
    db_read_end();
    return row != NULL;
}

static void lazy_records_free(void *ctx)
{
    LazyRecords *lr = ctx;
    g_ptr_array_unref(lr->refs);
    xv_free(lr->view);
    g_free(lr);
}

static int compare_addresses(gconstpointer a, gconstpointer b)
{
    uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
    return (x > y) - (x < y);
}

static int collect(Call *call, Xv **result)
{
    const DmMessage *msg = call->msg;
    Collect c = {0};
    g_autoptr(FilterExpr) filter = NULL;
    switch (msg->implicit_kind) {
    case DM_IMPLICIT_GET_BY_NAME_LABEL:
        if (msg->cls->name_label_field < 0)
            return xapi_error_internal(&call->error, "%s has no name_label", msg->cls->name);
        c.label = arg_str(call, 0);
        break;
    case DM_IMPLICIT_GET_ALL_WHERE:
    case DM_IMPLICIT_GET_ALL_RECORDS_WHERE:
        filter = filter_parse(arg_str(call, 0), &call->error);
        if (!filter)
            return -1;
        c.filter = filter;
        break;
    default:
        break;
    }
    bool records = msg->implicit_kind == DM_IMPLICIT_GET_ALL_RECORDS ||
                   msg->implicit_kind == DM_IMPLICIT_GET_ALL_RECORDS_WHERE;
    if (records)
        c.refs = g_ptr_array_new_with_free_func(g_free);
    else
        c.out = xv_new_array();
    db_read_begin();
    db_foreach(msg->cls, collect_row, &c);
    if (records) {
        /* Rows in memory order rather than hash order: writing 10,000
         * records then walks memory mostly forwards, which the caches
         * reward (a third less time for a heap grown by live creates). */
        g_ptr_array_sort(c.refs, compare_addresses);
        for (guint i = 0; i < c.refs->len; i++)
            c.refs->pdata[i] = g_strdup(((DbRow *)c.refs->pdata[i])->ref);
    }
    db_read_end();
    if (records) {
        LazyRecords *lr = g_new(LazyRecords, 1);
        *lr = (LazyRecords){msg->cls, c.refs, NULL};
        *result = xv_new_lazy(c.refs->len, lr, visit_record, lazy_records_free);
    } else {
        *result = c.out;
    }
    return 0;
}

/* ---- writes ------------------------------------------------------------- */

/* Runs op on the row named by the first argument inside a write
 * transaction. op returns 0 or -1 with call->error set. */
static int with_row_write(Call *call, int (*op)(Call *, DbRow *))
{
    if (db_write_begin(&call->error) < 0)
        return -1;
    const char *self = arg_str(call, 0);
    DbRow *row = db_lookup(call->msg->cls, self);
    int rc = row ? op(call, row) : implicit_handle_invalid(call, call->msg->cls, self);
    /* what a client may do next follows every write (blocked_operations,
     * is_a_template, ...); a destroyed row is gone */
    if (rc == 0 && call->msg->implicit_kind != DM_IMPLICIT_DESTROY)
        rc = operations_refresh(row, &call->error);
    if (rc < 0) {
        db_write_abort();
        return -1;
    }
    return db_write_commit(&call->error);
}

/* Every generic write goes through here: the class's rules first. */
static int checked_set(Call *call, DbRow *row, const DmField *f, Xv *value)
{
    if (field_checks_write(row, f, value, &call->error) < 0) {
        xv_free(value);
        return -1;
    }
    return db_set(row, f, value, &call->error);
}

static int set_field_op(Call *call, DbRow *row)
{
    const Xv *value = call_arg(call, 1);
    if (implicit_check_refs(call, call->msg->field, value) < 0)
        return -1;
    return checked_set(call, row, call->msg->field, xv_dup(value));
}

static int map_update_op(Call *call, DbRow *row)
{
    const DmField *f = call->msg->field;
    const DmType *key_type = f->type->key;
    g_autoptr(Xv) typed_key = typed_value_from_wire(key_type, call_arg(call, 1), "key",
                                                    &call->error);
    if (!typed_key)
        return -1;
    g_autofree char *key = db_text_from_value(key_type, typed_key);
    const Xv *current = &row->fields[f->index];
    bool present = xv_struct_get(current, key) != NULL;
    if (call->msg->implicit_kind == DM_IMPLICIT_REMOVE_FROM_MAP && !present)
        return 0; /* removing a missing key does nothing */
    if (call->msg->implicit_kind == DM_IMPLICIT_ADD_TO_MAP && present)
        return xapi_error_set(&call->error, "MAP_DUPLICATE_KEY", row->cls->name, f->name,
                              row->ref, key, NULL);
    Xv *updated = xv_dup(current);
    if (updated->kind != XV_STRUCT) {
        xv_free(updated);
        updated = xv_new_struct();
    }
    if (call->msg->implicit_kind == DM_IMPLICIT_ADD_TO_MAP)
        xv_struct_set(updated, key, xv_dup(call_arg(call, 2)));
    else
        xv_struct_remove(updated, key);
    return checked_set(call, row, f, updated);
}

static int set_update_op(Call *call, DbRow *row)
{
    const DmField *f = call->msg->field;
    const Xv *item = call_arg(call, 1);
    const Xv *current = &row->fields[f->index];
    gint found = -1;
    for (guint i = 0; i < xv_len(current) && found < 0; i++)
        if (xv_equal(xv_at(current, i), item))
            found = (gint)i;
    bool adding = call->msg->implicit_kind == DM_IMPLICIT_ADD_TO_SET;
    if ((adding && found >= 0) || (!adding && found < 0))
        return 0; /* both are idempotent */
    if (adding && implicit_check_refs(call, f, item) < 0)
        return -1;
    Xv *updated = xv_dup(current);
    if (adding)
        xv_array_append(updated, xv_dup(item));
    else
        xv_array_remove_at(updated, (guint)found);
    return checked_set(call, row, f, updated);
}

static int destroy_op(Call *call, DbRow *row)
{
    if (field_checks_destroy(row, &call->error) < 0)
        return -1;
    return db_delete(row, &call->error);
}

#define CREATE_HOOKS_PER_CLASS 4
/* [class index][n], set at start-up; several modules may fill one class. */
static ImplicitCreateHook (*create_hooks)[CREATE_HOOKS_PER_CLASS];

void implicit_on_create(const DmClass *cls, ImplicitCreateHook hook)
{
    if (!create_hooks)
        create_hooks = g_malloc0_n(dm_n_classes, sizeof *create_hooks);
    for (unsigned i = 0; i < CREATE_HOOKS_PER_CLASS; i++)
        if (!create_hooks[cls->index][i]) {
            create_hooks[cls->index][i] = hook;
            return;
        }
    g_error("too many create hooks for %s", cls->name);
}

DbRow *implicit_row_from_record(Call *call, const Xv *record)
{
    const DmClass *cls = call->msg->cls;
    DbRow *row = db_row_new(cls);
    for (unsigned i = 0; i < cls->n_fields; i++) {
        const DmField *f = &cls->fields[i];
        const Xv *given = xv_struct_get(record, f->name);
        if (!given || f->derived || f->qualifier == DM_RO_RUNTIME)
            continue;
        Xv *v = typed_value_from_wire(f->type, given, f->name, &call->error);
        if (!v || implicit_check_refs(call, f, v) < 0) {
            xv_free(v);
            db_row_free(row);
            return NULL;
        }
        xv_clear(&row->fields[i]);
        xv_move_into(&row->fields[i], v);
    }
    for (unsigned i = 0; create_hooks && i < CREATE_HOOKS_PER_CLASS; i++)
        if (create_hooks[cls->index][i])
            create_hooks[cls->index][i](row);
    return row;
}

static int create(Call *call, Xv **result)
{
    if (db_write_begin(&call->error) < 0)
        return -1;
    DbRow *row = implicit_row_from_record(call, call_arg(call, 0));
    if (!row) {
        db_write_abort();
        return -1;
    }
    char *ref = db_insert_and_commit(row, &call->error);
    if (!ref)
        return -1;
    *result = xv_new_string_take(ref);
    return 0;
}

int implicit_execute(Call *call, Xv **result)
{
    switch (call->msg->implicit_kind) {
    case DM_IMPLICIT_GET_FIELD:
    case DM_IMPLICIT_GET_RECORD:
        return read_field_or_record(call, result);
    case DM_IMPLICIT_GET_BY_UUID:
        return get_by_uuid(call, result);
    case DM_IMPLICIT_GET_BY_NAME_LABEL:
    case DM_IMPLICIT_GET_ALL:
    case DM_IMPLICIT_GET_ALL_RECORDS:
    case DM_IMPLICIT_GET_ALL_WHERE:
    case DM_IMPLICIT_GET_ALL_RECORDS_WHERE:
        return collect(call, result);
    case DM_IMPLICIT_SET_FIELD:
        return with_row_write(call, set_field_op);
    case DM_IMPLICIT_ADD_TO_MAP:
    case DM_IMPLICIT_REMOVE_FROM_MAP:
        return with_row_write(call, map_update_op);
    case DM_IMPLICIT_ADD_TO_SET:
    case DM_IMPLICIT_REMOVE_FROM_SET:
        return with_row_write(call, set_update_op);
    case DM_IMPLICIT_CREATE:
        return create(call, result);
    case DM_IMPLICIT_DESTROY:
        return with_row_write(call, destroy_op);
    case DM_EXPLICIT:
        break;
    }
    return xapi_error_set(&call->error, "MESSAGE_METHOD_UNKNOWN", call->msg->wire_name, NULL);
}
