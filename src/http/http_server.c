/* http_server.c: libmicrohttpd daemons (one per listener), request bodies,
 * routing by path to the RPC endpoint. One thread per connection: a call
 * that blocks (event.from) holds only its own connection.
 *
 * Hostile peers: connections are capped over the network listeners
 * (on_accept) and per client address (MHD); MHD closes a connection silent
 * for the idle timeout, and header_deadline.c one whose request line and
 * headers are not in within the header timeout, however slowly they
 * trickle. An RPC body is buffered up to the limit and no further (413);
 * other requests have theirs discarded. */
#include "http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "audit_log_http.h"
#include "cli_server.h"
#include "cli_upload.h"
#include "console_proxy.h"
#include "pool_migrate_http.h"
#include "pool_tunnel.h"
#include "header_deadline.h"
#include "pool_http.h"
#include "pool_role.h"
#include "http_transfer.h"
#include "rpc_endpoint.h"
#include "rrd_http.h"
#include "tls_cert.h"
#include "xva_http.h"

/* Per connection: the read buffer is about half of it. MHD clears the
 * whole pool, and a read buffer's worth more, at every request: 64 KiB
 * cost a small RPC 96 KiB of memset (half its instructions under
 * callgrind, 2-5 us), 32 KiB half that (VM.get_record -23% instructions,
 * bench/instructions_ab.py), for uploads in 16 KiB reads instead of 32
 * KiB ones (VDI import still 1.4x the plain file server's 64 KiB:
 * docs/bench.md). */
#define HTTP_CONNECTION_MEMORY ((size_t)32 * 1024)
/* Request bodies above this are rare, and may have cost megabytes. */
#define LARGE_BODY ((size_t)64 * 1024)

typedef struct Listener {
    HttpServer *server;
    struct MHD_Daemon *daemon;
    bool trusted;
    char *unix_path; /* unlinked on shutdown */
    char *key_pem, *cert_pem; /* TLS listeners; MHD keeps pointers to them */
    bool tls;                 /* set once, read by connection threads */
    char *handover_key;       /* "tcp:HOST:PORT", "tls:..." or "unix:PATH" as asked for */
    int fd;                   /* the listening socket */
    /* A TCP or TLS listener on an address other than loopback: one of the
     * management interface's, closed by host.management_disable. */
    bool management;
    char *host;  /* TCP and TLS: the address asked for (NULL: all of them) */
    int port;    /* the port bound */
    bool off;    /* management disabled: not on host (on loopback instead if host is all) */
} Listener;

/* A daemon that no longer accepts: it serves the connections it has until
 * the server is freed (MHD's quiesce: its socket is closed only then). */
typedef struct {
    struct MHD_Daemon *daemon;
    int fd;                   /* -1: the socket went on with a new daemon */
    char *key_pem, *cert_pem; /* a TLS daemon's, which MHD may still point to */
} Retired;

struct HttpServer {
    GPtrArray *listeners; /* Listener* */
    HttpLimits limits;
    HeaderDeadlines *deadlines; /* NULL without a header timeout */
    gint connections;           /* open, on TCP and TLS listeners (atomic) */
    GMutex management_lock;
    bool management_off;        /* host.management_disable */
    GArray *retired;            /* Retired */
    gint https_only;            /* pool.set_https_only: plain TCP refused (atomic) */
};

/* The host's server (the first made): host.management_disable acts on it. */
static HttpServer *host_server;

typedef struct Request {
    GString *body;          /* POST only: the RPC request */
    bool transfer;          /* VDI import or export (http_transfer.c) */
    bool console;           /* /console, answered at the first call (console_proxy.c) */
    bool cli;               /* POST /cli: xe's protocol once the body is in (cli_server.c) */
    HttpTransfer *transfer_state;
    bool xva;               /* VM import or export (src/xva/xva_http.c) */
    bool pool;              /* between the hosts of a pool (pool_http.c) */
    XvaHttp *xva_state;
} Request;

