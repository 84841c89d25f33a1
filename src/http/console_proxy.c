/* console_proxy.c: /console as XAPI serves it (ocaml/xapi/console.ml,
 * ws_helpers.ml): CONNECT answers "HTTP/1.1 200 OK" (whatever version was
 * asked) and then carries the console's bytes both ways, raw RFB from the
 * VM's VNC server or the text of its serial port; GET with Upgrade:
 * websocket carries the same inside WebSocket binary messages (RFC 6455,
 * subprotocol "binary" as Xen Orchestra's noVNC asks, or none).
 *
 * The caller is authenticated first (http_auth.c; XAPI's
 * http/connect_console needs vm-operator or above): a wrong or missing
 * session gets 401 or 403 before anything of the VM is touched. The VM
 * must be Running (else 500, as XAPI) and here: in a pool, a VM resident
 * on another host gets 302 to that host (pool_redirect.h; XAPI answers
 * 500 there, its console.location naming the right host, which xapid's
 * names too); a console the driver does not serve is 404.
 *
 * Why the connection's socket is taken from libmicrohttpd rather than
 * handed over through MHD's upgrade API: MHD_queue_response accepts an
 * upgrade response only with status 101 and over HTTP/1.1, and MHD answers
 * a CONNECT with a 2xx as a reply without a body that ends the request,
 * not as a tunnel ("pass-through CONNECT is not supported by MHD",
 * connection.c of 0.9.75). XAPI's answer to CONNECT is 200, also to the
 * HTTP/1.0 CONNECT of Xen Orchestra's fallback. The access handler runs in
 * the connection's own thread (MHD_USE_THREAD_PER_CONNECTION), the only
 * thread in which MHD reads or writes that connection; so here, on the
 * first call, the handler writes the answer itself on the socket MHD
 * reports (MHD_CONNECTION_INFO_CONNECTION_FD, or its TLS session,
 * MHD_CONNECTION_INFO_GNUTLS_SESSION, for HTTPS), proxies until either
 * side ends, and returns MHD_NO, upon which MHD closes the connection
 * (sending TLS's close_notify). WebSocket takes the same way, so one loop
 * serves both transports and TLS needs no socketpair relay. Bytes a client
 * sends after its request but before the answer would sit unread in MHD's
 * buffer: neither an RFB nor a WebSocket client sends any. MHD_stop_daemon
 * shuts down every connection's socket, which ends a proxy too.
 *
 * The console ends when the VM stops: its QEMU exits (shutdown, suspend,
 * destroy) and its socket reads end-of-file; a WebSocket client gets a
 * close frame, 1001 (going away), first. A reboot happens in the same QEMU
 * (xapid resets the machine in place): its consoles go on.
 * Several clients may watch one console at once, as on XenServer: QEMU's
 * VNC server takes each as a client of its own, and a serial console is
 * shared through a hub (xenops/serial_hub.c), QEMU's serial port taking
 * one client at a time. */
#include "console_proxy.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "http_auth.h"
#include "http_server.h"
#include "http_actions.h"
#include "pool_redirect.h"
#include "vm_consoles.h"
#include "websocket.h"

#define PROXY_BUFFER (64 * 1024)

/* XAPI's RBAC permissions for the console handlers (datamodel.ml
 * http_actions: connect_console, connect_console_ws, _R_VM_OP). */
const DmMessage *console_proxy_permission(void) { return http_action("connect_console"); }

bool console_proxy_route(const char *method, const char *url)
{
    bool ours = strcmp(url, "/console") == 0 || strcmp(url, "/console/") == 0;
    return ours && (strcmp(method, MHD_HTTP_METHOD_CONNECT) == 0 ||
                    strcmp(method, MHD_HTTP_METHOD_GET) == 0);
}

/* ---- refusals, through MHD ---------------------------------------------- */

