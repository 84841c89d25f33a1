/* network.c: PIF discovery, bridge naming and the life of internal
 * bridges (XAPI's xapi_pif.ml, xapi_network.ml, create_internal_bridge). */
#include "network.h"

#include <string.h>
#include <unistd.h>

#include "host_net.h"
#include "host_port.h"
#include "macvtap.h"
#include "nat.h"
#include "nft_rules.h"

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

static Xv *S(const char *s) { return xv_new_string(s); }

/* Bridges made by this process; with the xapi-prefixed names (reserved
 * for xapid by network.create) they are the ones xapid may remove. */
static GMutex bridges_lock;
static GHashTable *made_bridges;
/* Bridges of NAT networks and their subnets, told by network_bridge_nat
 * before the bridge is needed (bridges_lock). */
static GHashTable *nat_bridges;

/* ---- bridge names ------------------------------------------------------------- */

typedef struct {
    const char *bridge;
    bool found;
} BridgeSearch;

static bool bridge_used(DbRow *net, void *ctx)
{
    BridgeSearch *s = ctx;
    if (strcmp(xv_str(db_get(net, "bridge")), s->bridge) == 0)
        s->found = true;
    return !s->found;
}

static bool bridge_in_db(const char *bridge)
{
    BridgeSearch s = {bridge, false};
    db_foreach(cls("network"), bridge_used, &s);
    return s.found;
}

/* XAPI counts from 0 at each start, past any name in use. */
static unsigned next_xapi_bridge;

char *network_bridge_for_create(const char *requested, XapiError **err)
{
    if (!*requested) {
        for (;; next_xapi_bridge++) {
            g_autofree char *name = g_strdup_printf("xapi%u", next_xapi_bridge);
            if (!bridge_in_db(name) && !hostnet_link_exists(name)) {
                next_xapi_bridge++;
                return g_steal_pointer(&name);
            }
        }
    }
    static const char *const reserved[] = {"xen", "xapi", "vif", "tap", "eth"};
    bool bad = strlen(requested) > 15 || !hostnet_valid_name(requested);
    for (unsigned i = 0; i < G_N_ELEMENTS(reserved); i++)
        bad = bad || g_str_has_prefix(requested, reserved[i]);
    if (bad) {
        xapi_error_set(err, "INVALID_VALUE", "bridge", requested, NULL);
        return NULL;
    }
    if (bridge_in_db(requested)) {
        xapi_error_set(err, "BRIDGE_NAME_EXISTS", requested, NULL);
        return NULL;
    }
    return g_strdup(requested);
}

/* ---- bridges for guests ----------------------------------------------------------- */

/* bridges_lock held. */
static int bridge_acquire_locked(const char *bridge, int mtu, bool internal, XapiError **err)
{
    int rc = 0;
    if (!hostnet_valid_name(bridge)) {
        rc = xapi_error_set(err, "BRIDGE_NOT_AVAILABLE", bridge, NULL);
    } else if (hostnet_is_bridge(bridge)) {
        rc = 0;
    } else if (!internal || hostnet_link_exists(bridge)) {
        rc = xapi_error_set(err, "BRIDGE_NOT_AVAILABLE", bridge, NULL);
    } else if ((rc = hostnet_bridge_add(bridge, mtu, err)) == 0) {
        const char *subnet = nat_bridges ? g_hash_table_lookup(nat_bridges, bridge) : NULL;
        if (subnet && nat_up(bridge, subnet, err) < 0) {
            g_autoptr(XapiError) ignored = NULL;
            hostnet_bridge_del(bridge, &ignored);
            return -1;
        }
        if (!made_bridges)
            made_bridges = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_hash_table_add(made_bridges, g_strdup(bridge));
    }
    return rc;
}

void network_bridge_nat(const char *bridge, const char *subnet)
{
    g_mutex_lock(&bridges_lock);
    if (!nat_bridges)
        nat_bridges = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_hash_table_replace(nat_bridges, g_strdup(bridge), g_strdup(subnet));
    g_mutex_unlock(&bridges_lock);
}

