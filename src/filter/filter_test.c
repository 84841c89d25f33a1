/* filter_test.c: the filter language: forms, precedence, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "filter.h"

/* A row with name__label = "x", is_a_template = "false", q = "a\"b". */
static char *lookup(void *ctx, const char *name)
{
    if (strcmp(name, "name__label") == 0)
        return g_strdup("x");
    if (strcmp(name, "is_a_template") == 0)
        return g_strdup("false");
    if (strcmp(name, "q") == 0)
        return g_strdup("a\"b");
    return NULL;
}

static bool eval(const char *text)
{
    g_autoptr(XapiError) err = NULL;
    g_autoptr(FilterExpr) e = filter_parse(text, &err);
    assert_non_null(e);
    return filter_eval(e, lookup, NULL);
}

static void test_forms(void **state)
{
    assert_true(eval("field \"name__label\"=\"x\" and not (field \"is_a_template\"=\"true\")"));
    assert_true(eval("true"));
    assert_false(eval("false"));
    assert_true(eval("\"a\"=\"a\""));
    assert_false(eval("field \"name__label\" = \"y\" or field \"is_a_template\" = \"true\""));
    assert_true(eval("field \"q\" = \"a\\\"b\""));
    assert_false(eval("field \"missing\" = \"\""));
    assert_true(eval(" ( ( true ) ) "));
}

static void test_precedence(void **state)
{
    assert_true(eval("true or true and false"));
    assert_false(eval("not true and false"));
    assert_true(eval("not (true and false)"));
    assert_false(eval("false and true or false"));
    assert_true(eval("not not true"));
}

static void test_errors(void **state)
{
    const char *bad[] = {"", "field", "field \"x\" =", "(true", "true)", "\"unterminated",
                         "true junk", "x = y", "truex", "and true", "not"};
    for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(XapiError) err = NULL;
        g_autoptr(FilterExpr) e = filter_parse(bad[i], &err);
        assert_null(e);
        assert_string_equal(err->code, "INVALID_VALUE");
    }
    GString *deep = g_string_new(NULL);
    for (int i = 0; i < 100; i++)
        g_string_append(deep, "not ");
    g_string_append(deep, "true");
    g_autoptr(XapiError) err = NULL;
    assert_null(filter_parse(deep->str, &err));
    g_string_free(deep, TRUE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
