/* audit_log_http.c: the audit log over HTTP, for sessions holding
 * http/get_audit_log (every role, as XAPI has it). */
#include "audit_log_http.h"

#include <string.h>

#include "audit_log.h"
#include "http_actions.h"
#include "http_auth.h"

bool audit_log_http_route(const char *method, const char *url)
{
    return strcmp(method, MHD_HTTP_METHOD_GET) == 0 && strcmp(url, "/audit_log") == 0;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, GString *body)
{
    gsize len = body->len;
    char *data = g_string_free(body, FALSE);
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(len, data, g_free);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result audit_log_http_serve(struct MHD_Connection *conn, bool trusted)
{
    HttpCaller caller = {0};
    g_autoptr(XapiError) err = NULL;
    if (http_caller_authorize(conn, trusted, http_action("get_audit_log"), &caller, &err) < 0) {
        http_caller_end(&caller);
        unsigned status = http_auth_status(err);
        GString *body = g_string_new(err->code);
        g_string_append_c(body, '\n');
        return reply(conn, status ? status : MHD_HTTP_INTERNAL_SERVER_ERROR, body);
    }
    http_caller_end(&caller);
    return reply(conn, MHD_HTTP_OK, audit_log_read(http_param(conn, "since")));
}
