/* login_throttle_test.c: the failed-login penalty, with the clock given:
 * growth and cap, per address, cleared by success, forgotten with time,
 * the bound on waiting answers and on remembered addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <glib.h>

#include "login_throttle.h"

static int64_t fail_once(LoginThrottle *t, const char *addr, int64_t now, unsigned *n)
{
    int64_t d = login_throttle_failure(t, addr, now, n);
    login_throttle_answered(t, addr);
    return d;
}

static void test_grows_doubling_to_a_cap(void **state)
{
    LoginThrottle *t = login_throttle_new(250);
    static const int64_t expected[] = {250, 500, 1000, 2000, 4000, 5000, 5000, 5000};
    for (unsigned i = 0; i < G_N_ELEMENTS(expected); i++) {
        unsigned n;
        assert_int_equal(fail_once(t, "192.0.2.1", 1000 + i, &n), expected[i]);
        assert_int_equal(n, i + 1);
    }
    for (unsigned i = 0; i < 100; i++) { /* no overflow however long it goes on */
        unsigned n;
        assert_int_equal(fail_once(t, "192.0.2.1", 2000 + i, &n), 5000);
    }
    login_throttle_free(t);
}

static void test_per_address_and_cleared_by_success(void **state)
{
    LoginThrottle *t = login_throttle_new(100);
    unsigned n;
    fail_once(t, "192.0.2.1", 0, &n);
    fail_once(t, "192.0.2.1", 1, &n);
    assert_int_equal(fail_once(t, "192.0.2.1", 2, &n), 400);
    assert_int_equal(fail_once(t, "192.0.2.2", 3, &n), 100); /* another address: its own count */
    assert_int_equal(n, 1);
    login_throttle_success(t, "192.0.2.1");
    assert_int_equal(fail_once(t, "192.0.2.1", 4, &n), 100);
    assert_int_equal(n, 1);
    login_throttle_free(t);
}

static void test_forgotten_after_quiet_time(void **state)
{
    LoginThrottle *t = login_throttle_new(100);
    unsigned n;
    fail_once(t, "a", 0, &n);
    fail_once(t, "a", 10, &n);
    assert_int_equal(fail_once(t, "a", 10 + LOGIN_THROTTLE_FORGET_MS, &n), 400);
    assert_int_equal(fail_once(t, "a", 20 + 2 * LOGIN_THROTTLE_FORGET_MS, &n), 100);
    login_throttle_free(t);
}

/* Parallel attempts from one address: a few wait, the rest are refused
 * unchecked; other addresses are admitted all along. */
static void test_waiting_answers_are_bounded(void **state)
{
    LoginThrottle *t = login_throttle_new(100);
    unsigned n;
    for (int i = 0; i < LOGIN_THROTTLE_WAITING; i++) {
        assert_true(login_throttle_admit(t, "a"));
        login_throttle_failure(t, "a", i, &n);
    }
    assert_false(login_throttle_admit(t, "a"));
    assert_true(login_throttle_admit(t, "b"));
    login_throttle_answered(t, "a");
    assert_true(login_throttle_admit(t, "a"));
    login_throttle_free(t);
}

static void test_remembered_addresses_are_bounded(void **state)
{
    LoginThrottle *t = login_throttle_new(100);
    unsigned n;
    for (int i = 0; i < LOGIN_THROTTLE_MAX_ADDRESSES + 50; i++) {
        g_autofree char *addr = g_strdup_printf("10.0.%d.%d", i / 256, i % 256);
        fail_once(t, addr, i, &n);
    }
    assert_true(login_throttle_size(t) <= LOGIN_THROTTLE_MAX_ADDRESSES);
    /* the newest is still counted */
    g_autofree char *last = g_strdup_printf("10.0.%d.%d", (LOGIN_THROTTLE_MAX_ADDRESSES + 49) / 256,
                                            (LOGIN_THROTTLE_MAX_ADDRESSES + 49) % 256);
    assert_int_equal(fail_once(t, last, 100000, &n), 200);
    login_throttle_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grows_doubling_to_a_cap),
        cmocka_unit_test(test_per_address_and_cleared_by_success),
        cmocka_unit_test(test_forgotten_after_quiet_time),
        cmocka_unit_test(test_waiting_answers_are_bounded),
        cmocka_unit_test(test_remembered_addresses_are_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
