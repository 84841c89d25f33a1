/* qmp.c: QMP over a unix socket: greeting, capabilities, commands, events. */
#include "qmp.h"

#include <errno.h>
#include <stdbool.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct QmpConn {
    int fd;
    int timeout_ms;
    bool closed;  /* the other end closed the connection */
    GString *buf; /* bytes read and not yet consumed */
};

void qmp_close(QmpConn *q)
{
    if (!q)
        return;
    if (q->fd >= 0)
        close(q->fd);
    g_string_free(q->buf, TRUE);
    g_free(q);
}

/* Reads one line (without its end); NULL at EOF, error or timeout. */
static char *read_line(QmpConn *q)
{
    for (;;) {
        char *nl = memchr(q->buf->str, '\n', q->buf->len);
        if (nl) {
            size_t n = (size_t)(nl - q->buf->str);
            char *line = g_strndup(q->buf->str, n);
            g_string_erase(q->buf, 0, (gssize)n + 1);
            return line;
        }
        if (q->timeout_ms > 0) {
            struct pollfd p = {.fd = q->fd, .events = POLLIN};
            int r;
            do
                r = poll(&p, 1, q->timeout_ms);
            while (r < 0 && errno == EINTR);
            if (r <= 0)
                return NULL;
        }
        char chunk[4096];
        ssize_t got;
        do
            got = read(q->fd, chunk, sizeof chunk);
        while (got < 0 && errno == EINTR);
        if (got <= 0) {
            q->closed = got == 0;
            return NULL;
        }
        g_string_append_len(q->buf, chunk, got);
    }
}

json_object *qmp_read(QmpConn *q)
{
    for (;;) {
        g_autofree char *line = read_line(q);
        if (!line)
            return NULL;
        g_strstrip(line);
        if (!*line)
            continue;
        json_object *msg = json_tokener_parse(line);
        if (msg && json_object_is_type(msg, json_type_object))
            return msg;
        json_object_put(msg);
        g_warning("qmp: ignoring a line that is not a JSON object: %.80s", line);
    }
}

static int send_all(QmpConn *q, const char *text, XapiError **err)
{
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = send(q->fd, text + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return xapi_error_internal(err, "QMP: write failed: %s", g_strerror(errno));
        off += (size_t)n;
    }
    return 0;
}

json_object *qmp_execute(QmpConn *q, const char *command, const char *args, XapiError **err)
{
    g_autofree char *text = args ? g_strdup_printf("{\"execute\":\"%s\",\"arguments\":%s}\n",
                                                   command, args)
                                 : g_strdup_printf("{\"execute\":\"%s\"}\n", command);
    if (send_all(q, text, err) < 0)
        return NULL;
    for (;;) {
        json_object *msg = qmp_read(q);
        if (!msg) {
            xapi_error_internal(err, "QMP: no reply to %s", command);
            return NULL;
        }
        json_object *ret, *error;
        if (json_object_object_get_ex(msg, "return", &ret)) {
            json_object_get(ret);
            json_object_put(msg);
            return ret;
        }
        if (json_object_object_get_ex(msg, "error", &error)) {
            json_object *desc = NULL;
            json_object_object_get_ex(error, "desc", &desc);
            xapi_error_internal(err, "QMP %s: %s", command,
                                desc ? json_object_get_string(desc) : "error");
            json_object_put(msg);
            return NULL;
        }
        json_object_put(msg); /* an event meanwhile */
    }
}

/* QEMU serves one monitor client at a time. Right after a guest shut
 * itself down, QEMU has been seen closing a new monitor connection before
 * sending the greeting (VM.clean_reboot's system_reset, in the XO
 * lifecycle test, about one run in fifteen). Nothing was sent on such a
 * connection, so it is tried again until the greeting's time is up. */
#define CONNECT_RETRY_US (20 * 1000)

/* Connects and reads the greeting; NULL with err set on failure, and
 * *dropped when QEMU closed the connection without greeting. */
