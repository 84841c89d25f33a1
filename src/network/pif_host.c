/* pif_host.c: a PIF's kernel link on its network's bridge with its IPv4
 * configuration, and the way back (XAPI's nm.ml bring_pif_up/down). */
#include "pif_host.h"

#include <glib/gstdio.h>
#include <string.h>

#include "host_links.h"
#include "host_net.h"
#include "network.h"
#include "vlan_bond.h"

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

static const char *str_field(const DbRow *row, const char *field)
{
    return xv_str(db_get(row, field));
}

const char *pif_host_bridge(const DbRow *pif)
{
    DbRow *net = db_lookup(cls("network"), str_field(pif, "network"));
    return net ? str_field(net, "bridge") : "";
}

static int network_mtu(const DbRow *pif)
{
    DbRow *net = db_lookup(cls("network"), str_field(pif, "network"));
    int64_t mtu = net ? db_get(net, "MTU")->i : 0;
    return mtu > 0 ? (int)mtu : 1500;
}

/* The tagged PIF under a VLAN's untagged PIF, or NULL. */
static DbRow *tagged_pif(const DbRow *pif)
{
    DbRow *vlan = db_lookup(cls("VLAN"), str_field(pif, "VLAN_master_of"));
    return vlan ? db_lookup(cls("PIF"), str_field(vlan, "tagged_PIF")) : NULL;
}

char *pif_host_link(const DbRow *pif, XapiError **err)
{
    int64_t tag = db_get(pif, "VLAN")->i;
    const char *device = str_field(pif, "device");
    if (tag < 0)
        return g_strdup(device);
    char *name = hostlinks_vlan_name(device, (int)tag);
    if (!name)
        xapi_error_set(err, "INVALID_VALUE", "device", device, NULL);
    return name;
}

/* Debian's dhclient (isc-dhcp-client), also where PATH lacks sbin. */
static char *find_dhclient(void)
{
    char *path = g_find_program_in_path("dhclient");
    if (!path && g_file_test("/usr/sbin/dhclient", G_FILE_TEST_IS_EXECUTABLE))
        path = g_strdup("/usr/sbin/dhclient");
    return path;
}

bool pif_host_dhcp_available(void)
{
    g_autofree char *dhclient = find_dhclient();
    return dhclient != NULL;
}

/* Per network namespace too: bridges of one name may live in several. */
static char *dhclient_file(const char *bridge, const char *what)
{
    GStatBuf st;
    guint64 ns = g_stat("/proc/self/ns/net", &st) == 0 ? (guint64)st.st_ino : 0;
    return g_strdup_printf("/run/xapid-dhclient-%" G_GUINT64_FORMAT "-%s.%s", ns, bridge, what);
}

/* dhclient -1: one attempt, then it stays in the background renewing; -r
 * releases the lease and stops it. */
static int run_dhclient(const char *bridge, bool release, XapiError **err)
{
    g_autofree char *dhclient = find_dhclient();
    if (!dhclient)
        return release ? 0
                       : xapi_error_set(err, "OPERATION_NOT_ALLOWED",
                                        "DHCP needs dhclient (Debian's isc-dhcp-client), which "
                                        "this host lacks",
                                        NULL);
    g_autofree char *pidfile = dhclient_file(bridge, "pid");
    g_autofree char *leases = dhclient_file(bridge, "leases");
    if (release && !g_file_test(pidfile, G_FILE_TEST_EXISTS))
        return 0;
    const char *argv[] = {dhclient, release ? "-r" : "-1", "-q", "-pf", pidfile, "-lf", leases,
                          bridge, NULL};
    int status = 0;
    g_autoptr(GError) gerr = NULL;
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL |
                      G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL, NULL, &status, &gerr) ||
        !g_spawn_check_wait_status(status, NULL))
        return release ? 0
                       : xapi_error_set(err, "PIF_CONFIGURATION_ERROR", bridge,
                                        "dhclient got no lease", NULL);
    if (release) {
        g_unlink(pidfile);
        g_unlink(leases);
    }
    return 0;
}

/* The address DHCP gave, in the record as XAPI's update_pif_address does. */
static int record_lease(DbRow *pif, const char *bridge, XapiError **err)
{
    g_autofree char *address = NULL, *netmask = NULL;
    if (!hostnet_ipv4(bridge, &address, &netmask))
        return xapi_error_set(err, "PIF_CONFIGURATION_ERROR", bridge,
                              "dhclient left no address", NULL);
    if (db_set_by_name(pif, "IP", xv_new_string(address), err) < 0)
        return -1;
    return db_set_by_name(pif, "netmask", xv_new_string(netmask), err);
}

