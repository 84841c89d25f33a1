/* migrate_link_test.c: the migration link's frames and handshake, between
 * two threads over a socket pair, with stand-in domains (a writer of a
 * known byte stream, a reader that checks it) and with the sim driver:
 * success, the destination failing to load, cancel, a peer that vanishes,
 * and a switch never confirmed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hv_driver.h"
#include "migrate_link.h"

#define STREAM_BYTES (8 * 1024 * 1024)

static uint8_t stream_byte(size_t i) { return (uint8_t)(i * 2654435761u >> 13); }

/* ---- a stand-in source: writes STREAM_BYTES (or forever) in a thread ---- */

typedef struct {
    int fd;
    size_t total; /* bytes to write; 0: STREAM_BYTES */
    bool endless;
    GThread *writer;
    int write_errno;
    size_t written;
    int resumed, finished;
} FakeSource;

static gpointer write_stream(gpointer data)
{
    FakeSource *s = data;
    uint8_t buf[65536];
    size_t total = s->total ? s->total : STREAM_BYTES;
    for (size_t i = 0; s->endless || i < total;) {
        size_t n = sizeof buf;
        if (!s->endless && n > total - i)
            n = total - i;
        for (size_t k = 0; k < n; k++)
            buf[k] = stream_byte(i + k);
        ssize_t put = send(s->fd, buf, n, MSG_NOSIGNAL);
        if (put < 0) {
            s->write_errno = errno;
            break;
        }
        i += (size_t)put;
        s->written = i;
    }
    close(s->fd); /* as QEMU closes its end at the end of the migration */
    return NULL;
}

static int fake_send_start(void *ctx, int fd, XapiError **err)
{
    FakeSource *s = ctx;
    s->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    s->writer = g_thread_new("writer", write_stream, s);
    return 0;
}

static int fake_wait_sent(void *ctx, XapiError **err)
{
    FakeSource *s = ctx;
    g_thread_join(g_steal_pointer(&s->writer));
    if (s->write_errno)
        return xapi_error_internal(err, "writing the stream: %s", g_strerror(s->write_errno));
    return 0;
}

static int fake_resume(void *ctx, XapiError **err)
{
    ((FakeSource *)ctx)->resumed++;
    return 0;
}

static void fake_finish(void *ctx) { ((FakeSource *)ctx)->finished++; }
static bool fake_was_running(void *ctx) { return true; }

static const MigrateSourceOps fake_source_ops = {fake_send_start, fake_wait_sent, fake_resume,
                                                 fake_finish, fake_was_running};

/* ---- a stand-in destination: reads and checks the stream ---- */

typedef struct {
    int fd;
    size_t read;
    bool bad_byte;
    bool fail_run;
    int ran, discarded;
} FakeDest;

static int fake_receive_start(void *ctx, int fd, XapiError **err)
{
    FakeDest *t = ctx;
    t->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    return 0;
}

static int fake_wait_loaded(void *ctx, XapiError **err)
{
    FakeDest *t = ctx;
    uint8_t buf[65536];
    ssize_t n;
    while ((n = read(t->fd, buf, sizeof buf)) > 0) {
        for (ssize_t k = 0; k < n; k++)
            t->bad_byte |= buf[k] != stream_byte(t->read + (size_t)k);
        t->read += (size_t)n;
    }
    close(t->fd);
    if (t->read != STREAM_BYTES || t->bad_byte)
        return xapi_error_internal(err, "the stream ended after %zu bytes", t->read);
    return 0;
}

static int fake_run(void *ctx, bool run, XapiError **err)
{
    FakeDest *t = ctx;
    if (t->fail_run)
        return xapi_error_internal(err, "cannot take the images");
    t->ran++;
    return 0;
}

static void fake_discard(void *ctx) { ((FakeDest *)ctx)->discarded++; }

static const MigrateDestOps fake_dest_ops = {fake_receive_start, fake_wait_loaded, fake_run,
                                             fake_discard};

/* ---- the two sides in two threads ---- */

typedef struct {
    int conn;
    FakeDest dest;
    int rc;
    XapiError *err;
    const char *uuid;
} Receiver;

