/* boot_files_test.c: boot files inside an allowed directory pass; outside
 * it, through a symlink or "../", missing, or not a regular file they are
 * refused with INVALID_VALUE. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>
#include <unistd.h>

#include "boot_files.h"

static void expect_refused(const char *path, const char *reason_part)
{
    XapiError *err = NULL;
    assert_int_equal(boot_files_check("PV_kernel", path, &err), -1);
    assert_string_equal(err->code, "INVALID_VALUE");
    assert_int_equal(err->params->len, 3);
    assert_string_equal(err->params->pdata[0], "PV_kernel");
    assert_string_equal(err->params->pdata[1], path);
    assert_non_null(strstr(err->params->pdata[2], reason_part));
    xapi_error_free(err);
}

static void test_only_allowed_dirs(void **state)
{
    g_autofree char *root = g_dir_make_tmp("boot-files-XXXXXX", NULL);
    g_autofree char *allowed = g_build_filename(root, "kernels", NULL);
    g_autofree char *other = g_build_filename(root, "kernels-not", NULL);
    g_mkdir_with_parents(allowed, 0700);
    g_mkdir_with_parents(other, 0700);
    g_autofree char *kernel = g_build_filename(allowed, "vmlinuz", NULL);
    g_autofree char *outside = g_build_filename(other, "vmlinuz", NULL);
    g_autofree char *link = g_build_filename(allowed, "link", NULL);
    g_autofree char *dotdot = g_build_filename(allowed, "..", "kernels-not", "vmlinuz", NULL);
    g_file_set_contents(kernel, "k", 1, NULL);
    g_file_set_contents(outside, "k", 1, NULL);
    assert_int_equal(symlink(outside, link), 0);
    boot_files_allow_dir(allowed);

    XapiError *err = NULL;
    assert_int_equal(boot_files_check("PV_kernel", kernel, &err), 0);
    assert_null(err);
    expect_refused(outside, "allowed kernel directories");
    expect_refused(link, "allowed kernel directories");
    expect_refused(dotdot, "allowed kernel directories");
    expect_refused(allowed, "regular file");
    g_autofree char *missing = g_build_filename(allowed, "missing", NULL);
    expect_refused(missing, "does not exist");
    unlink(link);
    unlink(kernel);
    unlink(outside);
    rmdir(allowed);
    rmdir(other);
    rmdir(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_only_allowed_dirs)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
