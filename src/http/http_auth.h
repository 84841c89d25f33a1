/* http_auth.h: who calls an HTTP handler (a VDI transfer, a console), as
 * XAPI's Xapi_http.with_context finds out, and whether they may. */
#pragma once

#include <microhttpd.h>
#include <stdbool.h>

#include "datamodel.h"
#include "xapi_error.h"

typedef struct HttpCaller {
    char *session;    /* NULL: the unix socket, with no session given */
    bool own_session; /* made from basic auth here: logged out by http_caller_end */
} HttpCaller;

/* A request parameter: from the query, else from a cookie (XAPI's order). */
const char *http_param(struct MHD_Connection *conn, const char *name);

/* The caller's session_id (query or cookie), else HTTP basic auth as
 * session.login_with_password (SESSION_AUTHENTICATION_FAILED without
 * one); trusted (the unix socket) needs neither. Then RBAC: the session
 * must hold a role of action (a message, or a pseudo-message such as
 * XAPI's "http/connect_console"). 0, or -1 with *err set. */
int http_caller_authorize(struct MHD_Connection *conn, bool trusted, const DmMessage *action,
                          HttpCaller *caller, XapiError **err);

/* Logs out a session made from basic auth and frees the caller's fields. */
void http_caller_end(HttpCaller *caller);

/* The HTTP status for an authentication or RBAC error (401, 403), else 0. */
unsigned http_auth_status(const XapiError *err);