static gpointer receive_thread(gpointer data)
{
    Receiver *r = data;
    MigrateLink *link = migrate_link_new(r->conn, 5000, &r->err);
    assert_non_null(link);
    migrate_link_register(r->uuid, link);
    r->rc = migrate_link_unregister(
        r->uuid, migrate_link_receive(link, &fake_dest_ops, &r->dest, &r->err), &r->err);
    migrate_link_free(link, g_get_monotonic_time() + G_USEC_PER_SEC);
    close(r->conn);
    return NULL;
}

static void conn_pair(int pair[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
}

static const char *message_of(const XapiError *err)
{
    return err && err->params->len ? err->params->pdata[0] : "";
}

static void test_frame_header(void **state)
{
    uint8_t h[4];
    migrate_frame_header(h, MIGRATE_FRAME_CONTROL, 5);
    assert_memory_equal(h, "C\0\0\5", 4);
    migrate_frame_header(h, MIGRATE_FRAME_DATA, 0x123456);
    assert_memory_equal(h, "D\x12\x34\x56", 4);
}

/* Frames cut into single bytes: the same messages and data; a frame of
 * an unknown type is an error. */
static void test_parser_pieces(void **state)
{
    static const uint8_t wire[] = "C\0\0\5readyD\0\0\3abcE\0\0\0C\0\0\0X\0\0\1";
    MigrateFrameParser p = {0};
    g_autoptr(GString) seen = g_string_new(NULL);
    bool error = false;
    for (size_t i = 0; i < sizeof wire - 1 && !error; i++) {
        MigrateFrameEvent ev;
        assert_int_equal(migrate_frame_parse(&p, wire + i, 1, &ev), 1);
        switch (ev.kind) {
        case MIGRATE_EVENT_DATA:
            g_string_append_c(seen, 'd');
            g_string_append_len(seen, (const char *)ev.data, (gssize)ev.len);
            break;
        case MIGRATE_EVENT_CONTROL:
            g_string_append_len(seen, (const char *)ev.data, (gssize)ev.len);
            if (ev.last)
                g_string_append_c(seen, '|');
            break;
        case MIGRATE_EVENT_END:
            g_string_append(seen, "<end>");
            break;
        case MIGRATE_EVENT_ERROR:
            error = true;
            break;
        case MIGRATE_EVENT_NONE:
            break;
        }
    }
    assert_string_equal(seen->str, "ready|dadbdc<end>|");
    assert_true(error);
}

/* What a destination says first, byte for byte. */
static void test_ready_on_the_wire(void **state)
{
    int pair[2];
    conn_pair(pair);
    Receiver r = {.conn = pair[1], .uuid = "wire"};
    GThread *t = g_thread_new("receiver", receive_thread, &r);
    uint8_t got[9];
    size_t have = 0;
    while (have < sizeof got) {
        ssize_t n = read(pair[0], got + have, sizeof got - have);
        assert_true(n > 0);
        have += (size_t)n;
    }
    assert_memory_equal(got, "C\0\0\5ready", 9);
    close(pair[0]); /* the source vanishes */
    g_thread_join(t);
    assert_int_equal(r.rc, -1);
    assert_int_equal(r.dest.discarded, 1);
    xapi_error_free(r.err);
}

static void test_stream_and_switch(void **state)
{
    int pair[2];
    conn_pair(pair);
    Receiver r = {.conn = pair[1], .uuid = "dst"};
    GThread *t = g_thread_new("receiver", receive_thread, &r);
    MigrateLink *link = migrate_link_new(pair[0], 5000, NULL);
    FakeSource s = {0};
    g_autoptr(XapiError) err = NULL;
    assert_int_equal(migrate_link_send(link, &fake_source_ops, &s, &err), 0);
    int64_t sent, received;
    migrate_link_counts(link, &sent, &received);
    migrate_link_free(link, g_get_monotonic_time() + G_USEC_PER_SEC);
    close(pair[0]);
    g_thread_join(t);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.dest.read, STREAM_BYTES);
    assert_false(r.dest.bad_byte);
    assert_int_equal(r.dest.ran, 1);
    assert_int_equal(s.finished, 1);
    assert_int_equal(s.resumed, 0);
    assert_int_equal(sent, STREAM_BYTES);
    assert_int_equal(received, 0);
}

