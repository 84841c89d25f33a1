/* audit_log_http.h: GET /audit_log[?since=<time>] (XAPI's audit_log.ml
 * handler, http action get_audit_log): the audit log as text/plain. */
#pragma once

#include <microhttpd.h>
#include <stdbool.h>

bool audit_log_http_route(const char *method, const char *url);
enum MHD_Result audit_log_http_serve(struct MHD_Connection *conn, bool trusted);
