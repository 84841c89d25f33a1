/* pool_http.h: the internal routes between the hosts of a pool, each
 * authenticated by the pool secret's header (pool_client.h):
 * GET /pool/changes?since=G&host=REF&wait=S (the change stream and a
 * member's heartbeat) and POST /pool/commit (a member's write set). */
#pragma once

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

/* Largest shipped write set (a joining host's records come as one). */
#define POOL_HTTP_BODY_LIMIT ((size_t)64 * 1024 * 1024)

bool pool_http_route(const char *method, const char *url);
/* GET: answered when the headers are in (body NULL); POST: with its body. */
enum MHD_Result pool_http_serve(struct MHD_Connection *conn, const char *method,
                                const char *url, const char *body, size_t len);

/* Before an RPC runs here: on a member, a call the master forwarded (its
 * generation header) waits until the replica has caught up; the caller's
 * task it names is returned (MHD's string), else NULL. */
const char *pool_http_rpc_prepare(struct MHD_Connection *conn);
/* On a member's unix socket: sends the RPC to the master as it came and
 * relays the reply, unless this host answers it itself (logins); true
 * when it was answered (*ret). */
bool pool_http_forward_rpc(struct MHD_Connection *conn, bool json, const char *url,
                           const char *body, size_t len, enum MHD_Result *ret);
