/* vlan.c: VLAN.create and VLAN.destroy (XAPI's xapi_vlan.ml): an 802.1Q
 * link on the tagged PIF's link, on the network's bridge. */
#include "vlan.h"

#include <string.h>

#include "dm_handlers.h"
#include "host_links.h"
#include "pif_checks.h"
#include "vlan_bond.h"

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

static const char *str_field(const DbRow *row, const char *field)
{
    return xv_str(db_get(row, field));
}

/* XAPI's vlan_is_allowed_on_pif. */
static int check_tagged(Call *call, const DbRow *tagged)
{
    if (pif_checks_is_bond_slave(tagged))
        return xapi_error_set(&call->error, "CANNOT_ADD_VLAN_TO_BOND_SLAVE", tagged->ref, NULL);
    if (db_get(tagged, "VLAN")->i >= 0)
        return xapi_error_set(&call->error, "PIF_IS_VLAN", tagged->ref, NULL);
    return 0;
}

static bool tag_on(const DbRow *tagged, int64_t tag)
{
    const Xv *vlans = db_get(tagged, "VLAN_slave_of");
    for (guint i = 0; i < xv_len(vlans); i++) {
        DbRow *v = db_lookup(cls("VLAN"), xv_str(xv_at(vlans, i)));
        if (v && db_get(v, "tag")->i == tag)
            return true;
    }
    return false;
}

char *vlan_create_locked(Call *call, const char *tagged_PIF, int64_t tag, const char *network)
{
    DbRow *net = pif_checks_row(call, "network", network);
    DbRow *tagged = net ? pif_checks_row(call, "PIF", tagged_PIF) : NULL;
    if (!tagged || pif_checks_network_managed(call, net) < 0 ||
        pif_checks_no_local_pif(call, net, str_field(tagged, "host")) < 0 ||
        pif_checks_managed(call, tagged) < 0 || check_tagged(call, tagged) < 0)
        return NULL;
    if (tag < 0 || tag > 4094) {
        g_autofree char *t = g_strdup_printf("%" G_GINT64_FORMAT, tag);
        xapi_error_set(&call->error, "VLAN_TAG_INVALID", t, NULL);
        return NULL;
    }
    const char *device = str_field(tagged, "device");
    if (tag_on(tagged, tag)) {
        xapi_error_set(&call->error, "PIF_VLAN_EXISTS", device, NULL);
        return NULL;
    }
    if (hostlinks_has_vlan(device, (int)tag)) {
        g_autofree char *t = g_strdup_printf("%" G_GINT64_FORMAT, tag);
        xapi_error_set(&call->error, "VLAN_IN_USE", device, t, NULL);
        return NULL;
    }
    return vlan_bond_vlan_create(tagged, tag, net, &call->error);
}

/* The tagged PIF for PIF.create_VLAN: the host's PIF of that device
 * without a tag. */
static DbRow *base_pif(const char *host, const char *device)
{
    DbRow *h = db_lookup(cls("host"), host);
    const Xv *pifs = h ? db_get(h, "PIFs") : NULL;
    for (guint i = 0; pifs && i < xv_len(pifs); i++) {
        DbRow *p = db_lookup(cls("PIF"), xv_str(xv_at(pifs, i)));
        if (p && strcmp(str_field(p, "device"), device) == 0 && db_get(p, "VLAN")->i == -1)
            return p;
    }
    return NULL;
}

char *vlan_create_on_device_locked(Call *call, const char *device, const char *network,
                                   const char *host, int64_t tag, char **out_vlan)
{
    DbRow *tagged = base_pif(host, device);
    if (!tagged) {
        xapi_error_set(&call->error, "INVALID_VALUE", "device", device, NULL);
        return NULL;
    }
    g_autofree char *vlan_ref = vlan_create_locked(call, tagged->ref, tag, network);
    DbRow *vlan = vlan_ref ? db_lookup(cls("VLAN"), vlan_ref) : NULL;
    if (vlan && out_vlan)
        *out_vlan = g_strdup(vlan_ref);
    return vlan ? g_strdup(str_field(vlan, "untagged_PIF")) : NULL;
}

int xapi_VLAN_create(Call *call, const char *tagged_PIF, int64_t tag, const char *network,
                     Xv **result)
{
    if (db_write_begin(&call->error) < 0)
        return -1;
    char *vlan = vlan_create_locked(call, tagged_PIF, tag, network);
    if (!vlan) {
        db_write_abort();
        return -1;
    }
    if (vlan_bond_vlan_commit(vlan, &call->error) < 0) {
        g_free(vlan);
        return -1;
    }
    *result = xv_new_string_take(vlan);
    return 0;
}

int xapi_VLAN_destroy(Call *call, const char *self)
{
    DbRow *vlan = db_write_begin_on("VLAN", self, &call->error);
    if (!vlan)
        return -1;
    DbRow *pif = db_lookup(cls("PIF"), str_field(vlan, "untagged_PIF"));
    DbRow *net = pif ? db_lookup(cls("network"), str_field(pif, "network")) : NULL;
    int rc = 0;
    if (pif) {
        if (pif_checks_not_in_bond(call, pif) < 0)
            rc = -1;
        else if (db_get(pif, "VLAN")->i < 0)
            rc = xapi_error_set(&call->error, "PIF_IS_PHYSICAL", NULL);
        else if (pif_checks_not_management(call, pif) < 0 ||
                 (net && pif_checks_no_vif_in_use(call, net) < 0) ||
                 (db_get(pif, "disallow_unplug")->b &&
                  xapi_error_set(&call->error, "PIF_DOES_NOT_ALLOW_UNPLUG", pif->ref, NULL) < 0))
            rc = -1;
    }
    if (rc == 0)
        rc = vlan_bond_vlan_destroy(vlan, &call->error);
    if (rc < 0) {
        db_write_abort();
        return -1;
    }
    return db_write_commit(&call->error);
}
