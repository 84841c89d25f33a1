/* host_links_test.c: netmasks as prefixes, VLAN link names, the default
 * route with its gateway and the kernel's VLAN table, read from text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "host_links.h"

static void test_prefix_of(void **state)
{
    assert_int_equal(hostlinks_prefix_of("255.255.255.0"), 24);
    assert_int_equal(hostlinks_prefix_of("255.255.0.0"), 16);
    assert_int_equal(hostlinks_prefix_of("255.255.255.255"), 32);
    assert_int_equal(hostlinks_prefix_of("0.0.0.0"), 0);
    assert_int_equal(hostlinks_prefix_of("255.0.255.0"), -1);
    assert_int_equal(hostlinks_prefix_of("255.255.255"), -1);
    assert_int_equal(hostlinks_prefix_of(""), -1);
    assert_int_equal(hostlinks_prefix_of(NULL), -1);
}

static void test_vlan_name(void **state)
{
    g_autofree char *a = hostlinks_vlan_name("eth0", 5);
    assert_string_equal(a, "eth0.5");
    g_autofree char *b = hostlinks_vlan_name("enp0s31f6xyz", 4094); /* 17 characters */
    assert_null(b);
}

static const char ROUTES[] =
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "xenbr1\t0062000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    "xenbr1\t00000000\t0162000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";

static void test_default_route(void **state)
{
    HostRoute r;
    hostlinks_default_route_in(ROUTES, &r);
    assert_string_equal(r.dev, "xenbr1");
    assert_string_equal(r.gateway, "10.0.98.1");
    hostlinks_route_clear(&r);
    hostlinks_default_route_in("Iface\tDestination\n", &r);
    assert_null(r.dev);
    hostlinks_default_route_in("eth0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n", &r);
    assert_string_equal(r.dev, "eth0");
    assert_string_equal(r.gateway, ""); /* a device route */
    hostlinks_route_clear(&r);
}

static const char VLANS[] = "VLAN Dev name    | VLAN ID\n"
                            "Name-Type: VLAN_NAME_TYPE_RAW_PLUS_VID_NO_PAD\n"
                            "eth0.5         | 5  | eth0\n"
                            "bond0.100      | 100  | bond0\n";

static void test_vlan_config(void **state)
{
    assert_true(hostlinks_vlan_config_has(VLANS, "eth0", 5));
    assert_true(hostlinks_vlan_config_has(VLANS, "bond0", 100));
    assert_false(hostlinks_vlan_config_has(VLANS, "eth0", 100));
    assert_false(hostlinks_vlan_config_has(VLANS, "eth1", 5));
    assert_false(hostlinks_vlan_config_has("", "eth0", 5));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefix_of),
        cmocka_unit_test(test_vlan_name),
        cmocka_unit_test(test_default_route),
        cmocka_unit_test(test_vlan_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