/* The destination cannot take the images at the switch: the source runs
 * the guest again. */
static void test_switch_refused(void **state)
{
    int pair[2];
    conn_pair(pair);
    Receiver r = {.conn = pair[1], .uuid = "dst", .dest.fail_run = true};
    GThread *t = g_thread_new("receiver", receive_thread, &r);
    MigrateLink *link = migrate_link_new(pair[0], 5000, NULL);
    FakeSource s = {0};
    g_autoptr(XapiError) err = NULL;
    assert_int_equal(migrate_link_send(link, &fake_source_ops, &s, &err), -1);
    assert_non_null(strstr(message_of(err), "cannot take the images"));
    migrate_link_free(link, g_get_monotonic_time() + G_USEC_PER_SEC);
    close(pair[0]);
    g_thread_join(t);
    assert_int_equal(r.rc, -1);
    assert_int_equal(r.dest.discarded, 1);
    assert_int_equal(s.resumed, 1);
    assert_int_equal(s.finished, 0);
    xapi_error_free(r.err);
}

/* Cancels "src" once a few MiB of its stream went through. */
static gpointer cancel_soon(gpointer data)
{
    MigrateLink *link = data;
    for (int64_t sent = 0, received; sent < 2 * 1024 * 1024; g_usleep(1000))
        migrate_link_counts(link, &sent, &received);
    migrate_link_cancel("src");
    return NULL;
}

/* Cancelled while the stream flows: both sides fail at once; the source
 * is neither resumed by the handshake (QEMU does that itself) nor
 * finished, the destination discarded. */
static void test_cancel(void **state)
{
    int pair[2];
    conn_pair(pair);
    Receiver r = {.conn = pair[1], .uuid = "dst"};
    GThread *t = g_thread_new("receiver", receive_thread, &r);
    MigrateLink *link = migrate_link_new(pair[0], 5000, NULL);
    migrate_link_register("src", link);
    FakeSource s = {.endless = true};
    GThread *canceller = g_thread_new("canceller", cancel_soon, link);
    g_autoptr(XapiError) err = NULL;
    int rc = migrate_link_unregister("src", migrate_link_send(link, &fake_source_ops, &s, &err),
                                     &err);
    g_thread_join(canceller);
    assert_int_equal(rc, -1);
    assert_string_equal(message_of(err), "the migration was cancelled");
    assert_int_equal(s.resumed + s.finished, 0);
    migrate_link_free(link, g_get_monotonic_time() + G_USEC_PER_SEC);
    close(pair[0]);
    g_thread_join(t);
    assert_int_equal(r.rc, -1);
    assert_int_equal(r.dest.discarded, 1);
    assert_int_equal(r.dest.ran, 0);
    xapi_error_free(r.err);
}

typedef struct {
    MigrateLink *link;
    FakeSource source;
    int rc;
    XapiError *err;
} Sender;

static gpointer send_thread(gpointer data)
{
    Sender *s = data;
    s->rc = migrate_link_send(s->link, &fake_source_ops, &s->source, &s->err);
    return NULL;
}

/* A destination that vanishes after "go" without a word: the source
 * cannot know whether it runs the guest, so it neither resumes nor
 * finishes, and says so. */
static void test_switch_unconfirmed(void **state)
{
    int pair[2];
    conn_pair(pair);
    MigrateLink *dst = migrate_link_new(pair[1], 5000, NULL);
    Sender s = {.link = migrate_link_new(pair[0], 5000, NULL), .source.total = 1000};
    GThread *t = g_thread_new("sender", send_thread, &s);
    migrate_link_say(dst, "ready");
    migrate_link_say(dst, "loaded");
    g_autofree char *go = migrate_link_hear(dst, g_get_monotonic_time() + 5 * G_USEC_PER_SEC, NULL);
    assert_string_equal(go, "go running");
    migrate_link_free(dst, g_get_monotonic_time());
    close(pair[1]);
    g_thread_join(t);
    assert_int_equal(s.rc, -1);
    assert_non_null(strstr(message_of(s.err), "left paused here"));
    assert_int_equal(s.source.resumed + s.source.finished, 0);
    migrate_link_free(s.link, g_get_monotonic_time());
    close(pair[0]);
    xapi_error_free(s.err);
}

