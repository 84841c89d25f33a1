/* host_links.c: VLAN and bonding links, ports, IPv4 addresses and the
 * default route through rtnetlink messages built here (no shell, no
 * command line: names are checked and copied into attributes). */
#include "host_links.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "host_net.h"
#include "rtnl.h"
#include "vlan_bpf.h"

static int check_name(const char *name, XapiError **err)
{
    if (!hostnet_valid_name(name))
        return xapi_error_set(err, "INVALID_VALUE", "device", name ? name : "", NULL);
    return 0;
}

static int link_index(const char *name, XapiError **err)
{
    if (check_name(name, err) < 0)
        return -1;
    unsigned index = if_nametoindex(name);
    if (!index)
        return xapi_error_internal(err, "no link %s", name);
    return (int)index;
}

static int failed(int rc, const char *what, const char *name, XapiError **err)
{
    return xapi_error_internal(err, "%s %s: %s", what, name, g_strerror(-rc));
}

/* RTM_NEWLINK for a new link of kind with its IFLA_INFO_DATA written by
 * data(); a kernel that lacks the kind answers EOPNOTSUPP. */
static int new_link(const char *name, const char *kind, int parent, int mtu, const char *mac,
                    void (*data)(NlMsg *, const void *), const void *ctx, const char *feature,
                    bool *unsupported, XapiError **err)
{
    if (check_name(name, err) < 0)
        return -1;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    NlMsg m;
    nl_init(&m, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
    nl_str(&m, IFLA_IFNAME, name);
    if (parent > 0)
        nl_u32(&m, IFLA_LINK, (uint32_t)parent);
    if (mtu > 0)
        nl_u32(&m, IFLA_MTU, (uint32_t)mtu);
    if (mac) {
        unsigned char addr[6];
        if (sscanf(mac, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &addr[0], &addr[1], &addr[2], &addr[3],
                   &addr[4], &addr[5]) != 6)
            return xapi_error_set(err, "MAC_INVALID", mac, NULL);
        nl_attr(&m, IFLA_ADDRESS, addr, sizeof addr);
    }
    struct rtattr *info = nl_nest(&m, IFLA_LINKINFO);
    nl_str(&m, IFLA_INFO_KIND, kind);
    struct rtattr *d = nl_nest(&m, IFLA_INFO_DATA);
    data(&m, ctx);
    nl_nest_end(&m, d);
    nl_nest_end(&m, info);
    int rc = nl_talk(&m);
    if (rc == -EOPNOTSUPP && unsupported) {
        *unsupported = true;
        return -1;
    }
    if (rc == -EOPNOTSUPP)
        return xapi_error_set(err, "OPERATION_NOT_ALLOWED", feature, NULL);
    if (rc == -EEXIST)
        return xapi_error_internal(err, "create %s: a link of that name exists", name);
    return rc < 0 ? failed(rc, "create", name, err) : 0;
}

/* ---- macvtap ---------------------------------------------------------------------- */

static void macvtap_data(NlMsg *m, const void *ctx)
{
    (void)ctx;
    nl_u32(m, IFLA_MACVLAN_MODE, MACVLAN_MODE_BRIDGE);
}

int hostlinks_macvtap_add(const char *name, const char *parent, const char *mac, int mtu,
                          XapiError **err)
{
    int index = link_index(parent, err);
    if (index < 0)
        return -1;
    return new_link(name, "macvtap", index, mtu, mac, macvtap_data, NULL,
                    "macvtap needs a kernel with CONFIG_MACVTAP", NULL, err);
}

/* ---- VLANs ----------------------------------------------------------------------- */

char *hostlinks_vlan_name(const char *parent, int tag)
{
    char *name = g_strdup_printf("%s.%d", parent, tag);
    if (!hostnet_valid_name(name))
        g_clear_pointer(&name, g_free);
    return name;
}

static void vlan_data(NlMsg *m, const void *ctx) { nl_u16(m, IFLA_VLAN_ID, *(const uint16_t *)ctx); }

int hostlinks_vlan_add(const char *name, const char *parent, int tag, int mtu, XapiError **err)
{
    int index = link_index(parent, err);
    if (index < 0)
        return -1;
    uint16_t id = (uint16_t)tag;
    bool unsupported = false;
    if (new_link(name, "vlan", index, mtu, NULL, vlan_data, &id, NULL, &unsupported, err) == 0)
        return 0;
    /* Without the kernel's 802.1Q, xapid tags and untags itself. */
    return unsupported ? vlanbpf_add(name, parent, tag, mtu, err) : -1;
}

int hostlinks_vlan_del(const char *name, const char *parent, int tag, XapiError **err)
{
    if (vlanbpf_exists(parent, tag))
        return vlanbpf_del(name, parent, tag, err);
    return hostlinks_del(name, err);
}

bool hostlinks_has_vlan(const char *parent, int tag)
{
    /* "name | VID | parent" lines after two header lines; the file is
     * there only while the kernel's 802.1Q code is present. */
    if (vlanbpf_exists(parent, tag))
        return true;
    g_autofree char *text = NULL;
    if (!g_file_get_contents("/proc/net/vlan/config", &text, NULL, NULL))
        return false;
    return hostlinks_vlan_config_has(text, parent, tag);
}

bool hostlinks_vlan_config_has(const char *text, const char *parent, int tag)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        g_auto(GStrv) col = g_strsplit(*l, "|", 3);
        if (g_strv_length(col) != 3)
            continue;
        g_strstrip(col[1]);
        g_strstrip(col[2]);
        if (strcmp(col[2], parent) == 0 && strtol(col[1], NULL, 10) == tag &&
            g_ascii_isdigit(col[1][0]))
            return true;
    }
    return false;
}

