/* migrate_link.c: the relay between a migrating QEMU and the connection to
 * the peer host, and the handshake on it (migrate_link.h has both). One
 * thread per link does all the I/O, non-blocking, with bounded buffers:
 * QEMU is read only while the connection keeps up, and the other way. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate_link.h"

#define CHUNK (256 * 1024)
#define HIGH_WATER (4 * 1024 * 1024) /* buffered bytes before a side stops reading */

/* Bytes waiting to be written: the front is at off. */
typedef struct {
    GByteArray *bytes;
    size_t off;
} Buf;

static size_t buf_len(const Buf *b) { return b->bytes->len - b->off; }

static void buf_consumed(Buf *b, size_t n)
{
    b->off += n;
    if (b->off == b->bytes->len) {
        g_byte_array_set_size(b->bytes, 0);
        b->off = 0;
    } else if (b->off > HIGH_WATER) {
        g_byte_array_remove_range(b->bytes, 0, (guint)b->off);
        b->off = 0;
    }
}

struct MigrateLink {
    int conn;
    int relay_end;  /* ours of the pair with QEMU */
    int qemu_end;   /* QEMU's, until the ops' start */
    int wake[2];    /* a byte in it: look at the flags again */
    int64_t idle_us;
    GThread *thread;

    GMutex lock;
    GCond cond;
    Buf to_conn;       /* framed bytes for the peer (lock) */
    GQueue heard;      /* char *, handshake messages from the peer (lock) */
    char *failure;     /* why the link broke, or NULL (lock) */
    bool peer_closed;  /* the peer closed the connection (lock) */
    bool closing;      /* free: flush to_conn, then stop (lock) */
    int64_t flush_deadline; /* for closing (lock) */
    int64_t sent, received; /* QEMU's stream bytes (lock) */

    /* The relay thread's own. */
    Buf to_qemu;
    bool qemu_read_done;  /* QEMU's stream ended (its 'E' is queued) */
    bool qemu_write_dead; /* QEMU no longer reads: its bytes are dropped */
    bool peer_stream_end; /* the peer's 'E': shut QEMU's input once drained */
    bool conn_read_done;
    MigrateFrameParser parser;
    GString *control;
};

void migrate_frame_header(uint8_t out[4], char type, uint32_t length)
{
    out[0] = (uint8_t)type;
    out[1] = (uint8_t)(length >> 16);
    out[2] = (uint8_t)(length >> 8);
    out[3] = (uint8_t)length;
}

/* A frame for the peer (lock held). */
static void queue_frame(MigrateLink *link, char type, const void *payload, size_t length)
{
    uint8_t header[4];
    migrate_frame_header(header, type, (uint32_t)length);
    g_byte_array_append(link->to_conn.bytes, header, 4);
    if (length)
        g_byte_array_append(link->to_conn.bytes, payload, (guint)length);
}

static void wake(MigrateLink *link)
{
    char c = 1;
    while (write(link->wake[1], &c, 1) < 0 && errno == EINTR)
        ;
}

/* The link breaks (lock held): QEMU's end and the connection are shut so
 * that QEMU's migration and the peer both notice at once. */
static void fail_locked(MigrateLink *link, const char *why)
{
    if (!link->failure)
        link->failure = g_strdup(why);
    shutdown(link->relay_end, SHUT_RDWR);
    shutdown(link->conn, SHUT_RDWR);
    g_cond_broadcast(&link->cond);
}

static void fail(MigrateLink *link, const char *why)
{
    g_mutex_lock(&link->lock);
    fail_locked(link, why);
    g_mutex_unlock(&link->lock);
}

