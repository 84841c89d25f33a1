/* operations.c: current_operations / allowed_operations for any class. */
#include "operations.h"

#include <string.h>

#include "implicit.h"

#define MAX_CLASSES 16
static const ObjectOperations *registered[MAX_CLASSES];
static unsigned n_registered;

static const ObjectOperations *operations_of(const DmClass *cls)
{
    for (unsigned i = 0; i < n_registered; i++)
        if (strcmp(registered[i]->class_name, cls->name) == 0)
            return registered[i];
    return NULL;
}

/* Most rows of a class allow the same few sets of operations: each
 * distinct set is built once and shared by every row that has it. */
static GMutex shared_sets_lock;
static GHashTable *shared_sets; /* "Class:bitmask" -> Xv array (owned) */

static Xv *allowed_operations(const ObjectOperations *oo, const DbRow *row)
{
    uint64_t bits = 0;
    unsigned n = 0;
    for (const char *const *op = oo->offered; *op; op++, n++) {
        g_assert(n < 64);
        if (oo->check(row, *op, NULL) == 0)
            bits |= UINT64_C(1) << n;
    }
    g_autofree char *key = g_strdup_printf("%s:%" G_GINT64_MODIFIER "x", oo->class_name, bits);
    g_mutex_lock(&shared_sets_lock);
    if (!shared_sets)
        shared_sets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                            (GDestroyNotify)xv_free);
    Xv *set = g_hash_table_lookup(shared_sets, key);
    if (!set) {
        const DmField *field = dm_field_by_name(row->cls, "allowed_operations");
        const DmEnum *ops = field->type->elem->enumeration;
        set = xv_new_array();
        n = 0;
        for (const char *const *op = oo->offered; *op; op++, n++)
            if (bits & (UINT64_C(1) << n))
                xv_array_append(set, xv_new_static_string(dm_enum_value(ops, *op)));
        g_hash_table_insert(shared_sets, g_steal_pointer(&key), set);
    }
    Xv *allowed = xv_new_array_sharing(set);
    g_mutex_unlock(&shared_sets_lock);
    return allowed;
}

static void fill_allowed(DbRow *row)
{
    const ObjectOperations *oo = operations_of(row->cls);
    if (oo)
        db_row_put(row, "allowed_operations", allowed_operations(oo, row));
}

void operations_register(const ObjectOperations *oo)
{
    g_assert(n_registered < MAX_CLASSES);
    for (unsigned i = 0; i < n_registered; i++)
        if (registered[i] == oo)
            return;
    registered[n_registered++] = oo;
    implicit_on_create(dm_class_by_name(oo->class_name), fill_allowed);
}

int operations_refresh(DbRow *row, XapiError **err)
{
    const ObjectOperations *oo = operations_of(row->cls);
    if (!oo)
        return 0;
    Xv *allowed = allowed_operations(oo, row);
    if (db_lookup(row->cls, row->ref) != row) { /* not inserted yet */
        db_row_put(row, "allowed_operations", allowed);
        return 0;
    }
    if (oo->refresh_dependents && oo->refresh_dependents(row, err) < 0) {
        xv_free(allowed);
        return -1;
    }
    if (xv_equal(allowed, db_get(row, "allowed_operations"))) {
        xv_free(allowed);
        return 0;
    }
    return db_set_by_name(row, "allowed_operations", allowed, err);
}

int operations_write(const ObjectOperations *oo, const char *ref, ObjectWriteFn fn,
                     const void *arg, XapiError **err)
{
    if (db_write_begin(err) < 0)
        return -1;
    DbRow *row = db_lookup(dm_class_by_name(oo->class_name), ref);
    if (!row) {
        db_write_abort();
        return xapi_error_set(err, "HANDLE_INVALID", oo->class_name, ref, NULL);
    }
    if (fn(row, arg, err) < 0 || operations_refresh(row, err) < 0) {
        db_write_abort();
        return -1;
    }
    return db_write_commit(err);
}

int operations_add(const ObjectOperations *oo, DbRow *row, const char *op, const char *task_ref,
                   XapiError **err)
{
    if (oo->check(row, op, err) < 0)
        return -1;
    const DmField *field = dm_field_by_name(row->cls, "current_operations");
    const char *member = dm_enum_value(field->type->elem->enumeration, op);
    g_assert(member); /* callers name operations of the enum */
    Xv *current = xv_dup(db_get(row, "current_operations"));
    xv_struct_set(current, task_ref, xv_new_static_string(member));
    if (db_set(row, field, current, err) < 0)
        return -1;
    return operations_refresh(row, err);
}

int operations_remove(DbRow *row, const char *task_ref, XapiError **err)
{
    if (!xv_struct_get(db_get(row, "current_operations"), task_ref))
        return 0;
    Xv *current = xv_dup(db_get(row, "current_operations"));
    xv_struct_remove(current, task_ref);
    if (db_set_by_name(row, "current_operations", current, err) < 0)
        return -1;
    return operations_refresh(row, err);
}

typedef struct {
    const ObjectOperations *oo;
    const char *op;
    const char *task_ref;
} Entry;

static int add_entry(DbRow *row, const void *arg, XapiError **err)
{
    const Entry *e = arg;
    return operations_add(e->oo, row, e->op, e->task_ref, err);
}

static int remove_entry(DbRow *row, const void *arg, XapiError **err)
{
    return operations_remove(row, arg, err);
}

int operations_begin(const ObjectOperations *oo, const char *ref, const char *op,
                     const char *task_ref, XapiError **err)
{
    Entry e = {oo, op, task_ref};
    return operations_write(oo, ref, add_entry, &e, err);
}

void operations_end(const ObjectOperations *oo, const char *ref, const char *task_ref)
{
    g_autoptr(XapiError) err = NULL;
    if (operations_write(oo, ref, remove_entry, task_ref, &err) < 0 &&
        strcmp(err->code, "HANDLE_INVALID") != 0)
        g_warning("%s %s: could not clear operation %s: %s", oo->class_name, ref, task_ref,
                  err->code);
}

int operations_conflict_error(const DbRow *row, const Xv *current, XapiError **err)
{
    if (xv_len(current) == 1) {
        const XvMember *m = xv_member_at(current, 0);
        return xapi_error_set(err, "OTHER_OPERATION_IN_PROGRESS", row->cls->name, row->ref,
                              xv_str(&m->value), m->key, NULL);
    }
    GString *ops = g_string_new("{"), *tasks = g_string_new("{");
    for (guint i = 0; i < xv_len(current); i++) {
        const XvMember *m = xv_member_at(current, i);
        g_string_append_printf(ops, "%s%s", i ? "," : "", xv_str(&m->value));
        g_string_append_printf(tasks, "%s%s", i ? "," : "", m->key);
    }
    g_string_append_c(ops, '}');
    g_string_append_c(tasks, '}');
    xapi_error_set(err, "OTHER_OPERATION_IN_PROGRESS", row->cls->name, row->ref, ops->str,
                   tasks->str, NULL);
    g_string_free(ops, TRUE);
    g_string_free(tasks, TRUE);
    return -1;
}

static bool reset_row(DbRow *row, void *ctx)
{
    (void)ctx;
    if (xv_len(db_get(row, "current_operations")))
        db_set_by_name(row, "current_operations", xv_new_struct(), NULL);
    operations_refresh(row, NULL);
    return true;
}

void operations_reset_all(void)
{
    for (unsigned i = 0; i < n_registered; i++)
        db_foreach(dm_class_by_name(registered[i]->class_name), reset_row, NULL);
}
