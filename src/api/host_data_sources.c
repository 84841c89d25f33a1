/* host_data_sources.c: host.get_data_sources, query_data_source,
 * record_data_source and forget_data_source_archives (XAPI's
 * xapi_host.ml, over rrdd): checks, then one call into src/metrics. */
#include "bootstrap.h"
#include "call.h"
#include "dm_handlers.h"
#include "metrics.h"

int xapi_host_get_data_sources(Call *call, const char *host, Xv **result)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    *result = metrics_data_sources(METRICS_HOST, NULL);
    return 0;
}

int xapi_host_query_data_source(Call *call, const char *host, const char *data_source,
                                Xv **result)
{
    double value;
    if (bootstrap_check_this_host(host, &call->error) < 0 ||
        metrics_query_source(METRICS_HOST, NULL, data_source, &value, &call->error) < 0)
        return -1;
    *result = xv_new_float(value);
    return 0;
}

int xapi_host_record_data_source(Call *call, const char *host, const char *data_source)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    return metrics_record_source(METRICS_HOST, NULL, data_source, &call->error);
}

int xapi_host_forget_data_source_archives(Call *call, const char *host, const char *data_source)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    return metrics_forget_source(METRICS_HOST, NULL, data_source, &call->error);
}
