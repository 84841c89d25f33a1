/* http_server.h: the HTTP/1.1 front door (libmicrohttpd): RPC paths on TCP
 * listeners and on a unix socket, CORS preflight, body limits. */
#pragma once

#include "xapi_error.h"

#define HTTP_RPC_BODY_LIMIT (64u * 1024 * 1024)

typedef struct HttpServer HttpServer;

HttpServer *http_server_new(void);
/* "HOST:PORT", "[v6]:PORT" or ":PORT" (all addresses); PORT 0 binds a free
 * port. Both return the port bound, -1 on error. */
int http_server_listen_tcp(HttpServer *s, const char *host_port, XapiError **err);
/* HTTPS with the given PEM key and certificate. */
int http_server_listen_tls(HttpServer *s, const char *host_port, const char *key_pem,
                           const char *cert_pem, XapiError **err);
/* Requests on the unix socket are pre-authenticated as root, as XAPI's. */
int http_server_listen_unix(HttpServer *s, const char *path, XapiError **err);
void http_server_free(HttpServer *s);

struct MHD_Connection;
#define HTTP_PEER_BUF 64
/* The client's IP address as text into buf (HTTP_PEER_BUF bytes); NULL
 * when the connection has none (the unix socket). */
const char *http_peer_address(struct MHD_Connection *conn, char *buf);
