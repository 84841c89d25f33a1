/* vlan_bond.c: VLAN and Bond records as XAPI makes them, with their
 * 802.1Q and bonding links on the host (xapi_vlan.ml, xapi_bond.ml). */
#include "vlan_bond.h"

#include <string.h>

#include "bond_bpf.h"
#include "host_links.h"
#include "host_net.h"
#include "pif_host.h"

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

static Xv *S(const char *s) { return xv_new_string(s); }

static const char *str_field(const DbRow *row, const char *field)
{
    return xv_str(db_get(row, field));
}

static char *insert_row(DbRow *row, XapiError **err)
{
    char *ref = g_strdup(row->ref);
    if (db_insert(row, err) < 0)
        g_clear_pointer(&ref, g_free);
    return ref;
}

/* ---- VLANs ----------------------------------------------------------------------- */

char *vlan_bond_vlan_create(DbRow *tagged, int64_t tag, DbRow *network, XapiError **err)
{
    DbRow *vlan = db_row_new(cls("VLAN"));
    DbRow *pif = db_row_new(cls("PIF"));
    g_autofree char *vlan_ref = g_strdup(vlan->ref);
    g_autofree char *pif_ref = g_strdup(pif->ref);
    /* The tagged PIF's device, MTU, metrics and address type; XAPI's
     * dummy MAC (create_internal). */
    db_row_put(pif, "device", S(str_field(tagged, "device")));
    db_row_put(pif, "network", S(network->ref));
    db_row_put(pif, "host", S(str_field(tagged, "host")));
    db_row_put(pif, "MAC", S(VLAN_PIF_MAC));
    db_row_put(pif, "MTU", xv_new_int(db_get(tagged, "MTU")->i));
    db_row_put(pif, "VLAN", xv_new_int(tag));
    db_row_put(pif, "metrics", S(str_field(tagged, "metrics")));
    db_row_put(pif, "physical", xv_new_bool(false));
    db_row_put(pif, "currently_attached", xv_new_bool(false));
    db_row_put(pif, "VLAN_master_of", S(vlan_ref));
    db_row_put(pif, "primary_address_type", S(str_field(tagged, "primary_address_type")));
    db_row_put(vlan, "tagged_PIF", S(tagged->ref));
    db_row_put(vlan, "untagged_PIF", S(pif_ref));
    db_row_put(vlan, "tag", xv_new_int(tag));
    if (db_insert(pif, err) < 0) {
        db_row_free(vlan);
        return NULL;
    }
    if (db_insert(vlan, err) < 0)
        return NULL;
    DbRow *untagged = db_lookup(cls("PIF"), pif_ref);
    if (pif_host_plug(untagged, err) < 0)
        return NULL;
    return g_steal_pointer(&vlan_ref);
}

int vlan_bond_vlan_commit(const char *vlan_ref, XapiError **err)
{
    DbRow *vlan = db_lookup(cls("VLAN"), vlan_ref);
    DbRow *pif = vlan ? db_lookup(cls("PIF"), str_field(vlan, "untagged_PIF")) : NULL;
    DbRow *tagged = vlan ? db_lookup(cls("PIF"), str_field(vlan, "tagged_PIF")) : NULL;
    g_autoptr(XapiError) ignored = NULL;
    g_autofree char *link = pif ? pif_host_link(pif, &ignored) : NULL;
    g_autofree char *parent = tagged ? pif_host_link(tagged, &ignored) : NULL;
    g_autofree char *bridge = g_strdup(pif ? pif_host_bridge(pif) : "");
    int tag = vlan ? (int)db_get(vlan, "tag")->i : -1;
    if (db_write_commit(err) == 0)
        return 0;
    if (link && parent)
        hostlinks_vlan_del(link, parent, tag, &ignored);
    if (*bridge)
        hostnet_bridge_del(bridge, &ignored);
    return -1;
}

int vlan_bond_vlan_destroy(DbRow *vlan, XapiError **err)
{
    DbRow *pif = db_lookup(cls("PIF"), str_field(vlan, "untagged_PIF"));
    if (pif && pif_host_unplug(pif, err) < 0)
        return -1;
    if (db_delete(vlan, err) < 0)
        return -1;
    /* Its metrics are the tagged PIF's: they stay. */
    return pif ? db_delete(pif, err) : 0;
}

/* ---- bonds ----------------------------------------------------------------------- */

const char *vlan_bond_linux_mode(const char *mode)
{
    if (strcmp(mode, "balance-slb") == 0)
        return "balance-alb";
    if (strcmp(mode, "active-backup") == 0)
        return "active-backup";
    if (strcmp(mode, "lacp") == 0)
        return "802.3ad";
    return NULL;
}

