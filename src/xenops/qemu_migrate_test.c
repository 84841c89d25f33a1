/* qemu_migrate_test.c: a live migration of the real test guest between
 * two domains of the qemu driver on this host, over a socket pair as the
 * connection between the "hosts" (suite guest, plain build only; skipped
 * without qemu-system-x86_64).
 *
 * The guest (scripts/build-test-guest) runs its memory tester
 * (xapid.memtest=32: 32 MiB filled with a known pattern, left idle) and
 * has a qcow2 disk both QEMUs open. Proven: the destination starts while
 * the source holds the image read-write (it opens it inactive), the guest
 * answers memcheck ok on the destination with the checksum it had on the
 * source, the source's QEMU is gone and the image is locked by exactly the
 * destination; a destination that cannot load the state (another memory
 * size) leaves the source running and answering. Under TCG with QEMU
 * 7.2 the driver migrates with the guest paused (live migration loses
 * memory there: docs/migration.md); the test prints which it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "db.h"
#include "hv_driver.h"
#include "qemu_cmdline.h"
#include "qemu_process.h"

#define MiB (1024 * 1024)

static struct {
    const HvDriver *drv;
    char *dir;
    char *guest;
    char *image;
} t;

/* ---- the guest's serial port --------------------------------------------------- */

typedef struct {
    int fd;
    GString *text;
} Serial;

static void serial_open(Serial *s, const char *uuid)
{
    g_autoptr(XapiError) err = NULL;
    s->fd = t.drv->console_connect(uuid, "vt100", &err);
    if (s->fd < 0)
        fail_msg("serial of %s: %s", uuid, err->code);
    s->text = g_string_new(NULL);
}

static void serial_close(Serial *s)
{
    close(s->fd);
    g_string_free(s->text, TRUE);
}

/* The first whole line holding needle after what was consumed (caller
 * frees), or NULL after timeout_s. */
static char *serial_wait(Serial *s, const char *needle, int timeout_s)
{
    int64_t deadline = g_get_monotonic_time() + (int64_t)timeout_s * G_USEC_PER_SEC;
    for (;;) {
        const char *hit = strstr(s->text->str, needle);
        const char *end = hit ? strchr(hit, '\n') : NULL;
        if (end) {
            char *line = g_strstrip(g_strndup(hit, (gsize)(end - hit)));
            g_string_erase(s->text, 0, end + 1 - s->text->str);
            return line;
        }
        int64_t left = (deadline - g_get_monotonic_time()) / 1000;
        if (left <= 0)
            return NULL;
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, (int)MIN(left, 1000)) <= 0)
            continue;
        char buf[4096];
        ssize_t n = read(s->fd, buf, sizeof buf);
        if (n <= 0)
            return NULL;
        g_string_append_len(s->text, buf, n);
    }
}

/* memcheck's answer: "XAPID-GUEST-MEMCHECK ok|bad BAD PAGES PASS SUM". */
static char **memcheck(Serial *s)
{
    assert_int_equal(write(s->fd, "memcheck\n", 9), 9);
    g_autofree char *line = serial_wait(s, "XAPID-GUEST-MEMCHECK", 60);
    if (!line)
        fail_msg("no memcheck answer; the guest said: %s", s->text->str);
    char **words = g_strsplit(line, " ", -1);
    assert_true(g_strv_length(words) >= 6);
    return words;
}

/* ---- domains ----------------------------------------------------------------- */

/* The guest's memory tester: XAPID_TEST_MEMTEST=MIB,RATE makes it rewrite
 * memory during the migration (docs/migration.md); idle by default. */
static const char *memtest(void)
{
    const char *v = g_getenv("XAPID_TEST_MEMTEST");
    return v && *v ? v : "32";
}

static bool memtest_idle(void)
{
    const char *rate = strchr(memtest(), ',');
    return !rate || g_ascii_strtod(rate + 1, NULL) == 0;
}

static Xv *guest_vm(int64_t memory)
{
    Xv *vm = xv_new_struct();
    xv_struct_set_string(vm, "name_label", "migrating guest");
    xv_struct_set(vm, "memory_static_max", xv_new_int(memory));
    xv_struct_set(vm, "VCPUs_at_startup", xv_new_int(1));
    xv_struct_set(vm, "VCPUs_max", xv_new_int(1));
    g_autofree char *kernel = g_build_filename(t.guest, "vmlinuz", NULL);
    g_autofree char *initrd = g_build_filename(t.guest, "initrd.img", NULL);
    xv_struct_set_string(vm, "PV_kernel", kernel);
    xv_struct_set_string(vm, "PV_ramdisk", initrd);
    g_autofree char *args = g_strdup_printf(
        "console=ttyS0 quiet panic=-1 cryptomgr.notests xapid.memtest=%s", memtest());
    xv_struct_set_string(vm, "PV_args", args);
    xv_struct_set(vm, "HVM_boot_params", xv_new_struct());
    Xv *platform = xv_new_struct();
    xv_struct_set_string(platform, "acpi", "1");
    xv_struct_set(vm, "platform", platform);
    return vm;
}