int network_bridge_acquire(const char *bridge, int mtu, bool internal, XapiError **err)
{
    g_mutex_lock(&bridges_lock);
    int rc = bridge_acquire_locked(bridge, mtu, internal, err);
    g_mutex_unlock(&bridges_lock);
    return rc;
}

/* Bridges of networks without PIFs with xapid's prefix: ctx, a GPtrArray
 * of names. */
static bool collect_internal(DbRow *net, void *ctx)
{
    const char *bridge = xv_str(db_get(net, "bridge"));
    if (!xv_len(db_get(net, "PIFs")) && g_str_has_prefix(bridge, "xapi"))
        g_ptr_array_add(ctx, g_strdup(bridge));
    return true;
}

void network_bridges_gc(void)
{
    nft_rules_gc(); /* the rules of taps that went with their QEMU */
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    db_read_begin();
    db_foreach(cls("network"), collect_internal, names);
    db_read_end();
    g_mutex_lock(&bridges_lock);
    if (made_bridges) {
        GHashTableIter it;
        gpointer key;
        g_hash_table_iter_init(&it, made_bridges);
        while (g_hash_table_iter_next(&it, &key, NULL))
            g_ptr_array_add(names, g_strdup(key));
    }
    for (guint i = 0; i < names->len; i++) {
        const char *b = names->pdata[i];
        if (!hostnet_is_bridge(b) || !hostnet_bridge_empty(b))
            continue;
        g_autoptr(XapiError) err = NULL;
        nat_down(b); /* if it was a NAT network's */
        if (hostnet_bridge_del(b, &err) == 0 && made_bridges)
            g_hash_table_remove(made_bridges, b);
        else
            g_warning("cannot remove bridge %s: %s", b, err ? err->code : "");
    }
    g_mutex_unlock(&bridges_lock);
}

/* ---- PIF discovery -------------------------------------------------------------- */

typedef struct {
    const char *host;
    GHashTable *devices; /* device names with a PIF on this host */
} PifSearch;

static bool collect_pif(DbRow *pif, void *ctx)
{
    PifSearch *s = ctx;
    if (strcmp(xv_str(db_get(pif, "host")), s->host) == 0)
        g_hash_table_add(s->devices, g_strdup(xv_str(db_get(pif, "device"))));
    return true;
}

static char *insert_row(DbRow *row, XapiError **err)
{
    char *ref = g_strdup(row->ref);
    if (db_insert(row, err) < 0) {
        g_free(ref);
        return NULL;
    }
    return ref;
}

static char *read_duplex(const char *dev)
{
    g_autofree char *p = g_build_filename("/sys/class/net", dev, "duplex", NULL);
    char *text = NULL;
    return g_file_get_contents(p, &text, NULL, NULL) ? g_strstrip(text) : g_strdup("");
}

static char *add_metrics(const HostLink *l, XapiError **err)
{
    DbRow *m = db_row_new(cls("PIF_metrics"));
    db_row_put(m, "carrier", xv_new_bool(l->carrier));
    db_row_put(m, "speed", xv_new_int(l->speed));
    g_autofree char *duplex = read_duplex(l->name);
    db_row_put(m, "duplex", xv_new_bool(strcmp(duplex, "full") == 0));
    /* sysfs gives "0x8086"; XAPI shows the bare hex id. */
    db_row_put(m, "vendor_id", S(g_str_has_prefix(l->vendor_id, "0x") ? l->vendor_id + 2
                                                                       : l->vendor_id));
    db_row_put(m, "device_id", S(g_str_has_prefix(l->device_id, "0x") ? l->device_id + 2
                                                                       : l->device_id));
    db_row_put(m, "pci_bus_path", S(l->pci_bus_path));
    db_row_put(m, "last_updated", xv_new_datetime(g_get_real_time() / G_USEC_PER_SEC));
    return insert_row(m, err);
}

/* The lowest N with no network bridged on xenbrN. */
static char *free_xenbr(void)
{
    for (unsigned n = 0;; n++) {
        g_autofree char *name = g_strdup_printf("xenbr%u", n);
        if (!bridge_in_db(name))
            return g_steal_pointer(&name);
    }
}

