/* rrd_http.c: /rrd_updates, /host_rrd, /vm_rrd and /sr_rrd (see rrd_http.h): the
 * caller's session checked as the other HTTP handlers check it, the
 * query read as XAPI reads it, then one call into src/metrics. */
#include "rrd_http.h"

#include <string.h>

#include "db.h"
#include "http_actions.h"
#include "http_auth.h"
#include "bootstrap.h"
#include "metrics.h"
#include "pool_redirect.h"
#include "pool_role.h"
#include "rrd_archive.h"
#include "task.h"

/* XAPI's RBAC permission of each handler (datamodel.ml http_actions:
 * every role may read the figures). */
static const DmMessage *permission_of(const char *url)
{
    static const char *const actions[][2] = {
        {"/rrd_updates", "rrd_updates"}, {"/host_rrd", "host_rrd"},
        {"/host_rrds", "get_host_rrds"}, {"/vm_rrd", "vm_rrd"},
        {"/vm_rrds", "get_vm_rrds"},     {"/sr_rrd", "sr_rrd"}};
    for (unsigned i = 0; i < G_N_ELEMENTS(actions); i++)
        if (strcmp(url, actions[i][0]) == 0)
            return http_action(actions[i][1]);
    return http_action("rrd_updates");
}

static const char *const paths[] = {"/rrd_updates", "/host_rrd", "/host_rrds", "/vm_rrd",
                                    "/vm_rrds", "/sr_rrd"};

bool rrd_http_route(const char *method, const char *url)
{
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return false;
    for (size_t i = 0; i < G_N_ELEMENTS(paths); i++)
        if (strcmp(url, paths[i]) == 0)
            return true;
    return false;
}

/* The status of the reply this thread queued last (one thread per
 * connection): the caller's task records the outcome. */
static _Thread_local unsigned replied_status;

/* headers: NULL-terminated name, value pairs. */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             GString *body, const char *const *headers)
{
    replied_status = status;
    size_t len = body->len;
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, g_string_free(body, FALSE), MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    for (const char *const *h = headers; h && *h; h += 2)
        MHD_add_response_header(r, h[0], h[1]);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result text(struct MHD_Connection *conn, unsigned status, const char *message)
{
    GString *body = g_string_new(message);
    g_string_append_c(body, '\n');
    return reply(conn, status, "text/plain", body, NULL);
}

typedef struct {
    bool json_key;
    GPtrArray *vm_uuids, *sr_uuids; /* char* (borrowed from MHD) */
} Query;

static enum MHD_Result scan_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    Query *q = cls;
    if (strcmp(key, "json") == 0)
        q->json_key = true;
    else if (strcmp(key, "vm_uuid") == 0 && value)
        g_ptr_array_add(q->vm_uuids, (gpointer)value);
    else if (strcmp(key, "sr_uuid") == 0 && value)
        g_ptr_array_add(q->sr_uuids, (gpointer)value);
    return MHD_YES;
}

static int parse_cf(const char *text)
{
    static const char *const names[] = {"AVERAGE", "MIN", "MAX"};
    for (int i = 0; text && i < 3; i++)
        if (strcmp(text, names[i]) == 0)
            return i;
    return -1; /* absent, LAST (not kept here) or invalid: every archive */
}

static bool parse_int(const char *text, int64_t *out)
{
    char *end = NULL;
    if (!text || !*text)
        return false;
    *out = g_ascii_strtoll(text, &end, 10);
    if (*end == '.') /* XAPI reads start as a float */
        *out = (int64_t)g_ascii_strtod(text, &end);
    return *end == '\0';
}

/* Any json key selects JSON, unless Accept says which (XAPI's check). */
static bool wants_json(struct MHD_Connection *conn, bool json_key)
{
    const char *accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept");
    if (accept && strstr(accept, "application/json"))
        return true;
    if (accept && strstr(accept, "text/xml"))
        return false;
    return json_key;
}

static enum MHD_Result rrd_updates(struct MHD_Connection *conn)
{
    int64_t start, interval = 0;
    if (!parse_int(MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "start"), &start))
        return text(conn, MHD_HTTP_BAD_REQUEST, "start is required (seconds since the epoch)");
    const char *interval_text = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
                                                            "interval");
    if (interval_text && !parse_int(interval_text, &interval))
        return text(conn, MHD_HTTP_BAD_REQUEST, "interval is not a number of seconds");
    const char *host = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "host");
    int cf = parse_cf(MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "cf"));
    g_autoptr(GPtrArray) uuids = g_ptr_array_new();
    g_autoptr(GPtrArray) srs = g_ptr_array_new();
    Query q = {false, uuids, srs};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, scan_arg, &q);
    bool json = wants_json(conn, q.json_key);
    g_ptr_array_add(uuids, NULL);
    g_ptr_array_add(srs, NULL);
    GString *body = g_string_new(NULL);
    metrics_rrd_updates(body, start, interval, cf, host && strcmp(host, "true") == 0,
                        uuids->len > 1 ? (const char *const *)uuids->pdata : NULL,
                        (const char *const *)srs->pdata, json);
    static const char *const headers[] = {"Cache-Control", "no-cache, no-store",
                                          "Access-Control-Allow-Headers", "X-Requested-With",
                                          NULL};
    return reply(conn, MHD_HTTP_OK, json ? "application/json" : "text/xml", body, headers);
}