static enum MHD_Result refuse(struct MHD_Connection *conn, unsigned status, const XapiError *err,
                              const char *text)
{
    GString *body = g_string_new(err ? err->code : text);
    for (guint i = 0; err && i < err->params->len; i++)
        g_string_append_printf(body, " %s", (char *)err->params->pdata[i]);
    g_string_append_c(body, '\n');
    size_t len = body->len;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, g_string_free(body, FALSE), MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Basic realm=\"xapi\"");
    if (status == MHD_HTTP_UPGRADE_REQUIRED)
        MHD_add_response_header(r, "Sec-WebSocket-Version", "13");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- the two ends ---------------------------------------------------------- */

typedef struct {
    int fd;               /* the client's socket (non-blocking: MHD's) */
    gnutls_session_t tls; /* its TLS session, or NULL */
    int vm;               /* the console's socket (blocking) */
    bool ws;
    WsParser parser;
} Proxy;

#define AGAIN (-2)

/* Bytes from the client: > 0, 0 at its end, -1 on error, AGAIN. */
static ssize_t client_recv(Proxy *p, void *buf, size_t len)
{
    if (p->tls) {
        ssize_t n = gnutls_record_recv(p->tls, buf, len);
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            return AGAIN;
        return n < 0 ? -1 : n;
    }
    ssize_t n = recv(p->fd, buf, len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return AGAIN;
    return n;
}

/* All of buf to the client, waiting for room as needed; gives up when
 * the console's socket hangs up meanwhile (its VM stopped). */
static int client_send(Proxy *p, const void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n;
        if (p->tls) {
            n = gnutls_record_send(p->tls, (const char *)buf + done, len - done);
            if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
                n = AGAIN;
            else if (n < 0)
                return -1;
        } else {
            n = send(p->fd, (const char *)buf + done, len - done, MSG_NOSIGNAL);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                n = AGAIN;
            else if (n < 0)
                return -1;
        }
        if (n == AGAIN) {
            struct pollfd pf[2] = {{.fd = p->fd, .events = POLLOUT}, {.fd = p->vm, .events = 0}};
            if (poll(pf, p->vm >= 0 ? 2 : 1, -1) < 0 && errno != EINTR)
                return -1;
            if (p->vm >= 0 && (pf[1].revents & (POLLHUP | POLLERR)))
                return -1;
            continue;
        }
        done += (size_t)n;
    }
    return 0;
}