static enum MHD_Result send_reply(struct MHD_Connection *conn, unsigned status,
                                  const char *content_type, char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status,
                                 const char *text)
{
    char *body = g_strdup(text);
    /* MHD frees with free(); g_malloc is malloc on every supported GLib. */
    return send_reply(conn, status, "text/plain", body, strlen(body));
}

/* XAPI routes by longest prefix: every POST other than /jsonrpc and /json
 * reaches the "/" XML-RPC handler. /json is legacy and may carry either. */
static RpcProtocol protocol_for(const char *url, const GString *body)
{
    if (strcmp(url, "/jsonrpc") == 0)
        return RPC_JSON;
    if (strcmp(url, "/json") == 0)
        return rpc_protocol_sniff(body->str, body->len);
    return RPC_XML;
}

static enum MHD_Result on_options(struct MHD_Connection *conn)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, PUT, OPTIONS");
    MHD_add_response_header(r, "Access-Control-Allow-Headers", "Content-Type, Authorization");
    MHD_add_response_header(r, "Access-Control-Max-Age", "86400");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* A streamed reply. A producer thread formats it in blocks while this
 * connection's thread sends the previous ones, so that formatting and the
 * kernel's copy run on two cores; at most STREAM_BLOCKS_AHEAD blocks wait,
 * which bounds the memory a large reply takes. */
#define STREAM_BLOCK (256 * 1024)
#define STREAM_BLOCKS_AHEAD 2

typedef struct StreamState {
    RpcStream *stream;
    GMutex lock;
    GCond changed;
    GQueue blocks;     /* GString*, formatted and not yet sent */
    GQueue spare;      /* GString*, sent and kept for the producer to refill */
    bool produced;     /* the producer has written the last block */
    bool abandoned;    /* the connection went away: stop producing */
    GString *sending;  /* the block being sent */
    size_t offset;
    GThread *producer;
} StreamState;

static gpointer produce(gpointer data)
{
    StreamState *st = data;
    bool more = true;
    while (more) {
        g_mutex_lock(&st->lock);
        GString *block = g_queue_pop_head(&st->spare);
        g_mutex_unlock(&st->lock);
        if (block) /* reused: a fresh one would be new pages, each a fault */
            g_string_truncate(block, 0);
        else
            block = g_string_sized_new(STREAM_BLOCK + 64 * 1024);
        while (block->len < STREAM_BLOCK && (more = rpc_stream_next(st->stream, block)))
            ;
        g_mutex_lock(&st->lock);
        while (st->blocks.length >= STREAM_BLOCKS_AHEAD && !st->abandoned)
            g_cond_wait(&st->changed, &st->lock);
        if (st->abandoned) {
            g_mutex_unlock(&st->lock);
            g_string_free(block, TRUE);
            return NULL;
        }
        g_queue_push_tail(&st->blocks, block);
        st->produced = !more;
        g_cond_broadcast(&st->changed);
        g_mutex_unlock(&st->lock);
    }
    return NULL;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    StreamState *st = cls;
    while (!st->sending || st->offset == st->sending->len) {
        g_mutex_lock(&st->lock);
        if (st->sending)
            g_queue_push_tail(&st->spare, st->sending);
        st->sending = NULL;
        st->offset = 0;
        while (!st->blocks.length && !st->produced)
            g_cond_wait(&st->changed, &st->lock);
        st->sending = g_queue_pop_head(&st->blocks);
        g_cond_broadcast(&st->changed);
        g_mutex_unlock(&st->lock);
        if (!st->sending)
            return MHD_CONTENT_READER_END_OF_STREAM;
    }
    size_t n = MIN(max, st->sending->len - st->offset);
    memcpy(buf, st->sending->str + st->offset, n);
    st->offset += n;
    return (ssize_t)n;
}

static void free_block(gpointer block) { g_string_free(block, TRUE); }

static void stream_free(void *cls)
{
    StreamState *st = cls;
    g_mutex_lock(&st->lock);
    st->abandoned = true;
    g_cond_broadcast(&st->changed);
    g_mutex_unlock(&st->lock);
    g_thread_join(st->producer);
    g_queue_clear_full(&st->blocks, free_block);
    g_queue_clear_full(&st->spare, free_block);
    if (st->sending)
        g_string_free(st->sending, TRUE);
    rpc_stream_free(st->stream);
    g_mutex_clear(&st->lock);
    g_cond_clear(&st->changed);
    g_free(st);
}

