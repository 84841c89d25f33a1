/* bond_bpf.c: bonds for kernels built without CONFIG_BONDING (see
 * bond_bpf.h): the links, and the watch that replaces the programs
 * (bond_programs.c), with the members' ifindexes as immediates, whenever
 * a member's carrier changes. */
#include "bond_bpf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_bridge.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bond_programs.h"
#include "host_net.h"
#include "rtnl.h"
#include "tc_bpf.h"
#include "vif_policy.h"

#define MAX_MEMBERS BONDPROG_MAX_MEMBERS

/* Our filter's priority on each link's ingress: apart from the 802.1Q
 * programs' (the tag + 1, 1-4095), so that a stray one is known as ours. */
#define PRIO 0xb00d

typedef struct {
    char *name;           /* the bond's link */
    BondProgMode mode;
    GPtrArray *members;   /* char *, the Bond's order */
    char *primary;
    /* What the programs in place were made for: */
    int active;           /* ifindex, 0 for none */
    GArray *programmed;   /* int: hidden, then each member's ifindex and carrier */
    int mtu;
    int sent;             /* balance-slb: the map of MACs sent, or -1 */
} Bond;

static struct {
    GMutex lock;
    GPtrArray *bonds; /* Bond * */
    GThread *thread;
    int events;       /* rtnetlink socket of link changes */
} watch;

static char *hidden_name(const char *name) { return g_strdup_printf("xb-%s", name); }

static int fail(int rc, const char *what, const char *name, XapiError **err)
{
    return xapi_error_internal(err, "%s %s: %s", what, name, g_strerror(-rc));
}

static int attach(int ifindex, int prog)
{
    if (prog < 0)
        return prog;
    int rc = tcbpf_attach(ifindex, PRIO, prog, "xapid-bond");
    close(prog);
    return rc;
}

/* ---- choosing the members ------------------------------------------------------------- */

static bool carrier(const char *link) { return hostnet_sys_int(link, "carrier") == 1; }

/* Linux bonding's choice (primary_reselect=always): the primary with
 * carrier, else the active member while it keeps carrier, else the first
 * member with carrier. */
static int choose_active(const Bond *b, const int *index, const bool *up)
{
    int keep = 0, first = 0;
    for (guint i = 0; i < b->members->len; i++) {
        if (!up[i])
            continue;
        if (strcmp(b->members->pdata[i], b->primary) == 0)
            return index[i];
        if (index[i] == b->active)
            keep = index[i];
        if (!first)
            first = index[i];
    }
    return keep ? keep : first;
}

/* The bond's link MTU onto its hidden end and members (a bond is made
 * with the network's; a later change to the link's own is followed). */
static void follow_mtu(Bond *b)
{
    int mtu = (int)hostnet_sys_int(b->name, "mtu");
    if (mtu <= 0 || mtu == b->mtu)
        return;
    g_autoptr(XapiError) ignored = NULL;
    g_autofree char *h = hidden_name(b->name);
    hostnet_set_mtu(h, mtu, &ignored);
    for (guint i = 0; i < b->members->len; i++)
        hostnet_set_mtu(b->members->pdata[i], mtu, &ignored);
    b->mtu = mtu;
}

static void send_learning_frames(const Bond *b, int member);

/* Puts the programs right for the members' carrier now, if they are not
 * already. Lock held. 0 or -errno. */
static int bond_update(Bond *b)
{
    g_autofree char *h = hidden_name(b->name);
    int hidden = (int)if_nametoindex(h);
    if (!hidden)
        return -ENODEV;
    follow_mtu(b);
    guint n = b->members->len;
    int index[MAX_MEMBERS], up_index[MAX_MEMBERS], n_up = 0;
    bool up[MAX_MEMBERS];
    g_autoptr(GArray) state = g_array_new(FALSE, FALSE, sizeof(int));
    g_array_append_val(state, hidden);
    for (guint i = 0; i < n; i++) {
        index[i] = (int)if_nametoindex(b->members->pdata[i]);
        up[i] = index[i] && carrier(b->members->pdata[i]);
        if (up[i])
            up_index[n_up++] = index[i];
        int c = up[i];
        g_array_append_val(state, index[i]);
        g_array_append_val(state, c);
    }
    int active = choose_active(b, index, up);
    g_array_append_val(state, active);
    if (b->programmed && b->programmed->len == state->len &&
        memcmp(b->programmed->data, state->data, state->len * sizeof(int)) == 0)
        return 0;
    int rc = attach(hidden, bondprog_send(b->mode, b->sent, active, up_index, n_up));
    for (guint i = 0; rc == 0 && i < n; i++)
        if (index[i])
            rc = attach(index[i], bondprog_receive(b->mode, b->sent, index[i] == active, hidden));
    g_clear_pointer(&b->programmed, g_array_unref);
    if (rc < 0)
        return rc;
    if (active && b->active && active != b->active)
        send_learning_frames(b, active);
    for (guint i = 0; active != b->active && i < n; i++)
        if (index[i] == active)
            g_message("bond %s: now through %s", b->name, (char *)b->members->pdata[i]);
    if (!active && b->active)
        g_message("bond %s: no member has carrier", b->name);
    b->active = active;
    b->programmed = g_steal_pointer(&state);
    return 0;
}

