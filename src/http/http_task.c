/* http_task.c: the task of an HTTP transfer handler (see http_task.h). */
#include "http_task.h"

#include "db.h"
#include "dm_handlers.h"
#include "task.h"

int http_task_take(struct MHD_Connection *conn, const HttpCaller *caller, const char *label,
                   HttpTask *task, XapiError **err)
{
    const char *task_id = http_param(conn, "task_id");
    if (task_id) {
        /* The caller's own task only (no session by now: the unix socket). */
        if (task_check_use(caller->session, !caller->session, task_id, err) < 0)
            return -1;
        task->ref = g_strdup(task_id);
        return 0;
    }
    Call call = {.msg = dm_message_by_wire_name("task.create"),
                 .session_ref = caller->session ? caller->session : "OpaqueRef:NULL"};
    Xv *ref = NULL;
    if (xapi_task_create(&call, label, "", &ref) < 0) {
        *err = call.error;
        return -1;
    }
    task->ref = g_strdup(xv_str(ref));
    task->own = true;
    xv_free(ref);
    return 0;
}

void http_task_settle(HttpTask *task, const XapiError *error, const char *result)
{
    task->settled = true;
    if (task->own || !task->ref || db_write_begin(NULL) < 0)
        return;
    DbRow *row = db_lookup(dm_class_by_name("task"), task->ref);
    if (row) {
        db_set_by_name(row, "status", xv_new_string(error ? "failure" : "success"), NULL);
        db_set_by_name(row, "progress", xv_new_float(1.0), NULL);
        db_set_by_name(row, "finished", xv_new_datetime(g_get_real_time() / G_USEC_PER_SEC),
                       NULL);
        db_set_by_name(row, "allowed_operations", xv_new_array(), NULL);
        if (error) {
            Xv *info = xv_new_array();
            xv_array_append_string(info, error->code);
            for (guint i = 0; i < error->params->len; i++)
                xv_array_append_string(info, error->params->pdata[i]);
            db_set_by_name(row, "error_info", info, NULL);
        } else {
            db_set_by_name(row, "result", xv_new_string(result ? result : ""), NULL);
        }
    }
    db_write_commit(NULL);
}

void http_task_release(HttpTask *task)
{
    if (task->own && task->ref) {
        Call call = {.msg = dm_message_by_wire_name("task.destroy")};
        xapi_task_destroy(&call, task->ref);
        xapi_error_free(call.error);
    }
    g_clear_pointer(&task->ref, g_free);
}

enum MHD_Result http_task_queue(struct MHD_Connection *conn, const HttpTask *task, unsigned status,
                                struct MHD_Response *r)
{
    if (task->ref && !task->own)
        MHD_add_response_header(r, "Task-Id", task->ref);
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result http_task_reply(struct MHD_Connection *conn, const HttpTask *task,
                                const XapiError *error, unsigned status)
{
    GString *text = g_string_new(error ? error->code : "OK");
    for (guint i = 0; error && i < error->params->len; i++)
        g_string_append_printf(text, " %s", (char *)error->params->pdata[i]);
    g_string_append_c(text, '\n');
    size_t len = text->len;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, g_string_free(text, FALSE), MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Basic realm=\"xapi\"");
    return http_task_queue(conn, task, status, r);
}
