/* nat.c: a routed network behind the host (network.create with
 * other_config:xapid-nat=true): its bridge is the guests' gateway, dnsmasq
 * leases them addresses, and nftables masquerades what they send out. */
#include "nat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "host_links.h"
#include "host_net.h"
#include "nft_rules.h"

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

/* ---- the record -------------------------------------------------------------- */

static char *find_dnsmasq(void)
{
    char *path = g_find_program_in_path("dnsmasq");
    if (!path && g_file_test("/usr/sbin/dnsmasq", G_FILE_TEST_IS_EXECUTABLE))
        path = g_strdup("/usr/sbin/dnsmasq");
    return path;
}

bool nat_parse_subnet(const char *text, NatSubnet *out)
{
    g_auto(GStrv) parts = g_strsplit(text, "/", 2);
    struct in_addr a;
    char *end = NULL;
    if (!parts[0] || !parts[1] || inet_pton(AF_INET, parts[0], &a) != 1)
        return false;
    long prefix = strtol(parts[1], &end, 10);
    if (!*parts[1] || *end || prefix < 8 || prefix > 29)
        return false;
    uint32_t mask = 0xffffffffu << (32 - prefix);
    out->network = ntohl(a.s_addr) & mask;
    out->prefix = (int)prefix;
    return true;
}

static char *dotted(uint32_t host_order)
{
    struct in_addr a = {htonl(host_order)};
    char buf[INET_ADDRSTRLEN];
    return g_strdup(inet_ntop(AF_INET, &a, buf, sizeof buf));
}

char *nat_subnet_text(const NatSubnet *s)
{
    g_autofree char *net = dotted(s->network);
    return g_strdup_printf("%s/%d", net, s->prefix);
}

typedef struct {
    GHashTable *used; /* the third octets of 10.213.x.0/24 taken */
} SubnetSearch;

static bool collect_subnet(DbRow *net, void *ctx)
{
    SubnetSearch *s = ctx;
    const Xv *v = xv_struct_get(db_get(net, "other_config"), NAT_SUBNET_KEY);
    NatSubnet sub;
    if (v && nat_parse_subnet(xv_str(v), &sub) && (sub.network >> 16) == ((10u << 8) | 213u))
        g_hash_table_add(s->used, GUINT_TO_POINTER(((sub.network >> 8) & 0xff) + 1));
    return true;
}

int nat_prepare_record(DbRow *net, XapiError **err)
{
    const Xv *other = db_get(net, "other_config");
    const Xv *v = xv_struct_get(other, NAT_KEY);
    if (!v || strcmp(xv_str(v), "false") == 0)
        return 0;
    if (strcmp(xv_str(v), "true") != 0)
        return xapi_error_set(err, "INVALID_VALUE", "other_config:" NAT_KEY, xv_str(v), NULL);
    g_autofree char *dnsmasq = find_dnsmasq();
    if (!dnsmasq)
        return xapi_error_set(err, "OPERATION_NOT_ALLOWED",
                              "a NAT network needs dnsmasq (Debian's dnsmasq-base), which this "
                              "host lacks",
                              NULL);
    const Xv *given = xv_struct_get(other, NAT_SUBNET_KEY);
    NatSubnet sub = {0, 24};
    if (given && !nat_parse_subnet(xv_str(given), &sub))
        return xapi_error_set(err, "INVALID_VALUE", "other_config:" NAT_SUBNET_KEY,
                              xv_str(given), NULL);
    if (!given) { /* the first free 10.213.N.0/24 */
        SubnetSearch s = {g_hash_table_new(NULL, NULL)};
        db_foreach(cls("network"), collect_subnet, &s);
        guint n = 0;
        while (n < 256 && g_hash_table_contains(s.used, GUINT_TO_POINTER(n + 1)))
            n++;
        g_hash_table_unref(s.used);
        if (n == 256)
            return xapi_error_set(err, "INVALID_VALUE", "other_config:" NAT_SUBNET_KEY, "",
                                  NULL);
        sub.network = (10u << 24) | (213u << 16) | (n << 8);
    }
    g_autofree char *text = nat_subnet_text(&sub);
    Xv *updated = xv_dup(other);
    xv_struct_set_string(updated, NAT_SUBNET_KEY, text);
    db_row_put(net, "other_config", updated);
    return 0;
}

char *nat_subnet_of(const DbRow *net)
{
    const Xv *other = db_get(net, "other_config");
    const Xv *v = xv_struct_get(other, NAT_KEY);
    const Xv *sub = xv_struct_get(other, NAT_SUBNET_KEY);
    if (!v || strcmp(xv_str(v), "true") != 0 || !sub)
        return NULL;
    return g_strdup(xv_str(sub));
}

/* ---- the host side ----------------------------------------------------------- */

/* Per network namespace: bridges of one name may live in several. */
static char *run_file(const char *bridge, const char *what)
{
    GStatBuf st;
    guint64 ns = g_stat("/proc/self/ns/net", &st) == 0 ? (guint64)st.st_ino : 0;
    return g_strdup_printf("/run/xapid-dnsmasq-%" G_GUINT64_FORMAT "-%s.%s", ns, bridge, what);
}

