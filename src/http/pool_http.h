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
