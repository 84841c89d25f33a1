/* nft_rules.c: the rules of locked, disabled and rate-limited guest taps
 * in xapid's nftables table, through libnftables (the commands are built
 * from parsed numbers and checked names, never from a caller's text).
 * What a locked VIF may send is XAPI's (xenopsd's setup-vif-rules): its
 * own MAC only; DHCP requests; ARP and IPv4 from ipv4_allowed; IPv6 from
 * ipv6_allowed, with router advertisements and redirects dropped as XAPI
 * does on Open vSwitch; nothing else. Traffic to the guest is not
 * filtered, except for a disabled VIF, which gets nothing. */
#include "nft_rules.h"

#include <nftables/libnftables.h>
#include <string.h>
#include <sys/socket.h>

#include "host_net.h"
#include "macvtap.h"

#define T "bridge " NFT_RULES_TABLE
/* Guest macvtaps: a chain on each one's own egress (what the guest sends)
 * and, disabled, ingress (what it is sent) hooks; no bridge sees them. */
#define TN "netdev " NFT_RULES_TABLE

static GMutex lock;
static struct nft_ctx *ctx;
static bool probed, usable, base_ready;
static char *unusable_why;
static GHashTable *ruled; /* taps that have rules now */
static GHashTable *mv_ruled; /* macvtaps that have chains now */

bool nft_rules_tap_ok(const char *tap)
{
    if (!hostnet_valid_name(tap) || !g_ascii_isalpha(tap[0]))
        return false;
    for (const char *c = tap; *c; c++)
        if (!g_ascii_isalnum(*c) && *c != '.')
            return false;
    return true;
}

/* The policy needs rules (locked, disabled, or a rate). */
static bool nft_rules_needed(const VifPolicy *p)
{
    return p && (p->mode != VIF_LOCK_UNLOCKED || p->rate > 0);
}

/* A disabled tap is also kept off its bridge, which needs no rules. */
static bool requires_nft(const VifPolicy *p)
{
    return p && (p->mode == VIF_LOCK_LOCKED || p->rate > 0);
}

/* '.' is not allowed in a chain name; taps have no '_', so this is 1:1. */
static char *chain_name(const char *tap)
{
    g_autofree char *name = g_strdup_printf("vif_%s", tap);
    g_strdelimit(name, ".", '_');
    return g_steal_pointer(&name);
}

