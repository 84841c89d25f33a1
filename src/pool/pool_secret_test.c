/* pool_secret_test.c: created once with mode 0600, stable, replaceable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#include "pool_secret.h"

static void test_created_stable_replaced(void **state)
{
    g_autofree char *dir = g_dir_make_tmp("pool-secret-XXXXXX", NULL);
    XapiError *err = NULL;
    g_autofree char *first = pool_secret_get(dir, &err);
    assert_non_null(first);
    assert_int_equal(strlen(first), POOL_SECRET_HEX_LEN);
    g_autofree char *path = g_build_filename(dir, "pool-secret", NULL);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    g_autofree char *again = pool_secret_get(dir, &err);
    assert_string_equal(first, again);
    assert_true(pool_secret_equal(first, again));

    assert_true(pool_secret_set(dir, "not hex", &err) < 0);
    assert_string_equal(err->code, "INVALID_VALUE");
    xapi_error_free(err);
    err = NULL;
    g_autofree char *other = g_strnfill(POOL_SECRET_HEX_LEN, 'a');
    assert_int_equal(pool_secret_set(dir, other, &err), 0);
    g_autofree char *now = pool_secret_get(dir, &err);
    assert_string_equal(now, other);
    assert_false(pool_secret_equal(first, now));
    g_unlink(path);
    g_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_created_stable_replaced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