/* ---- bonds ----------------------------------------------------------------------- */

static int bond_mode_number(const char *mode)
{
    static const char *const modes[] = {"balance-rr",  "active-backup", "balance-xor",
                                        "broadcast",   "802.3ad",       "balance-tlb",
                                        "balance-alb"};
    for (unsigned i = 0; i < G_N_ELEMENTS(modes); i++)
        if (strcmp(mode, modes[i]) == 0)
            return (int)i;
    return -1;
}

static void bond_data(NlMsg *m, const void *ctx)
{
    const HostBond *b = ctx;
    int mode = bond_mode_number(b->mode);
    nl_u8(m, IFLA_BOND_MODE, (uint8_t)mode);
    nl_u32(m, IFLA_BOND_MIIMON, 100);
    if (mode == 4) {
        nl_u8(m, IFLA_BOND_XMIT_HASH_POLICY, (uint8_t)b->xmit_hash_policy);
        nl_u8(m, IFLA_BOND_AD_LACP_RATE, b->lacp_fast ? 1 : 0);
        if (b->user_port_key >= 0)
            nl_u16(m, IFLA_BOND_AD_USER_PORT_KEY, (uint16_t)b->user_port_key);
    }
}

int hostlinks_bond_add(const char *name, const HostBond *bond, bool *unsupported,
                       XapiError **err)
{
    if (bond_mode_number(bond->mode) < 0)
        return xapi_error_internal(err, "unknown bonding mode %s", bond->mode);
    return new_link(name, "bond", 0, bond->mtu, bond->mac, bond_data, bond, NULL, unsupported,
                    err);
}

char *hostlinks_bond_mode(const char *name)
{
    if (!hostnet_valid_name(name))
        return g_strdup("");
    g_autofree char *p = g_build_filename("/sys/class/net", name, "bonding", "mode", NULL);
    g_autofree char *text = NULL;
    if (!g_file_get_contents(p, &text, NULL, NULL))
        return g_strdup("");
    char *space = strpbrk(text, " \n");
    return g_strndup(text, space ? (size_t)(space - text) : strlen(text));
}