/* ---- telling the switch ---------------------------------------------------------------- */

/* After a failover the switch learns where the bridge's MACs are now:
 * one RARP frame from each (what Open vSwitch sends; Linux bonding's
 * gratuitous ARPs cover only the bond's own addresses). The MACs are the
 * bridge's forwarding entries that are not behind the bond. */
static void send_learning_frames(const Bond *b, int member)
{
    g_autofree char *bridge_link = g_build_filename("/sys/class/net", b->name, "master", NULL);
    g_autofree char *bridge_path = g_file_read_link(bridge_link, NULL);
    g_autofree char *bridge = bridge_path ? g_path_get_basename(bridge_path) : NULL;
    g_autofree char *port_path = g_build_filename("/sys/class/net", b->name, "brport", "port_no",
                                                  NULL);
    g_autofree char *port_text = NULL;
    if (!bridge || !hostnet_valid_name(bridge) ||
        !g_file_get_contents(port_path, &port_text, NULL, NULL))
        return;
    unsigned our_port = (unsigned)g_ascii_strtoull(port_text, NULL, 0);
    g_autofree char *fdb_path = g_build_filename("/sys/class/net", bridge, "brforward", NULL);
    g_autofree char *fdb = NULL;
    gsize len = 0;
    int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (s < 0 || !g_file_get_contents(fdb_path, &fdb, &len, NULL)) {
        if (s >= 0)
            close(s);
        return;
    }
    struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_RARP),
                             .sll_ifindex = member, .sll_halen = 6};
    memset(to.sll_addr, 0xff, 6);
    for (gsize off = 0; off + sizeof(struct __fdb_entry) <= len;
         off += sizeof(struct __fdb_entry)) {
        struct __fdb_entry e;
        memcpy(&e, fdb + off, sizeof e);
        unsigned port = e.port_no | (unsigned)e.port_hi << 8;
        if (port == our_port && !e.is_local)
            continue;
        unsigned char f[60] = {0};
        memset(f, 0xff, 6);
        memcpy(f + 6, e.mac_addr, 6);
        f[12] = 0x80, f[13] = 0x35;                 /* RARP */
        f[14] = 0, f[15] = 1, f[16] = 8, f[17] = 0; /* Ethernet, IPv4 */
        f[18] = 6, f[19] = 4, f[20] = 0, f[21] = 3; /* reverse request */
        memcpy(f + 22, e.mac_addr, 6);
        memcpy(f + 32, e.mac_addr, 6);
        sendto(s, f, sizeof f, 0, (struct sockaddr *)&to, sizeof to);
    }
    close(s);
}

/* ---- the watch ------------------------------------------------------------------------ */

/* Told of link changes by rtnetlink, and looking every 100 ms as Linux
 * bonding's miimon does: the kernel's link watch tells of a NIC's carrier
 * up to a second late when its carrier changed shortly before. */
#define MIIMON_MS 100

static gpointer watch_links(gpointer data)
{
    (void)data;
    char buf[16384];
    for (;;) {
        struct pollfd p = {.fd = watch.events, .events = POLLIN};
        g_mutex_lock(&watch.lock);
        int timeout = watch.bonds->len ? MIIMON_MS : -1;
        g_mutex_unlock(&watch.lock);
        int ready = poll(&p, 1, timeout);
        ssize_t n = ready > 0 ? recv(watch.events, buf, sizeof buf, MSG_DONTWAIT) : 0;
        /* ENOBUFS: events were lost; everything is looked at anyway. */
        if (n < 0 && errno != ENOBUFS && errno != EINTR && errno != EAGAIN) {
            g_warning("bonds: the link watch stopped: %s", g_strerror(errno));
            break;
        }
        g_mutex_lock(&watch.lock);
        for (guint i = 0; i < watch.bonds->len; i++) {
            Bond *b = watch.bonds->pdata[i];
            int rc = bond_update(b);
            if (rc < 0 && rc != -ENODEV)
                g_warning("bond %s: programs not replaced: %s", b->name, g_strerror(-rc));
        }
        g_mutex_unlock(&watch.lock);
    }
    return NULL;
}

