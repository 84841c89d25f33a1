/* pool_tunnel.h: dqlite's traffic between the hosts of a pool, carried on
 * xapid's HTTP port (dqlite never has a port of its own). The dialling
 * side sends
 *   GET /pool/dqlite HTTP/1.1, Connection: Upgrade, Upgrade: dqlite,
 *   X-Pool-Nonce: <unix seconds>-<32 random hex>,
 *   X-Pool-Auth: hex HMAC-SHA256(secret, "dqlite-client " nonce)
 * and the server, once the nonce is fresh (within 60 s, never seen) and
 * the HMAC right, answers 101 with
 *   X-Pool-Proof: hex HMAC-SHA256(secret, "dqlite-server " nonce)
 * which the dialler checks: neither side talks to a host that does not
 * know the pool secret. Then the socket is spliced to the local dqlite
 * node's abstract socket, both ways, until either side closes. Plain HTTP
 * only for now: over TLS (issue 20) the splice needs a proxy thread that
 * decrypts, since dqlite wants a raw fd; the TLS port answers 501. */
#pragma once
#include <microhttpd.h>
#include <stdbool.h>

#include "xapi_error.h"

/* The state dir (for the pool secret) and the local node's abstract
 * socket ("@name"); NULL bind: no node runs here, the route answers 503. */
void pool_tunnel_configure(const char *state_dir, const char *node_bind_address);

bool pool_tunnel_route(const char *method, const char *url);
/* In the connection's thread: a refusal is queued (MHD_YES), or the
 * connection becomes the tunnel and MHD_NO lets MHD close it after. */
enum MHD_Result pool_tunnel_serve(struct MHD_Connection *conn);

/* dqlite's connect function (DqliteConnectFn): ctx is the state dir;
 * address "HOST:PORT" of the peer's HTTP listener. */
int pool_tunnel_dial(void *state_dir, const char *address, int *fd);

/* The authenticators, exposed for the unit test. */
/* A TCP connection (close-on-exec, blocking) to HOST:PORT or [V6]:PORT,
 * connected within 10 s; -1 with errno set when none could be made. */
int pool_tunnel_dial_tcp(const char *address);
char *pool_tunnel_mac(const char *secret, const char *role, const char *nonce);
/* 0 when nonce is fresh and unseen and auth right (the nonce is then
 * remembered); -1 otherwise. now: unix seconds. */
int pool_tunnel_check(const char *secret, const char *nonce, const char *auth, gint64 now);