static int vm_send(Proxy *p, const void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = send(p->vm, (const char *)buf + done, len - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

/* ---- the proxy ------------------------------------------------------------------ */

static int ws_send_close(Proxy *p, uint16_t code)
{
    uint8_t frame[WS_CLOSE_FRAME_SIZE];
    return client_send(p, frame, ws_close_frame(frame, code));
}

/* What the console wrote, to the client; 0 when the console ended. */
static int from_vm(Proxy *p, uint8_t *buf)
{
    uint8_t *payload = buf + WS_HEADER_MAX;
    ssize_t n = recv(p->vm, payload, PROXY_BUFFER, 0);
    if (n < 0 && errno == EINTR)
        return 1;
    if (n <= 0)
        return 0;
    if (!p->ws)
        return client_send(p, payload, (size_t)n) < 0 ? -1 : 1;
    uint8_t header[WS_HEADER_MAX];
    size_t h = ws_frame_header(header, WS_OP_BINARY, (uint64_t)n);
    memcpy(payload - h, header, h); /* one frame, one write (one TLS record) */
    return client_send(p, payload - h, h + (size_t)n) < 0 ? -1 : 1;
}

/* The client's WebSocket frames: data to the console, pings answered.
 * 0 when the client closed or broke the protocol. */
static int ws_from_client(Proxy *p, uint8_t *buf, size_t len)
{
    while (len) {
        WsEvent ev;
        size_t n = ws_parse(&p->parser, buf, len, &ev);
        buf += n;
        len -= n;
        switch (ev.kind) {
        case WS_EVENT_DATA:
            if (vm_send(p, ev.data, ev.len) < 0)
                return -1;
            break;
        case WS_EVENT_PING: {
            uint8_t pong[WS_HEADER_MAX + sizeof p->parser.control];
            size_t h = ws_frame_header(pong, WS_OP_PONG, ev.len);
            memcpy(pong + h, ev.data, ev.len);
            if (client_send(p, pong, h + ev.len) < 0)
                return -1;
            break;
        }
        case WS_EVENT_CLOSE: /* echoed, as RFC 6455 5.5.1 asks */
            ws_send_close(p, ev.code == WS_CLOSE_NO_STATUS ? WS_CLOSE_NORMAL : ev.code);
            return 0;
        case WS_EVENT_ERROR:
            ws_send_close(p, ev.code);
            return 0;
        case WS_EVENT_PONG:
        case WS_EVENT_NONE:
            break;
        }
    }
    return 1;
}

/* What the client sent, to the console; 0 when the client ended. */
static int from_client(Proxy *p, uint8_t *buf)
{
    ssize_t n = client_recv(p, buf, PROXY_BUFFER);
    if (n == AGAIN)
        return 1;
    if (n <= 0)
        return 0;
    if (p->ws)
        return ws_from_client(p, buf, (size_t)n);
    return vm_send(p, buf, (size_t)n) < 0 ? -1 : 1;
}

static void run(Proxy *p)
{
    g_autofree uint8_t *to_client = g_malloc(WS_HEADER_MAX + PROXY_BUFFER);
    g_autofree uint8_t *to_vm = g_malloc(PROXY_BUFFER);
    for (;;) {
        /* TLS may hold decrypted bytes that poll() cannot see. */
        bool client_ready = p->tls && gnutls_record_check_pending(p->tls) > 0;
        bool vm_ready = false;
        if (!client_ready) {
            struct pollfd pf[2] = {{.fd = p->fd, .events = POLLIN}, {.fd = p->vm, .events = POLLIN}};
            if (poll(pf, 2, -1) < 0) {
                if (errno == EINTR)
                    continue;
                return;
            }
            client_ready = pf[0].revents != 0;
            vm_ready = pf[1].revents != 0;
        }
        if (vm_ready) {
            int rc = from_vm(p, to_client);
            if (rc == 0 && p->ws)
                ws_send_close(p, WS_CLOSE_GOING_AWAY); /* the VM stopped */
            if (rc <= 0)
                return;
        }
        if (client_ready && from_client(p, to_vm) <= 0)
            return;
    }
}

/* ---- the request ------------------------------------------------------------- */

static const char *header(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

/* The WebSocket handshake's answer for this request, or a refusal's
 * status (XAPI: 501 without Sec-WebSocket-Key, which also turns away
 * Hixie-76 handshakes: they are not served). */
static unsigned ws_answer(struct MHD_Connection *conn, GString *answer, const char **why)
{
    const char *key = header(conn, "Sec-WebSocket-Key");
    const char *upgrade = header(conn, MHD_HTTP_HEADER_UPGRADE);
    const char *version = header(conn, "Sec-WebSocket-Version");
    const char *protocols = header(conn, "Sec-WebSocket-Protocol");
    if (!key) {
        *why = "GET /console is a WebSocket upgrade, with Sec-WebSocket-Key (RFC 6455)";
        return MHD_HTTP_NOT_IMPLEMENTED;
    }
    if (!upgrade || !ws_header_has_token(upgrade, "websocket", true)) {
        *why = "a WebSocket upgrade needs Upgrade: websocket";
        return MHD_HTTP_BAD_REQUEST;
    }
    if (!ws_key_valid(key)) {
        *why = "Sec-WebSocket-Key is not the base64 of 16 bytes";
        return MHD_HTTP_BAD_REQUEST;
    }
    if (version && strcmp(version, "13") != 0) {
        *why = "WebSocket version 13 only";
        return MHD_HTTP_UPGRADE_REQUIRED;
    }
    if (protocols && !ws_header_has_token(protocols, "binary", false)) {
        *why = "no subprotocol offered is served: only binary";
        return MHD_HTTP_BAD_REQUEST;
    }
    g_autofree char *accept = ws_accept_key(key);
    g_string_append_printf(answer,
                           "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
                           accept, protocols ? "Sec-WebSocket-Protocol: binary\r\n" : "");
    return 0;
}

/* XAPI writes exactly this, whatever version the request used. */
#define CONNECT_ANSWER \
    "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nCache-Control: no-cache, no-store\r\n\r\n"

/* Takes the connection over: the answer, then the proxy. */
static enum MHD_Result take_over(struct MHD_Connection *conn, Proxy *p, const GString *answer)
{
    p->fd = http_connection_socket(conn, &p->tls);
    if (p->fd < 0)
        return MHD_NO;
    /* RFB is many small messages, each awaited: none may wait in a corked
     * or Nagle-delayed socket (a unix socket refuses both, harmlessly). */
    int on = 1, off = 0;
    setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    setsockopt(p->fd, IPPROTO_TCP, TCP_CORK, &off, sizeof off);
    if (client_send(p, answer->str, answer->len) == 0)
        run(p);
    return MHD_NO; /* MHD closes the connection */
}

static enum MHD_Result serve(struct MHD_Connection *conn, bool ws, const VmConsoleTarget *t)
{
    g_autoptr(GString) answer = g_string_new(NULL);
    const char *why = NULL;
    unsigned status = ws ? ws_answer(conn, answer, &why) : 0;
    if (status)
        return refuse(conn, status, NULL, why);
    if (!ws)
        g_string_append(answer, CONNECT_ANSWER);
    g_autoptr(XapiError) gone = NULL;
    Proxy p = {.fd = -1, .vm = vm_console_connect(t, &gone), .ws = ws};
    enum MHD_Result ret;
    if (p.vm < 0) { /* QEMU went away since the lookup */
        ret = refuse(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "the console is not available");
    } else {
        ws_parser_init(&p.parser);
        ret = take_over(conn, &p, answer);
        close(p.vm);
    }
    return ret;
}

enum MHD_Result console_proxy_serve(struct MHD_Connection *conn, bool trusted, const char *method)
{
    HttpCaller caller = {0};
    g_autoptr(XapiError) err = NULL;
    const DmMessage *action = http_action(strcmp(method, MHD_HTTP_METHOD_GET) == 0
                                              ? "connect_console_ws"
                                              : "connect_console");
    if (http_caller_authorize(conn, trusted, action, &caller, &err) < 0) {
        http_caller_end(&caller);
        return refuse(conn, http_auth_status(err) ? http_auth_status(err)
                                                  : MHD_HTTP_INTERNAL_SERVER_ERROR,
                      err, NULL);
    }
    VmConsoleTarget t;
    enum MHD_Result ret;
    const char *ref = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "ref");
    const char *uuid = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "uuid");
    g_autofree char *location = NULL;
    if (vm_console_target(ref, uuid, &t, &err) < 0 &&
        strcmp(err->code, "VM_NOT_RESIDENT_HERE") == 0 && err->params->len &&
        (location = pool_redirect_for_vm(conn, "/console", err->params->pdata[0])))
        ret = pool_redirect_reply(conn, location); /* its resident host's */
    else if (err)
        ret = refuse(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, err, NULL);
    else if (!t.served)
        ret = refuse(conn, MHD_HTTP_NOT_FOUND, NULL, "this console is not served here");
    else
        ret = serve(conn, strcmp(method, MHD_HTTP_METHOD_GET) == 0, &t);
    vm_console_target_clear(&t);
    http_caller_end(&caller); /* a session made from basic auth lasts as long as the console */
    return ret;
}
