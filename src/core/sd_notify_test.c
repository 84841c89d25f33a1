/* sd_notify_test.c: the datagram arrives on a path and on an abstract
 * socket, as systemd's listening end would receive it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <glib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sd_notify.h"

/* A bound datagram socket named name ('@': abstract). */
static int receiver(const char *name)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t len = strlen(name);
    memcpy(addr.sun_path, name, len);
    if (name[0] == '@')
        addr.sun_path[0] = 0;
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr,
                          (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)),
                     0);
    return fd;
}

static void received(int fd, const char *want)
{
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
    assert_true(n > 0);
    buf[n] = 0;
    assert_string_equal(buf, want);
}

static void test_path_and_abstract(void **unused)
{
    g_autofree char *dir = g_dir_make_tmp("sd-notify-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "notify", NULL);
    int fd = receiver(path);
    g_setenv("NOTIFY_SOCKET", path, TRUE);
    assert_true(sd_notify_send("READY=1"));
    received(fd, "READY=1");
    close(fd);
    unlink(path);
    rmdir(dir);

    g_autofree char *name = g_strdup_printf("@xapid-sd-notify-test-%d", (int)getpid());
    fd = receiver(name);
    g_setenv("NOTIFY_SOCKET", name, TRUE);
    assert_true(sd_notify_send("STOPPING=1"));
    received(fd, "STOPPING=1");
    close(fd);
}

static void test_without_systemd(void **unused)
{
    g_unsetenv("NOTIFY_SOCKET");
    assert_true(sd_notify_send("READY=1"));
    g_setenv("NOTIFY_SOCKET", "relative", TRUE);
    assert_false(sd_notify_send("READY=1"));
    g_setenv("NOTIFY_SOCKET", "/nonexistent/notify", TRUE);
    assert_false(sd_notify_send("READY=1"));
    g_unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_and_abstract),
        cmocka_unit_test(test_without_systemd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
