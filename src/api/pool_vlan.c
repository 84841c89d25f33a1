/* pool_vlan.c: pool.create_VLAN and pool.create_VLAN_from_PIF: the VLAN
 * on each host of the pool (this one; other hosts come with pools). */
#include <string.h>

#include "bootstrap.h"
#include "call.h"
#include "dm_handlers.h"
#include "pif_checks.h"
#include "vlan.h"
#include "vlan_bond.h"

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

/* Commits, and answers the PIF as a set of one. */
static int answer(Call *call, const char *vlan, char *pif, Xv **result)
{
    if (!pif) {
        db_write_abort();
        return -1;
    }
    if (vlan_bond_vlan_commit(vlan, &call->error) < 0) {
        g_free(pif);
        return -1;
    }
    *result = xv_new_array();
    xv_array_append(*result, xv_new_string_take(pif));
    return 0;
}

int xapi_pool_create_VLAN(Call *call, const char *device, const char *network, int64_t VLAN,
                          Xv **result)
{
    if (db_write_begin(&call->error) < 0)
        return -1;
    g_autofree char *host = bootstrap_this_host();
    g_autofree char *vlan = NULL;
    char *pif = vlan_create_on_device_locked(call, device, network, host, VLAN, &vlan);
    return answer(call, vlan, pif, result);
}

int xapi_pool_create_VLAN_from_PIF(Call *call, const char *pif, const char *network,
                                   int64_t VLAN, Xv **result)
{
    if (db_write_begin(&call->error) < 0)
        return -1;
    DbRow *tagged = pif_checks_row(call, "PIF", pif);
    g_autofree char *vlan = tagged ? vlan_create_locked(call, pif, VLAN, network) : NULL;
    DbRow *row = vlan ? db_lookup(cls("VLAN"), vlan) : NULL;
    return answer(call, vlan, row ? g_strdup(xv_str(db_get(row, "untagged_PIF"))) : NULL, result);
}
