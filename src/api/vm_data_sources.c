/* vm_data_sources.c: VM.get_data_sources, query_data_source,
 * record_data_source and forget_data_source_archives (XAPI's xapi_vm.ml,
 * over rrdd): the VM's archive while it runs here. */
#include "data_sources.h"
#include "dm_handlers.h"

int xapi_VM_get_data_sources(Call *call, const char *self, Xv **result)
{
    return data_sources_get(call, METRICS_VM, self, result);
}

int xapi_VM_query_data_source(Call *call, const char *self, const char *data_source,
                              Xv **result)
{
    return data_sources_query(call, METRICS_VM, self, data_source, result);
}

int xapi_VM_record_data_source(Call *call, const char *self, const char *data_source)
{
    return data_sources_record(call, METRICS_VM, self, data_source);
}

int xapi_VM_forget_data_source_archives(Call *call, const char *self, const char *data_source)
{
    return data_sources_forget(call, METRICS_VM, self, data_source);
}
