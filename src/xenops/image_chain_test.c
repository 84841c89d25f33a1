/* image_chain_test.c: a chain made by qemu-img opens image by image with
 * the formats its headers record (relative and absolute backing names);
 * a symlink, an unrecorded backing format, a loop and a non-qcow2 file
 * given as qcow2 are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "image_chain.h"

static char *dir;

static void qemu_img(const char *const *args)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_ptr_array_add(argv, (char *)"qemu-img");
    for (; *args; args++)
        g_ptr_array_add(argv, (char *)*args);
    g_ptr_array_add(argv, NULL);
    int status = 0;
    assert_true(g_spawn_sync(dir, (char **)argv->pdata, NULL,
                             G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                             NULL, &status, NULL));
    assert_int_equal(status, 0);
}

static char *in_dir(const char *name) { return g_build_filename(dir, name, NULL); }

static void expect_refused(const char *name, const char *format, const char *why)
{
    g_autofree char *path = in_dir(name);
    ImageChain chain;
    XapiError *err = NULL;
    assert_int_equal(image_chain_open(path, format, true, &chain, &err), -1);
    assert_string_equal(err->code, "SR_BACKEND_FAILURE");
    assert_non_null(strstr(err->params->pdata[2], why));
    xapi_error_free(err);
}

static void test_chain_of_three(void **state)
{
    qemu_img((const char *const[]){"create", "-q", "-f", "raw", "base.raw", "1M", NULL});
    qemu_img((const char *const[]){"create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw",
                                   "mid.qcow2", NULL});
    g_autofree char *mid = in_dir("mid.qcow2");
    qemu_img((const char *const[]){"create", "-q", "-f", "qcow2", "-b", mid, "-F", "qcow2",
                                   "top.qcow2", NULL});
    g_autofree char *top = in_dir("top.qcow2");
    ImageChain chain;
    XapiError *err = NULL;
    assert_int_equal(image_chain_open(top, "qcow2", true, &chain, &err), 0);
    assert_int_equal(chain.n, 3);
    const char *formats[] = {"qcow2", "qcow2", "raw"};
    const char *names[] = {"top.qcow2", "mid.qcow2", "base.raw"};
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(chain.layers[i].format, formats[i]);
        assert_true(chain.layers[i].fd_ro >= 0);
        assert_int_equal(fcntl(chain.layers[i].fd_ro, F_GETFL) & O_ACCMODE, O_RDONLY);
        /* only the top of a writable disk is opened for writing */
        assert_true(i == 0 ? chain.layers[i].fd_rw >= 0 : chain.layers[i].fd_rw == -1);
        g_autofree char *link = g_strdup_printf("/proc/self/fd/%d", chain.layers[i].fd_ro);
        g_autofree char *target = g_file_read_link(link, NULL);
        g_autofree char *base = g_path_get_basename(target);
        assert_string_equal(base, names[i]);
    }
    assert_int_equal(fcntl(chain.layers[0].fd_rw, F_GETFL) & O_ACCMODE, O_RDWR);
    image_chain_close(&chain);

    assert_int_equal(image_chain_open(top, "qcow2", false, &chain, &err), 0);
    assert_int_equal(chain.layers[0].fd_rw, -1);
    image_chain_close(&chain);
}

static void test_refusals(void **state)
{
    qemu_img((const char *const[]){"create", "-q", "-f", "raw", "plain.raw", "1M", NULL});
    g_autofree char *plain = in_dir("plain.raw");
    g_autofree char *link = in_dir("link.qcow2");
    assert_int_equal(symlink(plain, link), 0);
    expect_refused("link.qcow2", "raw", "Too many levels of symbolic links");
    expect_refused("plain.raw", "qcow2", "not a qcow2 image");
    /* loop.qcow2 -> other.qcow2 -> loop.qcow2 (rebase -u: unchecked) */
    qemu_img((const char *const[]){"create", "-q", "-f", "qcow2", "other.qcow2", "1M", NULL});
    qemu_img((const char *const[]){"create", "-q", "-f", "qcow2", "-b", "other.qcow2", "-F",
                                   "qcow2", "loop.qcow2", NULL});
    qemu_img((const char *const[]){"rebase", "-q", "-u", "-b", "loop.qcow2", "-F", "qcow2",
                                   "other.qcow2", NULL});
    expect_refused("loop.qcow2", "qcow2", "too long");
    /* A backing name without the format extension: the header made by
     * hand (qemu-img always records the format now). */
    qemu_img((const char *const[]){"create", "-q", "-f", "qcow2", "bare.qcow2", "1M", NULL});
    g_autofree char *bare = in_dir("bare.qcow2");
    int fd = open(bare, O_RDWR);
    const char name[] = "plain.raw";
    const unsigned char offset[8] = {0, 0, 0, 0, 0, 0, 0x10, 0x00}; /* 4096 */
    const unsigned char size[4] = {0, 0, 0, sizeof name - 1};
    assert_int_equal(pwrite(fd, offset, sizeof offset, 8), 8);
    assert_int_equal(pwrite(fd, size, sizeof size, 16), 4);
    assert_int_equal(pwrite(fd, name, sizeof name - 1, 4096), (ssize_t)(sizeof name - 1));
    close(fd);
    expect_refused("bare.qcow2", "qcow2", "format is not recorded");
}

static int setup(void **state)
{
    dir = g_dir_make_tmp("image-chain-XXXXXX", NULL);
    return dir ? 0 : -1;
}

static int teardown(void **state)
{
    const char *names[] = {"base.raw", "mid.qcow2", "top.qcow2", "plain.raw", "link.qcow2",
                           "loop.qcow2", "other.qcow2", "bare.qcow2"};
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autofree char *path = in_dir(names[i]);
        unlink(path);
    }
    rmdir(dir);
    g_free(dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_of_three),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
