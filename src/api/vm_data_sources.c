/* vm_data_sources.c: VM.get_data_sources, query_data_source,
 * record_data_source and forget_data_source_archives (XAPI's xapi_vm.ml,
 * over rrdd): the VM's archive while it runs here. */
#include "call.h"
#include "db.h"
#include "dm_handlers.h"
#include "implicit.h"
#include "metrics.h"

/* The VM's uuid (caller frees), or NULL with HANDLE_INVALID. */
static char *vm_uuid(Call *call, const char *vm)
{
    const DmClass *cls = dm_class_by_name("VM");
    db_read_begin();
    DbRow *row = db_lookup(cls, vm);
    char *uuid = row ? g_strdup(xv_str(db_get(row, "uuid"))) : NULL;
    db_read_end();
    if (!uuid)
        implicit_handle_invalid(call, cls, vm);
    return uuid;
}

int xapi_VM_get_data_sources(Call *call, const char *self, Xv **result)
{
    g_autofree char *uuid = vm_uuid(call, self);
    if (!uuid)
        return -1;
    *result = metrics_data_sources(uuid);
    return 0;
}

int xapi_VM_query_data_source(Call *call, const char *self, const char *data_source,
                              Xv **result)
{
    g_autofree char *uuid = vm_uuid(call, self);
    double value;
    if (!uuid || metrics_query_source(uuid, data_source, &value, &call->error) < 0)
        return -1;
    *result = xv_new_float(value);
    return 0;
}

int xapi_VM_record_data_source(Call *call, const char *self, const char *data_source)
{
    g_autofree char *uuid = vm_uuid(call, self);
    return uuid ? metrics_record_source(uuid, data_source, &call->error) : -1;
}

int xapi_VM_forget_data_source_archives(Call *call, const char *self, const char *data_source)
{
    g_autofree char *uuid = vm_uuid(call, self);
    return uuid ? metrics_forget_source(uuid, data_source, &call->error) : -1;
}