static enum MHD_Result send_stream(struct MHD_Connection *conn, const char *content_type,
                                   RpcStream *stream)
{
    StreamState *st = g_new0(StreamState, 1);
    st->stream = stream;
    g_mutex_init(&st->lock);
    g_cond_init(&st->changed);
    g_queue_init(&st->blocks);
    g_queue_init(&st->spare);
    st->producer = g_thread_new("reply-producer", produce, st);
    struct MHD_Response *r = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read, st, stream_free);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

int http_connection_socket(struct MHD_Connection *conn, gnutls_session_t *tls)
{
    const union MHD_ConnectionInfo *fd =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    const union MHD_ConnectionInfo *session =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    *tls = session ? (gnutls_session_t)session->tls_session : NULL;
    return fd ? fd->connect_fd : -1;
}

const char *http_peer_address(struct MHD_Connection *conn, char *buf)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET)
        return inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, HTTP_PEER_BUF);
    if (sa && sa->sa_family == AF_INET6)
        return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf,
                         HTTP_PEER_BUF);
    return NULL;
}

static enum MHD_Result on_rpc(Listener *l, struct MHD_Connection *conn, const char *url,
                              Request *req)
{
    RpcProtocol protocol = protocol_for(url, req->body);
    enum MHD_Result forwarded;
    if (l->trusted && pool_http_forward_rpc(conn, protocol == RPC_JSON, url, req->body->str,
                                            req->body->len, &forwarded))
        return forwarded; /* a pool member's local caller, answered by the master */
    char peer[HTTP_PEER_BUF];
    DispatchOrigin origin = {.trusted = l->trusted, .peer = http_peer_address(conn, peer),
                             .task_ref = pool_http_rpc_prepare(conn)};
    RpcReply reply;
    /* A long-polling event.from may take longer than the idle timeout:
     * MHD (thread per connection) does not count the time this call takes
     * as the peer's silence (test_hostile_peers.py checks it). */
    rpc_endpoint_handle(protocol, req->body->str, req->body->len, &origin, &reply);
    if (req->body->allocated_len > LARGE_BODY) {
        /* The trees parsed from it are freed by now: give their pages back
         * (before the reply goes) rather than keep the high-water mark of
         * the worst peer. */
        g_string_free(g_steal_pointer(&req->body), TRUE);
        malloc_trim(0);
    }
    if (reply.stream)
        return send_stream(conn, reply.content_type, reply.stream);
    return send_reply(conn, (unsigned)reply.http_status, reply.content_type, reply.body,
                      reply.len);
}

static HeaderWatch *watch_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

static enum MHD_Result too_large(struct MHD_Connection *conn)
{
    return send_text(conn, MHD_HTTP_CONTENT_TOO_LARGE, "Request body too large\n");
}