typedef struct {
    const HostLink *link;
    const char *bridge;  /* the host bridge it is a port of, or NULL */
    bool management;
    bool unmanaged;      /* PIF.introduce with managed=false: no bridge */
    char **ref;          /* if not NULL, gets the new PIF's ref */
} NewPif;

static int add_pif(const char *host, const NewPif *p, XapiError **err)
{
    const HostLink *l = p->link;
    bool bridged = p->bridge != NULL;
    if (bridged && bridge_in_db(p->bridge))
        return 0; /* another port of that bridge has its network */
    bool managed = !bridged && !p->unmanaged;
    g_autofree char *bridge = bridged ? g_strdup(p->bridge) : managed ? free_xenbr() : g_strdup("");
    g_autofree char *metrics = add_metrics(l, err);
    if (!metrics)
        return -1;
    DbRow *net = db_row_new(cls("network"));
    g_autofree char *label = g_strdup_printf("Pool-wide network associated with %s", l->name);
    db_row_put(net, "name_label", S(label));
    db_row_put(net, "bridge", S(bridge));
    db_row_put(net, "MTU", xv_new_int(l->mtu > 0 ? l->mtu : 1500));
    db_row_put(net, "managed", xv_new_bool(managed));
    g_autofree char *network = insert_row(net, err);
    if (!network)
        return -1;
    DbRow *pif = db_row_new(cls("PIF"));
    db_row_put(pif, "device", S(l->name));
    db_row_put(pif, "host", S(host));
    db_row_put(pif, "network", S(network));
    db_row_put(pif, "metrics", S(metrics));
    db_row_put(pif, "MAC", S(l->mac));
    db_row_put(pif, "MTU", xv_new_int(l->mtu > 0 ? l->mtu : 1500));
    db_row_put(pif, "VLAN", xv_new_int(-1));
    db_row_put(pif, "physical", xv_new_bool(true));
    db_row_put(pif, "managed", xv_new_bool(managed));
    /* A bridged NIC carries traffic already; an unbridged one is left
     * alone until PIF.plug puts it on its bridge. */
    db_row_put(pif, "currently_attached", xv_new_bool(bridged));
    db_row_put(pif, "management", xv_new_bool(p->management));
    db_row_put(pif, "primary_address_type", S("IPv4"));
    g_autofree char *address = NULL, *netmask = NULL;
    const char *holder = bridged ? p->bridge : l->name;
    if (p->management && hostnet_ipv4(holder, &address, &netmask)) {
        db_row_put(pif, "IP", S(address));
        db_row_put(pif, "netmask", S(netmask));
        /* How the host got it is not xapid's to know (XAPI reads its
         * own inventory); DHCP is what a fresh install has. */
        db_row_put(pif, "ip_configuration_mode", S("DHCP"));
    }
    g_autofree char *ref = insert_row(pif, err);
    DbRow *added = ref && managed ? db_lookup(cls("PIF"), ref) : NULL;
    if (added && network_mark_attachment(added, err) < 0)
        return -1;
    if (ref && p->ref)
        *p->ref = g_steal_pointer(&ref);
    return p->ref ? (*p->ref ? 0 : -1) : (ref ? 0 : -1);
}

/* The NIC behind the default route: the device itself, or the first
 * port of the bridge holding it. */
static HostLink *management_link(char **bridge)
{
    g_autofree char *dev = hostnet_default_route_dev();
    *bridge = NULL;
    if (!dev)
        return NULL;
    if (!hostnet_is_bridge(dev))
        return hostnet_link(dev);
    g_autoptr(GPtrArray) links = hostnet_links();
    for (guint i = 0; i < links->len; i++) {
        HostLink *l = links->pdata[i];
        if (strcmp(l->master, dev) == 0 && !l->tap) {
            *bridge = g_strdup(dev);
            return hostnet_link(l->name);
        }
    }
    return NULL;
}