static HvDisk guest_disk(void)
{
    return (HvDisk){.slot = 0, .path = t.image, .format = "qcow2", .size = 64 * MiB,
                    .bootindex = -1};
}

/* Whether a QEMU holds the image read-write: qemu-img is refused its lock. */
static bool image_locked(void)
{
    const char *argv[] = {"qemu-img", "info", t.image, NULL};
    g_autofree char *err_text = NULL;
    int status = 0;
    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH |
                               G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, &err_text, &status,
                               NULL));
    return status != 0 && strstr(err_text, "lock") != NULL;
}

static int64_t domain_pid(const char *uuid)
{
    g_autofree char *path = g_build_filename(t.dir, "domains", uuid, QEMU_PIDFILE, NULL);
    g_autofree char *text = NULL;
    assert_true(g_file_get_contents(path, &text, NULL, NULL));
    return g_ascii_strtoll(text, NULL, 10);
}

static void start_guest(const char *uuid, Serial *serial)
{
    g_autoptr(Xv) vm = guest_vm(256 * MiB);
    HvDisk disk = guest_disk();
    g_autoptr(XapiError) err = NULL;
    if (t.drv->start(uuid, vm, &disk, 1, NULL, 0, NULL, false, &err) < 0)
        fail_msg("start: %s %s", err->code, err->params->len ? (char *)err->params->pdata[0] : "");
    serial_open(serial, uuid);
    g_autofree char *ready = serial_wait(serial, "XAPID-GUEST-MEMTEST ready", 240);
    if (!ready)
        fail_msg("the guest did not get ready: %s", serial->text->str);
}

typedef struct {
    const char *uuid;
    int64_t memory;
    int conn;
    int rc;
    XapiError *err;
} Receiver;

static gpointer receive(gpointer data)
{
    Receiver *r = data;
    g_autoptr(Xv) vm = guest_vm(r->memory);
    HvDisk disk = guest_disk();
    HvMigrateOptions opts = {.idle_timeout_ms = 60000};
    r->rc = t.drv->migrate_receive(r->uuid, vm, &disk, 1, NULL, 0, r->conn, &opts, &r->err);
    close(r->conn);
    return NULL;
}

/* Migrates src to a new domain dst whose record has memory; the
 * source's outcome. */