/* A plain HTTP listener on TCP, which pool.set_https_only turns off. */
static bool refused_plain(const Listener *l)
{
    return !l->unix_path && !l->tls && g_atomic_int_get(&l->server->https_only);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    Listener *l = cls;
    Request *req = *con_cls;
    size_t limit = l->server->limits.rpc_body_limit;
    if (!req && refused_plain(l)) /* a connection from before https_only: closed */
        return MHD_NO;
    if (!req) { /* the headers are in */
        header_watch_disarm(watch_of(conn));
        req = g_new0(Request, 1);
        *con_cls = req;
        if (pool_tunnel_route(method, url))
            return pool_tunnel_serve(conn);
        /* Starting (the pool's nodes reach ours through the tunnel before
         * the database is open) or changing role in-process: only the
         * XenAPI endpoints answer, with HOST_STILL_BOOTING. */
        bool rpc = strcmp(url, "/") == 0 || strcmp(url, "/jsonrpc") == 0 ||
                   strcmp(url, "/json") == 0;
        if (pool_role_booting() && !(rpc && strcmp(method, MHD_HTTP_METHOD_POST) == 0))
            return send_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "HOST_STILL_BOOTING\n");
        if (pool_migrate_route(method, url))
            return pool_migrate_serve(conn);
        req->console = console_proxy_route(method, url);
        if (req->console)
            return console_proxy_serve(conn, l->trusted, method);
        if (rrd_http_route(method, url))
            return rrd_http_serve(conn, l->trusted, url);
        if (audit_log_http_route(method, url))
            return audit_log_http_serve(conn, l->trusted);
        if (cli_upload_route(method, url)) /* xe vdi-import's body */
            return cli_upload_serve(conn, url);
        req->cli = cli_route(method, url);
        req->pool = pool_http_route(method, url);
        if (req->pool && strcmp(method, MHD_HTTP_METHOD_GET) == 0)
            return pool_http_serve(conn, method, url, NULL, 0);
        req->transfer = http_transfer_route(method, url);
        if (req->transfer)
            return http_transfer_request(conn, l->trusted, url, upload_data, upload_data_size,
                                         &req->transfer_state);
        req->xva = xva_http_route(method, url);
        if (req->xva)
            return xva_http_request(conn, l->trusted, url, upload_data, upload_data_size,
                                    &req->xva_state);
        if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
            return MHD_YES;
        req->body = g_string_new(NULL);
        const char *length =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (req->cli)
            limit = CLI_BODY_LIMIT;
        if (req->pool)
            limit = POOL_HTTP_BODY_LIMIT;
        if (length && g_ascii_strtoull(length, NULL, 10) > limit)
            return too_large(conn); /* before a byte of the body is read */
        return MHD_YES;
    }
    if (req->transfer)
        return http_transfer_request(conn, l->trusted, url, upload_data, upload_data_size,
                                     &req->transfer_state);
    if (req->xva)
        return xva_http_request(conn, l->trusted, url, upload_data, upload_data_size,
                                &req->xva_state);
    if (req->console) { /* refused: its answer is queued, a body is dropped */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->cli)
        limit = CLI_BODY_LIMIT;
    if (req->pool)
        limit = POOL_HTTP_BODY_LIMIT;
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (!req->body)
            return MHD_YES; /* no use for a body here: read and dropped */
        if (req->body->len + n > limit) /* chunked, or longer than announced */
            return too_large(conn) == MHD_YES ? MHD_YES : MHD_NO;
        g_string_append_len(req->body, upload_data, (gssize)n);
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0)
        return on_options(conn);
    if (req->cli)
        return cli_serve(conn, l->trusted, req->body->str, req->body->len);
    if (req->pool) /* a GET was answered when its headers came */
        return req->body ? pool_http_serve(conn, method, url, req->body->str, req->body->len)
                         : MHD_YES;
    if (strcmp(method, MHD_HTTP_METHOD_POST) == 0)
        return on_rpc(l, conn, url, req);
    if (strcmp(method, MHD_HTTP_METHOD_GET) == 0 && strcmp(url, "/") == 0)
        return send_text(conn, MHD_HTTP_OK, "xapid: XenAPI on XML-RPC (POST /) and JSON-RPC (POST /jsonrpc)\n");
    return send_text(conn, MHD_HTTP_NOT_FOUND, "Not found\n");
}

/* The request line is in: its headers are due within the header timeout
 * (the first request's are due from the connection's start already). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    header_watch_arm(watch_of(conn));
    return NULL;
}

/* The cap on connections is the server's, over all its network
 * listeners; a connection past it is accepted and closed at once (MHD's own
 * limit would leave it waiting in the listen queue). The unix socket is
 * not counted: root on this host still gets in while the network is full
 * (XAPI too has a limit of its own for it). */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    Listener *l = cls;
    if (refused_plain(l))
        return MHD_NO;
    unsigned max = l->server->limits.max_connections;
    return l->unix_path || !max ||
                   (unsigned)g_atomic_int_get(&l->server->connections) < max
               ? MHD_YES
               : MHD_NO;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    Listener *l = cls;
    if (!l->unix_path)
        g_atomic_int_add(&l->server->connections,
                         code == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = info ? header_watch_add(l->server->deadlines, info->connect_fd) : NULL;
    } else {
        header_watch_remove(*socket_context);
        *socket_context = NULL;
    }
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    Listener *l = cls;
    Request *req = *con_cls;
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        header_watch_await_next(watch_of(conn), l->server->limits.idle_timeout);
    if (!req)
        return;
    if (req->transfer)
        http_transfer_completed(req->transfer_state, toe);
    if (req->xva)
        xva_http_completed(req->xva_state, toe);
    if (req->body)
        g_string_free(req->body, TRUE);
    g_free(req);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    g_autofree char *text = g_strdup_vprintf(fmt, ap);
    g_debug("http: %s", g_strchomp(text));
}