/* ---- ports and removal ------------------------------------------------------------ */

int hostlinks_set_master(const char *dev, const char *master, XapiError **err)
{
    int index = link_index(dev, err);
    int master_index = master ? link_index(master, err) : 0;
    if (index < 0 || master_index < 0)
        return -1;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = index};
    NlMsg m;
    nl_init(&m, RTM_NEWLINK, 0, &ifi, sizeof ifi);
    nl_u32(&m, IFLA_MASTER, (uint32_t)master_index);
    int rc = nl_talk(&m);
    return rc < 0 ? failed(rc, master ? "add a port to" : "free from its master", master ? master : dev,
                           err)
                  : 0;
}

int hostlinks_del(const char *name, XapiError **err)
{
    if (check_name(name, err) < 0)
        return -1;
    unsigned index = if_nametoindex(name);
    if (!index)
        return 0;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = (int)index};
    NlMsg m;
    nl_init(&m, RTM_DELLINK, 0, &ifi, sizeof ifi);
    int rc = nl_talk(&m);
    return rc < 0 && rc != -ENODEV ? failed(rc, "remove", name, err) : 0;
}

/* ---- IPv4 addresses and the default route ------------------------------------------ */

int hostlinks_prefix_of(const char *netmask)
{
    struct in_addr a;
    if (!netmask || inet_pton(AF_INET, netmask, &a) != 1)
        return -1;
    uint32_t m = ntohl(a.s_addr);
    int prefix = __builtin_popcount(m);
    uint32_t contiguous = prefix ? ~0u << (32 - prefix) : 0;
    return m == contiguous ? prefix : -1;
}

static int addr_msg(int type, int flags, int index, struct in_addr a, int prefix)
{
    struct ifaddrmsg ifa = {.ifa_family = AF_INET, .ifa_prefixlen = (unsigned char)prefix,
                            .ifa_index = (unsigned)index};
    NlMsg m;
    nl_init(&m, type, flags, &ifa, sizeof ifa);
    nl_attr(&m, IFA_LOCAL, &a, sizeof a);
    nl_attr(&m, IFA_ADDRESS, &a, sizeof a);
    if (type == RTM_NEWADDR && prefix < 31) {
        struct in_addr b = {.s_addr = a.s_addr | htonl(prefix ? ~(~0u << (32 - prefix)) : ~0u)};
        nl_attr(&m, IFA_BROADCAST, &b, sizeof b);
    }
    return nl_talk(&m);
}

int hostlinks_set_ipv4(const char *dev, const char *address, int prefix, XapiError **err)
{
    int index = link_index(dev, err);
    if (index < 0)
        return -1;
    struct in_addr want = {0};
    if (address && (inet_pton(AF_INET, address, &want) != 1 || prefix < 0 || prefix > 32))
        return xapi_error_set(err, "INVALID_IP_ADDRESS_SPECIFIED", "IP", NULL);
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) < 0)
        return xapi_error_internal(err, "getifaddrs: %s", g_strerror(errno));
    int rc = 0;
    for (struct ifaddrs *i = ifs; i && rc == 0; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || strcmp(i->ifa_name, dev) != 0)
            continue;
        struct in_addr have = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
        char mask[INET_ADDRSTRLEN] = "";
        if (i->ifa_netmask)
            inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_netmask)->sin_addr, mask,
                      sizeof mask);
        int have_prefix = hostlinks_prefix_of(mask);
        if (address && have.s_addr == want.s_addr && have_prefix == prefix)
            continue;
        rc = addr_msg(RTM_DELADDR, 0, index, have, have_prefix < 0 ? 32 : have_prefix);
        if (rc == -EADDRNOTAVAIL)
            rc = 0; /* a secondary that went with its primary */
    }
    freeifaddrs(ifs);
    if (rc == 0 && address)
        rc = addr_msg(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, index, want, prefix);
    return rc < 0 ? failed(rc, "set the IPv4 address of", dev, err) : 0;
}

