/* host_net_test.c: link names the kernel accepts, and the default route
 * read from /proc/net/route's text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "host_net.h"

static void test_valid_names(void **state)
{
    assert_true(hostnet_valid_name("xapi0"));
    assert_true(hostnet_valid_name("xv6f2e0f39.15"));
    assert_true(hostnet_valid_name("br-test_1"));
    assert_false(hostnet_valid_name(""));
    assert_false(hostnet_valid_name(NULL));
    assert_false(hostnet_valid_name("sixteen-chars-xx"));
    assert_false(hostnet_valid_name("a b"));
    assert_false(hostnet_valid_name("a/b"));
    assert_false(hostnet_valid_name(".."));
}

static const char ROUTES[] =
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "br1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    "eth9\t00000000\t0100A8C0\t0002\t0\t0\t0\t00000000\t0\t0\t0\n"   /* not up */
    "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";

static void test_default_route(void **state)
{
    char *dev = hostnet_default_route_in(ROUTES);
    assert_string_equal(dev, "eth0");
    g_free(dev);
    assert_null(hostnet_default_route_in("Iface\tDestination\n"));
    assert_null(hostnet_default_route_in(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_names),
        cmocka_unit_test(test_default_route),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