static void listener_free(Listener *l)
{
    g_free(l->host);
    g_free(l->handover_key);
    g_free(l->unix_path);
    g_free(l->key_pem);
    g_free(l->cert_pem);
    g_free(l);
}

/* A daemon serving l's connections accepted on fd. */
static struct MHD_Daemon *run_daemon(HttpServer *s, Listener *l, int fd)
{
    /* poll(), not select(): with hundreds of connections, descriptors pass
     * FD_SETSIZE. */
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ERROR_LOG | MHD_USE_ITC | MHD_USE_POLL;
    if (l->cert_pem)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem tls[] = {
        {l->cert_pem ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, l->key_pem},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, l->cert_pem},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES},
        {MHD_OPTION_END, 0, NULL},
    };
    const HttpLimits *lim = &s->limits;
    /* No per-address cap on the unix socket: every caller there is root. */
    unsigned per_ip = l->unix_path ? 0 : lim->max_connections_per_ip;
    /* MHD's own cap only backs ours up (on_accept): at it, MHD stops
     * accepting and leaves connections waiting in the listen queue. */
    unsigned mhd_limit = lim->max_connections ? lim->max_connections + 64 : FD_SETSIZE - 4;
    return MHD_start_daemon(flags, 0, on_accept, l, on_request, l,
                                 MHD_OPTION_LISTEN_SOCKET, fd,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, l,
                                 MHD_OPTION_NOTIFY_CONNECTION, on_connection, l,
                                 MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
                                 MHD_OPTION_CONNECTION_TIMEOUT, lim->idle_timeout,
                                 MHD_OPTION_CONNECTION_LIMIT, mhd_limit,
                                 MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTP_CONNECTION_MEMORY,
                                 MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                                 MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
}

static int start_management_off(HttpServer *s, Listener *l, XapiError **err);

static int start_daemon(HttpServer *s, Listener *l, int fd, XapiError **err)
{
    l->server = s;
    l->fd = fd;
    if (l->management && s->management_off) {
        g_ptr_array_add(s->listeners, l);
        return start_management_off(s, l, err);
    }
    l->daemon = run_daemon(s, l, fd);
    if (!l->daemon) {
        close(fd);
        listener_free(l);
        return xapi_error_internal(err, "cannot start the HTTP server");
    }
    g_ptr_array_add(s->listeners, l);
    return 0;
}

/* Listening sockets handed over by the xapid that re-executed itself
 * (host.restart_agent): the kernel keeps queueing connections meanwhile,
 * so clients wait instead of being refused, and a port bound as ":0"
 * stays the same. Key (listener_key) -> fd. */
#define HANDOVER_ENV "XAPID_LISTEN_FDS"
static GHashTable *handed_over;

static void take_handover(void)
{
    handed_over = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    const char *env = g_getenv(HANDOVER_ENV);
    g_auto(GStrv) items = env ? g_strsplit(env, "\n", -1) : NULL;
    for (char **i = items; i && *i; i++) {
        char *eq = strrchr(*i, '=');
        if (eq)
            g_hash_table_insert(handed_over, g_strndup(*i, (gsize)(eq - *i)),
                                GINT_TO_POINTER(atoi(eq + 1)));
    }
    g_unsetenv(HANDOVER_ENV);
}

