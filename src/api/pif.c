/* pif.c: PIF.scan, plug, unplug, reconfigure_ip, forget, introduce,
 * create_VLAN and destroy (XAPI's xapi_pif.ml): checks, then the host
 * work of src/network (pif_host.c, vlan_bond.c). */
#include <arpa/inet.h>
#include <string.h>

#include "mac_address.h"
#include "bootstrap.h"
#include "call.h"
#include "dm_handlers.h"
#include "host_links.h"
#include "host_net.h"
#include "network.h"
#include "pif_checks.h"
#include "pif_host.h"
#include "vlan.h"
#include "vlan_bond.h"
#include "vm_nics.h"

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

static const char *str_field(const DbRow *row, const char *field)
{
    return xv_str(db_get(row, field));
}

static int pif_plug(Call *call, const char *self);
static int pif_unplug(Call *call, const char *self);

int xapi_PIF_scan(Call *call, const char *host)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    if (db_write_begin(&call->error) < 0)
        return -1;
    return db_write_finish(&call->error, network_discover_pifs(host, false, &call->error));
}

int xapi_PIF_plug(Call *call, const char *self)
{
    /* Running VIFs on the NIC's macvtaps move onto its bridge. */
    VmNicSwitch *sw = NULL;
    if (vm_nics_switch_begin(self, true, &sw, &call->error) < 0)
        return -1;
    int rc = pif_plug(call, self);
    vm_nics_switch_end(sw);
    return rc;
}

static int pif_plug(Call *call, const char *self)
{
    DbRow *pif = db_write_begin_on("PIF", self, &call->error);
    if (!pif)
        return -1;
    int rc = pif_checks_managed(call, pif);
    if (rc == 0 && pif_checks_is_bond_slave(pif))
        rc = xapi_error_set(&call->error, "CANNOT_PLUG_BOND_SLAVE", pif->ref, NULL);
    /* XAPI calls networkd even when attached; here a plugged PIF is
     * already as its record says. */
    if (rc == 0 && !db_get(pif, "currently_attached")->b)
        rc = pif_host_plug(pif, &call->error);
    return db_write_finish(&call->error, rc);
}

/* A NIC's PIF whose running VIFs go over to macvtap on it. */
static bool is_nic(const DbRow *pif)
{
    return db_get(pif, "physical")->b && db_get(pif, "VLAN")->i < 0;
}

/* XAPI's unplug checks; the VIFs of a NIC's network are not in the way
 * (they move to macvtap). */
static int check_unpluggable(Call *call, const DbRow *pif)
{
    DbRow *net = db_lookup(cls("network"), str_field(pif, "network"));
    if (pif_checks_managed(call, pif) < 0 || pif_checks_not_management(call, pif) < 0 ||
        (net && !is_nic(pif) && pif_checks_no_vif_in_use(call, net) < 0))
        return -1;
    if (db_get(pif, "disallow_unplug")->b)
        return xapi_error_set(&call->error, "PIF_DOES_NOT_ALLOW_UNPLUG", pif->ref, NULL);
    return 0;
}

int xapi_PIF_unplug(Call *call, const char *self)
{
    VmNicSwitch *sw = NULL;
    if (vm_nics_switch_begin(self, false, &sw, &call->error) < 0)
        return -1;
    int rc = pif_unplug(call, self);
    vm_nics_switch_end(sw);
    return rc;
}

static int pif_unplug(Call *call, const char *self)
{
    DbRow *pif = db_write_begin_on("PIF", self, &call->error);
    if (!pif)
        return -1;
    int rc = check_unpluggable(call, pif);
    /* A bond slave goes down with its master, not on its own. */
    if (rc == 0 && !pif_checks_is_bond_slave(pif) && db_get(pif, "currently_attached")->b)
        rc = pif_host_unplug(pif, &call->error);
    return db_write_finish(&call->error, rc);
}

static bool valid_ipv4(const char *text)
{
    struct in_addr a;
    return inet_pton(AF_INET, text, &a) == 1;
}

