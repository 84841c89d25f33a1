/* vif_policy_test.c: MACs, addresses and QoS parameters parsed as XAPI
 * reads them, and the nftables commands a policy becomes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>
#include <sys/socket.h>

#include "nft_rules.h"
#include "vif_policy.h"

static void test_mac(void **state)
{
    guint8 m[6];
    assert_true(vif_parse_mac("AA:bb:0c:00:11:22", m));
    assert_int_equal(m[0], 0xaa);
    assert_int_equal(m[5], 0x22);
    assert_false(vif_parse_mac("aa:bb:cc:dd:ee", m));
    assert_false(vif_parse_mac("aa:bb:cc:dd:ee:fg", m));
    assert_false(vif_parse_mac("aa-bb-cc-dd-ee-ff", m));
    assert_false(vif_parse_mac("aa:bb:cc:dd:ee:ff;drop", m));
}

static char *text(int family, const char *in)
{
    VifAddr a;
    return vif_parse_addr(family, in, &a) ? vif_addr_text(&a) : NULL;
}

static void test_addresses(void **state)
{
    g_autofree char *a = text(AF_INET, "10.0.0.2");
    g_autofree char *b = text(AF_INET, "10.1.2.3/16");
    g_autofree char *c = text(AF_INET6, "2001:DB8::1");
    g_autofree char *d = text(AF_INET6, "2001:db8:0:0:1::/64");
    assert_string_equal(a, "10.0.0.2");
    assert_string_equal(b, "10.1.0.0/16"); /* host bits are not matched */
    assert_string_equal(c, "2001:db8::1");
    assert_string_equal(d, "2001:db8::/64");
    static const char *const bad4[] = {"", "10.0.0", "10.0.0.256", "10.0.0.1/33", "10.0.0.1/",
                                       "::1", "10.0.0.1 accept", "10.0.0.1/8x", NULL};
    for (const char *const *x = bad4; *x; x++)
        assert_null(text(AF_INET, *x));
    assert_null(text(AF_INET6, "10.0.0.1"));
    assert_null(text(AF_INET6, "::1/129"));
}

static void test_lock_mode(void **state)
{
    VifLockMode m;
    assert_true(vif_lock_mode_parse("network_default", "disabled", &m));
    assert_int_equal(m, VIF_LOCK_DISABLED);
    assert_true(vif_lock_mode_parse("network_default", "unlocked", &m));
    assert_int_equal(m, VIF_LOCK_UNLOCKED);
    assert_true(vif_lock_mode_parse("locked", "disabled", &m));
    assert_int_equal(m, VIF_LOCK_LOCKED);
    assert_false(vif_lock_mode_parse("open", "unlocked", &m));
}

static const char *qos_error(const char *type, const char *k1, const char *v1, const char *k2,
                             const char *v2, int64_t *rate, int64_t *burst)
{
    static char code[64];
    g_autoptr(Xv) params = xv_new_struct();
    if (k1)
        xv_struct_set_string(params, k1, v1);
    if (k2)
        xv_struct_set_string(params, k2, v2);
    g_autoptr(XapiError) err = NULL;
    if (vif_qos_parse(type, params, rate, burst, &err) == 0)
        return NULL;
    g_strlcpy(code, err->code, sizeof code);
    return code;
}

static void test_qos(void **state)
{
    int64_t rate, burst;
    assert_null(qos_error("", NULL, NULL, NULL, NULL, &rate, &burst));
    assert_int_equal(rate, 0);
    /* xenopsd: kbps is KiB/s, the credit is counted over 50 ms. */
    assert_null(qos_error("ratelimit", "kbps", "10240", NULL, NULL, &rate, &burst));
    assert_int_equal(rate, 10240 * 1024);
    assert_int_equal(burst, 10240 * 1024 / 20);
    assert_null(qos_error("ratelimit", "kbps", "100", NULL, NULL, &rate, &burst));
    assert_int_equal(burst, 128 * 1024); /* never below a whole GSO segment */
    assert_null(qos_error("ratelimit", "kbps", "100000", "timeslice_us", "1000000", &rate,
                          &burst));
    assert_int_equal(burst, 100000 * 1024);
    assert_string_equal(qos_error("ratelimit", NULL, NULL, NULL, NULL, &rate, &burst),
                        "INVALID_VALUE");
    assert_string_equal(qos_error("ratelimit", "kbps", "-5", NULL, NULL, &rate, &burst),
                        "INVALID_VALUE");
    assert_string_equal(qos_error("ratelimit", "kbps", "1k", NULL, NULL, &rate, &burst),
                        "INVALID_VALUE");
    assert_string_equal(qos_error("ratelimit", "kbps", "0", NULL, NULL, &rate, &burst),
                        "INVALID_VALUE");
    assert_string_equal(qos_error("ratelimit", "kbps", "10", "timeslice_us", "1", &rate,
                                  &burst), "INVALID_VALUE");
    assert_string_equal(qos_error("ratelimit", "kbps", "10", "prio", "1", &rate, &burst),
                        "VALUE_NOT_SUPPORTED");
    assert_string_equal(qos_error("shaper", "kbps", "10", NULL, NULL, &rate, &burst),
                        "VALUE_NOT_SUPPORTED");
}

