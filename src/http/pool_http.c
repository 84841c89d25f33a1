/* pool_http.c: the change stream and shipped commits over HTTP. */
#include "pool_http.h"

#include <string.h>

#include "pool_client.h"
#include "pool_master.h"
#include "pool_role.h"
#include "pool_secret.h"

bool pool_http_route(const char *method, const char *url)
{
    return (strcmp(method, MHD_HTTP_METHOD_GET) == 0 && strcmp(url, "/pool/changes") == 0) ||
           (strcmp(method, MHD_HTTP_METHOD_POST) == 0 && strcmp(url, "/pool/commit") == 0);
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static bool secret_ok(struct MHD_Connection *conn)
{
    const char *given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, POOL_SECRET_HEADER);
    g_autoptr(XapiError) err = NULL;
    g_autofree char *secret = pool_secret_get(pool_state_dir(), &err);
    return given && secret && pool_secret_equal(given, secret);
}

enum MHD_Result pool_http_serve(struct MHD_Connection *conn, const char *method,
                                const char *url, const char *body, size_t len)
{
    if (!secret_ok(conn))
        return reply(conn, MHD_HTTP_FORBIDDEN, "text/plain", g_strdup("Pool secret required\n"));
    if (pool_is_member()) /* not the master (any more): the member asks the right one */
        return reply(conn, MHD_HTTP_CONFLICT, "text/plain",
                     g_strdup_printf("HOST_IS_SLAVE %s\n", pool_master_address()));
    if (strcmp(method, MHD_HTTP_METHOD_GET) == 0) {
        const char *since = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "since");
        const char *host = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "host");
        const char *wait = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "wait");
        unsigned wait_s = wait ? (unsigned)CLAMP(g_ascii_strtoll(wait, NULL, 10), 0, 60) : 0;
        char *batch = pool_master_changes(since ? g_ascii_strtoull(since, NULL, 10) : 0, host,
                                          wait_s);
        return reply(conn, MHD_HTTP_OK, "application/json", batch);
    }
    return reply(conn, MHD_HTTP_OK, "application/json", pool_master_commit(body, len));
}