static char *mac_text(const guint8 m[6])
{
    return g_strdup_printf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static void add_rule(GString *out, const char *table, const char *chain, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);
static void add_rule(GString *out, const char *table, const char *chain, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *rule = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_string_append_printf(out, "add rule %s %s %s\n", table, chain, rule);
}

/* What the guest may send, in chain of table (a bridge's or a macvtap's). */
static void chain_rules(GString *out, const char *table, const char *chain, const VifPolicy *p)
{
    if (p->rate > 0)
        add_rule(out, table, chain, "limit rate over %" G_GINT64_FORMAT " bytes/second burst %"
                 G_GINT64_FORMAT " bytes counter drop", p->rate, p->burst);
    if (p->mode == VIF_LOCK_DISABLED) {
        add_rule(out, table, chain, "counter drop");
        return;
    }
    if (p->mode != VIF_LOCK_LOCKED)
        return; /* rate only: the rest passes */
    g_autofree char *mac = mac_text(p->mac);
    add_rule(out, table, chain, "ether saddr != %s counter drop", mac);
    add_rule(out, table, chain, "ip protocol udp udp dport 67 accept");
    for (guint i = 0; i < p->ipv4->len; i++) {
        g_autofree char *a = vif_addr_text(&g_array_index(p->ipv4, VifAddr, i));
        add_rule(out, table, chain, "arp saddr ether %s arp saddr ip %s accept", mac, a);
        add_rule(out, table, chain, "ip saddr %s accept", a);
    }
    if (p->ipv6->len)
        add_rule(out, table, chain, "icmpv6 type { nd-router-advert, nd-redirect, 146, 147, 151, "
                             "152, 153 } drop");
    for (guint i = 0; i < p->ipv6->len; i++) {
        g_autofree char *a = vif_addr_text(&g_array_index(p->ipv6, VifAddr, i));
        add_rule(out, table, chain, "ip6 saddr %s accept", a);
    }
    add_rule(out, table, chain, "counter drop");
}

/* Commands for one tap, on a table whose base exists. */
static void tap_commands(GString *out, const char *tap, const VifPolicy *p)
{
    g_autofree char *chain = chain_name(tap);
    /* Adding what may be absent first makes each delete valid in one
     * transaction, whatever the tap had before. */
    g_string_append_printf(out, "add chain " T " %s\n", chain);
    g_string_append_printf(out, "add element " T " from_vif { \"%s\" : jump %s }\n", tap, chain);
    g_string_append_printf(out, "add element " T " to_vif { \"%s\" : drop }\n", tap);
    if (!nft_rules_needed(p)) {
        g_string_append_printf(out, "delete element " T " from_vif { \"%s\" }\n", tap);
        g_string_append_printf(out, "delete element " T " to_vif { \"%s\" }\n", tap);
        g_string_append_printf(out, "flush chain " T " %s\n", chain);
        g_string_append_printf(out, "delete chain " T " %s\n", chain);
        return;
    }
    if (p->mode != VIF_LOCK_DISABLED)
        g_string_append_printf(out, "delete element " T " to_vif { \"%s\" }\n", tap);
    g_string_append_printf(out, "flush chain " T " %s\n", chain);
    chain_rules(out, T, chain, p);
}

static void mv_chain_names(const char *tap, char **out_chain, char **in_chain)
{
    g_autofree char *chain = chain_name(tap);
    *out_chain = g_strdup_printf("%s_out", chain);
    *in_chain = g_strdup_printf("%s_in", chain);
}

/* Removes a macvtap's chains, which outlive their device (lock held). */
static void mv_removal(GString *out, const char *tap)
{
    g_autofree char *o = NULL, *in = NULL;
    mv_chain_names(tap, &o, &in);
    g_string_append_printf(out, "flush chain " TN " %s\ndelete chain " TN " %s\n", o, o);
    g_string_append_printf(out, "flush chain " TN " %s\ndelete chain " TN " %s\n", in, in);
}

/* A macvtap's chains as p wants them (p needs rules; the device exists). */
static void mv_commands(GString *out, const char *tap, const VifPolicy *p)
{
    g_autofree char *o = NULL, *in = NULL;
    mv_chain_names(tap, &o, &in);
    g_string_append(out, "add table " TN "\n");
    g_string_append_printf(out, "add chain " TN " %s { type filter hook egress device \"%s\" "
                           "priority -200; policy accept; }\nflush chain " TN " %s\n",
                           o, tap, o);
    g_string_append_printf(out, "add chain " TN " %s { type filter hook ingress device \"%s\" "
                           "priority -200; policy accept; }\nflush chain " TN " %s\n",
                           in, tap, in);
    chain_rules(out, TN, o, p);
    if (p->mode == VIF_LOCK_DISABLED)
        add_rule(out, TN, in, "counter drop");
}

static const char BASE[] =
    "add table " T "\n"
    "delete table " T "\n"
    "table " T " {\n"
    "  map from_vif { type ifname : verdict; }\n"
    "  map to_vif { type ifname : verdict; }\n"
    "  chain prerouting { type filter hook prerouting priority -200; policy accept;\n"
    "    iifname vmap @from_vif; }\n"
    "  chain forward { type filter hook forward priority -200; policy accept;\n"
    "    oifname vmap @to_vif; }\n"
    "  chain output { type filter hook output priority -200; policy accept;\n"
    "    oifname vmap @to_vif; }\n"
    "}\n";

char *nft_rules_tap_commands(const char *tap, const VifPolicy *p)
{
    GString *out = g_string_new(NULL);
    tap_commands(out, tap, p);
    return g_string_free(out, FALSE);
}

/* The commands that replace the whole table by one holding these taps'
 * rules. */
static char *table_commands(GPtrArray *taps, GPtrArray *policies)
{
    GString *out = g_string_new(BASE);
    for (guint i = 0; i < taps->len; i++)
        if (nft_rules_needed(policies->pdata[i]) && !macvtap_is(taps->pdata[i]))
            tap_commands(out, taps->pdata[i], policies->pdata[i]);
    return g_string_free(out, FALSE);
}

/* ---- libnftables ------------------------------------------------------------- */

/* lock held. */
static int run(const char *commands, XapiError **err)
{
    nft_ctx_buffer_output(ctx);
    nft_ctx_buffer_error(ctx);
    int rc = nft_run_cmd_from_buffer(ctx, commands);
    const char *why = nft_ctx_get_error_buffer(ctx);
    g_autofree char *text = g_strstrip(g_strdup(why ? why : ""));
    nft_ctx_unbuffer_output(ctx);
    nft_ctx_unbuffer_error(ctx);
    if (rc != 0)
        return xapi_error_internal(err, "nftables: %s", *text ? text : "failed");
    return 0;
}

/* lock held. */
static void probe(void)
{
    if (probed)
        return;
    probed = true;
    ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!ctx) {
        unusable_why = g_strdup("libnftables cannot start");
        return;
    }
    g_autoptr(XapiError) err = NULL;
    nft_ctx_set_dry_run(ctx, true);
    int rc = run(BASE, &err);
    nft_ctx_set_dry_run(ctx, false);
    usable = rc == 0;
    if (!usable)
        unusable_why = g_strdup(err && err->params->len ? (char *)err->params->pdata[0]
                                                         : "nftables refused the table");
    ruled = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    mv_ruled = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}

