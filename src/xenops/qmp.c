/* qmp.c: a domain's persistent QMP connection (libvirt's qemu_monitor.c
 * is the model): one socket for the domain's life, a reader thread that
 * matches replies to queued commands by id and dispatches events.
 *
 * QEMU serves one client per monitor socket and keeps it as long as it
 * stays open, so nothing reconnects between commands: the window in which
 * QEMU was seen closing a fresh connection before its greeting (right
 * after a guest shutdown) no longer exists. */
#include "qmp.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* No reply in this long means QEMU is wedged (every command we send
 * answers at once; long jobs such as migration report through events). */
#define COMMAND_TIMEOUT_US (60 * G_USEC_PER_SEC)

typedef struct {
    int64_t id;
    json_object *reply; /* the whole message, once it came */
    bool done;
} Pending;

struct QmpMonitor {
    int fd;
    char *path;
    QmpCallbacks cb;
    void *opaque;
    GString *buf;        /* bytes read and not yet consumed (reader thread) */
    GThread *reader;
    GMutex lock;         /* the fields below, and writes to fd */
    GCond replied;
    GQueue pending;      /* Pending*, in the order sent */
    int64_t next_id;
    bool dead;           /* the connection ended: commands fail at once */
    bool closing;        /* qmp_monitor_close is under way: no eof callback */
};

/* One line (without its end) or NULL at EOF or error; waits at most
 * timeout_ms when > 0, for ever otherwise. */
static char *read_line(QmpMonitor *m, int timeout_ms)
{
    for (;;) {
        char *nl = memchr(m->buf->str, '\n', m->buf->len);
        if (nl) {
            size_t n = (size_t)(nl - m->buf->str);
            char *line = g_strndup(m->buf->str, n);
            g_string_erase(m->buf, 0, (gssize)n + 1);
            return line;
        }
        if (timeout_ms > 0) {
            struct pollfd p = {.fd = m->fd, .events = POLLIN};
            int r;
            do
                r = poll(&p, 1, timeout_ms);
            while (r < 0 && errno == EINTR);
            if (r <= 0)
                return NULL;
        }
        char chunk[8192];
        ssize_t got;
        do
            got = read(m->fd, chunk, sizeof chunk);
        while (got < 0 && errno == EINTR);
        if (got <= 0)
            return NULL;
        g_string_append_len(m->buf, chunk, got);
    }
}

/* The next JSON object or NULL at EOF, error or timeout. */
static json_object *read_message(QmpMonitor *m, int timeout_ms)
{
    for (;;) {
        g_autofree char *line = read_line(m, timeout_ms);
        if (!line)
            return NULL;
        g_strstrip(line);
        if (!*line)
            continue;
        json_object *msg = json_tokener_parse(line);
        if (msg && json_object_is_type(msg, json_type_object))
            return msg;
        json_object_put(msg);
        g_warning("qmp %s: ignoring a line that is not a JSON object: %.80s", m->path, line);
    }
}

/* Writes text, with fd as SCM_RIGHTS on the first byte when >= 0 (lock
 * held: one command's bytes never interleave with another's). */
static int send_text(QmpMonitor *m, const char *text, int fd, XapiError **err)
{
    size_t len = strlen(text), off = 0;
    while (off < len) {
        struct iovec iov = {.iov_base = (char *)text + off, .iov_len = len - off};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } control;
        if (fd >= 0 && off == 0) {
            memset(&control, 0, sizeof control);
            msg.msg_control = control.buf;
            msg.msg_controllen = sizeof control.buf;
            struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(c), &fd, sizeof fd);
        }
        ssize_t n = sendmsg(m->fd, &msg, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return xapi_error_internal(err, "QMP %s: write failed: %s", m->path,
                                       g_strerror(errno));
        off += (size_t)n;
    }
    return 0;
}

/* The pending command a reply belongs to: by its id, or the oldest when
 * QEMU could not read one (a reply to a line it failed to parse). */
static Pending *match_reply(QmpMonitor *m, json_object *msg)
{
    json_object *id;
    if (!json_object_object_get_ex(msg, "id", &id))
        return g_queue_peek_head(&m->pending);
    int64_t want = json_object_get_int64(id);
    for (GList *l = m->pending.head; l; l = l->next) {
        Pending *p = l->data;
        if (p->id == want)
            return p;
    }
    return NULL;
}

static gpointer reader_main(gpointer data)
{
    QmpMonitor *m = data;
    for (json_object *msg; (msg = read_message(m, 0));) {
        json_object *event;
        if (json_object_object_get_ex(msg, "event", &event)) {
            json_object *event_data = NULL;
            json_object_object_get_ex(msg, "data", &event_data);
            if (m->cb.event)
                m->cb.event(m->opaque, json_object_get_string(event), event_data);
            json_object_put(msg);
            continue;
        }
        g_mutex_lock(&m->lock);
        Pending *p = match_reply(m, msg);
        if (p) {
            g_queue_remove(&m->pending, p);
            p->reply = msg;
            p->done = true;
            g_cond_broadcast(&m->replied);
        }
        g_mutex_unlock(&m->lock);
        if (!p) /* its command timed out and went away */
            json_object_put(msg);
    }
    g_mutex_lock(&m->lock);
    m->dead = true;
    bool tell = !m->closing;
    for (GList *l = m->pending.head; l; l = l->next)
        ((Pending *)l->data)->done = true; /* with no reply: they fail */
    g_queue_clear(&m->pending);
    g_cond_broadcast(&m->replied);
    g_mutex_unlock(&m->lock);
    if (tell && m->cb.eof)
        m->cb.eof(m->opaque);
    return NULL;
}