/* The socket handed over for key, made close-on-exec again; -1 if none. */
static int handed_over_fd(const char *key)
{
    gpointer stolen_key, fd;
    if (!handed_over || !g_hash_table_steal_extended(handed_over, key, &stolen_key, &fd))
        return -1;
    g_free(stolen_key);
    fcntl(GPOINTER_TO_INT(fd), F_SETFD, FD_CLOEXEC);
    return GPOINTER_TO_INT(fd);
}

void http_server_prepare_reexec(HttpServer *s)
{
    GString *env = g_string_new(NULL);
    for (guint i = 0; i < s->listeners->len; i++) {
        Listener *l = s->listeners->pdata[i];
        if (!l->handover_key || l->off) /* the new image binds it again */
            continue;
        fcntl(l->fd, F_SETFD, 0);
        g_string_append_printf(env, "%s%s=%d", env->len ? "\n" : "", l->handover_key, l->fd);
    }
    g_setenv(HANDOVER_ENV, env->str, TRUE);
    g_string_free(env, TRUE);
}

bool http_server_is_listener_fd(HttpServer *s, int fd)
{
    for (guint i = 0; i < s->listeners->len; i++)
        if (((Listener *)s->listeners->pdata[i])->fd == fd)
            return true;
    return false;
}

HttpServer *http_server_new(const HttpLimits *limits)
{
    if (!handed_over)
        take_handover();
    HttpServer *s = g_new0(HttpServer, 1);
    s->listeners = g_ptr_array_new();
    s->limits = *limits;
    s->deadlines = header_deadlines_new(limits->header_timeout);
    s->retired = g_array_new(FALSE, FALSE, sizeof(Retired));
    g_mutex_init(&s->management_lock);
    if (!host_server)
        host_server = s;
    return s;
}

static int split_host_port(const char *text, char **host, char **port, XapiError **err)
{
    const char *colon = strrchr(text, ':');
    if (!colon || !colon[1])
        return xapi_error_internal(err, "listen address %s is not HOST:PORT", text);
    const char *h = text;
    size_t hlen = (size_t)(colon - text);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    *host = hlen ? g_strndup(h, hlen) : NULL;
    *port = g_strdup(colon + 1);
    return 0;
}