/* lock held. */
static int refuse(const VifPolicy *p, XapiError **err)
{
    g_autofree char *why = g_strdup_printf("this host cannot enforce it (nftables: %s)",
                                           unusable_why);
    if (p->mode != VIF_LOCK_UNLOCKED)
        return xapi_error_set(err, "VALUE_NOT_SUPPORTED", "locking_mode",
                              p->mode == VIF_LOCK_LOCKED ? "locked" : "disabled", why, NULL);
    return xapi_error_set(err, "VALUE_NOT_SUPPORTED", "qos_algorithm_type", "ratelimit", why,
                          NULL);
}

int nft_rules_check(const VifPolicy *p, XapiError **err)
{
    g_mutex_lock(&lock);
    probe();
    int rc = !usable && requires_nft(p) ? refuse(p, err) : 0;
    g_mutex_unlock(&lock);
    return rc;
}

/* lock held: the commands, with the base table first if this process has
 * not made it yet. */
static int apply(const char *tap, const VifPolicy *p, XapiError **err)
{
    GString *cmds = g_string_new(base_ready ? NULL : BASE);
    tap_commands(cmds, tap, p);
    int rc = run(cmds->str, err);
    g_string_free(cmds, TRUE);
    if (rc < 0)
        return -1;
    base_ready = true;
    if (nft_rules_needed(p))
        g_hash_table_add(ruled, g_strdup(tap));
    else
        g_hash_table_remove(ruled, tap);
    return 0;
}

int nft_rules_set(const char *tap, const VifPolicy *p, XapiError **err)
{
    if (!nft_rules_tap_ok(tap))
        return xapi_error_internal(err, "no rules for a link named %s", tap);
    g_mutex_lock(&lock);
    probe();
    int rc = 0;
    if (!usable && requires_nft(p))
        rc = refuse(p, err);
    else if (usable && (nft_rules_needed(p) || g_hash_table_contains(ruled, tap)))
        rc = apply(tap, p, err);
    g_mutex_unlock(&lock);
    return rc;
}

void nft_rules_gc(void)
{
    g_mutex_lock(&lock);
    probe();
    g_autoptr(GPtrArray) gone = g_ptr_array_new_with_free_func(g_free);
    GHashTableIter it;
    gpointer key;
    if (usable) {
        g_hash_table_iter_init(&it, ruled);
        while (g_hash_table_iter_next(&it, &key, NULL))
            if (!hostnet_link_exists(key))
                g_ptr_array_add(gone, g_strdup(key));
    }
    for (guint i = 0; i < gone->len; i++) {
        g_autoptr(XapiError) err = NULL;
        if (apply(gone->pdata[i], NULL, &err) < 0)
            g_warning("cannot remove the rules of %s: %s", (char *)gone->pdata[i],
                      err->params->len ? (char *)err->params->pdata[0] : err->code);
    }
    g_ptr_array_set_size(gone, 0);
    if (usable) {
        g_hash_table_iter_init(&it, mv_ruled);
        while (g_hash_table_iter_next(&it, &key, NULL))
            if (!hostnet_link_exists(key))
                g_ptr_array_add(gone, g_strdup(key));
    }
    for (guint i = 0; i < gone->len; i++) {
        GString *cmds = g_string_new(NULL);
        mv_removal(cmds, gone->pdata[i]);
        g_autoptr(XapiError) err = NULL;
        if (run(cmds->str, &err) < 0)
            g_warning("cannot remove the rules of %s", (char *)gone->pdata[i]);
        g_string_free(cmds, TRUE);
        g_hash_table_remove(mv_ruled, gone->pdata[i]);
    }
    g_mutex_unlock(&lock);
}