static void monitor_free(QmpMonitor *m)
{
    if (m->fd >= 0)
        close(m->fd);
    g_string_free(m->buf, TRUE);
    g_mutex_clear(&m->lock);
    g_cond_clear(&m->replied);
    g_free(m->path);
    g_free(m);
}

/* One exchange before the reader thread runs (no event can come before
 * capabilities are negotiated). */
static bool negotiate(QmpMonitor *m, int timeout_ms, XapiError **err)
{
    json_object *greeting = read_message(m, timeout_ms), *unused;
    bool ok = greeting && json_object_object_get_ex(greeting, "QMP", &unused);
    json_object_put(greeting);
    if (!ok) {
        xapi_error_internal(err, "QMP: no greeting on %s", m->path);
        return false;
    }
    if (send_text(m, "{\"execute\":\"qmp_capabilities\"}\n", -1, err) < 0)
        return false;
    json_object *reply = read_message(m, timeout_ms);
    ok = reply && json_object_object_get_ex(reply, "return", &unused);
    json_object_put(reply);
    if (!ok)
        xapi_error_internal(err, "QMP: capabilities refused on %s", m->path);
    return ok;
}

QmpMonitor *qmp_monitor_open(const char *socket_path, int timeout_ms, const QmpCallbacks *cb,
                             void *opaque, XapiError **err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(socket_path) >= sizeof addr.sun_path) {
        xapi_error_internal(err, "QMP socket path too long: %s", socket_path);
        return NULL;
    }
    strcpy(addr.sun_path, socket_path);
    QmpMonitor *m = g_new0(QmpMonitor, 1);
    m->path = g_strdup(socket_path);
    m->buf = g_string_new(NULL);
    m->cb = *cb;
    m->opaque = opaque;
    m->next_id = 1;
    g_mutex_init(&m->lock);
    g_cond_init(&m->replied);
    g_queue_init(&m->pending);
    m->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (m->fd < 0 || connect(m->fd, (const struct sockaddr *)&addr, sizeof addr) < 0) {
        xapi_error_internal(err, "QMP: cannot connect to %s: %s", socket_path,
                            g_strerror(errno));
        monitor_free(m);
        return NULL;
    }
    if (!negotiate(m, timeout_ms > 0 ? timeout_ms : 10000, err)) {
        monitor_free(m);
        return NULL;
    }
    m->reader = g_thread_new("qmp-reader", reader_main, m);
    return m;
}

void qmp_monitor_close(QmpMonitor *m)
{
    if (!m)
        return;
    g_mutex_lock(&m->lock);
    m->closing = true;
    g_mutex_unlock(&m->lock);
    shutdown(m->fd, SHUT_RDWR); /* wakes the reader */
    g_thread_join(m->reader);
    monitor_free(m);
}

static char *command_text(const char *command, json_object *args, int64_t id)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "execute", json_object_new_string(command));
    if (args)
        json_object_object_add(o, "arguments", args);
    json_object_object_add(o, "id", json_object_new_int64(id));
    char *text = g_strconcat(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), "\n",
                             NULL);
    json_object_put(o);
    return text;
}

/* The "return" value of a reply (taken), or NULL with err set. */
static json_object *reply_value(QmpMonitor *m, const char *command, json_object *reply,
                                XapiError **err)
{
    json_object *ret, *error;
    if (!reply) {
        xapi_error_internal(err, "QMP %s: no reply to %s (QEMU gone)", m->path, command);
        return NULL;
    }
    if (json_object_object_get_ex(reply, "return", &ret)) {
        json_object_get(ret);
        json_object_put(reply);
        return ret;
    }
    json_object *desc = NULL;
    if (json_object_object_get_ex(reply, "error", &error))
        json_object_object_get_ex(error, "desc", &desc);
    xapi_error_internal(err, "QMP %s: %s", command, desc ? json_object_get_string(desc) : "error");
    json_object_put(reply);
    return NULL;
}

json_object *qmp_monitor_command(QmpMonitor *m, const char *command, json_object *args, int fd,
                                 XapiError **err)
{
    g_mutex_lock(&m->lock);
    if (m->dead) {
        g_mutex_unlock(&m->lock);
        json_object_put(args);
        xapi_error_internal(err, "QMP %s: the connection to QEMU is gone", m->path);
        return NULL;
    }
    Pending p = {.id = m->next_id++};
    g_autofree char *text = command_text(command, args, p.id);
    g_queue_push_tail(&m->pending, &p);
    if (send_text(m, text, fd, err) < 0) {
        g_queue_remove(&m->pending, &p);
        g_mutex_unlock(&m->lock);
        return NULL;
    }
    int64_t deadline = g_get_monotonic_time() + COMMAND_TIMEOUT_US;
    while (!p.done)
        if (!g_cond_wait_until(&m->replied, &m->lock, deadline))
            break;
    if (!p.done) {
        g_queue_remove(&m->pending, &p);
        g_mutex_unlock(&m->lock);
        xapi_error_internal(err, "QMP %s: QEMU did not answer %s in time", m->path, command);
        return NULL;
    }
    g_mutex_unlock(&m->lock);
    return reply_value(m, command, p.reply, err);
}