/* The socket first, so that no change after a bond's first programs is
 * missed. Lock held. */
static int watch_start(void)
{
    if (watch.thread)
        return 0;
    int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    struct sockaddr_nl groups = {.nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK};
    if (s < 0 || bind(s, (struct sockaddr *)&groups, sizeof groups) < 0) {
        int rc = -errno;
        if (s >= 0)
            close(s);
        return rc;
    }
    watch.events = s;
    watch.bonds = g_ptr_array_new();
    watch.thread = g_thread_new("bond-watch", watch_links, NULL);
    return 0;
}

static void bond_free(Bond *b)
{
    if (b->sent >= 0)
        close(b->sent);
    g_free(b->name);
    g_free(b->primary);
    g_ptr_array_unref(b->members);
    if (b->programmed)
        g_array_unref(b->programmed);
    g_free(b);
}

/* Lock held. */
static Bond *find(const char *name, guint *at)
{
    for (guint i = 0; watch.bonds && i < watch.bonds->len; i++) {
        Bond *b = watch.bonds->pdata[i];
        if (strcmp(b->name, name) == 0) {
            if (at)
                *at = i;
            return b;
        }
    }
    return NULL;
}

/* ---- the bond --------------------------------------------------------------------------- */

static int mode_of(const char *mode, BondProgMode *out, XapiError **err)
{
    if (strcmp(mode, "lacp") == 0)
        return xapi_error_set(err, "OPERATION_NOT_ALLOWED",
                              "lacp needs the kernel's bonding (CONFIG_BONDING), which this "
                              "host lacks: xapid's own bonds do active-backup and balance-slb",
                              NULL);
    if (strcmp(mode, "active-backup") != 0 && strcmp(mode, "balance-slb") != 0)
        return xapi_error_set(err, "INVALID_VALUE", "mode", mode, NULL);
    *out = strcmp(mode, "active-backup") == 0 ? BONDPROG_ACTIVE_BACKUP : BONDPROG_BALANCE_SLB;
    return 0;
}

int bondbpf_check_mode(const char *mode, XapiError **err)
{
    BondProgMode m;
    return mode_of(mode, &m, err);
}

/* The own IPv6 stack of a member or of the hidden end is kept quiet (as
 * the kernel keeps a bonding slave's): its router solicitations and
 * neighbour discovery would leave through members that should send
 * nothing. */
static void set_ipv6(const char *link, bool on)
{
    g_autofree char *p = g_build_filename("/proc/sys/net/ipv6/conf", link, "disable_ipv6", NULL);
    int fd = open(p, O_WRONLY | O_CLOEXEC); /* a sysctl: written in place */
    if (fd < 0)
        return; /* a kernel without IPv6 */
    if (write(fd, on ? "0\n" : "1\n", 2) != 2)
        g_warning("%s: %s", p, g_strerror(errno));
    close(fd);
}

int bondbpf_add(const char *name, const char *mode, const char *mac, int mtu, XapiError **err)
{
    BondProgMode m;
    if (mode_of(mode, &m, err) < 0)
        return -1;
    if (!hostnet_valid_name(name) || strlen(name) > 12)
        return xapi_error_set(err, "INVALID_VALUE", "device", name, NULL);
    guint8 addr[6];
    if (mac && !vif_parse_mac(mac, addr))
        return xapi_error_set(err, "MAC_INVALID", mac, NULL);
    g_autofree char *hidden = hidden_name(name);
    int rc = tcbpf_veth_add(name, hidden, mtu > 0 ? mtu : 1500, mac ? addr : NULL);
    if (rc == -EEXIST)
        return xapi_error_internal(err, "create %s: a link of that name exists", name);
    if (rc < 0)
        return fail(rc, "create", name, err);
    set_ipv6(hidden, false);
    int index = (int)if_nametoindex(hidden);
    /* Nothing leaves until there are members. */
    rc = index ? attach(index, bondprog_send(BONDPROG_ACTIVE_BACKUP, -1, 0, NULL, 0)) : -ENODEV;
    if (rc < 0 || hostnet_set_up(hidden, true, err) < 0 || hostnet_set_up(name, true, err) < 0) {
        bondbpf_del(name, NULL);
        return rc < 0 ? fail(rc, "set up the bonding programs of", name, err) : -1;
    }
    return 0;
}

static int member_prepare(const char *link, int mtu, XapiError **err)
{
    int index = (int)if_nametoindex(link);
    if (!index)
        return xapi_error_internal(err, "no link %s", link);
    set_ipv6(link, false);
    int rc = tcbpf_set_promisc(index, true);
    if (rc < 0)
        return fail(rc, "make promiscuous", link, err);
    if (hostnet_set_mtu(link, mtu, err) < 0)
        return -1;
    return hostnet_set_up(link, true, err);
}