/* Only the IPv4 servers of a comma-separated list (XAPI's restrict_to). */
static char *ipv4_servers(const char *dns)
{
    g_auto(GStrv) parts = g_strsplit(dns, ",", -1);
    g_autoptr(GPtrArray) kept = g_ptr_array_new();
    for (char **p = parts; *p; p++)
        if (**p && valid_ipv4(*p))
            g_ptr_array_add(kept, *p);
    g_ptr_array_add(kept, NULL);
    return g_strjoinv(",", (char **)kept->pdata);
}

static int check_ip_request(Call *call, const DbRow *pif, const char *mode, const char *ip,
                            const char *netmask, const char *gateway)
{
    if (pif_checks_managed(call, pif) < 0)
        return -1;
    bool is_static = strcmp(mode, "Static") == 0;
    const char *params[][2] = {{"IP", ip}, {"netmask", netmask}, {"gateway", gateway}};
    for (unsigned i = 0; i < G_N_ELEMENTS(params); i++) {
        bool required = is_static && i < 2;
        if ((required || *params[i][1]) && !valid_ipv4(params[i][1]))
            return xapi_error_set(&call->error, "INVALID_IP_ADDRESS_SPECIFIED", params[i][0],
                                  NULL);
    }
    if (is_static && hostlinks_prefix_of(netmask) < 0)
        return xapi_error_set(&call->error, "INVALID_IP_ADDRESS_SPECIFIED", "netmask", NULL);
    if (db_get(pif, "management")->b && strcmp(mode, "None") == 0 &&
        strcmp(str_field(pif, "primary_address_type"), "IPv4") == 0)
        return xapi_error_set(&call->error, "PIF_IS_MANAGEMENT_INTERFACE", pif->ref, NULL);
    if (strcmp(mode, "DHCP") == 0 && !pif_host_dhcp_available())
        return xapi_error_set(&call->error, "OPERATION_NOT_ALLOWED",
                              "DHCP needs dhclient (Debian's isc-dhcp-client), which this host "
                              "lacks",
                              NULL);
    return 0;
}

int xapi_PIF_reconfigure_ip(Call *call, const char *self, const char *mode, const char *IP,
                            const char *netmask, const char *gateway, const char *DNS)
{
    DbRow *pif = db_write_begin_on("PIF", self, &call->error);
    if (!pif)
        return -1;
    if (check_ip_request(call, pif, mode, IP, netmask, gateway) < 0)
        return db_write_finish(&call->error, -1);
    g_autofree char *dns = ipv4_servers(DNS);
    const char *values[][2] = {{"ip_configuration_mode", mode}, {"IP", IP},
                               {"netmask", netmask},            {"gateway", gateway},
                               {"DNS", dns}};
    int rc = 0;
    for (unsigned i = 0; rc == 0 && i < G_N_ELEMENTS(values); i++)
        rc = db_set_by_name(pif, values[i][0], xv_new_string(values[i][1]), &call->error);
    /* An attached PIF gets its new configuration now; the management
     * PIF's gateway is the host's default route. */
    bool management = db_get(pif, "management")->b;
    if (rc == 0 && db_get(pif, "currently_attached")->b && !pif_checks_is_bond_slave(pif))
        rc = pif_host_apply_ip(pif, management, &call->error);
    /* The host's address is its management PIF's (XAPI's
     * on_dom0_networking_change). */
    DbRow *host = db_lookup(cls("host"), str_field(pif, "host"));
    if (rc == 0 && management && host && *str_field(pif, "IP"))
        rc = db_set_by_name(host, "address", xv_new_string(str_field(pif, "IP")), &call->error);
    return db_write_finish(&call->error, rc);
}