size_t migrate_frame_parse(MigrateFrameParser *p, const uint8_t *buf, size_t n,
                           MigrateFrameEvent *ev)
{
    *ev = (MigrateFrameEvent){MIGRATE_EVENT_NONE, NULL, 0, false};
    if (p->left == 0) { /* a header, or the rest of one */
        size_t take = MIN(n, 4 - p->header_have);
        memcpy(p->header + p->header_have, buf, take);
        p->header_have += take;
        if (p->header_have < 4)
            return take;
        p->header_have = 0;
        p->type = (char)p->header[0];
        p->left = (uint32_t)p->header[1] << 16 | (uint32_t)p->header[2] << 8 | p->header[3];
        switch (p->type) {
        case MIGRATE_FRAME_DATA:
            p->type = p->left ? MIGRATE_FRAME_DATA : 0;
            return take;
        case MIGRATE_FRAME_END:
            ev->kind = p->left ? MIGRATE_EVENT_ERROR : MIGRATE_EVENT_END;
            p->type = 0;
            return ev->kind == MIGRATE_EVENT_ERROR ? n : take;
        case MIGRATE_FRAME_CONTROL:
            if (p->left)
                return take;
            ev->kind = MIGRATE_EVENT_CONTROL; /* an empty message */
            ev->last = true;
            p->type = 0;
            return take;
        default:
            ev->kind = MIGRATE_EVENT_ERROR;
            p->type = 0;
            p->left = 0;
            return n;
        }
    }
    size_t take = MIN(n, p->left);
    ev->kind = p->type == MIGRATE_FRAME_DATA ? MIGRATE_EVENT_DATA : MIGRATE_EVENT_CONTROL;
    ev->data = buf;
    ev->len = take;
    p->left -= (uint32_t)take;
    if (p->left == 0) {
        ev->last = true;
        p->type = 0;
    }
    return take;
}

/* Bytes read from the connection, through the parser. */
static int parse(MigrateLink *link, const uint8_t *p, size_t n)
{
    while (n > 0) {
        MigrateFrameEvent ev;
        size_t used = migrate_frame_parse(&link->parser, p, n, &ev);
        p += used, n -= used;
        switch (ev.kind) {
        case MIGRATE_EVENT_ERROR:
            return -1;
        case MIGRATE_EVENT_DATA:
            if (!link->qemu_write_dead)
                g_byte_array_append(link->to_qemu.bytes, ev.data, (guint)ev.len);
            g_mutex_lock(&link->lock);
            link->received += (int64_t)ev.len;
            g_mutex_unlock(&link->lock);
            break;
        case MIGRATE_EVENT_END:
            link->peer_stream_end = true;
            break;
        case MIGRATE_EVENT_CONTROL:
            g_string_append_len(link->control, (const char *)ev.data, (gssize)ev.len);
            if (ev.last) {
                g_mutex_lock(&link->lock);
                g_queue_push_tail(&link->heard, g_string_free(link->control, FALSE));
                link->control = g_string_new(NULL);
                g_cond_broadcast(&link->cond);
                g_mutex_unlock(&link->lock);
            }
            break;
        case MIGRATE_EVENT_NONE:
            break;
        }
    }
    return 0;
}