int network_discover_pifs(const char *host, bool first_start, XapiError **err)
{
    PifSearch s = {host, g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL)};
    db_foreach(cls("PIF"), collect_pif, &s);
    g_autoptr(GHashTable) known = s.devices;
    g_autofree char *mgmt_bridge = NULL;
    g_autoptr(HostLink) mgmt = management_link(&mgmt_bridge);
    if (mgmt && (mgmt->loopback || mgmt->tap || mgmt->bridge))
        g_clear_pointer(&mgmt, hostnet_link_free);
    if (mgmt && !g_hash_table_contains(known, mgmt->name)) {
        NewPif p = {mgmt, mgmt_bridge, first_start};
        if (add_pif(host, &p, err) < 0)
            return -1;
        g_hash_table_add(known, g_strdup(mgmt->name));
    }
    g_autoptr(GPtrArray) links = hostnet_links();
    for (guint i = 0; i < links->len; i++) {
        HostLink *l = links->pdata[i];
        if (!l->physical || l->loopback || l->bridge || l->tap ||
            g_hash_table_contains(known, l->name))
            continue;
        /* A NIC already on a host bridge belongs to that bridge. */
        NewPif p = {l, *l->master ? l->master : NULL, false};
        if (add_pif(host, &p, err) < 0)
            return -1;
        g_hash_table_add(known, g_strdup(l->name));
    }
    return 0;
}

char *network_introduce_pif(const char *host, const char *device, bool managed, XapiError **err)
{
    g_autoptr(HostLink) l = hostnet_link(device);
    if (!l) {
        xapi_error_internal(err, "no link %s", device);
        return NULL;
    }
    char *ref = NULL;
    NewPif p = {l, NULL, false, !managed, &ref};
    if (add_pif(host, &p, err) < 0)
        g_clear_pointer(&ref, g_free);
    return ref;
}

static bool port_on_bridge(const VifPolicy *policy)
{
    return !policy || policy->mode != VIF_LOCK_DISABLED;
}

int network_guest_tap_open(const char *tap, const char *bridge, int mtu, bool internal,
                           const VifPolicy *policy, XapiError **err)
{
    /* Held until the tap is a port, so that the clean-up after another
     * guest cannot take the bridge away in between. */
    g_mutex_lock(&bridges_lock);
    int fd = bridge_acquire_locked(bridge, mtu, internal, err) < 0 ? -1
                                                                   : hostnet_tap_open(tap, err);
    /* Its rules are in place before it joins the bridge. */
    if (fd >= 0 && (hostnet_set_mtu(tap, mtu, err) < 0 ||
                    (policy && nft_rules_set(tap, policy, err) < 0) ||
                    (port_on_bridge(policy) && hostnet_enslave(bridge, tap, err) < 0) ||
                    hostnet_set_up(tap, true, err) < 0)) {
        close(fd);
        fd = -1;
    }
    g_mutex_unlock(&bridges_lock);
    return fd;
}

int network_guest_tap_update(const char *tap, const char *bridge, int mtu, bool internal,
                             const VifPolicy *policy, XapiError **err)
{
    g_autoptr(HostLink) link = hostnet_link(tap);
    if (!link)
        return xapi_error_internal(err, "the tap %s is gone", tap);
    const char *want = port_on_bridge(policy) ? bridge : "";
    /* Rules first: a tap that joins a bridge is already filtered, and one
     * that leaves it is dropped from before. */
    if (nft_rules_set(tap, policy, err) < 0)
        return -1;
    if (strcmp(link->master, want) == 0)
        return 0;
    g_mutex_lock(&bridges_lock);
    int rc = 0;
    if (*link->master)
        rc = hostport_release(link->master, tap, err);
    if (rc == 0 && *want &&
        (bridge_acquire_locked(want, mtu, internal, err) < 0 ||
         hostnet_set_mtu(tap, mtu, err) < 0 || hostnet_enslave(want, tap, err) < 0))
        rc = -1;
    g_mutex_unlock(&bridges_lock);
    network_bridges_gc(); /* the bridge it left may be empty now */
    return rc;
}

#define TAPS_GONE_TIMEOUT_US (2 * G_USEC_PER_SEC)

char *network_guest_tap_name(const char *vm_uuid, int device)
{
    return g_strdup_printf("xv%.8s.%d", vm_uuid, device);
}

