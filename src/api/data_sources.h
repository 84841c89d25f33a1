/* data_sources.h: <class>.get_data_sources, query_data_source,
 * record_data_source and forget_data_source_archives of a VM or an SR
 * (XAPI's xapi_vm.ml, xapi_sr.ml, over rrdd): the object checked, then
 * one call into src/metrics with its uuid. */
#pragma once

#include "call.h"
#include "metrics.h"

int data_sources_get(Call *call, MetricsOwner owner, const char *ref, Xv **result);
int data_sources_query(Call *call, MetricsOwner owner, const char *ref, const char *name,
                       Xv **result);
int data_sources_record(Call *call, MetricsOwner owner, const char *ref, const char *name);
int data_sources_forget(Call *call, MetricsOwner owner, const char *ref, const char *name);
