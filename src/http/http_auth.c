/* http_auth.c: the caller of an HTTP handler (ocaml/xapi/xapi_http.ml):
 * session_id from the query or a cookie, else basic auth as a login of
 * its own, logged out when the request ends; then RBAC as for a call. */
#include "http_auth.h"

#include <string.h>

#include "audit_log.h"
#include "dm_handlers.h"
#include "http_server.h"
#include "session.h"

const char *http_param(struct MHD_Connection *conn, const char *name)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
    return v ? v : MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, name);
}

static int login_basic(struct MHD_Connection *conn, HttpCaller *caller, XapiError **err)
{
    char *password = NULL;
    char *user = MHD_basic_auth_get_username_password(conn, &password);
    if (!user) {
        MHD_free(password);
        return xapi_error_set(err, "SESSION_AUTHENTICATION_FAILED", "",
                              "No authentication provided", NULL);
    }
    char peer[HTTP_PEER_BUF];
    Call call = {.msg = dm_message_by_wire_name("session.login_with_password"),
                 .peer = http_peer_address(conn, peer)};
    Xv *session = NULL;
    int rc = xapi_session_login_with_password(&call, user, password ? password : "", "1.0",
                                              "HTTP basic auth", &session);
    MHD_free(user);
    MHD_free(password);
    if (rc < 0) {
        *err = call.error;
        return -1;
    }
    caller->session = g_strdup(xv_str(session));
    caller->own_session = true;
    xv_free(session);
    return 0;
}

int http_caller_authorize(struct MHD_Connection *conn, bool trusted, const DmMessage *action,
                          HttpCaller *caller, XapiError **err)
{
    const char *session = http_param(conn, "session_id");
    if (session)
        caller->session = g_strdup(session);
    else if (trusted)
        return 0;
    else if (login_basic(conn, caller, err) < 0)
        return -1;
    char peer[HTTP_PEER_BUF];
    Call call = {.msg = action, .session_ref = caller->session, .trusted = trusted,
                 .peer = http_peer_address(conn, peer)};
    int rc = session_authorize(&call);
    /* XAPI audits an HTTP action when its RBAC check is made. */
    bool denied = rc < 0 && strcmp(call.error->code, "RBAC_PERMISSION_DENIED") == 0;
    if (rc == 0 || denied)
        audit_log_call(&call, NULL, !denied, NULL);
    if (rc < 0) {
        *err = call.error;
        return -1;
    }
    return 0;
}

void http_caller_end(HttpCaller *caller)
{
    if (caller->own_session) {
        Call call = {.msg = dm_message_by_wire_name("session.logout"),
                     .session_ref = caller->session};
        xapi_session_logout(&call);
        xapi_error_free(call.error);
    }
    g_clear_pointer(&caller->session, g_free);
    caller->own_session = false;
}

unsigned http_auth_status(const XapiError *err)
{
    if (strcmp(err->code, "SESSION_AUTHENTICATION_FAILED") == 0 ||
        strcmp(err->code, "SESSION_INVALID") == 0)
        return MHD_HTTP_UNAUTHORIZED;
    if (strcmp(err->code, "RBAC_PERMISSION_DENIED") == 0)
        return MHD_HTTP_FORBIDDEN;
    return 0;
}