static VifPolicy *locked(void)
{
    VifPolicy *p = vif_policy_new();
    p->mode = VIF_LOCK_LOCKED;
    assert_true(vif_parse_mac("02:00:00:00:00:0a", p->mac));
    VifAddr a;
    assert_true(vif_parse_addr(AF_INET, "10.0.0.2", &a));
    g_array_append_val(p->ipv4, a);
    assert_true(vif_parse_addr(AF_INET6, "fd00::2", &a));
    g_array_append_val(p->ipv6, a);
    return p;
}

static void test_nft_commands(void **state)
{
    assert_true(nft_rules_tap_ok("xv12345678.0"));
    assert_false(nft_rules_tap_ok("xv1_2"));
    assert_false(nft_rules_tap_ok("0tap"));
    assert_false(nft_rules_tap_ok("tap\"x"));
    g_autoptr(VifPolicy) p = locked();
    g_autofree char *cmds = nft_rules_tap_commands("xv12345678.0", p);
    static const char *const expected[] = {
        "add chain bridge xapid vif_xv12345678_0\n",
        "add element bridge xapid from_vif { \"xv12345678.0\" : jump vif_xv12345678_0 }\n",
        "delete element bridge xapid to_vif { \"xv12345678.0\" }\n",
        "flush chain bridge xapid vif_xv12345678_0\n",
        "vif_xv12345678_0 ether saddr != 02:00:00:00:00:0a counter drop\n",
        "vif_xv12345678_0 ip protocol udp udp dport 67 accept\n",
        "arp saddr ether 02:00:00:00:00:0a arp saddr ip 10.0.0.2 accept\n",
        "vif_xv12345678_0 ip saddr 10.0.0.2 accept\n",
        "vif_xv12345678_0 ip6 saddr fd00::2 accept\n",
        "vif_xv12345678_0 counter drop\n", NULL};
    for (const char *const *e = expected; *e; e++)
        assert_non_null(strstr(cmds, *e));
    /* Every rule comes before the final drop. */
    assert_true(g_str_has_suffix(cmds, "vif_xv12345678_0 counter drop\n"));

    /* Locked with nothing allowed: only DHCP after the MAC check. */
    g_array_set_size(p->ipv4, 0);
    g_array_set_size(p->ipv6, 0);
    g_free(cmds);
    cmds = nft_rules_tap_commands("xv12345678.0", p);
    assert_null(strstr(cmds, "ip saddr"));
    assert_null(strstr(cmds, "arp saddr ip"));
    assert_null(strstr(cmds, "ip6"));

    p->mode = VIF_LOCK_DISABLED;
    g_free(cmds);
    cmds = nft_rules_tap_commands("xv12345678.0", p);
    assert_null(strstr(cmds, "delete element bridge xapid to_vif"));
    assert_true(g_str_has_suffix(cmds, "flush chain bridge xapid vif_xv12345678_0\n"
                                       "add rule bridge xapid vif_xv12345678_0 counter drop\n"));

    p->mode = VIF_LOCK_UNLOCKED;
    p->rate = 1048576;
    p->burst = 131072;
    g_free(cmds);
    cmds = nft_rules_tap_commands("xv12345678.0", p);
    assert_true(g_str_has_suffix(cmds, "add rule bridge xapid vif_xv12345678_0 limit rate over "
                                       "1048576 bytes/second burst 131072 bytes counter drop\n"));

    /* No rules needed: whatever the tap had goes, in the same transaction. */
    p->rate = 0;
    g_free(cmds);
    cmds = nft_rules_tap_commands("xv12345678.0", p);
    assert_true(g_str_has_suffix(cmds, "delete chain bridge xapid vif_xv12345678_0\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mac),       cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_lock_mode), cmocka_unit_test(test_qos),
        cmocka_unit_test(test_nft_commands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