/* A peer that never says a word: the source gives up after the idle
 * timeout without starting anything. */
static void test_silent_peer(void **state)
{
    int pair[2];
    conn_pair(pair);
    MigrateLink *link = migrate_link_new(pair[0], 200, NULL);
    FakeSource s = {0};
    g_autoptr(XapiError) err = NULL;
    assert_int_equal(migrate_link_send(link, &fake_source_ops, &s, &err), -1);
    assert_non_null(strstr(message_of(err), "migration link"));
    assert_null(s.writer);
    assert_int_equal(s.resumed + s.finished, 0);
    migrate_link_free(link, g_get_monotonic_time());
    close(pair[0]);
    close(pair[1]);
}

/* The sim driver over the link: the domain moves with its memory, the
 * source is gone; a destination that fails to load leaves the source
 * running and no domain there. */
typedef struct {
    const HvDriver *drv;
    int conn;
    const char *uuid;
    Xv *vm;
    int rc;
    XapiError *err;
} SimReceiver;

static gpointer sim_receive(gpointer data)
{
    SimReceiver *r = data;
    r->rc = r->drv->migrate_receive(r->uuid, r->vm, NULL, 0, NULL, 0, r->conn, NULL, &r->err);
    close(r->conn);
    return NULL;
}

static Xv *sim_vm(const char *sim_migration)
{
    Xv *vm = xv_new_struct();
    xv_struct_set(vm, "memory_static_max", xv_new_int(1 << 30));
    xv_struct_set(vm, "VCPUs_at_startup", xv_new_int(2));
    xv_struct_set(vm, "VCPUs_max", xv_new_int(4));
    Xv *other = xv_new_struct();
    if (sim_migration)
        xv_struct_set(other, "sim_migration", xv_new_string(sim_migration));
    xv_struct_set(vm, "other_config", other);
    return vm;
}

static void test_sim_driver(void **state)
{
    const HvDriver *drv = hv_sim_driver(NULL);
    g_autoptr(Xv) vm = sim_vm(NULL);
    assert_int_equal(drv->start("a", vm, NULL, 0, NULL, 0, NULL, false, NULL), 0);
    assert_int_equal(drv->memory_target("a", 1 << 29, NULL), 0);
    int pair[2];
    conn_pair(pair);
    SimReceiver r = {drv, pair[1], "b", vm};
    GThread *t = g_thread_new("receiver", sim_receive, &r);
    HvMigrateStats stats;
    g_autoptr(XapiError) err = NULL;
    assert_int_equal(drv->migrate_send("a", pair[0], NULL, &stats, &err), 0);
    close(pair[0]);
    g_thread_join(t);
    assert_int_equal(r.rc, 0);
    assert_int_equal(drv->status("a").state, HV_ABSENT);
    assert_int_equal(drv->status("b").state, HV_RUNNING);
    assert_int_equal(drv->memory_actual("b", NULL), 1 << 29);
    assert_string_equal(stats.status, "completed");
    assert_true(stats.link_sent > 0);

    g_autoptr(Xv) failing = sim_vm("fail-load");
    conn_pair(pair);
    SimReceiver f = {drv, pair[1], "c", failing};
    t = g_thread_new("receiver", sim_receive, &f);
    assert_int_equal(drv->migrate_send("b", pair[0], NULL, &stats, &err), -1);
    close(pair[0]);
    g_thread_join(t);
    assert_non_null(strstr(message_of(err), "simulated"));
    assert_int_equal(f.rc, -1);
    assert_int_equal(drv->status("b").state, HV_RUNNING);
    assert_int_equal(drv->status("c").state, HV_ABSENT);
    xapi_error_free(f.err);
    drv->destroy("b", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_header),
        cmocka_unit_test(test_parser_pieces),
        cmocka_unit_test(test_ready_on_the_wire),
        cmocka_unit_test(test_stream_and_switch),
        cmocka_unit_test(test_switch_refused),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_switch_unconfirmed),
        cmocka_unit_test(test_silent_peer),
        cmocka_unit_test(test_sim_driver),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