static const char *prop(const Xv *properties, const char *key, const char *fallback)
{
    const Xv *v = xv_struct_get(properties, key);
    return v ? xv_str(v) : fallback;
}

static int bond_enslave(const char *name, GPtrArray *member_links, XapiError **err)
{
    for (guint i = 0; i < member_links->len; i++) {
        const char *m = member_links->pdata[i];
        /* The bonding driver takes only links that are down. */
        if (hostnet_set_up(m, false, err) < 0 || hostlinks_set_master(m, name, err) < 0 ||
            hostnet_set_up(m, true, err) < 0)
            return -1;
    }
    return 0;
}

/* The members into the bond's link: the kernel's ports, or xapid's own
 * programs. */
static int bond_take_members(const char *name, const char *mode, GPtrArray *member_links,
                             const char *primary_link, XapiError **err)
{
    if (bondbpf_exists(name))
        return bondbpf_set_members(name, mode, member_links, primary_link, err);
    return bond_enslave(name, member_links, err);
}

static int bond_link_del(const char *name, XapiError **err)
{
    return bondbpf_exists(name) ? bondbpf_del(name, err) : hostlinks_del(name, err);
}

/* The bonding link of a Bond record, with its members taken: the kernel's
 * bonding, or where the kernel lacks it (CONFIG_BONDING) xapid's own
 * (bond_bpf.h). */
static int bond_link_make(const char *name, const char *mac, int mtu, const char *mode,
                          const Xv *properties, GPtrArray *member_links,
                          const char *primary_link, XapiError **err)
{
    const char *key = prop(properties, "lacp-aggregation-key", "");
    HostBond b = {
        .mode = vlan_bond_linux_mode(mode),
        .mac = *mac ? mac : NULL,
        .mtu = mtu,
        .xmit_hash_policy = strcmp(prop(properties, "hashing_algorithm", ""), "src_mac") == 0 ? 0
                                                                                             : 1,
        .lacp_fast = strcmp(prop(properties, "lacp-time", "slow"), "fast") == 0,
        .user_port_key = *key ? (int)g_ascii_strtoll(key, NULL, 10) : -1,
    };
    bool unsupported = false;
    if (hostlinks_bond_add(name, &b, &unsupported, err) < 0 &&
        (!unsupported || bondbpf_add(name, mode, b.mac, mtu, err) < 0))
        return -1;
    if ((!bondbpf_exists(name) && hostnet_set_up(name, true, err) < 0) ||
        (member_links->len &&
         bond_take_members(name, mode, member_links, primary_link, err) < 0)) {
        g_autoptr(XapiError) ignored = NULL;
        bond_link_del(name, &ignored);
        return -1;
    }
    return 0;
}

/* bondN with the lowest N no bond master PIF of host has (choose_bond_device_name). */
static char *bond_device_name(const char *host)
{
    for (unsigned n = 0;; n++) {
        g_autofree char *name = g_strdup_printf("bond%u", n);
        bool used = hostnet_link_exists(name);
        DbRow *h = db_lookup(cls("host"), host);
        const Xv *set = h ? db_get(h, "PIFs") : NULL;
        for (guint i = 0; set && i < xv_len(set) && !used; i++) {
            DbRow *p = db_lookup(cls("PIF"), xv_str(xv_at(set, i)));
            used = p && xv_len(db_get(p, "bond_master_of")) &&
                   strcmp(str_field(p, "device"), name) == 0;
        }
        if (!used)
            return g_steal_pointer(&name);
    }
}

static const char *const IP_FIELDS[] = {"ip_configuration_mode", "IP", "netmask", "gateway",
                                        "DNS"};

/* XAPI's move_configuration: from's IPv4 settings go to to. */
static int move_ip_configuration(DbRow *from, DbRow *to, XapiError **err)
{
    for (unsigned i = 0; i < G_N_ELEMENTS(IP_FIELDS); i++) {
        const char *f = IP_FIELDS[i];
        if (db_set_by_name(to, f, xv_dup(db_get(from, f)), err) < 0 ||
            db_set_by_name(from, f, S(i == 0 ? "None" : ""), err) < 0)
            return -1;
    }
    return 0;
}

static int links_up(GPtrArray *member_links)
{
    int up = 0;
    for (guint i = 0; i < member_links->len; i++) {
        g_autoptr(HostLink) l = hostnet_link(member_links->pdata[i]);
        up += l && l->carrier;
    }
    return up;
}

/* The members' links; member rows are unplugged first (their bridges
 * go). */
static GPtrArray *free_members(GPtrArray *members, XapiError **err)
{
    g_autoptr(GPtrArray) links = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < members->len; i++) {
        DbRow *m = members->pdata[i];
        if (db_get(m, "currently_attached")->b && pif_host_unplug(m, err) < 0)
            return NULL;
        g_ptr_array_add(links, g_strdup(str_field(m, "device")));
    }
    return g_steal_pointer(&links);
}

