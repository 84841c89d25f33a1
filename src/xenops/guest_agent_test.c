/* guest_agent_test.c: the agent's answers in XAPI's VM_guest_metrics shapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "guest_agent.h"

static const char *get(const Xv *st, const char *key)
{
    const Xv *v = xv_struct_get(st, key);
    return v ? xv_str(v) : "(none)";
}

static void test_report_and_networks(void **state)
{
    (void)state;
    GuestAgentReport r = {0};
    guest_agent_report_parse(
        "{\"version\":\"7.2.22\",\"supported_commands\":[]}",
        "{\"name\":\"Debian GNU/Linux\",\"pretty-name\":\"Debian GNU/Linux 12 (bookworm)\","
        "\"id\":\"debian\",\"version-id\":\"12\",\"kernel-release\":\"6.1.0-57-amd64\"}",
        "[{\"name\":\"lo\",\"hardware-address\":\"00:00:00:00:00:00\",\"ip-addresses\":"
        "[{\"ip-address-type\":\"ipv4\",\"ip-address\":\"127.0.0.1\",\"prefix\":8}]},"
        "{\"name\":\"eth0\",\"hardware-address\":\"02:AB:00:00:00:01\",\"ip-addresses\":"
        "[{\"ip-address-type\":\"ipv4\",\"ip-address\":\"10.0.0.2\",\"prefix\":24},"
        "{\"ip-address-type\":\"ipv6\",\"ip-address\":\"fe80::1\",\"prefix\":64},"
        "{\"ip-address-type\":\"ipv4\",\"ip-address\":\"10.0.1.2\",\"prefix\":24}]}]",
        &r);
    assert_string_equal(get(r.os_version, "name"), "Debian GNU/Linux 12 (bookworm)");
    assert_string_equal(get(r.os_version, "distro"), "debian");
    assert_string_equal(get(r.os_version, "major"), "12");
    assert_string_equal(get(r.os_version, "minor"), "(none)");
    assert_string_equal(get(r.os_version, "uname"), "6.1.0-57-amd64");
    assert_string_equal(get(r.pv_drivers_version, "major"), "7");
    assert_string_equal(get(r.pv_drivers_version, "minor"), "2");
    assert_string_equal(get(r.pv_drivers_version, "micro"), "22");
    assert_string_equal(get(r.pv_drivers_version, "build"), "0");
    /* VIF 3 has eth0's MAC (any case); VIF 1 is not in the guest */
    const char *macs[] = {"02:ab:00:00:00:01", "02:ab:00:00:00:09"};
    const char *devices[] = {"3", "1"};
    Xv *n = guest_agent_networks(r.interfaces, macs, devices, 2);
    assert_string_equal(get(n, "3/ip"), "10.0.0.2");
    assert_string_equal(get(n, "3/ipv4/0"), "10.0.0.2");
    assert_string_equal(get(n, "3/ipv4/1"), "10.0.1.2");
    assert_string_equal(get(n, "3/ipv6/0"), "fe80::1");
    assert_int_equal(xv_len(n), 4);
    xv_free(n);
    guest_agent_report_clear(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_report_and_networks)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