/* A link named name, or (prefix) starting with name. */
static bool any_link(const char *name, bool prefix)
{
    g_autoptr(GDir) dir = g_dir_open("/sys/class/net", 0, NULL);
    for (const char *n = dir ? g_dir_read_name(dir) : NULL; n; n = g_dir_read_name(dir))
        if (prefix ? g_str_has_prefix(n, name) : strcmp(n, name) == 0)
            return true;
    return false;
}

static void wait_gone(const char *name, bool prefix)
{
    int64_t deadline = g_get_monotonic_time() + TAPS_GONE_TIMEOUT_US;
    while (any_link(name, prefix) && g_get_monotonic_time() < deadline)
        g_usleep(10 * 1000);
}


void network_guest_taps_wait_gone(const char *vm_uuid)
{
    g_autofree char *prefix = g_strdup_printf("xv%.8s.", vm_uuid);
    wait_gone(prefix, true);
}

void network_guest_tap_wait_gone(const char *tap) { wait_gone(tap, false); }

/* ---- guest NICs through macvtap ---------------------------------------------- */

bool network_nic_unbridged(const char *device)
{
    g_autoptr(HostLink) l = hostnet_valid_name(device) ? hostnet_link(device) : NULL;
    return l && !l->bridge && !l->loopback && !l->tap && !*l->master;
}

int network_mark_attachment(const DbRow *pif, XapiError **err)
{
    DbRow *net = db_lookup(cls("network"), xv_str(db_get(pif, "network")));
    if (!net || !db_get(pif, "physical")->b || db_get(pif, "VLAN")->i >= 0)
        return 0;
    const char *device = xv_str(db_get(pif, "device"));
    bool bridged = db_get(pif, "currently_attached")->b;
    g_autoptr(Xv) other = xv_dup(db_get(net, "other_config"));
    const Xv *was = xv_struct_get(other, NETWORK_ATTACH_KEY);
    if (was && strcmp(xv_str(was), bridged ? "bridge" : "macvtap") == 0)
        return 0;
    xv_struct_set_string(other, NETWORK_ATTACH_KEY, bridged ? "bridge" : "macvtap");
    if (bridged) {
        xv_struct_remove(other, NETWORK_ATTACH_NOTE_KEY);
    } else {
        g_autofree char *note = g_strdup_printf(
            "VIFs attach through macvtap (bridge mode) on %s: guests reach its LAN and each "
            "other, and the host keeps its address, but the host cannot reach its guests over "
            "%s (macvtap's limit); PIF.plug puts %s on the bridge %s (its address moves there) "
            "and moves running VIFs onto it",
            device, device, device, xv_str(db_get(net, "bridge")));
        xv_struct_set_string(other, NETWORK_ATTACH_NOTE_KEY, note);
    }
    return db_set_by_name(net, "other_config", g_steal_pointer(&other), err);
}

int network_guest_macvtap_open(const char *tap, const char *parent, const char *mac, int mtu,
                               const VifPolicy *policy, XapiError **err)
{
    if (!network_nic_unbridged(parent))
        return xapi_error_internal(err, "%s is a port of a bridge: no macvtap on it", parent);
    int fd = macvtap_open(tap, parent, mac, mtu, err);
    /* Its rules are in place before it comes up. */
    if (fd >= 0 && (nft_rules_set_macvtap(tap, policy, err) < 0 ||
                    hostnet_set_up(tap, true, err) < 0)) {
        close(fd);
        fd = -1;
        g_autoptr(XapiError) ignored = NULL;
        network_guest_macvtap_remove(tap, &ignored);
    }
    return fd;
}

int network_guest_macvtap_update(const char *tap, const VifPolicy *policy, XapiError **err)
{
    return nft_rules_set_macvtap(tap, policy, err);
}

int network_guest_macvtap_remove(const char *tap, XapiError **err)
{
    if (!macvtap_is(tap))
        return 0;
    g_autoptr(XapiError) ignored = NULL;
    nft_rules_set_macvtap(tap, NULL, &ignored); /* its chains outlive it */
    return macvtap_remove(tap, err);
}

