/* message.c: the message class (XAPI's xapi_message.ml): checks, then the
 * message store (src/metrics/message_store.c), which keeps messages
 * outside the object database as XAPI does. On a pool member every
 * message call goes to the master, where the messages are. */
#include <string.h>

#include "call.h"
#include "db.h"
#include "db_text.h"
#include "dm_handlers.h"
#include "filter.h"
#include "message_store.h"
#include "typed_value.h"

static const DmClass *message_class(void) { return dm_class_by_name("message"); }

/* A member's call, made at the master as it came. */
static int on_master(Call *call, Xv **result)
{
    g_autoptr(Xv) wire = NULL;
    if (message_store_remote(call->msg->wire_name, call->args, &wire, &call->error) < 0)
        return -1;
    if (call->msg->result->kind == DM_VOID)
        return 0;
    *result = typed_value_from_wire(call->msg->result, wire, "result", &call->error);
    return *result ? 0 : -1;
}

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
    if (message_store_is_remote())
        return on_master(call, result);
    char *ref = message_store_create(name, priority, cls, obj_uuid, body, &call->error);
    if (!ref)
        return -1;
    *result = xv_new_string_take(ref);
    return 0;
}

int xapi_message_destroy(Call *call, const char *self)
{
    if (message_store_is_remote())
        return on_master(call, NULL);
    return message_store_destroy(&self, 1, &call->error);
}

/* All or nothing: every ref is checked before any is deleted. */
int xapi_message_destroy_many(Call *call, const Xv *messages)
{
    if (message_store_is_remote())
        return on_master(call, NULL);
    g_autofree const char **refs = g_new0(const char *, xv_len(messages) + 1);
    for (guint i = 0; i < xv_len(messages); i++)
        refs[i] = xv_str(xv_at(messages, i));
    return message_store_destroy(refs, xv_len(messages), &call->error);
}

int xapi_message_get_all(Call *call, Xv **result)
{
    if (message_store_is_remote())
        return on_master(call, result);
    *result = message_store_get_all();
    return 0;
}

int xapi_message_get_all_records(Call *call, Xv **result)
{
    if (message_store_is_remote())
        return on_master(call, result);
    *result = message_store_records(NULL, NULL);
    return 0;
}

/* The filter language over a record: each field's DB text, as the
 * generic engine compares the rows of the database. */
static char *record_field_text(void *ctx, const char *name)
{
    const Xv *record = ctx;
    const DmField *f = dm_field_by_name(message_class(), name);
    const Xv *v = f ? xv_struct_get(record, name) : NULL;
    return v ? db_text_from_value(f->type, v) : NULL;
}

static bool matches_filter(const Xv *record, void *ctx)
{
    return filter_eval(ctx, record_field_text, (void *)record);
}

static Xv *records_where(Call *call, const char *expr)
{
    g_autoptr(FilterExpr) filter = filter_parse(expr, &call->error);
    return filter ? message_store_records(matches_filter, filter) : NULL;
}

int xapi_message_get_all_where(Call *call, const char *expr, Xv **result)
{
    if (message_store_is_remote())
        return on_master(call, result);
    g_autoptr(Xv) records = records_where(call, expr);
    if (!records)
        return -1;
    *result = xv_new_array();
    for (guint i = 0; i < xv_len(records); i++)
        xv_array_append_string(*result, xv_member_at(records, i)->key);
    return 0;
}

int xapi_message_get_all_records_where(Call *call, const char *expr, Xv **result)
{
    if (message_store_is_remote())
        return on_master(call, result);
    *result = records_where(call, expr);
    return *result ? 0 : -1;
}

int xapi_message_get_by_uuid(Call *call, const char *uuid, Xv **result)
{
    if (message_store_is_remote())
        return on_master(call, result);
    char *ref = message_store_ref_of_uuid(uuid);
    if (!ref)
        return xapi_error_set(&call->error, "UUID_INVALID", "message", uuid, NULL);
    *result = xv_new_string_take(ref);
    return 0;
}

int xapi_message_get_record(Call *call, const char *self, Xv **result)
{
    if (message_store_is_remote())
        return on_master(call, result);
    *result = message_store_get_record(self);
    if (!*result)
        return xapi_error_set(&call->error, "HANDLE_INVALID", "message", self, NULL);
    return 0;
}

typedef struct {
    const char *cls; /* NULL: any */
    const char *obj_uuid;
    int64_t since;
} Since;

static bool newer_than(const Xv *record, void *ctx)
{
    const Since *s = ctx;
    if (xv_struct_get(record, "timestamp")->i <= s->since)
        return false;
    return !s->cls || (strcmp(xv_str(xv_struct_get(record, "cls")), s->cls) == 0 &&
                       strcmp(xv_str(xv_struct_get(record, "obj_uuid")), s->obj_uuid) == 0);
}

int xapi_message_get_since(Call *call, int64_t since, Xv **result)
{
    if (message_store_is_remote())
        return on_master(call, result);
    *result = message_store_records(newer_than, &(Since){NULL, NULL, since});
    return 0;
}

int xapi_message_get(Call *call, const char *cls, const char *obj_uuid, int64_t since,
                     Xv **result)
{
    if (message_store_is_remote())
        return on_master(call, result);
    *result = message_store_records(newer_than, &(Since){cls, obj_uuid, since});
    return 0;
}