static void replug(GPtrArray *members, GPtrArray *were_attached)
{
    for (guint i = 0; i < members->len; i++) {
        g_autoptr(XapiError) ignored = NULL;
        if (GPOINTER_TO_INT(were_attached->pdata[i]))
            pif_host_plug(members->pdata[i], &ignored);
    }
}

static DbRow *new_master(DbRow *network, const char *host, const char *device, const char *mac,
                         DbRow *primary, XapiError **err)
{
    DbRow *metrics = db_row_new(cls("PIF_metrics"));
    g_autofree char *metrics_ref = insert_row(metrics, err);
    if (!metrics_ref)
        return NULL;
    DbRow *pif = db_row_new(cls("PIF"));
    g_autofree char *ref = g_strdup(pif->ref);
    db_row_put(pif, "device", S(device));
    db_row_put(pif, "network", S(network->ref));
    db_row_put(pif, "host", S(host));
    db_row_put(pif, "MAC", S(mac));
    db_row_put(pif, "MTU", xv_new_int(-1));
    db_row_put(pif, "VLAN", xv_new_int(-1));
    db_row_put(pif, "metrics", S(metrics_ref));
    db_row_put(pif, "physical", xv_new_bool(false));
    db_row_put(pif, "currently_attached", xv_new_bool(false));
    db_row_put(pif, "primary_address_type", S(str_field(primary, "primary_address_type")));
    db_row_put(pif, "properties", xv_dup(db_get(primary, "properties")));
    if (db_insert(pif, err) < 0)
        return NULL;
    return db_lookup(cls("PIF"), ref);
}

char *vlan_bond_bond_create(DbRow *network, GPtrArray *members, DbRow *primary, const char *mac,
                            const char *mode, const Xv *properties, XapiError **err)
{
    const char *host = str_field(primary, "host");
    g_autofree char *device = bond_device_name(host);
    const char *master_mac = *mac ? mac : str_field(primary, "MAC");
    int64_t mtu = db_get(network, "MTU")->i;
    g_autoptr(GPtrArray) attached = g_ptr_array_new();
    for (guint i = 0; i < members->len; i++)
        g_ptr_array_add(attached, GINT_TO_POINTER(
                                      db_get(members->pdata[i], "currently_attached")->b));
    /* The link first: a kernel that refuses it leaves the members alone. */
    g_autoptr(GPtrArray) none = g_ptr_array_new();
    const char *primary_link = str_field(primary, "device");
    if (bond_link_make(device, master_mac, mtu > 0 ? (int)mtu : 1500, mode, properties, none,
                       primary_link, err) < 0)
        return NULL;
    g_autoptr(GPtrArray) links = free_members(members, err);
    if (!links || bond_take_members(device, mode, links, primary_link, err) < 0) {
        g_autoptr(XapiError) ignored = NULL;
        bond_link_del(device, &ignored);
        replug(members, attached);
        return NULL;
    }
    DbRow *master = new_master(network, host, device, master_mac, primary, err);
    DbRow *bond = db_row_new(cls("Bond"));
    char *bond_ref = g_strdup(bond->ref);
    db_row_put(bond, "master", S(master ? master->ref : ""));
    db_row_put(bond, "primary_slave", S(primary->ref));
    db_row_put(bond, "mode", S(mode));
    db_row_put(bond, "properties", xv_dup(properties));
    db_row_put(bond, "links_up", xv_new_int(links_up(links)));
    db_row_put(bond, "auto_update_mac", xv_new_bool(!*mac));
    int rc = master ? db_insert(bond, err) : (db_row_free(bond), -1);
    for (guint i = 0; rc == 0 && i < members->len; i++)
        rc = db_set_by_name(members->pdata[i], "bond_slave_of", S(bond_ref), err);
    if (rc == 0)
        rc = move_ip_configuration(primary, master, err);
    if (rc == 0)
        rc = pif_host_plug(master, err);
    if (rc < 0) {
        g_autoptr(XapiError) ignored = NULL;
        bond_link_del(device, &ignored);
        replug(members, attached);
        g_clear_pointer(&bond_ref, g_free);
    }
    return bond_ref;
}

static GPtrArray *slave_rows(DbRow *bond)
{
    GPtrArray *rows = g_ptr_array_new();
    const Xv *slaves = db_get(bond, "slaves");
    for (guint i = 0; i < xv_len(slaves); i++) {
        DbRow *p = db_lookup(cls("PIF"), xv_str(xv_at(slaves, i)));
        if (p)
            g_ptr_array_add(rows, p);
    }
    return rows;
}

