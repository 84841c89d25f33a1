/* pool_http.c: the change stream and shipped commits over HTTP. */
#include "pool_http.h"

#include <string.h>

#include "db.h"
#include "jsonrpc.h"
#include "pool_client.h"
#include "pool_db.h"
#include "pool_failover.h"
#include "pool_master.h"
#include "pool_role.h"
#include "pool_secret.h"
#include "xmlrpc.h"

/* How long a forwarded call waits for the replica to reach the master's
 * generation of it. */
#define CATCH_UP_WAIT_S 30

bool pool_http_route(const char *method, const char *url)
{
    return (strcmp(method, MHD_HTTP_METHOD_GET) == 0 && strcmp(url, "/pool/changes") == 0) ||
           (strcmp(method, MHD_HTTP_METHOD_POST) == 0 && strcmp(url, "/pool/commit") == 0) ||
           (strcmp(method, MHD_HTTP_METHOD_POST) == 0 && strcmp(url, "/pool/dqlite-add") == 0) ||
           (strcmp(method, MHD_HTTP_METHOD_POST) == 0 && strcmp(url, "/pool/leader-hint") == 0);
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

/* "ID HOST:PORT": a member's dqlite node to add to the pool's cluster. */
static enum MHD_Result dqlite_add(struct MHD_Connection *conn, const char *body, size_t len)
{
    g_autofree char *text = g_strndup(body ? body : "", len);
    g_auto(GStrv) words = g_strsplit(g_strstrip(text), " ", 2);
    guint64 id = 0;
    g_autoptr(XapiError) err = NULL;
    if (!words[0] || !words[1] || !g_ascii_string_to_unsigned(words[0], 10, 1, G_MAXUINT64, &id,
                                                              NULL))
        return reply(conn, MHD_HTTP_BAD_REQUEST, "text/plain", g_strdup("ID HOST:PORT\n"));
    if (pool_db_add(id, words[1], &err) < 0)
        return reply(conn, MHD_HTTP_CONFLICT, "text/plain",
                     g_strdup_printf("%s %s\n", err->code,
                                     err->params->len ? (char *)err->params->pdata[0] : ""));
    return reply(conn, MHD_HTTP_OK, "text/plain", g_strdup("added\n"));
}

enum MHD_Result pool_http_serve(struct MHD_Connection *conn, const char *method,
                                const char *url, const char *body, size_t len)
{
    if (!secret_ok(conn))
        return reply(conn, MHD_HTTP_FORBIDDEN, "text/plain", g_strdup("Pool secret required\n"));
    if (strcmp(url, "/pool/dqlite-add") == 0)
        return dqlite_add(conn, body, len);
    if (strcmp(url, "/pool/leader-hint") == 0) { /* a new master's announcement */
        pool_failover_hint();
        return reply(conn, MHD_HTTP_OK, "text/plain", g_strdup("ok\n"));
    }
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

const char *pool_http_rpc_prepare(struct MHD_Connection *conn)
{
    if (!pool_is_member())
        return NULL;
    const char *g = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, POOL_GENERATION_HEADER);
    if (!g)
        return NULL;
    uint64_t generation = g_ascii_strtoull(g, NULL, 10);
    if (generation && !db_wait_for_generation(generation, g_get_monotonic_time() +
                                                           CATCH_UP_WAIT_S * G_USEC_PER_SEC))
        g_warning("pool: a forwarded call runs before the replica reached generation %s", g);
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, POOL_TASK_HEADER);
}

/* What a member answers itself on its unix socket (XAPI's whitelist and
 * emergency calls that xapid has); the rest goes to the master. */
static const char *const answered_here[] = {
    "system.listMethods", "session.login_with_password", "session.slave_local_login_with_password",
    "session.slave_login", "session.local_logout", "pool.join", "pool.join_force",
    "pool.emergency_transition_to_master", "pool.emergency_reset_master",
};

static bool answer_here(const char *method)
{
    for (unsigned i = 0; i < G_N_ELEMENTS(answered_here); i++)
        if (strcmp(method, answered_here[i]) == 0)
            return true;
    return false;
}

static enum MHD_Result rpc_failure(struct MHD_Connection *conn, bool json, JsonRpcRequest *req,
                                   const XapiError *e)
{
    size_t len;
    char *body;
    if (json) {
        body = jsonrpc_format_error(req, e, &len);
    } else {
        g_autoptr(Xv) env = xv_new_struct();
        Xv *desc = xv_new_array();
        xv_array_append_string(desc, e->code);
        for (guint i = 0; i < e->params->len; i++)
            xv_array_append_string(desc, e->params->pdata[i]);
        xv_struct_set_string(env, "Status", "Failure");
        xv_struct_set(env, "ErrorDescription", desc);
        body = xmlrpc_format_response(env, &len);
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, json ? "application/json" : "text/xml");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

bool pool_http_forward_rpc(struct MHD_Connection *conn, bool json, const char *url,
                           const char *body, size_t len, enum MHD_Result *ret)
{
    if (!pool_is_member() || pool_role_changed()) /* a new member restarting: refused here */
        return false;
    g_autofree char *method = NULL;
    g_autofree char *why = NULL;
    JsonRpcRequest req = {0};
    if (json) {
        if (jsonrpc_parse_request(body, len, &req, &why) < 0) {
            jsonrpc_request_clear(&req);
            return false; /* answered here: a bad request is a bad request */
        }
        method = g_strdup(req.method);
    } else {
        g_autoptr(Xv) params = NULL;
        if (xmlrpc_parse_call(body, len, &method, &params, &why) < 0)
            return false;
    }
    if (answer_here(method)) {
        jsonrpc_request_clear(&req);
        return false;
    }
    g_autofree char *endpoint = pool_master_endpoint();
    PoolHttpReply reply;
    g_autoptr(XapiError) e = NULL;
    if (pool_rpc_raw(endpoint, url, json ? "application/json" : "text/xml", NULL, body, len,
                     3600, &reply, &e) < 0) {
        g_warning("pool: %s not forwarded to the master: %s", method,
                  e->params->len ? (char *)e->params->pdata[0] : e->code);
        g_autoptr(XapiError) cannot = NULL;
        xapi_error_set(&cannot, "CANNOT_CONTACT_HOST", pool_master_address(), NULL);
        *ret = rpc_failure(conn, json, &req, cannot);
        jsonrpc_request_clear(&req);
        return true;
    }
    jsonrpc_request_clear(&req);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(reply.len, reply.body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, json ? "application/json" : "text/xml");
    *ret = MHD_queue_response(conn, (unsigned)reply.status, r);
    MHD_destroy_response(r);
    return true;
}