static int migrate(const char *src, const char *dst, int64_t memory, HvMigrateStats *stats,
                   Receiver *r, XapiError **err)
{
    int pair[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    *r = (Receiver){.uuid = dst, .memory = memory, .conn = pair[1]};
    GThread *thread = g_thread_new("receive", receive, r);
    HvMigrateOptions opts = {.idle_timeout_ms = 60000};
    int rc = t.drv->migrate_send(src, pair[0], &opts, stats, err);
    close(pair[0]);
    g_thread_join(thread);
    return rc;
}

static void test_live_migration(void **state)
{
    const char *src = "6f2e0f39-0000-4000-8000-0000000000a1";
    const char *dst = "6f2e0f39-0000-4000-8000-0000000000a2";
    Serial before;
    start_guest(src, &before);
    g_auto(GStrv) check = memcheck(&before);
    assert_string_equal(check[1], "ok");
    assert_true(image_locked());
    int64_t pid = domain_pid(src);
    serial_close(&before);

    HvMigrateStats stats;
    Receiver r;
    g_autoptr(XapiError) err = NULL;
    int rc = migrate(src, dst, 256 * MiB, &stats, &r, &err);
    if (rc < 0 || r.rc < 0)
        fail_msg("migration: source %s, destination %s",
                 err ? (char *)err->params->pdata[0] : "ok",
                 r.err ? (char *)r.err->params->pdata[0] : "ok");
    printf("# migrated (%s): total %" G_GINT64_FORMAT " ms, downtime %" G_GINT64_FORMAT
           " ms, setup %" G_GINT64_FORMAT " ms, %" G_GINT64_FORMAT " bytes of RAM, %"
           G_GINT64_FORMAT " over the link, %" G_GINT64_FORMAT " dirty syncs\n",
           stats.live ? "live" : "guest paused", stats.total_ms, stats.downtime_ms,
           stats.setup_ms, stats.ram_transferred,
           stats.link_sent, stats.dirty_sync_count);
    assert_string_equal(stats.status, "completed");
    assert_true(stats.link_sent > 0);
    assert_int_equal(t.drv->status(src).state, HV_ABSENT);
    assert_false(qemu_process_alive(pid));
    assert_int_equal(t.drv->status(dst).state, HV_RUNNING);

    Serial after;
    serial_open(&after, dst);
    g_auto(GStrv) again = memcheck(&after);
    assert_string_equal(again[1], "ok");
    if (memtest_idle())
        assert_string_equal(again[5], check[5]); /* the idle region's checksum */
    serial_close(&after);
    assert_true(image_locked()); /* by the destination alone: the source is gone */
    assert_int_equal(t.drv->destroy(dst, NULL), 0);
    assert_false(image_locked());
}

static void test_failed_migration_keeps_source(void **state)
{
    const char *src = "6f2e0f39-0000-4000-8000-0000000000b1";
    const char *dst = "6f2e0f39-0000-4000-8000-0000000000b2";
    Serial serial;
    start_guest(src, &serial);
    HvMigrateStats stats;
    Receiver r;
    g_autoptr(XapiError) err = NULL;
    /* The destination's RAM is twice the source's: it cannot load the state. */
    assert_int_equal(migrate(src, dst, 512 * MiB, &stats, &r, &err), -1);
    printf("# refused: %s\n", (char *)err->params->pdata[0]);
    assert_int_equal(r.rc, -1);
    xapi_error_free(r.err);
    assert_int_equal(t.drv->status(dst).state, HV_ABSENT);
    assert_int_equal(t.drv->status(src).state, HV_RUNNING);
    g_auto(GStrv) check = memcheck(&serial);
    assert_string_equal(check[1], "ok");
    serial_close(&serial);
    assert_true(image_locked()); /* the source kept its image */
    assert_int_equal(t.drv->destroy(src, NULL), 0);
}

static int setup(void **state)
{
    const char *root = g_getenv("SOURCE_ROOT");
    const char *build = g_getenv("BUILD_ROOT");
    g_autofree char *qemu = g_find_program_in_path("qemu-system-x86_64");
    if (!qemu || !root || !build) {
        printf("# skipped: no qemu-system-x86_64 (or not run by meson test)\n");
        exit(77);
    }
    t.guest = g_strdup(g_getenv("XAPID_TEST_GUEST"));
    if (!t.guest)
        t.guest = g_build_filename(build, "test-guest", NULL);
    g_autofree char *script = g_build_filename(root, "scripts", "build-test-guest", NULL);
    const char *argv[] = {script, t.guest, NULL};
    int status = 0;
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                      NULL, &status, NULL) ||
        !g_spawn_check_wait_status(status, NULL))
        return -1;
    t.dir = g_dir_make_tmp("xapid-migrate-XXXXXX", NULL);
    t.image = g_build_filename(t.dir, "disk.qcow2", NULL);
    const char *img[] = {"qemu-img", "create", "-q", "-f", "qcow2", t.image, "64M", NULL};
    if (!g_spawn_sync(NULL, (char **)img, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                      &status, NULL) ||
        !g_spawn_check_wait_status(status, NULL))
        return -1;
    g_autoptr(XapiError) err = NULL;
    /* An empty database in memory: the driver's network clean-up reads it. */
    if (db_open(NULL, &err) < 0)
        return -1;
    t.drv = hv_qemu_driver(t.dir, NULL, &err);
    return t.drv ? 0 : -1;
}

static int teardown(void **state)
{
    static const char *const uuids[] = {"6f2e0f39-0000-4000-8000-0000000000a1",
                                        "6f2e0f39-0000-4000-8000-0000000000a2",
                                        "6f2e0f39-0000-4000-8000-0000000000b1",
                                        "6f2e0f39-0000-4000-8000-0000000000b2"};
    for (size_t i = 0; t.drv && i < G_N_ELEMENTS(uuids); i++)
        t.drv->destroy(uuids[i], NULL); /* a failed test leaves no QEMU behind */
    const char *argv[] = {"rm", "-rf", t.dir, NULL};
    g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL,
                 NULL);
    db_close();
    g_free(t.dir);
    g_free(t.guest);
    g_free(t.image);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_migration),
        cmocka_unit_test(test_failed_migration_keeps_source),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
