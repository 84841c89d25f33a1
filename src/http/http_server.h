/* http_server.h: the HTTP/1.1 front door (libmicrohttpd): RPC paths on TCP
 * listeners and on a unix socket, CORS preflight, and the limits that keep
 * hostile peers from holding memory or threads. */
#pragma once

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>

#include "xapi_error.h"

/* What one peer may hold. XAPI's values where it has them. */
typedef struct HttpLimits {
    size_t rpc_body_limit;        /* bytes of an RPC request body (XAPI: 300 KiB) */
    unsigned header_timeout;      /* s to send a request's line and headers (XAPI: 10) */
    unsigned idle_timeout;        /* s a connection may stay silent otherwise */
    unsigned max_connections;     /* over the TCP and TLS listeners */
    unsigned max_connections_per_ip; /* per listener and client address */
} HttpLimits;

#define HTTP_LIMITS_DEFAULT \
    ((HttpLimits){.rpc_body_limit = 300 * 1024, .header_timeout = 10, .idle_timeout = 300, \
                  .max_connections = 800, .max_connections_per_ip = 100})

typedef struct HttpServer HttpServer;

HttpServer *http_server_new(const HttpLimits *limits);
/* "HOST:PORT", "[v6]:PORT" or ":PORT" (all addresses); PORT 0 binds a free
 * port. Both return the port bound, -1 on error. */
int http_server_listen_tcp(HttpServer *s, const char *host_port, XapiError **err);
/* HTTPS with the given PEM key and certificate. */
int http_server_listen_tls(HttpServer *s, const char *host_port, const char *key_pem,
                           const char *cert_pem, XapiError **err);
/* Requests on the unix socket are pre-authenticated as root, as XAPI's. */
int http_server_listen_unix(HttpServer *s, const char *path, XapiError **err);
void http_server_free(HttpServer *s);

/* host.management_disable and back (the host's server, the first made):
 * the TCP and TLS listeners on an address other than loopback stop
 * listening, one on all addresses listens on loopback only (XAPI's
 * Xapi_mgmt_iface); loopback ones and the unix socket go on, and so do
 * connections already open. Enabled, each listens on its address again
 * (the port it had). -1 with err if one cannot. */
int http_server_set_management(bool enabled, XapiError **err);
bool http_server_management_enabled(void);
/* The host's HTTPS listeners serve key_pem and cert_pem (leaf then chain)
 * from their next connection on; those open go on as they are. */
int http_server_set_tls_certificate(const char *key_pem, const char *cert_pem,
                                    XapiError **err);
/* pool.set_https_only: the plain HTTP listeners on TCP refuse connections
 * (and close those open at their next request); HTTPS and the unix socket
 * go on. */
void http_server_set_https_only(bool on);
/* Before the listen calls: disabled, they bind their sockets (ports are
 * known) but listen as disabled. */
void http_server_set_management_at_start(HttpServer *s, bool enabled);
/* Before xapid re-executes itself: its listening sockets are left open
 * across exec and named in the environment, where the listen calls of the
 * new image take them again (same addresses, same ports). */
void http_server_prepare_reexec(HttpServer *s);
bool http_server_is_listener_fd(HttpServer *s, int fd);

struct MHD_Connection;
#define HTTP_PEER_BUF 64
/* The client's IP address as text into buf (HTTP_PEER_BUF bytes); NULL
 * when the connection has none (the unix socket). */
const char *http_peer_address(struct MHD_Connection *conn, char *buf);
/* For a handler that takes the connection over: its socket (-1 when MHD
 * gives none) and its TLS session into *tls (NULL for plain HTTP). */
int http_connection_socket(struct MHD_Connection *conn, gnutls_session_t *tls);