/* Where a VM's figures are when not here, as XAPI's get_vm_rrd_forwarder
 * sends the caller: a VM resident on another host of the pool is read
 * there (302); NULL: this host answers. */
static char *vm_resident_elsewhere(struct MHD_Connection *conn, const char *uuid,
                                   const char *url)
{
    db_read_begin();
    const DbRow *vm = db_lookup_uuid(dm_class_by_name("VM"), uuid);
    const char *resident = vm ? xv_str(db_get(vm, "resident_on")) : "";
    g_autofree char *here = bootstrap_this_host();
    const DbRow *host = strcmp(resident, here) != 0
                            ? db_lookup(dm_class_by_name("host"), resident)
                            : NULL;
    char *to = host ? pool_redirect_request_to(conn, xv_str(db_get(host, "address")), url) : NULL;
    db_read_end();
    return to;
}

static enum MHD_Result redirect(struct MHD_Connection *conn, const char *location)
{
    const char *headers[] = {"Location", location, NULL};
    return reply(conn, MHD_HTTP_FOUND, "text/plain", g_string_new("Found\n"), headers);
}

static enum MHD_Result whole_rrd(struct MHD_Connection *conn, MetricsOwner owner, const char *url)
{
    const char *uuid = owner != METRICS_HOST
                           ? MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "uuid")
                           : NULL;
    if (owner != METRICS_HOST && !uuid)
        return text(conn, MHD_HTTP_BAD_REQUEST, "uuid is required");
    g_autofree char *elsewhere =
        owner == METRICS_VM ? vm_resident_elsewhere(conn, uuid, url) : NULL;
    if (elsewhere)
        return redirect(conn, elsewhere);
    GString *body = g_string_new(NULL);
    if (!metrics_rrd_dump(body, owner, uuid)) {
        g_string_free(body, TRUE);
        /* A halted VM's archive not kept here may be the master's. */
        if (owner == METRICS_VM && pool_is_member()) {
            g_autofree char *at_master = pool_redirect_request_to(conn, pool_master_address(), url);
            return redirect(conn, at_master);
        }
        return text(conn, MHD_HTTP_NOT_FOUND,
                    owner == METRICS_VM ? "no archive for this VM" : "no archive for this SR");
    }
    static const char *const headers[] = {"Connection", "close", NULL};
    return reply(conn, MHD_HTTP_OK, "text/xml", body, headers);
}

/* A caller's task_id (Xen Orchestra's getResource passes one and waits
 * for it) ends with the request, as XAPI's Xapi_http.with_context ends
 * it: success when the figures went out, else failure with the reason. */
static void finish_task(const char *task_ref, const char *failure)
{
    if (!task_ref || db_write_begin(NULL) < 0)
        return;
    DbRow *task = db_lookup(dm_class_by_name("task"), task_ref);
    if (task && strcmp(xv_str(db_get(task, "status")), "pending") == 0) {
        db_set_by_name(task, "status", xv_new_string(failure ? "failure" : "success"), NULL);
        db_set_by_name(task, "progress", xv_new_float(1.0), NULL);
        db_set_by_name(task, "finished", xv_new_datetime(g_get_real_time() / G_USEC_PER_SEC),
                       NULL);
        db_set_by_name(task, "allowed_operations", xv_new_array(), NULL);
        if (failure) {
            Xv *info = xv_new_array();
            xv_array_append_string(info, "INTERNAL_ERROR");
            xv_array_append_string(info, failure);
            db_set_by_name(task, "error_info", info, NULL);
        }
    }
    db_write_commit(NULL);
}

enum MHD_Result rrd_http_serve(struct MHD_Connection *conn, bool trusted, const char *url)
{
    bool updates = strcmp(url, "/rrd_updates") == 0;
    HttpCaller caller = {0};
    g_autoptr(XapiError) err = NULL;
    if (http_caller_authorize(conn, trusted, permission_of(url), &caller,
                              &err) < 0) {
        http_caller_end(&caller);
        unsigned status = http_auth_status(err);
        return text(conn, status ? status : MHD_HTTP_INTERNAL_SERVER_ERROR, err->code);
    }
    const char *task = http_param(conn, "task_id");
    if (task && task_check_use(caller.session, !caller.session, task, &err) < 0) {
        http_caller_end(&caller);
        return text(conn, MHD_HTTP_FORBIDDEN, err->code);
    }
    enum MHD_Result ret;
    if (!metrics_running())
        ret = text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "metrics are off (xapid --no-metrics)");
    else if (updates)
        ret = rrd_updates(conn);
    else
        ret = whole_rrd(conn,
                        g_str_has_prefix(url, "/vm_")   ? METRICS_VM
                        : g_str_has_prefix(url, "/sr_") ? METRICS_SR
                                                         : METRICS_HOST,
                        url);
    g_autofree char *failure =
        replied_status == MHD_HTTP_OK ? NULL : g_strdup_printf("HTTP %u", replied_status);
    finish_task(task, ret == MHD_YES ? failure : "the reply was not sent");
    http_caller_end(&caller);
    return ret;
}
