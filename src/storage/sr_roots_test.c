/* sr_roots_test.c: SR locations are accepted only where they lead under a
 * root: links resolved, missing parts plain names, nothing outside. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sr_roots.h"

static char *state, *outside;

static int setup(void **ctx)
{
    (void)ctx;
    state = g_dir_make_tmp("sr-roots-XXXXXX", NULL);
    outside = g_dir_make_tmp("sr-roots-out-XXXXXX", NULL);
    g_autofree char *extra = g_build_filename(state, "more", NULL);
    g_mkdir(extra, 0700);
    const char *roots[] = {extra, NULL};
    XapiError *err = NULL;
    return sr_roots_init(state, roots, &err);
}

static int teardown(void **ctx)
{
    (void)ctx;
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s' '%s'", state, outside);
    return system(cmd) == 0 ? 0 : -1;
}

static bool accepted(const char *fmt, const char *base)
{
    g_autofree char *location = g_strdup_printf(fmt, base);
    g_autoptr(XapiError) err = NULL;
    int rc = sr_roots_check(location, &err);
    if (rc < 0) {
        assert_string_equal(err->code, "INVALID_VALUE");
        assert_string_equal(err->params->pdata[0], "device_config:location");
        assert_string_equal(err->params->pdata[1], location);
    }
    return rc == 0;
}

static void test_under_the_roots(void **ctx)
{
    (void)ctx;
    assert_true(accepted("%s/sr", state));
    assert_true(accepted("%s/sr/", state));
    assert_true(accepted("%s/iso", state));
    assert_true(accepted("%s/sr/new/deeper", state));
    assert_true(accepted("%s/more/x", state));
}

static void test_elsewhere(void **ctx)
{
    (void)ctx;
    assert_false(accepted("%s", state));           /* the state dir itself */
    assert_false(accepted("%s/domains", state));
    assert_false(accepted("%s/srx", state));        /* a prefix is not a parent */
    assert_false(accepted("%s", outside));
    assert_false(accepted("/etc%s", ""));
    assert_false(accepted("%s", ""));
    assert_false(accepted("%s/sr/../escape", state));
    assert_false(accepted("%s/sr/new/../../escape", state));
    assert_false(accepted("%s/sr/a//b", state));
    assert_false(accepted("%s/sr/a/./b", state));
}

static void test_links_are_followed_to_where_they_lead(void **ctx)
{
    (void)ctx;
    g_autofree char *out_link = g_build_filename(state, "sr", "out", NULL);
    g_autofree char *in_link = g_build_filename(state, "sr", "in", NULL);
    g_autofree char *target = g_build_filename(state, "more", NULL);
    assert_int_equal(symlink(outside, out_link), 0);
    assert_int_equal(symlink(target, in_link), 0);
    assert_false(accepted("%s/sr/out", state));
    assert_false(accepted("%s/sr/out/sub", state));
    assert_true(accepted("%s/sr/in/sub", state));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_under_the_roots),
        cmocka_unit_test(test_elsewhere),
        cmocka_unit_test(test_links_are_followed_to_where_they_lead),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