int pif_host_apply_ip(DbRow *pif, bool with_gateway, XapiError **err)
{
    const char *bridge = pif_host_bridge(pif);
    const char *mode = str_field(pif, "ip_configuration_mode");
    run_dhclient(bridge, true, NULL);
    if (strcmp(mode, "DHCP") == 0)
        return run_dhclient(bridge, false, err) < 0 ? -1 : record_lease(pif, bridge, err);
    if (strcmp(mode, "Static") != 0)
        return hostlinks_set_ipv4(bridge, NULL, 0, err);
    int prefix = hostlinks_prefix_of(str_field(pif, "netmask"));
    if (prefix < 0)
        return xapi_error_set(err, "INVALID_IP_ADDRESS_SPECIFIED", "netmask", NULL);
    if (hostlinks_set_ipv4(bridge, str_field(pif, "IP"), prefix, err) < 0)
        return -1;
    const char *gateway = str_field(pif, "gateway");
    if (with_gateway && *gateway)
        return hostlinks_set_default_route(bridge, gateway, err);
    return 0;
}

/* What plugging changed, so that a failure can undo it. */
typedef struct {
    const char *bridge;
    char *link;
    bool made_bridge, made_vlan, enslaved;
    char *vlan_parent; /* the tagged PIF's link, for a VLAN */
    int vlan_tag;
    /* A management address moved off the link. */
    char *moved_address;
    int moved_prefix;
    HostRoute route;
} Plug;

static void plug_undo(Plug *p)
{
    g_autoptr(XapiError) ignored = NULL;
    if (p->enslaved)
        hostlinks_set_master(p->link, NULL, &ignored);
    if (p->made_vlan)
        hostlinks_vlan_del(p->link, p->vlan_parent, p->vlan_tag, &ignored);
    if (p->made_bridge)
        hostnet_bridge_del(p->bridge, &ignored);
    if (p->moved_address) {
        /* Back where the host had it, with its default route. */
        hostlinks_set_ipv4(p->link, p->moved_address, p->moved_prefix, &ignored);
        if (p->route.dev)
            hostlinks_set_default_route(p->route.dev, p->route.gateway, &ignored);
    }
}

static void plug_clear(Plug *p)
{
    g_free(p->link);
    g_free(p->vlan_parent);
    g_free(p->moved_address);
    hostlinks_route_clear(&p->route);
}

/* Makes a VLAN's 802.1Q link on its tagged PIF's link if absent. */
static int vlan_link(const DbRow *pif, Plug *p, int mtu, XapiError **err)
{
    DbRow *tagged = tagged_pif(pif);
    if (!tagged)
        return xapi_error_internal(err, "VLAN PIF %s has no tagged PIF", pif->ref);
    if (hostnet_link_exists(p->link))
        return 0;
    p->vlan_parent = pif_host_link(tagged, err);
    p->vlan_tag = (int)db_get(pif, "VLAN")->i;
    if (!p->vlan_parent || hostnet_set_up(p->vlan_parent, true, err) < 0 ||
        hostlinks_vlan_add(p->link, p->vlan_parent, p->vlan_tag, mtu, err) < 0)
        return -1;
    p->made_vlan = true;
    return 0;
}

/* The link's own IPv4 address moves to the bridge, with the default
 * route if it went through the link. */
static int move_address(Plug *p, XapiError **err)
{
    g_autofree char *address = NULL, *netmask = NULL;
    if (!hostnet_ipv4(p->link, &address, &netmask))
        return 0;
    p->moved_prefix = hostlinks_prefix_of(netmask);
    p->moved_address = g_steal_pointer(&address);
    hostlinks_default_route(&p->route);
    if (hostlinks_set_ipv4(p->link, NULL, 0, err) < 0 ||
        hostlinks_set_ipv4(p->bridge, p->moved_address, p->moved_prefix, err) < 0)
        return -1;
    if (p->route.dev && strcmp(p->route.dev, p->link) == 0 &&
        hostlinks_set_default_route(p->bridge, p->route.gateway, err) < 0)
        return -1;
    /* The port's carrier first: a bridge that had no port reports carrier
     * for a moment after its first port joins. */
    if (!hostlinks_wait_carrier(p->link, PIF_HOST_CARRIER_TIMEOUT_MS) ||
        !hostlinks_wait_carrier(p->bridge, PIF_HOST_CARRIER_TIMEOUT_MS))
        return xapi_error_set(err, "PIF_CONFIGURATION_ERROR", p->bridge,
                              "the bridge got no carrier: the address was put back", NULL);
    return 0;
}

