/* rrd_http.h: the metrics handlers, GET /rrd_updates, /host_rrd(s) and
 * /vm_rrd(s)?uuid= and /sr_rrd?uuid= (XAPI's rrdd_http_handler.ml). */
#pragma once

#include <microhttpd.h>
#include <stdbool.h>

/* Whether method and url are ours. */
bool rrd_http_route(const char *method, const char *url);

/* Answers a routed request (called when its headers are in). trusted:
 * the unix socket (root). */
enum MHD_Result rrd_http_serve(struct MHD_Connection *conn, bool trusted, const char *url);