/* Whether host (a listen address, NULL: all addresses) is loopback only. */
static bool is_loopback(const char *host)
{
    struct in_addr v4;
    struct in6_addr v6;
    if (!host)
        return false;
    if (inet_pton(AF_INET, host, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &v6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&v6);
    return strcmp(host, "localhost") == 0;
}

static bool is_any(const char *host)
{
    return !host || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

static int listen_tcp_socket(const char *host_port, XapiError **err)
{
    g_autofree char *host = NULL, *port = NULL;
    if (split_host_port(host_port, &host, &port, err) < 0)
        return -1;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        xapi_error_internal(err, "cannot resolve %s: %s", host_port, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
        int e = errno;
        freeaddrinfo(ai);
        if (fd >= 0)
            close(fd);
        xapi_error_internal(err, "cannot listen on %s: %s", host_port, g_strerror(e));
        return -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/* The port the kernel gave a listening socket (the one asked for, or a free
 * one for port 0), so that a caller need not pick a free port and race. */
static int bound_port(int fd)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0)
        return -1;
    if (addr.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
    return ntohs(((struct sockaddr_in *)&addr)->sin_port);
}

/* A TCP listener's socket (handed over by a previous xapid, or bound
 * now) and its record, keyed "<kind>:<host_port>" for the next hand-over. */
static Listener *tcp_listener(const char *kind, const char *host_port, int *fd, int *port,
                              XapiError **err)
{
    g_autofree char *key = g_strconcat(kind, ":", host_port, NULL);
    *fd = handed_over_fd(key);
    if (*fd < 0 && (*fd = listen_tcp_socket(host_port, err)) < 0)
        return NULL;
    *port = bound_port(*fd);
    Listener *l = g_new0(Listener, 1);
    l->handover_key = g_steal_pointer(&key);
    g_autofree char *port_text = NULL;
    split_host_port(host_port, &l->host, &port_text, NULL);
    l->port = *port;
    l->management = !is_loopback(l->host);
    return l;
}

int http_server_listen_tcp(HttpServer *s, const char *host_port, XapiError **err)
{
    int fd, port;
    Listener *l = tcp_listener("tcp", host_port, &fd, &port, err);
    return !l || start_daemon(s, l, fd, err) < 0 ? -1 : port;
}

int http_server_listen_tls(HttpServer *s, const char *host_port, const char *key_pem,
                           const char *cert_pem, XapiError **err)
{
    int fd, port;
    Listener *l = tcp_listener("tls", host_port, &fd, &port, err);
    if (!l)
        return -1;
    l->tls = true;
    l->key_pem = g_strdup(key_pem);
    l->cert_pem = g_strdup(cert_pem);
    return start_daemon(s, l, fd, err) < 0 ? -1 : port;
}

int http_server_listen_unix(HttpServer *s, const char *path, XapiError **err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path)
        return xapi_error_internal(err, "unix socket path too long: %s", path);
    strcpy(addr.sun_path, path);
    g_autofree char *key = g_strconcat("unix:", path, NULL);
    int fd = handed_over_fd(key);
    if (fd < 0) {
        unlink(path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    } else if (access(path, F_OK) < 0) {
        close(fd); /* its name is gone: a new socket */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    } else {
        goto listening;
    }
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 ||
        chmod(path, 0600) < 0 || listen(fd, 128) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return xapi_error_internal(err, "cannot listen on %s: %s", path, g_strerror(e));
    }
listening:;
    Listener *l = g_new0(Listener, 1);
    l->handover_key = g_steal_pointer(&key);
    l->trusted = true;
    l->unix_path = g_strdup(path);
    return start_daemon(s, l, fd, err);
}

/* ---- host.management_disable: the management interface's listeners ---------
 * As XAPI's Xapi_mgmt_iface (Server.update to Local [127.0.0.1]): the
 * listeners on an address other than loopback stop listening (a client
 * there is refused), one on all addresses listens on loopback only; those
 * on loopback and the unix socket go on. Connections already open go on
 * too (the caller's own reply goes out). */

static void retired_clear(Retired *r)
{
    if (r->fd >= 0)
        close(r->fd);
    g_free(r->key_pem);
    g_free(r->cert_pem);
}

/* l's daemon stops accepting and its socket refuses connections. */
static void retire(HttpServer *s, Listener *l)
{
    Retired r = {l->daemon, l->fd};
    if (l->daemon)
        MHD_quiesce_daemon(l->daemon);
    shutdown(l->fd, SHUT_RDWR);
    g_array_append_val(s->retired, r);
    l->daemon = NULL;
    l->fd = -1;
}

/* l served again on host (NULL: all) at its port. */
static int serve_on(HttpServer *s, Listener *l, const char *host, XapiError **err)
{
    bool v6 = host && strchr(host, ':');
    g_autofree char *host_port =
        g_strdup_printf("%s%s%s:%d", v6 ? "[" : "", host ? host : "", v6 ? "]" : "", l->port);
    int fd = listen_tcp_socket(host_port, err);
    if (fd < 0)
        return -1;
    struct MHD_Daemon *d = run_daemon(s, l, fd);
    if (!d) {
        close(fd);
        return xapi_error_internal(err, "cannot start the HTTP server on %s", host_port);
    }
    l->daemon = d;
    l->fd = fd;
    return 0;
}

static const char *loopback_of(const Listener *l)
{
    return l->host && strchr(l->host, ':') ? "::1" : "127.0.0.1";
}

/* l (listening on its address, or a socket bound to it) off it. */
static int start_management_off(HttpServer *s, Listener *l, XapiError **err)
{
    retire(s, l);
    l->off = true;
    return is_any(l->host) ? serve_on(s, l, loopback_of(l), err) : 0;
}

/* Retired daemons whose connections have all ended go (none can come:
 * they accept no more; one serving the caller still counts it). */
static void sweep_retired(HttpServer *s)
{
    for (guint i = s->retired->len; i-- > 0;) {
        Retired *r = &g_array_index(s->retired, Retired, i);
        const union MHD_DaemonInfo *info =
            r->daemon ? MHD_get_daemon_info(r->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS) : NULL;
        if (r->daemon && (!info || info->num_connections > 0))
            continue;
        if (r->daemon)
            MHD_stop_daemon(r->daemon);
        retired_clear(r);
        g_array_remove_index(s->retired, i);
    }
}

int http_server_set_management(bool enabled, XapiError **err)
{
    HttpServer *s = host_server;
    if (!s)
        return xapi_error_internal(err, "no HTTP server");
    g_mutex_lock(&s->management_lock);
    sweep_retired(s);
    int rc = 0;
    for (guint i = 0; i < s->listeners->len && rc == 0; i++) {
        Listener *l = s->listeners->pdata[i];
        if (!l->management || l->off == !enabled)
            continue;
        if (!enabled) {
            rc = start_management_off(s, l, err);
            continue;
        }
        if (l->daemon) /* the loopback stand-in of an all-addresses listener */
            retire(s, l);
        rc = serve_on(s, l, l->host, err);
        if (rc == 0)
            l->off = false;
    }
    if (rc == 0)
        s->management_off = !enabled;
    g_mutex_unlock(&s->management_lock);
    return rc;
}

/* ---- the host certificate and pool.set_https_only ---------------------- */

int http_server_set_tls_certificate(const char *key_pem, const char *cert_pem, XapiError **err)
{
    HttpServer *s = host_server;
    if (!s)
        return xapi_error_internal(err, "no HTTP server");
    g_mutex_lock(&s->management_lock);
    sweep_retired(s);
    int rc = 0;
    for (guint i = 0; i < s->listeners->len && rc == 0; i++) {
        Listener *l = s->listeners->pdata[i];
        if (!l->tls)
            continue;
        Retired r = {.daemon = l->daemon, .fd = -1, .key_pem = l->key_pem,
                     .cert_pem = l->cert_pem};
        l->key_pem = g_strdup(key_pem);
        l->cert_pem = g_strdup(cert_pem);
        if (!l->daemon) { /* off (management disabled): it starts with the new one */
            retired_clear(&r);
            continue;
        }
        /* The socket stays open and listening: connections queue meanwhile,
         * and those open go on with the old certificate until they end. */
        MHD_quiesce_daemon(l->daemon);
        g_array_append_val(s->retired, r);
        l->daemon = run_daemon(s, l, l->fd);
        if (!l->daemon) {
            g_free(l->key_pem);
            g_free(l->cert_pem);
            l->key_pem = g_strdup(r.key_pem);
            l->cert_pem = g_strdup(r.cert_pem);
            l->daemon = run_daemon(s, l, l->fd);
            rc = xapi_error_internal(err, "cannot serve HTTPS with the new certificate");
        }
    }
    g_mutex_unlock(&s->management_lock);
    return rc;
}

void http_server_set_https_only(bool on)
{
    if (host_server)
        g_atomic_int_set(&host_server->https_only, on);
}

void http_server_set_management_at_start(HttpServer *s, bool enabled)
{
    s->management_off = !enabled;
}

bool http_server_management_enabled(void)
{
    return host_server && !host_server->management_off;
}

void http_server_free(HttpServer *s)
{
    if (!s)
        return;
    if (host_server == s)
        host_server = NULL;
    for (guint i = 0; i < s->retired->len; i++) {
        Retired *r = &g_array_index(s->retired, Retired, i);
        if (r->daemon)
            MHD_stop_daemon(r->daemon);
        retired_clear(r);
    }
    g_array_free(s->retired, TRUE);
    g_mutex_clear(&s->management_lock);
    for (guint i = 0; i < s->listeners->len; i++) {
        Listener *l = s->listeners->pdata[i];
        if (l->daemon)
            MHD_stop_daemon(l->daemon);
        if (l->unix_path)
            unlink(l->unix_path);
        listener_free(l);
    }
    g_ptr_array_unref(s->listeners);
    header_deadlines_free(s->deadlines);
    g_free(s);
}
