/* pif.c: PIF.scan: the host's NICs that have no PIF yet get one. */
#include "bootstrap.h"
#include "call.h"
#include "dm_handlers.h"
#include "network.h"

int xapi_PIF_scan(Call *call, const char *host)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    if (db_write_begin(&call->error) < 0)
        return -1;
    if (network_discover_pifs(host, false, &call->error) < 0) {
        db_write_abort();
        return -1;
    }
    return db_write_commit(&call->error);
}
