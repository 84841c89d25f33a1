/* xv_test.c: the value type and datetime text. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "xv.h"

static void test_struct_set_replaces_and_equal_ignores_order(void **state)
{
    g_autoptr(Xv) a = xv_new_struct();
    xv_struct_set_string(a, "x", "1");
    xv_struct_set(a, "y", xv_new_int(2));
    xv_struct_set_string(a, "x", "3");
    assert_int_equal(xv_len(a), 2);
    assert_string_equal(xv_str(xv_struct_get(a, "x")), "3");
    g_autoptr(Xv) b = xv_new_struct();
    xv_struct_set(b, "y", xv_new_int(2));
    xv_struct_set_string(b, "x", "3");
    assert_true(xv_equal(a, b));
    g_autoptr(Xv) c = xv_dup(a);
    assert_true(xv_equal(a, c));
    assert_true(xv_struct_remove(c, "x"));
    assert_false(xv_equal(a, c));
}

static void test_empty_string_is_not_allocated(void **state)
{
    g_autoptr(Xv) s = xv_new_string("");
    assert_null(s->s);
    assert_string_equal(xv_str(s), "");
}

static void test_datetime_round_trip_and_variants(void **state)
{
    int64_t t;
    assert_true(xv_datetime_parse("19700101T00:00:00Z", &t));
    assert_int_equal(t, 0);
    assert_true(xv_datetime_parse("2024-01-01T12:00:00Z", &t));
    assert_int_equal(t, 1704110400);
    g_autofree char *s = xv_datetime_format(t);
    assert_string_equal(s, "20240101T12:00:00Z");
    assert_true(xv_datetime_parse("20240101T12:00:00", &t));
    assert_int_equal(t, 1704110400);
    assert_true(xv_datetime_parse("20240101T13:00:00+01:00", &t));
    assert_int_equal(t, 1704110400);
    assert_false(xv_datetime_parse("2024-13-01T00:00:00Z", &t));
    assert_false(xv_datetime_parse("yesterday", &t));
    assert_false(xv_datetime_parse("20240101T12:00:00Zjunk", &t));
}

/* The arithmetic calendar agrees with gmtime across leap years, century
 * rules and dates before 1970. */
static void test_datetime_write_agrees_with_gmtime(void **state)
{
    for (int64_t t = -4102444800; t < 7258118400; t += 86400 * 7 + 3671) {
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        char expected[64], got[XV_DATETIME_BUF];
        snprintf(expected, sizeof expected, "%04d%02d%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        size_t len = xv_datetime_write(t, got);
        assert_string_equal(got, expected);
        assert_int_equal(len, strlen(expected));
    }
    char buf[XV_DATETIME_BUF];
    xv_datetime_write(951782400, buf); /* 2000 is a leap year */
    assert_string_equal(buf, "20000229T00:00:00Z");
    xv_datetime_write(-1, buf);
    assert_string_equal(buf, "19691231T23:59:59Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_struct_set_replaces_and_equal_ignores_order),
        cmocka_unit_test(test_empty_string_is_not_allocated),
        cmocka_unit_test(test_datetime_round_trip_and_variants),
        cmocka_unit_test(test_datetime_write_agrees_with_gmtime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