void hostlinks_route_clear(HostRoute *r)
{
    g_clear_pointer(&r->dev, g_free);
    g_clear_pointer(&r->gateway, g_free);
}

void hostlinks_default_route(HostRoute *out)
{
    /* Columns: Iface Destination Gateway Flags ... Mask, addresses in
     * hex in the host's byte order. */
    out->dev = out->gateway = NULL;
    g_autofree char *text = NULL;
    if (g_file_get_contents("/proc/net/route", &text, NULL, NULL))
        hostlinks_default_route_in(text, out);
}

void hostlinks_default_route_in(const char *text, HostRoute *out)
{
    out->dev = out->gateway = NULL;
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l && !out->dev; l++) {
        g_auto(GStrv) col = g_strsplit_set(*l, " \t", -1);
        char *c[8] = {0};
        int n = 0;
        for (char **f = col; *f && n < 8; f++)
            if (**f)
                c[n++] = *f;
        if (n < 8 || strcmp(c[1], "00000000") != 0 || strcmp(c[7], "00000000") != 0 ||
            !(g_ascii_strtoull(c[3], NULL, 16) & 0x1 /* RTF_UP */))
            continue;
        struct in_addr gw = {.s_addr = (uint32_t)g_ascii_strtoull(c[2], NULL, 16)};
        char text_gw[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &gw, text_gw, sizeof text_gw);
        out->dev = g_strdup(c[0]);
        out->gateway = g_strdup(gw.s_addr ? text_gw : "");
    }
}

static int route_msg(int type, int flags, int index, const struct in_addr *gw)
{
    /* A deletion leaves protocol, scope and type as wildcards. */
    bool add = type == RTM_NEWROUTE;
    struct rtmsg rt = {.rtm_family = AF_INET, .rtm_table = RT_TABLE_MAIN,
                       .rtm_protocol = add ? RTPROT_BOOT : 0,
                       .rtm_scope = !add ? RT_SCOPE_NOWHERE
                                    : gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK,
                       .rtm_type = add ? RTN_UNICAST : 0};
    NlMsg m;
    nl_init(&m, type, flags, &rt, sizeof rt);
    if (gw)
        nl_attr(&m, RTA_GATEWAY, gw, sizeof *gw);
    if (index > 0)
        nl_u32(&m, RTA_OIF, (uint32_t)index);
    return nl_talk(&m);
}

int hostlinks_set_default_route(const char *dev, const char *gateway, XapiError **err)
{
    struct in_addr gw;
    bool has_gw = gateway && *gateway;
    if (has_gw && inet_pton(AF_INET, gateway, &gw) != 1)
        return xapi_error_set(err, "INVALID_IP_ADDRESS_SPECIFIED", "gateway", NULL);
    int rc;
    while ((rc = route_msg(RTM_DELROUTE, 0, 0, NULL)) == 0) /* each default route */
        ;
    if (!dev)
        return rc == -ESRCH ? 0 : failed(rc, "remove the default route", "", err);
    int index = link_index(dev, err);
    if (index < 0)
        return -1;
    rc = route_msg(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, index, has_gw ? &gw : NULL);
    return rc < 0 ? failed(rc, "set the default route through", dev, err) : 0;
}

bool hostlinks_wait_carrier(const char *dev, int timeout_ms)
{
    if (!hostnet_valid_name(dev))
        return false;
    g_autofree char *p = g_build_filename("/sys/class/net", dev, "carrier", NULL);
    int64_t deadline = g_get_monotonic_time() + (int64_t)timeout_ms * 1000;
    for (;;) {
        g_autofree char *text = NULL;
        if (g_file_get_contents(p, &text, NULL, NULL) && text[0] == '1')
            return true;
        if (g_get_monotonic_time() >= deadline)
            return false;
        g_usleep(20 * 1000);
    }
}