static void stop_dnsmasq(const char *bridge)
{
    g_autofree char *pidfile = run_file(bridge, "pid");
    g_autofree char *leases = run_file(bridge, "leases");
    g_autofree char *text = NULL;
    if (g_file_get_contents(pidfile, &text, NULL, NULL)) {
        long pid = strtol(text, NULL, 10);
        /* Only a dnsmasq: a stale file may name someone else by now. */
        g_autofree char *comm_path = g_strdup_printf("/proc/%ld/comm", pid);
        g_autofree char *comm = NULL;
        if (pid > 1 && g_file_get_contents(comm_path, &comm, NULL, NULL) &&
            strcmp(g_strstrip(comm), "dnsmasq") == 0)
            kill((pid_t)pid, SIGTERM);
    }
    g_unlink(pidfile);
    g_unlink(leases);
}

static char *table_commands(const char *bridge, const NatSubnet *s, bool up)
{
    g_autofree char *net = nat_subnet_text(s);
    if (!up)
        return g_strdup_printf("delete table ip xapid-nat-%s\n", bridge);
    return g_strdup_printf("add table ip xapid-nat-%s\n"
                           "flush table ip xapid-nat-%s\n"
                           "add chain ip xapid-nat-%s post { type nat hook postrouting "
                           "priority srcnat; policy accept; }\n"
                           "add rule ip xapid-nat-%s post ip saddr %s oifname != \"%s\" "
                           "masquerade\n",
                           bridge, bridge, bridge, bridge, net, bridge);
}

static int start_dnsmasq(const char *bridge, const NatSubnet *s, XapiError **err)
{
    g_autofree char *dnsmasq = find_dnsmasq();
    if (!dnsmasq)
        return xapi_error_set(err, "OPERATION_NOT_ALLOWED",
                              "a NAT network needs dnsmasq (Debian's dnsmasq-base)", NULL);
    uint32_t size = 1u << (32 - s->prefix);
    g_autofree char *gw = dotted(s->network + 1);
    g_autofree char *first = dotted(s->network + (size > 16 ? 10 : 2));
    g_autofree char *last = dotted(s->network + size - 2);
    g_autofree char *mask = dotted(0xffffffffu << (32 - s->prefix));
    g_autofree char *pidfile = run_file(bridge, "pid");
    g_autofree char *leases = run_file(bridge, "leases");
    g_autofree char *a_iface = g_strdup_printf("--interface=%s", bridge);
    g_autofree char *a_range = g_strdup_printf("--dhcp-range=%s,%s,%s,1h", first, last, mask);
    g_autofree char *a_router = g_strdup_printf("--dhcp-option=option:router,%s", gw);
    g_autofree char *a_pid = g_strdup_printf("--pid-file=%s", pidfile);
    g_autofree char *a_leases = g_strdup_printf("--dhcp-leasefile=%s", leases);
    /* DHCP only (no DNS: --port=0), on the bridge alone, no host config. */
    const char *argv[] = {dnsmasq, "--conf-file=/dev/null", "--port=0", "--bind-interfaces",
                          a_iface, "--except-interface=lo", a_range, a_router, a_pid, a_leases,
                          "--dhcp-authoritative", "--user=nobody", "--group=nogroup", NULL};
    int status = 0;
    g_autofree char *errout = NULL;
    g_autoptr(GError) gerr = NULL;
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                      &errout, &status, &gerr) ||
        !g_spawn_check_wait_status(status, NULL))
        return xapi_error_internal(err, "dnsmasq on %s: %s", bridge,
                                   gerr ? gerr->message : g_strstrip(errout ? errout : ""));
    return 0;
}

/* Routing between the bridge and the host's other links (per network
 * namespace). A proc file takes a plain write, not a rename. */
static int enable_forwarding(XapiError **err)
{
    FILE *f = fopen("/proc/sys/net/ipv4/ip_forward", "w");
    bool done = f && fputs("1\n", f) >= 0;
    int saved = errno;
    if (f && fclose(f) != 0)
        done = false;
    if (!done)
        return xapi_error_internal(err, "cannot enable IPv4 forwarding: %s", g_strerror(saved));
    return 0;
}

int nat_up(const char *bridge, const char *subnet, XapiError **err)
{
    NatSubnet s;
    if (!nat_parse_subnet(subnet, &s))
        return xapi_error_set(err, "INVALID_VALUE", "other_config:" NAT_SUBNET_KEY, subnet,
                              NULL);
    g_autofree char *gw = dotted(s.network + 1);
    g_autofree char *rules = table_commands(bridge, &s, true);
    stop_dnsmasq(bridge); /* one left by an xapid that was killed */
    if (hostlinks_set_ipv4(bridge, gw, s.prefix, err) < 0)
        return -1;
    if (enable_forwarding(err) < 0)
        return -1;
    if (nft_rules_run_table(rules, err) < 0 || start_dnsmasq(bridge, &s, err) < 0) {
        nat_down(bridge);
        return -1;
    }
    return 0;
}

void nat_down(const char *bridge)
{
    stop_dnsmasq(bridge);
    NatSubnet none = {0, 24};
    g_autofree char *rules = table_commands(bridge, &none, false);
    g_autoptr(XapiError) ignored = NULL;
    nft_rules_run_table(rules, &ignored); /* absent is fine */
}
