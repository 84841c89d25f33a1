/* nat_test.c: NAT subnets as network.create takes them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "nat.h"

static void test_subnets(void **state)
{
    NatSubnet s;
    assert_true(nat_parse_subnet("10.213.4.0/24", &s));
    assert_int_equal(s.prefix, 24);
    g_autofree char *text = nat_subnet_text(&s);
    assert_string_equal(text, "10.213.4.0/24");
    /* Host bits are cleared. */
    assert_true(nat_parse_subnet("192.168.7.77/28", &s));
    g_autofree char *cleared = nat_subnet_text(&s);
    assert_string_equal(cleared, "192.168.7.64/28");
    static const char *const bad[] = {"10.0.0.0", "10.0.0.0/", "10.0.0.0/30", "10.0.0.0/7",
                                      "10.0.0.0/24x", "10.0.0/24", "::1/64", "", "a/24"};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
        assert_false(nat_parse_subnet(bad[i], &s));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_subnets)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
