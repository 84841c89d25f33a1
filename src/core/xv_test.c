/* xv_test.c: the value type and datetime text. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_struct_set_replaces_and_equal_ignores_order),
        cmocka_unit_test(test_empty_string_is_not_allocated),
        cmocka_unit_test(test_datetime_round_trip_and_variants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