static void member_release(const char *link)
{
    int index = (int)if_nametoindex(link);
    if (index) {
        tcbpf_clsact_del(index);
        tcbpf_set_promisc(index, false);
        set_ipv6(link, true);
    }
}

static Bond *bond_new(const char *name, BondProgMode mode, GPtrArray *member_links,
                      const char *primary)
{
    Bond *b = g_new0(Bond, 1);
    b->name = g_strdup(name);
    b->mode = mode;
    b->primary = g_strdup(primary);
    b->members = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < member_links->len; i++)
        g_ptr_array_add(b->members, g_strdup(member_links->pdata[i]));
    b->sent = -1;
    return b;
}

/* Lock held. */
static void forget(const char *name)
{
    guint at;
    Bond *b = find(name, &at);
    if (b) {
        g_ptr_array_remove_index(watch.bonds, at);
        bond_free(b);
    }
}

int bondbpf_set_members(const char *name, const char *mode, GPtrArray *member_links,
                        const char *primary, XapiError **err)
{
    BondProgMode m;
    if (mode_of(mode, &m, err) < 0)
        return -1;
    if (member_links->len > MAX_MEMBERS)
        return xapi_error_set(err, "OPERATION_NOT_ALLOWED",
                              "xapid's own bonds take at most 16 members", NULL);
    g_autoptr(HostLink) l = hostnet_link(name);
    if (!l || !bondbpf_exists(name))
        return xapi_error_internal(err, "no bond link %s", name);
    guint prepared = 0;
    while (prepared < member_links->len &&
           member_prepare(member_links->pdata[prepared], l->mtu, err) == 0)
        prepared++;
    Bond *b = bond_new(name, m, member_links, primary);
    b->mtu = l->mtu;
    int rc = prepared < member_links->len ? -EIO : 0;
    if (rc == 0 && m == BONDPROG_BALANCE_SLB && (b->sent = bondprog_sent_map_new()) < 0)
        rc = fail(b->sent, "make the map of sent MACs of", name, err);
    g_mutex_lock(&watch.lock);
    if (rc == 0 && (rc = watch_start()) < 0)
        fail(rc, "watch the links of", name, err);
    if (rc == 0) {
        forget(name);
        g_ptr_array_add(watch.bonds, b);
        if ((rc = bond_update(b)) < 0) {
            fail(rc, "set up the bonding programs of", name, err);
            g_ptr_array_remove(watch.bonds, b);
        }
    }
    g_mutex_unlock(&watch.lock);
    if (rc < 0) { /* the members as they were */
        for (guint i = 0; i < prepared; i++)
            member_release(member_links->pdata[i]);
        bond_free(b);
        return -1;
    }
    return 0;
}

int bondbpf_del(const char *name, XapiError **err)
{
    g_mutex_lock(&watch.lock);
    Bond *b = find(name, NULL);
    for (guint i = 0; b && i < b->members->len; i++)
        member_release(b->members->pdata[i]);
    forget(name);
    g_mutex_unlock(&watch.lock);
    unsigned index = if_nametoindex(name);
    int rc = index ? tcbpf_link_del((int)index) : 0; /* the hidden end goes with it */
    if (rc < 0)
        return err ? fail(rc, "remove", name, err) : -1;
    return 0;
}

bool bondbpf_exists(const char *name)
{
    if (!hostnet_valid_name(name) || strlen(name) > 12)
        return false;
    g_autofree char *hidden = hidden_name(name);
    return hostnet_link_exists(hidden);
}

void bondbpf_sweep(GPtrArray *bonds, GPtrArray *free_links)
{
    g_autoptr(GDir) dir = g_dir_open("/sys/class/net", 0, NULL);
    for (const char *n = dir ? g_dir_read_name(dir) : NULL; n; n = g_dir_read_name(dir)) {
        if (!g_str_has_prefix(n, "xb-"))
            continue;
        bool used = false;
        for (guint i = 0; i < bonds->len && !used; i++)
            used = strcmp(n + 3, bonds->pdata[i]) == 0;
        unsigned index = used ? 0 : if_nametoindex(n);
        if (index) {
            g_message("bond %s: made by a run that stopped before recording it: removed", n + 3);
            tcbpf_link_del((int)index); /* the bond's link goes with it */
        }
    }
    for (guint i = 0; i < free_links->len; i++) {
        unsigned index = if_nametoindex(free_links->pdata[i]);
        if (index)
            tcbpf_detach((int)index, PRIO);
    }
}
