/* message_raise.c: the messages xapid raises by itself (see
 * message_store.h). */
#include <stdarg.h>
#include <string.h>

#include "bootstrap.h"
#include "db.h"
#include "message_store.h"

static void raise_text(const char *name, int64_t priority, const char *cls, const char *obj_uuid,
                       const char *body)
{
    XapiError *err = NULL;
    g_autofree char *ref = message_store_create(name, priority, cls, obj_uuid, body, &err);
    if (!ref) {
        g_warning("message %s for %s %s not stored: %s", name, cls, obj_uuid,
                  err ? err->code : "?");
        xapi_error_free(err);
    }
}

void message_raise(const char *name, int64_t priority, const char *cls, const char *obj_uuid,
                   const char *body_format, ...)
{
    va_list ap;
    va_start(ap, body_format);
    g_autofree char *body = g_strdup_vprintf(body_format, ap);
    va_end(ap);
    raise_text(name, priority, cls, obj_uuid, body);
}

void message_raise_vm(const char *name, const char *vm_ref, const char *what_format, ...)
{
    g_autofree char *label = NULL, *uuid = NULL;
    db_read_begin();
    DbRow *vm = db_lookup(dm_class_by_name("VM"), vm_ref);
    if (vm) {
        label = g_strdup(xv_str(db_get(vm, "name_label")));
        uuid = g_strdup(xv_str(db_get(vm, "uuid")));
    }
    db_read_end();
    if (!vm)
        return; /* gone meanwhile: nothing to say it about */
    va_list ap;
    va_start(ap, what_format);
    g_autofree char *what = g_strdup_vprintf(what_format, ap);
    va_end(ap);
    g_autofree char *body = g_strdup_printf("VM '%s' (uuid: %s) %s", label, uuid, what);
    /* VM lifecycle messages are informational (priority 5) in XAPI. */
    raise_text(name, 5, "VM", uuid, body);
}

char *message_this_host(void)
{
    g_autofree char *ref = bootstrap_this_host();
    db_read_begin();
    DbRow *host = db_lookup(dm_class_by_name("host"), ref);
    char *text = g_strdup_printf("%s (uuid: %s)", host ? xv_str(db_get(host, "name_label")) : "",
                                 host ? xv_str(db_get(host, "uuid")) : "");
    db_read_end();
    return text;
}

char *message_uuid_of(const char *ref)
{
    db_read_begin();
    DbRow *row = ref ? db_lookup_any(ref) : NULL;
    const DmField *f = row ? dm_field_by_name(row->cls, "uuid") : NULL;
    char *uuid = g_strdup(f ? xv_str(&row->fields[f->index]) : "");
    db_read_end();
    return uuid;
}