int nft_rules_set_macvtap(const char *tap, const VifPolicy *p, XapiError **err)
{
    if (!nft_rules_tap_ok(tap))
        return xapi_error_internal(err, "no rules for a link named %s", tap);
    g_mutex_lock(&lock);
    probe();
    int rc = 0;
    bool had = usable && g_hash_table_contains(mv_ruled, tap);
    if (!usable && nft_rules_needed(p)) {
        rc = refuse(p, err);
    } else if (usable && (nft_rules_needed(p) || had)) {
        GString *cmds = g_string_new(NULL);
        if (had)
            mv_removal(cmds, tap);
        if (nft_rules_needed(p))
            mv_commands(cmds, tap, p);
        rc = run(cmds->str, err);
        g_string_free(cmds, TRUE);
        if (rc == 0 && nft_rules_needed(p))
            g_hash_table_add(mv_ruled, g_strdup(tap));
        else if (rc == 0)
            g_hash_table_remove(mv_ruled, tap);
    }
    g_mutex_unlock(&lock);
    return rc;
}

/* The netdev table becomes exactly the chains of these taps that are
 * macvtaps (lock held). */
static int restore_macvtaps(GPtrArray *taps, GPtrArray *policies, XapiError **err)
{
    g_autoptr(XapiError) absent = NULL;
    bool exists = run("list table " TN "\n", &absent) == 0;
    GString *cmds = g_string_new("add table " TN "\ndelete table " TN "\n");
    bool needed = false;
    for (guint i = 0; i < taps->len; i++) {
        if (nft_rules_needed(policies->pdata[i]) && macvtap_is(taps->pdata[i])) {
            mv_commands(cmds, taps->pdata[i], policies->pdata[i]);
            needed = true;
        }
    }
    int rc = needed || exists ? run(cmds->str, err) : 0;
    g_string_free(cmds, TRUE);
    if (rc < 0)
        return -1;
    g_hash_table_remove_all(mv_ruled);
    for (guint i = 0; i < taps->len; i++)
        if (nft_rules_needed(policies->pdata[i]) && macvtap_is(taps->pdata[i]))
            g_hash_table_add(mv_ruled, g_strdup(taps->pdata[i]));
    return 0;
}

int nft_rules_restore(GPtrArray *taps, GPtrArray *policies, XapiError **err)
{
    g_mutex_lock(&lock);
    probe();
    bool needed = false;
    for (guint i = 0; i < taps->len; i++)
        needed = needed || nft_rules_needed(policies->pdata[i]);
    int rc = 0;
    if (!usable) {
        g_mutex_unlock(&lock);
        return 0; /* nothing can be enforced; locked VIFs cannot start */
    }
    if (restore_macvtaps(taps, policies, err) < 0) {
        g_mutex_unlock(&lock);
        return -1;
    }
    g_autoptr(XapiError) absent = NULL;
    bool exists = run("list table " T "\n", &absent) == 0;
    if (needed || exists) {
        g_autofree char *cmds = table_commands(taps, policies);
        rc = run(cmds, err);
        if (rc == 0) {
            base_ready = true;
            g_hash_table_remove_all(ruled);
            for (guint i = 0; i < taps->len; i++)
                if (nft_rules_needed(policies->pdata[i]))
                    g_hash_table_add(ruled, g_strdup(taps->pdata[i]));
        }
    }
    g_mutex_unlock(&lock);
    return rc;
}

int nft_rules_run_table(const char *commands, XapiError **err)
{
    g_mutex_lock(&lock);
    probe();
    int rc = ctx ? run(commands, err) : xapi_error_internal(err, "libnftables cannot start");
    g_mutex_unlock(&lock);
    return rc;
}