int vlan_bond_bond_destroy(DbRow *bond, XapiError **err)
{
    DbRow *master = db_lookup(cls("PIF"), str_field(bond, "master"));
    DbRow *primary = db_lookup(cls("PIF"), str_field(bond, "primary_slave"));
    g_autoptr(GPtrArray) members = slave_rows(bond);
    bool plugged = master && db_get(master, "currently_attached")->b;
    if (master) {
        if (pif_host_unplug(master, err) < 0 || bond_link_del(str_field(master, "device"), err) < 0)
            return -1;
        if (primary && move_ip_configuration(master, primary, err) < 0)
            return -1;
    }
    for (guint i = 0; i < members->len; i++)
        if (db_set_by_name(members->pdata[i], "bond_slave_of", S("OpaqueRef:NULL"), err) < 0)
            return -1;
    if (db_delete(bond, err) < 0)
        return -1;
    if (master) {
        DbRow *metrics = db_lookup(cls("PIF_metrics"), str_field(master, "metrics"));
        if ((metrics && db_delete(metrics, err) < 0) || db_delete(master, err) < 0)
            return -1;
    }
    /* The members come back on their own networks' bridges. */
    for (guint i = 0; plugged && i < members->len; i++)
        if (pif_host_plug(members->pdata[i], err) < 0)
            return -1;
    return 0;
}

/* The members' links, in the Bond's order, and the primary slave's. */
static GPtrArray *member_links(DbRow *bond, const char **primary_link)
{
    g_autoptr(GPtrArray) members = slave_rows(bond);
    GPtrArray *links = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < members->len; i++)
        g_ptr_array_add(links, g_strdup(str_field(members->pdata[i], "device")));
    DbRow *primary = db_lookup(cls("PIF"), str_field(bond, "primary_slave"));
    *primary_link = primary ? str_field(primary, "device") : "";
    return links;
}

int vlan_bond_bond_reconfigure(DbRow *bond, XapiError **err)
{
    DbRow *master = db_lookup(cls("PIF"), str_field(bond, "master"));
    if (!master)
        return xapi_error_internal(err, "bond %s has no master", bond->ref);
    const char *primary_link;
    g_autoptr(GPtrArray) links = member_links(bond, &primary_link);
    const char *device = str_field(master, "device");
    bool plugged = db_get(master, "currently_attached")->b;
    DbRow *net = db_lookup(cls("network"), str_field(master, "network"));
    int64_t mtu = net ? db_get(net, "MTU")->i : 1500;
    /* A kernel without bonding cannot do the new mode: refused before the
     * bond's link goes. */
    if (bondbpf_exists(device) && bondbpf_check_mode(str_field(bond, "mode"), err) < 0)
        return -1;
    /* A bond's mode changes only without members: the link is made anew. */
    if ((plugged && pif_host_unplug(master, err) < 0) || bond_link_del(device, err) < 0 ||
        bond_link_make(device, str_field(master, "MAC"), mtu > 0 ? (int)mtu : 1500,
                       str_field(bond, "mode"), db_get(bond, "properties"), links, primary_link,
                       err) < 0)
        return -1;
    return plugged ? pif_host_plug(master, err) : 0;
}

int vlan_bond_bond_resume(DbRow *bond, const char *host, XapiError **err)
{
    DbRow *master = db_lookup(cls("PIF"), str_field(bond, "master"));
    const char *device = master ? str_field(master, "device") : "";
    if (!master || strcmp(str_field(master, "host"), host) != 0 || !bondbpf_exists(device))
        return 0;
    const char *primary_link;
    g_autoptr(GPtrArray) links = member_links(bond, &primary_link);
    return bondbpf_set_members(device, str_field(bond, "mode"), links, primary_link, err);
}

typedef struct {
    const char *host;
    GPtrArray *bonds, *free_links;
} Sweep;

static bool sweep_pif(DbRow *pif, void *ctx)
{
    Sweep *w = ctx;
    if (strcmp(str_field(pif, "host"), w->host) != 0 || db_get(pif, "VLAN")->i >= 0)
        return true;
    const char *device = str_field(pif, "device");
    if (xv_len(db_get(pif, "bond_master_of")))
        g_ptr_array_add(w->bonds, (char *)device);
    else if (!db_lookup(cls("Bond"), str_field(pif, "bond_slave_of")))
        g_ptr_array_add(w->free_links, (char *)device);
    return true;
}

void vlan_bond_sweep(const char *host)
{
    Sweep w = {host, g_ptr_array_new(), g_ptr_array_new()};
    db_foreach(cls("PIF"), sweep_pif, &w);
    bondbpf_sweep(w.bonds, w.free_links);
    g_ptr_array_unref(w.bonds);
    g_ptr_array_unref(w.free_links);
}