static bool would_block(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/* One round of reading the connection. -1: the link failed. */
static int read_conn(MigrateLink *link, uint8_t *scratch)
{
    ssize_t got = recv(link->conn, scratch, CHUNK, MSG_DONTWAIT);
    if (got < 0 && would_block())
        return 0;
    if (got <= 0) {
        link->conn_read_done = true;
        g_mutex_lock(&link->lock);
        link->peer_closed = true;
        /* A stream cut short must not look complete to QEMU. */
        if (!link->peer_stream_end)
            shutdown(link->relay_end, SHUT_WR);
        g_cond_broadcast(&link->cond);
        g_mutex_unlock(&link->lock);
        return 0;
    }
    if (parse(link, scratch, (size_t)got) < 0) {
        fail(link, "the peer sent something that is not a migration frame");
        return -1;
    }
    return 1;
}

static void read_qemu(MigrateLink *link, uint8_t *scratch)
{
    ssize_t got = recv(link->relay_end, scratch, CHUNK, MSG_DONTWAIT);
    if (got < 0 && would_block())
        return;
    g_mutex_lock(&link->lock);
    if (got <= 0) { /* QEMU closed its end (or is gone): its stream is over */
        link->qemu_read_done = true;
        queue_frame(link, MIGRATE_FRAME_END, NULL, 0);
    } else {
        queue_frame(link, MIGRATE_FRAME_DATA, scratch, (size_t)got);
        link->sent += got;
    }
    g_mutex_unlock(&link->lock);
}

/* -1: the connection failed. 1: progress. */
static int write_conn(MigrateLink *link)
{
    g_mutex_lock(&link->lock);
    size_t len = buf_len(&link->to_conn);
    ssize_t put = len ? send(link->conn, link->to_conn.bytes->data + link->to_conn.off, len,
                             MSG_DONTWAIT | MSG_NOSIGNAL)
                      : 0;
    int rc = 0;
    if (put > 0) {
        buf_consumed(&link->to_conn, (size_t)put);
        rc = 1;
    } else if (put < 0 && !would_block()) {
        g_autofree char *why = g_strdup_printf("cannot write to the peer: %s", g_strerror(errno));
        fail_locked(link, why);
        rc = -1;
    }
    g_mutex_unlock(&link->lock);
    return rc;
}

static void write_qemu(MigrateLink *link)
{
    size_t len = buf_len(&link->to_qemu);
    if (len) {
        ssize_t put = send(link->relay_end, link->to_qemu.bytes->data + link->to_qemu.off, len,
                           MSG_DONTWAIT | MSG_NOSIGNAL);
        if (put > 0) {
            buf_consumed(&link->to_qemu, (size_t)put);
        } else if (put < 0 && !would_block()) {
            /* QEMU stopped reading (done, or gone): what it would get goes. */
            link->qemu_write_dead = true;
            g_byte_array_set_size(link->to_qemu.bytes, 0);
            link->to_qemu.off = 0;
        }
    }
    if (link->peer_stream_end && buf_len(&link->to_qemu) == 0 && !link->qemu_write_dead) {
        shutdown(link->relay_end, SHUT_WR);
        link->qemu_write_dead = true;
    }
}

static gpointer relay(gpointer data)
{
    MigrateLink *link = data;
    g_autofree uint8_t *scratch = g_malloc(CHUNK);
    int64_t last_progress = g_get_monotonic_time();
    for (;;) {
        g_mutex_lock(&link->lock);
        bool failed = link->failure != NULL;
        size_t pending = buf_len(&link->to_conn);
        bool closing = link->closing;
        bool done = closing && (!pending || g_get_monotonic_time() >= link->flush_deadline);
        g_mutex_unlock(&link->lock);
        if (failed || done)
            break;
        /* QEMU is read while what it sent before is being written, up to
         * the high-water mark; the connection likewise. */
        struct pollfd fds[3] = {
            {.fd = link->wake[0], .events = POLLIN},
            {.fd = link->conn,
             .events = (short)((!link->conn_read_done && buf_len(&link->to_qemu) < HIGH_WATER
                                    ? POLLIN : 0) |
                               (pending ? POLLOUT : 0))},
            {.fd = link->relay_end,
             .events = (short)((!link->qemu_read_done && pending < HIGH_WATER ? POLLIN : 0) |
                               (buf_len(&link->to_qemu) && !link->qemu_write_dead ? POLLOUT : 0))},
        };
        int64_t left_ms = (last_progress + link->idle_us - g_get_monotonic_time()) / 1000;
        if (left_ms <= 0) {
            g_autofree char *why = g_strdup_printf(
                "nothing moved on the connection to the peer for %" G_GINT64_FORMAT " s",
                link->idle_us / G_USEC_PER_SEC);
            fail(link, why);
            break;
        }
        if (fds[1].events == 0)
            fds[1].fd = -1;
        if (fds[2].events == 0)
            fds[2].fd = -1;
        int n = poll(fds, 3, (int)MIN(left_ms, closing ? 10 : 1000));
        if (n < 0 && errno != EINTR) {
            fail(link, g_strerror(errno));
            break;
        }
        if (n <= 0)
            continue;
        if (fds[0].revents & POLLIN) {
            char drain[64];
            while (read(link->wake[0], drain, sizeof drain) > 0)
                ;
        }
        if (fds[1].revents & (POLLIN | POLLHUP | POLLERR) && fds[1].events & POLLIN) {
            int r = read_conn(link, scratch);
            if (r < 0)
                break;
            if (r > 0)
                last_progress = g_get_monotonic_time();
        }
        if (fds[2].revents & (POLLIN | POLLHUP | POLLERR) && fds[2].events & POLLIN)
            read_qemu(link, scratch);
        if (fds[2].revents & (POLLOUT | POLLERR | POLLHUP) || link->peer_stream_end)
            write_qemu(link);
        if (fds[1].revents & (POLLOUT | POLLERR | POLLHUP) && fds[1].events & POLLOUT) {
            int r = write_conn(link);
            if (r < 0)
                break;
            if (r > 0)
                last_progress = g_get_monotonic_time();
        }
    }
    return NULL;
}

MigrateLink *migrate_link_new(int conn, int64_t idle_timeout_ms, XapiError **err)
{
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
        xapi_error_internal(err, "socketpair: %s", g_strerror(errno));
        return NULL;
    }
    MigrateLink *link = g_new0(MigrateLink, 1);
    if (pipe2(link->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        xapi_error_internal(err, "pipe: %s", g_strerror(errno));
        close(pair[0]);
        close(pair[1]);
        g_free(link);
        return NULL;
    }
    link->conn = conn;
    link->relay_end = pair[0];
    link->qemu_end = pair[1];
    link->idle_us = (idle_timeout_ms > 0 ? idle_timeout_ms : MIGRATE_IDLE_TIMEOUT_MS) * 1000;
    g_mutex_init(&link->lock);
    g_cond_init(&link->cond);
    link->to_conn.bytes = g_byte_array_new();
    link->to_qemu.bytes = g_byte_array_new();
    g_queue_init(&link->heard);
    link->control = g_string_new(NULL);
    link->thread = g_thread_new("migrate-link", relay, link);
    return link;
}

void migrate_link_say(MigrateLink *link, const char *message)
{
    g_mutex_lock(&link->lock);
    queue_frame(link, MIGRATE_FRAME_CONTROL, message, MIN(strlen(message), MIGRATE_FRAME_MAX));
    g_mutex_unlock(&link->lock);
    wake(link);
}

char *migrate_link_hear(MigrateLink *link, int64_t deadline, XapiError **err)
{
    g_mutex_lock(&link->lock);
    char *message = NULL;
    while (!(message = g_queue_pop_head(&link->heard)) && !link->failure && !link->peer_closed)
        if (!g_cond_wait_until(&link->cond, &link->lock, deadline))
            break;
    if (!message && link->failure)
        xapi_error_internal(err, "migration link: %s", link->failure);
    else if (!message && link->peer_closed)
        xapi_error_internal(err, "migration link: the peer closed the connection");
    else if (!message)
        xapi_error_internal(err, "migration link: no answer from the peer in time");
    g_mutex_unlock(&link->lock);
    return message;
}

void migrate_link_abort(MigrateLink *link, const char *why)
{
    fail(link, why);
    wake(link);
}

void migrate_link_counts(MigrateLink *link, int64_t *sent, int64_t *received)
{
    g_mutex_lock(&link->lock);
    *sent = link->sent;
    *received = link->received;
    g_mutex_unlock(&link->lock);
}

void migrate_link_free(MigrateLink *link, int64_t flush_deadline)
{
    if (!link)
        return;
    g_mutex_lock(&link->lock);
    link->closing = true;
    link->flush_deadline = flush_deadline;
    g_mutex_unlock(&link->lock);
    wake(link); /* the relay stops once it wrote what was said, or at the deadline */
    g_thread_join(link->thread);
    close(link->relay_end);
    if (link->qemu_end >= 0)
        close(link->qemu_end);
    close(link->wake[0]);
    close(link->wake[1]);
    g_byte_array_unref(link->to_conn.bytes);
    g_byte_array_unref(link->to_qemu.bytes);
    g_queue_clear_full(&link->heard, g_free);
    g_string_free(link->control, TRUE);
    g_free(link->failure);
    g_mutex_clear(&link->lock);
    g_cond_clear(&link->cond);
    g_free(link);
}

char *migrate_error_text(const XapiError *err)
{
    GString *text = g_string_new(err ? err->code : "UNKNOWN");
    for (guint i = 0; err && i < err->params->len; i++)
        g_string_append_printf(text, "%s%s", i ? " " : ": ", (char *)err->params->pdata[i]);
    for (char *c = text->str; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    return g_string_free(text, FALSE);
}

/* ---- the handshake ----------------------------------------------------------- */

static int64_t idle_deadline(const MigrateLink *link)
{
    return g_get_monotonic_time() + link->idle_us;
}

/* QEMU's end of the pair goes to the ops' start, and from us. */
static int start_qemu(MigrateLink *link, int (*start)(void *, int, XapiError **), void *ctx,
                      XapiError **err)
{
    int fd = link->qemu_end;
    link->qemu_end = -1;
    int rc = start(ctx, fd, err);
    close(fd);
    return rc;
}

static bool is_word(const char *message, const char *word)
{
    size_t n = strlen(word);
    return strncmp(message, word, n) == 0 && (message[n] == '\0' || message[n] == ' ');
}

static const char *details(const char *message)
{
    const char *space = strchr(message, ' ');
    return space ? space + 1 : "";
}

/* The peer's message m is unexpected. */
static int protocol_error(const char *m, XapiError **err)
{
    return xapi_error_internal(err, "migration link: unexpected message from the peer: %.80s", m);
}

/* Says "abort WHY" (source) or "failed WHY" (destination) for err. */
static void say_error(MigrateLink *link, const char *word, const XapiError *why)
{
    g_autofree char *text = migrate_error_text(why);
    g_autofree char *message = g_strdup_printf("%s %s", word, text);
    migrate_link_say(link, message);
}

/* The reason the peer gave, if it already sent one (instead of ours, which
 * is only that the link broke). */
static void prefer_peer_reason(MigrateLink *link, const char *word, const char *side,
                               XapiError **err)
{
    g_autoptr(XapiError) none = NULL;
    g_autofree char *m = migrate_link_hear(link, g_get_monotonic_time(), &none);
    if (m && is_word(m, word) && err && *err) {
        g_clear_pointer(err, xapi_error_free);
        xapi_error_internal(err, "the %s: %s", side, details(m));
    }
}

int migrate_link_send(MigrateLink *link, const MigrateSourceOps *ops, void *ctx, XapiError **err)
{
    g_autofree char *ready = migrate_link_hear(link, idle_deadline(link), err);
    if (!ready)
        return -1;
    if (is_word(ready, "failed"))
        return xapi_error_internal(err, "the destination could not start the domain: %s",
                                   details(ready));
    if (!is_word(ready, "ready"))
        return protocol_error(ready, err);
    if (start_qemu(link, ops->start, ctx, err) < 0 || ops->wait_sent(ctx, err) < 0) {
        prefer_peer_reason(link, "failed", "destination", err);
        say_error(link, "abort", err ? *err : NULL);
        return -1;
    }
    g_autofree char *loaded = migrate_link_hear(link, idle_deadline(link), err);
    if (!loaded || !is_word(loaded, "loaded")) {
        if (loaded && is_word(loaded, "failed"))
            xapi_error_internal(err, "the destination could not load the domain: %s",
                                details(loaded));
        else if (loaded)
            protocol_error(loaded, err);
        g_autoptr(XapiError) ignored = NULL;
        ops->resume(ctx, &ignored);
        return -1;
    }
    migrate_link_say(link, ops->was_running(ctx) ? "go running" : "go paused");
    g_autoptr(XapiError) silence = NULL;
    g_autofree char *running = migrate_link_hear(link, idle_deadline(link), &silence);
    if (!running)
        return xapi_error_internal(err,
                                   "the destination did not confirm that it took the domain "
                                   "over (%s): the domain is left paused here, and may run "
                                   "there",
                                   silence ? (char *)silence->params->pdata[0] : "?");
    if (!is_word(running, "running")) {
        if (is_word(running, "failed"))
            xapi_error_internal(err, "the destination could not take the domain over: %s",
                                details(running));
        else
            protocol_error(running, err);
        g_autoptr(XapiError) ignored = NULL;
        ops->resume(ctx, &ignored);
        return -1;
    }
    ops->finish(ctx);
    return 0;
}

int migrate_link_receive(MigrateLink *link, const MigrateDestOps *ops, void *ctx,
                         XapiError **err)
{
    migrate_link_say(link, "ready");
    if (start_qemu(link, ops->start, ctx, err) < 0 || ops->wait_loaded(ctx, err) < 0) {
        prefer_peer_reason(link, "abort", "source", err);
        ops->discard(ctx);
        say_error(link, "failed", err ? *err : NULL);
        return -1;
    }
    migrate_link_say(link, "loaded");
    g_autofree char *go = migrate_link_hear(link, idle_deadline(link), err);
    if (!go || !is_word(go, "go")) {
        if (go && is_word(go, "abort"))
            xapi_error_internal(err, "the source: %s", details(go));
        else if (go)
            protocol_error(go, err);
        ops->discard(ctx);
        return -1;
    }
    if (ops->run(ctx, strcmp(details(go), "running") == 0, err) < 0) {
        ops->discard(ctx);
        say_error(link, "failed", err ? *err : NULL);
        return -1;
    }
    migrate_link_say(link, "running");
    return 0;
}

void migrate_link_refuse(MigrateLink *link, const XapiError *why)
{
    say_error(link, "failed", why);
    migrate_link_free(link, g_get_monotonic_time() + 5 * G_USEC_PER_SEC);
}

/* ---- migrations under way ----------------------------------------------------- */

static struct {
    GMutex lock;
    GHashTable *links;     /* uuid -> MigrateLink (not owned) */
    GHashTable *cancelled; /* uuids whose migration was cancelled */
} active;

void migrate_link_register(const char *uuid, MigrateLink *link)
{
    g_mutex_lock(&active.lock);
    if (!active.links) {
        active.links = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        active.cancelled = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    }
    g_hash_table_replace(active.links, g_strdup(uuid), link);
    g_hash_table_remove(active.cancelled, uuid);
    g_mutex_unlock(&active.lock);
}

int migrate_link_unregister(const char *uuid, int rc, XapiError **err)
{
    g_mutex_lock(&active.lock);
    bool cancelled = active.links && g_hash_table_remove(active.links, uuid) &&
                     g_hash_table_remove(active.cancelled, uuid);
    g_mutex_unlock(&active.lock);
    if (cancelled && rc < 0 && err) {
        g_clear_pointer(err, xapi_error_free);
        xapi_error_internal(err, "the migration was cancelled");
    }
    return rc;
}

void migrate_link_cancel(const char *uuid)
{
    g_mutex_lock(&active.lock);
    MigrateLink *link = active.links ? g_hash_table_lookup(active.links, uuid) : NULL;
    if (link) {
        g_hash_table_add(active.cancelled, g_strdup(uuid));
        migrate_link_abort(link, "the migration was cancelled");
    }
    g_mutex_unlock(&active.lock);
}
