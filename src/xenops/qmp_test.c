/* qmp_test.c: the persistent monitor against a scripted QEMU on a unix
 * socket: greeting and capabilities, replies matched by id even out of
 * order, events dispatched between replies, a descriptor sent with a
 * command, pending commands failing when the connection ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "qmp.h"

typedef struct {
    char path[108];
    int listen_fd;
    int fd;          /* the accepted connection */
    GString *in;
} FakeQemu;

static void fake_listen(FakeQemu *q)
{
    g_autofree char *dir = g_dir_make_tmp("qmp-test-XXXXXX", NULL);
    g_snprintf(q->path, sizeof q->path, "%s/m.sock", dir);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, q->path);
    q->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(q->listen_fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(listen(q->listen_fd, 1), 0);
    q->in = g_string_new(NULL);
}

static void fake_send(FakeQemu *q, const char *line)
{
    g_autofree char *text = g_strconcat(line, "\n", NULL);
    assert_int_equal(write(q->fd, text, strlen(text)), (ssize_t)strlen(text));
}

/* The next line the monitor sent, and the descriptor that came with it. */
static char *fake_recv(FakeQemu *q, int *fd)
{
    for (;;) {
        char *nl = strchr(q->in->str, '\n');
        if (nl) {
            char *line = g_strndup(q->in->str, (gsize)(nl - q->in->str));
            g_string_erase(q->in, 0, nl - q->in->str + 1);
            return line;
        }
        char buf[4096];
        union {
            char b[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } control;
        struct iovec iov = {buf, sizeof buf};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.b,
                             .msg_controllen = sizeof control.b};
        ssize_t n = recvmsg(q->fd, &msg, 0);
        assert_true(n > 0);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        if (c && c->cmsg_type == SCM_RIGHTS && fd)
            memcpy(fd, CMSG_DATA(c), sizeof(int));
        g_string_append_len(q->in, buf, n);
    }
}

static int64_t id_of(const char *line)
{
    json_object *o = json_tokener_parse(line), *id;
    assert_true(json_object_object_get_ex(o, "id", &id));
    int64_t v = json_object_get_int64(id);
    json_object_put(o);
    return v;
}

/* Plays QEMU's side of the handshake. */
static gpointer handshake(gpointer data)
{
    FakeQemu *q = data;
    q->fd = accept(q->listen_fd, NULL, NULL);
    fake_send(q, "{\"QMP\": {\"version\": {}, \"capabilities\": []}}");
    g_autofree char *caps = fake_recv(q, NULL);
    assert_non_null(strstr(caps, "qmp_capabilities"));
    fake_send(q, "{\"return\": {}}");
    return NULL;
}

typedef struct {
    GMutex lock;
    GCond cond;
    GPtrArray *events;
    bool eof;
} Seen;

static void seen_event(void *opaque, const char *name, json_object *data)
{
    Seen *s = opaque;
    g_mutex_lock(&s->lock);
    g_ptr_array_add(s->events, g_strdup(name));
    g_cond_broadcast(&s->cond);
    g_mutex_unlock(&s->lock);
}

static void seen_eof(void *opaque)
{
    Seen *s = opaque;
    g_mutex_lock(&s->lock);
    s->eof = true;
    g_cond_broadcast(&s->cond);
    g_mutex_unlock(&s->lock);
}

static const QmpCallbacks callbacks = {seen_event, seen_eof};

typedef struct {
    QmpMonitor *m;
    const char *command;
    json_object *reply;
    char *error;
    int fd;
} Caller;

static gpointer call_command(gpointer data)
{
    Caller *c = data;
    XapiError *err = NULL;
    c->reply = qmp_monitor_command(c->m, c->command, NULL, c->fd ? c->fd : -1, &err);
    if (err) {
        c->error = g_strdup(err->params->len ? err->params->pdata[0] : err->code);
        xapi_error_free(err);
    }
    return NULL;
}

static QmpMonitor *open_monitor(FakeQemu *q, Seen *s)
{
    fake_listen(q);
    GThread *t = g_thread_new("fake", handshake, q);
    XapiError *err = NULL;
    QmpMonitor *m = qmp_monitor_open(q->path, 5000, &callbacks, s, &err);
    g_thread_join(t);
    assert_null(err);
    assert_non_null(m);
    return m;
}