static QmpConn *connect_once(const struct sockaddr_un *addr, int greeting_ms, bool *dropped,
                             XapiError **err)
{
    *dropped = false;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)addr, sizeof *addr) < 0) {
        xapi_error_internal(err, "QMP: cannot connect to %s: %s", addr->sun_path,
                            g_strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    QmpConn *q = g_new0(QmpConn, 1);
    q->fd = fd;
    q->timeout_ms = greeting_ms;
    q->buf = g_string_new(NULL);
    json_object *greeting = qmp_read(q);
    json_object *unused = NULL;
    if (!greeting || !json_object_object_get_ex(greeting, "QMP", &unused)) {
        *dropped = !greeting && q->closed;
        json_object_put(greeting);
        qmp_close(q);
        xapi_error_internal(err, "QMP: no greeting on %s", addr->sun_path);
        return NULL;
    }
    json_object_put(greeting);
    return q;
}

QmpConn *qmp_connect(const char *socket_path, int timeout_ms, XapiError **err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(socket_path) >= sizeof addr.sun_path) {
        xapi_error_internal(err, "QMP socket path too long: %s", socket_path);
        return NULL;
    }
    strcpy(addr.sun_path, socket_path);
    int greeting_ms = timeout_ms > 0 ? timeout_ms : 10000;
    int64_t deadline = g_get_monotonic_time() + (int64_t)greeting_ms * 1000;
    QmpConn *q;
    for (;;) {
        bool dropped;
        g_autoptr(XapiError) attempt_error = NULL;
        q = connect_once(&addr, greeting_ms, &dropped, &attempt_error);
        if (q)
            break;
        if (!dropped || g_get_monotonic_time() + CONNECT_RETRY_US >= deadline) {
            if (err)
                *err = g_steal_pointer(&attempt_error);
            return NULL;
        }
        g_usleep(CONNECT_RETRY_US);
    }
    json_object *ok = qmp_execute(q, "qmp_capabilities", NULL, err);
    if (!ok && err && *err) {
        qmp_close(q);
        return NULL;
    }
    json_object_put(ok);
    q->timeout_ms = timeout_ms;
    return q;
}

json_object *qmp_run(const char *socket_path, const char *command, const char *args,
                     XapiError **err)
{
    QmpConn *q = qmp_connect(socket_path, 10000, err);
    if (!q)
        return NULL;
    json_object *ret = qmp_execute(q, command, args, err);
    qmp_close(q);
    return ret;
}

/* ---- passing a file descriptor (getfd, for hot-plugged NICs' taps) ---------- */

json_object *qmp_execute_with_fd(QmpConn *q, const char *command, const char *args, int fd,
                                 XapiError **err)
{
    /* The fd rides on the command's first byte (SCM_RIGHTS); QEMU keeps it
     * for the monitor connection it came on. */
    g_autofree char *text = g_strdup_printf("{\"execute\":\"%s\",\"arguments\":%s}\n", command,
                                            args);
    char control[CMSG_SPACE(sizeof(int))];
    memset(control, 0, sizeof control);
    struct iovec iov = {.iov_base = text, .iov_len = 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                         .msg_controllen = sizeof control};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    ssize_t n;
    do
        n = sendmsg(q->fd, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n != 1) {
        xapi_error_internal(err, "QMP: cannot pass a file descriptor: %s", g_strerror(errno));
        return NULL;
    }
    /* The rest of the command, then its reply as for any other. */
    if (send_all(q, text + 1, err) < 0)
        return NULL;
    for (;;) {
        json_object *reply = qmp_read(q);
        if (!reply) {
            xapi_error_internal(err, "QMP: no reply to %s", command);
            return NULL;
        }
        json_object *ret, *error;
        if (json_object_object_get_ex(reply, "return", &ret)) {
            json_object_get(ret);
            json_object_put(reply);
            return ret;
        }
        if (json_object_object_get_ex(reply, "error", &error)) {
            json_object *desc = NULL;
            json_object_object_get_ex(error, "desc", &desc);
            xapi_error_internal(err, "QMP %s: %s", command,
                                desc ? json_object_get_string(desc) : "error");
            json_object_put(reply);
            return NULL;
        }
        json_object_put(reply);
    }
}
