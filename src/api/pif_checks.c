/* pif_checks.c: XAPI's refusals shared by the PIF, VLAN, Bond and host
 * networking messages. */
#include "pif_checks.h"

#include <string.h>

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

static const char *str_field(const DbRow *row, const char *field)
{
    return xv_str(db_get(row, field));
}

DbRow *pif_checks_row(Call *call, const char *class_name, const char *ref)
{
    DbRow *row = db_lookup(cls(class_name), ref);
    if (!row)
        xapi_error_set(&call->error, "HANDLE_INVALID", class_name, ref, NULL);
    return row;
}

bool pif_checks_is_bond_slave(const DbRow *pif)
{
    return db_lookup(cls("Bond"), str_field(pif, "bond_slave_of")) != NULL;
}

bool pif_checks_is_bond_master(const DbRow *pif)
{
    return xv_len(db_get(pif, "bond_master_of")) > 0;
}

int pif_checks_managed(Call *call, const DbRow *pif)
{
    if (!db_get(pif, "managed")->b)
        return xapi_error_set(&call->error, "PIF_UNMANAGED", pif->ref, NULL);
    return 0;
}

int pif_checks_network_managed(Call *call, const DbRow *network)
{
    if (!db_get(network, "managed")->b)
        return xapi_error_set(&call->error, "NETWORK_UNMANAGED", network->ref, NULL);
    return 0;
}

int pif_checks_no_local_pif(Call *call, const DbRow *network, const char *host)
{
    const Xv *pifs = db_get(network, "PIFs");
    for (guint i = 0; i < xv_len(pifs); i++) {
        DbRow *p = db_lookup(cls("PIF"), xv_str(xv_at(pifs, i)));
        if (p && strcmp(str_field(p, "host"), host) == 0)
            return xapi_error_set(&call->error, "NETWORK_ALREADY_CONNECTED", host, p->ref, NULL);
    }
    return 0;
}

int pif_checks_no_vif_in_use(Call *call, const DbRow *network)
{
    const Xv *vifs = db_get(network, "VIFs");
    for (guint i = 0; i < xv_len(vifs); i++) {
        DbRow *vif = db_lookup(cls("VIF"), xv_str(xv_at(vifs, i)));
        if (vif && db_get(vif, "currently_attached")->b)
            return xapi_error_set(&call->error, "VIF_IN_USE", network->ref, vif->ref, NULL);
    }
    return 0;
}

int pif_checks_not_management(Call *call, const DbRow *pif)
{
    if (db_get(pif, "management")->b)
        return xapi_error_set(&call->error, "PIF_IS_MANAGEMENT_INTERFACE", pif->ref, NULL);
    return 0;
}

int pif_checks_not_in_bond(Call *call, const DbRow *pif)
{
    if (pif_checks_is_bond_slave(pif) || pif_checks_is_bond_master(pif))
        return xapi_error_set(&call->error, "PIF_ALREADY_BONDED", pif->ref, NULL);
    return 0;
}
