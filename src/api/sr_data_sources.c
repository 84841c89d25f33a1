/* sr_data_sources.c: SR.get_data_sources, query_data_source,
 * record_data_source and forget_data_source_archives (XAPI's xapi_sr.ml,
 * over rrdd): the SR's archive, the I/O of the disks on it, while it is
 * plugged here. */
#include "data_sources.h"
#include "dm_handlers.h"

int xapi_SR_get_data_sources(Call *call, const char *sr, Xv **result)
{
    return data_sources_get(call, METRICS_SR, sr, result);
}

int xapi_SR_query_data_source(Call *call, const char *sr, const char *data_source, Xv **result)
{
    return data_sources_query(call, METRICS_SR, sr, data_source, result);
}

int xapi_SR_record_data_source(Call *call, const char *sr, const char *data_source)
{
    return data_sources_record(call, METRICS_SR, sr, data_source);
}

int xapi_SR_forget_data_source_archives(Call *call, const char *sr, const char *data_source)
{
    return data_sources_forget(call, METRICS_SR, sr, data_source);
}