static void test_replies_matched_by_id_and_events_dispatched(void **state)
{
    FakeQemu q = {0};
    Seen s = {.events = g_ptr_array_new_with_free_func(g_free)};
    QmpMonitor *m = open_monitor(&q, &s);
    Caller a = {m, "query-status"}, b = {m, "query-block"};
    GThread *ta = g_thread_new("a", call_command, &a);
    g_autofree char *line_a = fake_recv(&q, NULL);
    GThread *tb = g_thread_new("b", call_command, &b);
    g_autofree char *line_b = fake_recv(&q, NULL);
    assert_non_null(strstr(line_a, "query-status"));
    assert_non_null(strstr(line_b, "query-block"));
    /* An event between the replies, and the replies in reverse order. */
    fake_send(&q, "{\"event\": \"RESET\", \"data\": {\"guest\": true}}");
    g_autofree char *rb = g_strdup_printf("{\"return\": [\"b\"], \"id\": %" G_GINT64_FORMAT "}",
                                          id_of(line_b));
    g_autofree char *ra = g_strdup_printf("{\"return\": {\"status\": \"running\"}, \"id\": %"
                                          G_GINT64_FORMAT "}", id_of(line_a));
    fake_send(&q, rb);
    fake_send(&q, ra);
    g_thread_join(ta);
    g_thread_join(tb);
    assert_true(json_object_is_type(a.reply, json_type_object));
    assert_true(json_object_is_type(b.reply, json_type_array));
    assert_int_equal(s.events->len, 1);
    assert_string_equal(s.events->pdata[0], "RESET");
    json_object_put(a.reply);
    json_object_put(b.reply);
    qmp_monitor_close(m);
    assert_false(s.eof); /* closed by us: no eof callback */
    close(q.fd);
    g_ptr_array_unref(s.events);
}

static void test_error_reply_and_descriptor(void **state)
{
    FakeQemu q = {0};
    Seen s = {.events = g_ptr_array_new_with_free_func(g_free)};
    QmpMonitor *m = open_monitor(&q, &s);
    Caller c = {m, "bad-command"};
    GThread *t = g_thread_new("c", call_command, &c);
    g_autofree char *first = fake_recv(&q, NULL);
    g_autofree char *reply = g_strdup_printf(
        "{\"error\": {\"class\": \"GenericError\", \"desc\": \"nope\"}, \"id\": %"
        G_GINT64_FORMAT "}", id_of(first));
    fake_send(&q, reply);
    g_thread_join(t);
    assert_null(c.reply);
    assert_non_null(strstr(c.error, "nope"));
    g_free(c.error);

    /* A descriptor travels with its command (what getfd receives). */
    int pipe_fds[2];
    assert_int_equal(pipe(pipe_fds), 0);
    int received = -1;
    XapiError *err = NULL;
    Caller with_fd = {m, "getfd", .fd = pipe_fds[1]};
    t = g_thread_new("fd", call_command, &with_fd);
    g_autofree char *getfd = fake_recv(&q, &received);
    assert_non_null(strstr(getfd, "getfd"));
    assert_true(received >= 0);
    g_autofree char *getfd_reply = g_strdup_printf("{\"return\": {}, \"id\": %" G_GINT64_FORMAT "}",
                                                   id_of(getfd));
    fake_send(&q, getfd_reply);
    g_thread_join(t);
    assert_null(with_fd.error);
    assert_non_null(with_fd.reply);
    json_object_put(with_fd.reply);
    assert_int_equal(write(received, "!", 1), 1);
    char byte = 0;
    assert_int_equal(read(pipe_fds[0], &byte, 1), 1);
    assert_int_equal(byte, '!');
    close(received);
    close(pipe_fds[0]);
    close(pipe_fds[1]);

    /* QEMU goes away: a pending command fails, the driver hears of it,
     * and later commands fail at once. */
    Caller pending = {m, "query-status"};
    t = g_thread_new("p", call_command, &pending);
    g_autofree char *last = fake_recv(&q, NULL);
    close(q.fd);
    g_thread_join(t);
    assert_null(pending.reply);
    assert_non_null(pending.error);
    g_free(pending.error);
    g_mutex_lock(&s.lock);
    while (!s.eof)
        g_cond_wait(&s.cond, &s.lock);
    g_mutex_unlock(&s.lock);
    assert_null(qmp_monitor_command(m, "query-status", NULL, -1, &err));
    assert_non_null(err);
    xapi_error_free(err);
    qmp_monitor_close(m);
    g_ptr_array_unref(s.events);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replies_matched_by_id_and_events_dispatched),
        cmocka_unit_test(test_error_reply_and_descriptor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