void network_guest_macvtaps_remove(const char *vm_uuid)
{
    g_autofree char *prefix = g_strdup_printf("xv%.8s.", vm_uuid);
    macvtap_remove_prefixed(prefix, NULL);
}

/* A guest NIC's link name: xv<8 hex>.<digits> (network_guest_tap_name). */
static bool guest_link_name(const char *name)
{
    if (!g_str_has_prefix(name, "xv") || strlen(name) < 12 || name[10] != '.' || !name[11])
        return false;
    for (int i = 2; i < 10; i++)
        if (!g_ascii_isxdigit(name[i]))
            return false;
    for (const char *c = name + 11; *c; c++)
        if (!g_ascii_isdigit(*c))
            return false;
    return true;
}

void network_guest_macvtaps_gc(GHashTable *keep)
{
    g_autoptr(GHashTable) others = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autoptr(GDir) dir = g_dir_open("/sys/class/net", 0, NULL);
    for (const char *n = dir ? g_dir_read_name(dir) : NULL; n; n = g_dir_read_name(dir))
        if (g_str_has_prefix(n, "xv") && !guest_link_name(n))
            g_hash_table_add(others, g_strdup(n)); /* not one of ours */
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, keep);
    while (g_hash_table_iter_next(&it, &key, NULL))
        g_hash_table_add(others, g_strdup(key));
    macvtap_remove_prefixed("xv", others);
}

bool network_guest_macvtap_on(const char *tap, const char *parent)
{
    if (!macvtap_is(tap))
        return false;
    if (!parent)
        return true;
    g_autofree char *lower = g_strdup_printf("lower_%s", parent);
    g_autofree char *path = g_build_filename("/sys/class/net", tap, lower, NULL);
    return hostnet_valid_name(parent) && g_file_test(path, G_FILE_TEST_EXISTS);
}

bool network_guest_tap_exists(const char *tap)
{
    return hostnet_link_exists(tap) && !macvtap_is(tap);
}

void network_markdown(GString *out)
{
    g_string_append(
        out,
        "## How a network reaches its guests (`network.other_config`)\n\n"
        "Written by xapid (`src/network/network.c`) on the network of each NIC's PIF, at "
        "discovery, at every start and at each `PIF.plug`/`unplug`/"
        "`host.management_reconfigure`.\n\n"
        "| Key | Meaning |\n|---|---|\n"
        "| `" NETWORK_ATTACH_KEY "` | `bridge`: the PIF is plugged; guests' NICs are taps on "
        "the network's bridge. `macvtap`: the PIF is unplugged (as the management NIC of a "
        "new host is: its address is never moved unasked) and each running VIF is a macvtap "
        "link in bridge mode on the NIC: guests reach the LAN and each other at once, the host "
        "keeps its address, and the host cannot reach its guests over that NIC (macvtap's "
        "limit). Locking and `ratelimit` hold there too, as chains of `table netdev xapid` "
        "on the macvtap's own device (no bridge sees its frames). A NIC that is a port of "
        "another bridge or a bond takes no macvtap (`REQUIRED_PIF_IS_UNPLUGGED`). "
        "`PIF.plug` moves running VIFs from macvtap to the bridge, `PIF.unplug` back, the "
        "guest's device and address untouched |\n"
        "| `" NETWORK_ATTACH_NOTE_KEY "` | with `macvtap`: the same in words, naming the NIC "
        "and the bridge |\n"
        "| `xapid-nat` | given to `network.create`: `true` makes an internal network routed "
        "and masqueraded behind the host (`false` or absent: a plain internal network; "
        "anything else `INVALID_VALUE`): when its bridge is made, it holds the subnet's first "
        "address, dnsmasq (Debian's `dnsmasq-base`; without it `OPERATION_NOT_ALLOWED`) "
        "leases the guests addresses with that gateway, and nftables (`table ip "
        "xapid-nat-<bridge>`) masquerades what they send out of the host; all of it goes "
        "with the bridge |\n"
        "| `xapid-nat-subnet` | a NAT network's IPv4 subnet, `a.b.c.d/len` (8 to 29), given "
        "or chosen at `network.create` (the first free `10.213.N.0/24`) |\n\n");
}