static int plug_steps(DbRow *pif, Plug *p, XapiError **err)
{
    int mtu = network_mtu(pif);
    if (db_get(pif, "VLAN")->i >= 0 && vlan_link(pif, p, mtu, err) < 0)
        return -1;
    if (!hostnet_link_exists(p->link))
        return xapi_error_set(err, "PIF_CONFIGURATION_ERROR", pif->ref,
                              "the PIF's device is not on this host", NULL);
    if (!hostnet_is_bridge(p->bridge)) {
        if (hostnet_bridge_add(p->bridge, mtu, err) < 0)
            return -1;
        p->made_bridge = true;
    }
    if (hostnet_set_mtu(p->link, mtu, err) < 0)
        return -1;
    if (hostlinks_set_master(p->link, p->bridge, err) < 0)
        return -1;
    p->enslaved = true;
    if (hostnet_set_up(p->link, true, err) < 0)
        return -1;
    bool management = db_get(pif, "management")->b;
    if (management && move_address(p, err) < 0)
        return -1;
    /* The management PIF keeps what it moved unless its record says
     * Static (a reconfigure_ip while it was unplugged). */
    if (management && strcmp(str_field(pif, "ip_configuration_mode"), "Static") != 0)
        return 0;
    return pif_host_apply_ip(pif, management, err);
}

int pif_host_plug(DbRow *pif, XapiError **err)
{
    Plug p = {.bridge = pif_host_bridge(pif)};
    p.link = pif_host_link(pif, err);
    if (!p.link)
        return -1;
    if (!hostnet_valid_name(p.bridge)) {
        plug_clear(&p);
        return xapi_error_set(err, "BRIDGE_NOT_AVAILABLE", p.bridge, NULL);
    }
    int rc = plug_steps(pif, &p, err);
    if (rc < 0)
        plug_undo(&p);
    else if ((rc = db_set_by_name(pif, "currently_attached", xv_new_bool(true), err)) == 0 &&
             (rc = db_set_by_name(pif, "MTU", xv_new_int(network_mtu(pif)), err)) == 0)
        rc = network_mark_attachment(pif, err);
    plug_clear(&p);
    return rc;
}

int pif_host_unplug(DbRow *pif, XapiError **err)
{
    const char *bridge = pif_host_bridge(pif);
    g_autofree char *link = pif_host_link(pif, err);
    if (!link)
        return -1;
    run_dhclient(bridge, true, NULL);
    if (db_get(pif, "VLAN")->i >= 0) {
        DbRow *tagged = tagged_pif(pif);
        g_autofree char *parent = tagged ? pif_host_link(tagged, err) : NULL;
        if (tagged && !parent)
            return -1;
        if ((parent ? hostlinks_vlan_del(link, parent, (int)db_get(pif, "VLAN")->i, err)
                    : hostlinks_del(link, err)) < 0)
            return -1;
    } else if (hostnet_link_exists(link) && hostlinks_set_master(link, NULL, err) < 0) {
        return -1;
    }
    if (hostnet_is_bridge(bridge) && hostnet_bridge_del(bridge, err) < 0)
        return -1;
    if (db_set_by_name(pif, "currently_attached", xv_new_bool(false), err) < 0)
        return -1;
    return network_mark_attachment(pif, err);
}

/* The bridge holds the PIF's configured address (any IPv4 one with
 * DHCP) and has carrier, within the bound. */
static bool holds_address(const DbRow *pif, const char *bridge)
{
    g_autoptr(XapiError) ignored = NULL;
    g_autofree char *link = db_get(pif, "managed")->b ? pif_host_link(pif, &ignored) : NULL;
    if ((link && !hostlinks_wait_carrier(link, PIF_HOST_CARRIER_TIMEOUT_MS)) ||
        !hostlinks_wait_carrier(bridge, PIF_HOST_CARRIER_TIMEOUT_MS))
        return false;
    g_autofree char *address = NULL, *netmask = NULL;
    if (!hostnet_ipv4(bridge, &address, &netmask))
        return false;
    const char *ip = str_field(pif, "IP");
    return strcmp(str_field(pif, "ip_configuration_mode"), "Static") != 0 ||
           strcmp(address, ip) == 0;
}

