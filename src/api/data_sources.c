/* data_sources.c: the data-source messages of VMs and SRs (see
 * data_sources.h). */
#include "data_sources.h"

#include "implicit.h"

static char *owner_uuid(Call *call, MetricsOwner owner, const char *ref)
{
    return implicit_uuid_of(call, owner == METRICS_VM ? "VM" : "SR", ref);
}

int data_sources_get(Call *call, MetricsOwner owner, const char *ref, Xv **result)
{
    g_autofree char *uuid = owner_uuid(call, owner, ref);
    if (!uuid)
        return -1;
    *result = metrics_data_sources(owner, uuid);
    return 0;
}

int data_sources_query(Call *call, MetricsOwner owner, const char *ref, const char *name,
                       Xv **result)
{
    g_autofree char *uuid = owner_uuid(call, owner, ref);
    double value;
    if (!uuid || metrics_query_source(owner, uuid, name, &value, &call->error) < 0)
        return -1;
    *result = xv_new_float(value);
    return 0;
}

int data_sources_record(Call *call, MetricsOwner owner, const char *ref, const char *name)
{
    g_autofree char *uuid = owner_uuid(call, owner, ref);
    return uuid ? metrics_record_source(owner, uuid, name, &call->error) : -1;
}

int data_sources_forget(Call *call, MetricsOwner owner, const char *ref, const char *name)
{
    g_autofree char *uuid = owner_uuid(call, owner, ref);
    return uuid ? metrics_forget_source(owner, uuid, name, &call->error) : -1;
}
