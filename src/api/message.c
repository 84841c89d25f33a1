/* message.c: the message class (XAPI's xapi_message.ml): checks, then the
 * store in src/metrics/message_store.c. The reads are the generic engine's
 * (the datamodel marks them explicit because XAPI keeps messages outside
 * its database; here they are rows of it). */
#include <string.h>

#include "call.h"
#include "db.h"
#include "dm_handlers.h"
#include "implicit.h"
#include "message_store.h"

static const DmClass *message_class(void) { return dm_class_by_name("message"); }

/* The class whose table holds a message's object (the cls enum). */
static const DmClass *object_class(const char *cls)
{
    static const char *const pairs[][2] = {
        {"VM", "VM"},     {"Host", "host"}, {"SR", "SR"},   {"Pool", "pool"},
        {"VMPP", "VMPP"}, {"VMSS", "VMSS"}, {"PVS_proxy", "PVS_proxy"},
        {"VDI", "VDI"},   {"Certificate", "Certificate"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(pairs); i++)
        if (strcmp(cls, pairs[i][0]) == 0)
            return dm_class_by_name(pairs[i][1]);
    return NULL;
}

int xapi_message_create(Call *call, const char *name, int64_t priority, const char *cls,
                        const char *obj_uuid, const char *body, Xv **result)
{
    if (!g_utf8_validate(body, -1, NULL))
        return xapi_error_set(&call->error, "INVALID_VALUE", "UTF8 expected", NULL);
    const DmClass *target = object_class(cls);
    db_read_begin();
    bool known = target && db_lookup_uuid(target, obj_uuid);
    db_read_end();
    if (!known)
        return xapi_error_set(&call->error, "UUID_INVALID", cls, obj_uuid, NULL);
    char *ref = message_store_create(name, priority, cls, obj_uuid, body, &call->error);
    if (!ref)
        return -1;
    *result = xv_new_string_take(ref);
    return 0;
}

int xapi_message_destroy(Call *call, const char *self)
{
    DbRow *row = db_write_begin_on("message", self, &call->error);
    if (!row)
        return -1;
    return db_write_finish(&call->error, db_delete(row, &call->error));
}

/* All or nothing: every ref is checked before any is deleted. */
int xapi_message_destroy_many(Call *call, const Xv *messages)
{
    if (db_write_begin(&call->error) < 0)
        return -1;
    for (guint i = 0; i < xv_len(messages); i++) {
        const char *ref = xv_str(xv_at(messages, i));
        if (!db_lookup(message_class(), ref)) {
            db_write_abort();
            return implicit_handle_invalid(call, message_class(), ref);
        }
    }
    int rc = 0;
    for (guint i = 0; i < xv_len(messages) && rc == 0; i++) {
        DbRow *row = db_lookup(message_class(), xv_str(xv_at(messages, i)));
        if (row) /* a ref given twice is gone by its second turn */
            rc = db_delete(row, &call->error);
    }
    return db_write_finish(&call->error, rc);
}

/* Serves a read as the generic engine serves the same implicit message. */
static int as_implicit(Call *call, DmImplicitKind kind, Xv **result)
{
    DmMessage shadow = *call->msg;
    shadow.implicit_kind = kind;
    Call c = *call;
    c.msg = &shadow;
    c.error = NULL;
    int rc = implicit_execute(&c, result);
    call->error = c.error;
    return rc;
}

int xapi_message_get_all(Call *call, Xv **result)
{
    return as_implicit(call, DM_IMPLICIT_GET_ALL, result);
}

int xapi_message_get_all_records(Call *call, Xv **result)
{
    return as_implicit(call, DM_IMPLICIT_GET_ALL_RECORDS, result);
}

int xapi_message_get_all_where(Call *call, const char *expr, Xv **result)
{
    return as_implicit(call, DM_IMPLICIT_GET_ALL_WHERE, result);
}

int xapi_message_get_all_records_where(Call *call, const char *expr, Xv **result)
{
    return as_implicit(call, DM_IMPLICIT_GET_ALL_RECORDS_WHERE, result);
}

int xapi_message_get_by_uuid(Call *call, const char *uuid, Xv **result)
{
    return as_implicit(call, DM_IMPLICIT_GET_BY_UUID, result);
}

int xapi_message_get_record(Call *call, const char *self, Xv **result)
{
    return as_implicit(call, DM_IMPLICIT_GET_RECORD, result);
}

typedef struct {
    const char *cls;      /* NULL: any */
    const char *obj_uuid;
    int64_t since;
    Xv *out;              /* ref -> record */
} Since;

static bool collect_since(DbRow *row, void *ctx)
{
    Since *s = ctx;
    if (db_get(row, "timestamp")->i <= s->since)
        return true;
    if (s->cls && (strcmp(xv_str(db_get(row, "cls")), s->cls) != 0 ||
                   strcmp(xv_str(db_get(row, "obj_uuid")), s->obj_uuid) != 0))
        return true;
    xv_struct_append(s->out, row->ref, db_row_record(row));
    return true;
}

static int get_since(const char *cls, const char *obj_uuid, int64_t since, Xv **result)
{
    Since s = {cls, obj_uuid, since, xv_new_struct()};
    db_read_begin();
    db_foreach(message_class(), collect_since, &s);
    db_read_end();
    *result = s.out;
    return 0;
}

int xapi_message_get_since(Call *call, int64_t since, Xv **result)
{
    return get_since(NULL, NULL, since, result);
}

int xapi_message_get(Call *call, const char *cls, const char *obj_uuid, int64_t since,
                     Xv **result)
{
    return get_since(cls, obj_uuid, since, result);
}