int pif_host_take_management(DbRow *pif, XapiError **err)
{
    const char *bridge = pif_host_bridge(pif);
    bool was_attached = db_get(pif, "currently_attached")->b;
    bool managed = db_get(pif, "managed")->b;
    HostRoute before;
    hostlinks_default_route(&before);
    int rc = 0;
    if (managed && !was_attached)
        rc = pif_host_plug(pif, err);
    const char *gateway = str_field(pif, "gateway");
    if (rc == 0 && managed && *gateway)
        rc = hostlinks_set_default_route(bridge, gateway, err);
    if (rc == 0 && !holds_address(pif, bridge))
        rc = xapi_error_set(err, "PIF_CONFIGURATION_ERROR", pif->ref,
                            "the address did not come up on the PIF's bridge: the management "
                            "interface was left as it was",
                            NULL);
    if (rc < 0) {
        g_autoptr(XapiError) ignored = NULL;
        if (before.dev && hostnet_link_exists(before.dev))
            hostlinks_set_default_route(before.dev, before.gateway, &ignored);
        if (managed && !was_attached && db_get(pif, "currently_attached")->b)
            pif_host_unplug(pif, &ignored);
    }
    hostlinks_route_clear(&before);
    return rc;
}

/* Whether the host has the PIF as its record says: link on the bridge. */
static bool looks_plugged(const DbRow *pif)
{
    g_autoptr(XapiError) ignored = NULL;
    g_autofree char *link = pif_host_link(pif, &ignored);
    g_autoptr(HostLink) l = link ? hostnet_link(link) : NULL;
    return l && strcmp(l->master, pif_host_bridge(pif)) == 0;
}

typedef struct {
    const char *host;
    GPtrArray *order[3]; /* bond masters, others, VLANs */
} StartOfDay;

static bool collect_stale(DbRow *pif, void *ctx)
{
    StartOfDay *s = ctx;
    if (strcmp(str_field(pif, "host"), s->host) != 0 || !db_get(pif, "managed")->b ||
        !db_get(pif, "currently_attached")->b || looks_plugged(pif))
        return true;
    if (db_lookup(cls("Bond"), str_field(pif, "bond_slave_of")))
        return true; /* comes back with its master */
    int rank = xv_len(db_get(pif, "bond_master_of")) ? 0 : db_get(pif, "VLAN")->i >= 0 ? 2 : 1;
    g_ptr_array_add(s->order[rank], g_strdup(pif->ref));
    return true;
}

/* The attachment keys of each NIC's network (records an older xapid
 * made have none). */
static bool mark_attachment(DbRow *pif, void *ctx)
{
    if (strcmp(str_field(pif, "host"), ctx) == 0 && db_get(pif, "managed")->b) {
        g_autoptr(XapiError) e = NULL;
        if (network_mark_attachment(pif, &e) < 0)
            g_warning("network of PIF %s: %s", pif->ref, e->code);
    }
    return true;
}

static bool resume_bond(DbRow *bond, void *ctx)
{
    g_autoptr(XapiError) e = NULL;
    if (vlan_bond_bond_resume(bond, ctx, &e) < 0)
        g_warning("bond %s: %s", bond->ref, e->code);
    return true;
}

static bool take_master(DbRow *pool, void *ctx)
{
    *(char **)ctx = g_strdup(str_field(pool, "master"));
    return false;
}

void pif_host_start_of_day(void)
{
    g_autoptr(XapiError) err = NULL;
    if (db_write_begin(&err) < 0)
        return;
    g_autofree char *host = NULL;
    db_foreach(cls("pool"), take_master, &host);
    StartOfDay s = {host ? host : ""};
    for (int i = 0; i < 3; i++)
        s.order[i] = g_ptr_array_new_with_free_func(g_free);
    vlan_bond_sweep(s.host);
    db_foreach(cls("Bond"), resume_bond, (void *)s.host);
    db_foreach(cls("PIF"), collect_stale, &s);
    for (int i = 0; i < 3; i++) {
        for (guint j = 0; j < s.order[i]->len; j++) {
            DbRow *pif = db_lookup(cls("PIF"), s.order[i]->pdata[j]);
            g_autoptr(XapiError) e = NULL;
            const Xv *masters = db_get(pif, "bond_master_of");
            DbRow *bond = i == 0 ? db_lookup(cls("Bond"), xv_str(xv_at(masters, 0))) : NULL;
            int rc = db_set_by_name(pif, "currently_attached", xv_new_bool(false), &e);
            if (rc == 0 && bond) /* its link, with the members, made anew */
                rc = vlan_bond_bond_reconfigure(bond, &e);
            if (rc == 0)
                rc = pif_host_plug(pif, &e);
            if (rc < 0)
                g_warning("PIF %s (%s) could not be plugged again: %s", pif->ref,
                          str_field(pif, "device"), e ? e->code : "");
        }
        g_ptr_array_unref(s.order[i]);
    }
    db_foreach(cls("PIF"), mark_attachment, (void *)s.host);
    if (db_write_commit(&err) < 0)
        g_warning("start of day of the PIFs: %s", err->code);
}