int xapi_PIF_forget(Call *call, const char *self)
{
    DbRow *pif = db_write_begin_on("PIF", self, &call->error);
    if (!pif)
        return -1;
    int rc = 0;
    if (pif_checks_not_management(call, pif) < 0 || pif_checks_not_in_bond(call, pif) < 0)
        rc = -1;
    else if (xv_len(db_get(pif, "VLAN_slave_of")) || db_get(pif, "VLAN")->i >= 0)
        rc = xapi_error_set(&call->error, "PIF_VLAN_STILL_EXISTS", pif->ref, NULL);
    if (rc == 0 && db_get(pif, "managed")->b && db_get(pif, "currently_attached")->b) {
        DbRow *net = db_lookup(cls("network"), str_field(pif, "network"));
        rc = net ? pif_checks_no_vif_in_use(call, net) : 0;
        if (rc == 0)
            rc = pif_host_unplug(pif, &call->error);
    }
    DbRow *metrics = db_lookup(cls("PIF_metrics"), str_field(pif, "metrics"));
    if (rc == 0 && metrics)
        rc = db_delete(metrics, &call->error);
    if (rc == 0)
        rc = db_delete(pif, &call->error);
    return db_write_finish(&call->error, rc);
}

static bool host_has_device(const char *host, const char *device)
{
    DbRow *h = db_lookup(cls("host"), host);
    const Xv *pifs = h ? db_get(h, "PIFs") : NULL;
    for (guint i = 0; pifs && i < xv_len(pifs); i++) {
        DbRow *p = db_lookup(cls("PIF"), xv_str(xv_at(pifs, i)));
        if (p && strcmp(str_field(p, "device"), device) == 0)
            return true;
    }
    return false;
}

int xapi_PIF_introduce(Call *call, const char *host, const char *MAC, const char *device,
                       bool managed, Xv **result)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    if (db_write_begin(&call->error) < 0)
        return -1;
    g_autofree char *mac = g_ascii_strdown(MAC, -1);
    g_autoptr(HostLink) link = hostnet_link(device);
    if (!*mac && link)
        g_free(mac), mac = g_strdup(link->mac);
    int rc = 0;
    if (!mac_address_valid(mac))
        rc = xapi_error_set(&call->error, "MAC_INVALID", mac, NULL);
    else if (host_has_device(host, device))
        rc = xapi_error_set(&call->error, "DUPLICATE_PIF_DEVICE_NAME", device, NULL);
    else if (!link || strcmp(link->mac, mac) != 0)
        rc = xapi_error_set(&call->error,
                            "COULD_NOT_FIND_NETWORK_INTERFACE_WITH_SPECIFIED_DEVICE_NAME_AND_MAC_"
                            "ADDRESS",
                            device, mac, NULL);
    g_autofree char *ref = NULL;
    if (rc == 0 && !(ref = network_introduce_pif(host, device, managed, &call->error)))
        rc = -1;
    if (db_write_finish(&call->error, rc) < 0)
        return -1;
    *result = xv_new_string_take(g_steal_pointer(&ref));
    return 0;
}

int xapi_PIF_create_VLAN(Call *call, const char *device, const char *network, const char *host,
                         int64_t VLAN, Xv **result)
{
    if (db_write_begin(&call->error) < 0)
        return -1;
    DbRow *h = pif_checks_row(call, "host", host);
    g_autofree char *vlan = NULL;
    g_autofree char *pif =
        h ? vlan_create_on_device_locked(call, device, network, host, VLAN, &vlan) : NULL;
    if (!pif) {
        db_write_abort();
        return -1;
    }
    if (vlan_bond_vlan_commit(vlan, &call->error) < 0)
        return -1;
    *result = xv_new_string_take(g_steal_pointer(&pif));
    return 0;
}

int xapi_PIF_destroy(Call *call, const char *self)
{
    DbRow *pif = db_write_begin_on("PIF", self, &call->error);
    if (!pif)
        return -1;
    if (db_get(pif, "VLAN")->i < 0) {
        xapi_error_set(&call->error, "PIF_IS_PHYSICAL", NULL);
        return db_write_finish(&call->error, -1);
    }
    g_autofree char *vlan = g_strdup(str_field(pif, "VLAN_master_of"));
    db_write_abort();
    return xapi_VLAN_destroy(call, vlan);
}
