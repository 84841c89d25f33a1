/* http_transfer.c: PUT /import_raw_vdi and GET /export_raw_vdi as XAPI
 * serves them (ocaml/xapi/import_raw_vdi.ml, export_raw_vdi.ml,
 * xapi_http.ml): the caller's session_id (query or cookie), else HTTP basic
 * auth as session.login_with_password (logged out afterwards); the
 * caller's task_id, which gets the progress and the outcome, else a task
 * of our own, destroyed afterwards; vdi= a ref or a uuid; format=
 * raw|vhd|qcow2; base= for differential exports. Bodies are streamed as
 * MHD hands them over, never held.
 *
 * An upload of unknown length comes as Xen Orchestra's connector sends one
 * (xen-api's putResource): Content-Length 2^50, then the connection closed
 * after the last byte. There the peer's end-of-file ends the stream (XAPI
 * too reads such an upload to its end), and the caller's task gets the
 * outcome, as no reply can reach it.
 *
 * In a pool, a VDI whose SR this host has not plugged gets 302 to a host
 * that has (pool_redirect.h), as XAPI's handlers answer.
 *
 * Not served: format=tar, XAPI's chunked= framing, sr_id= without vdi=
 * (XAPI then makes an "Imported VDI"). */
#include "http_transfer.h"

#include <string.h>

#include "db.h"
#include "dm_handlers.h"
#include "http_actions.h"
#include "http_auth.h"
#include "http_task.h"
#include "pool_redirect.h"
#include "task.h"
#include "vdi_transfer.h"
#include "xmlrpc.h"

/* After a failure, what is still read of an upload so that the client
 * gets the error reply, before the connection is simply closed. */
#define DRAIN_LIMIT ((size_t)64 << 20)
#define EXPORT_BLOCK ((size_t)1 << 20)
/* The Content-Length that means "until the connection closes". */
#define UNKNOWN_LENGTH ((int64_t)1 << 50)

struct HttpTransfer {
    bool import;
    bool settled;      /* the outcome is known (and the task has it) */
    bool replied;      /* a response is queued */
    HttpCaller caller;
    HttpTask task;     /* carries progress and outcome */
    bool until_eof;    /* an upload of unknown length: ends when the peer closes */
    char *vdi;
    VdiImport *im;
    VdiExport *ex;
    XapiError *error;  /* the first failure */
    unsigned status;   /* its HTTP status, if not the default for its code */
    size_t drained;
};

static bool path_is(const char *url, const char *path)
{
    size_t n = strlen(path);
    return strncmp(url, path, n) == 0 && (url[n] == '\0' || strcmp(url + n, "/") == 0);
}

bool http_transfer_route(const char *method, const char *url)
{
    return (strcmp(method, MHD_HTTP_METHOD_PUT) == 0 && path_is(url, "/import_raw_vdi")) ||
           (strcmp(method, MHD_HTTP_METHOD_GET) == 0 && path_is(url, "/export_raw_vdi"));
}

/* ---- the task --------------------------------------------------------------- */

static void settle(HttpTransfer *t, const char *result)
{
    t->settled = true;
    http_task_settle(&t->task, t->error, result);
}

static void fail(HttpTransfer *t)
{
    if (!t->settled)
        settle(t, NULL);
}

static int take_task(struct MHD_Connection *conn, HttpTransfer *t)
{
    return http_task_take(conn, &t->caller, t->import ? "Importing raw VDI" : "Exporting raw VDI",
                          &t->task, &t->error);
}

/* ---- credentials ------------------------------------------------------------ */

/* XAPI's http actions put_import_raw_vdi and get_export_raw_vdi
 * (vm-admin and above). */
static int authorize(struct MHD_Connection *conn, bool trusted, HttpTransfer *t)
{
    return http_caller_authorize(
        conn, trusted, http_action(t->import ? "put_import_raw_vdi" : "get_export_raw_vdi"),
        &t->caller, &t->error);
}

/* ---- replies ------------------------------------------------------------------ */

static unsigned status_of(const HttpTransfer *t)
{
    static const struct { const char *code; unsigned status; } table[] = {
        {"HANDLE_INVALID", MHD_HTTP_NOT_FOUND},
        {"UUID_INVALID", MHD_HTTP_NOT_FOUND},
        {"VDI_TOO_SMALL", MHD_HTTP_BAD_REQUEST},
        {"VDI_READONLY", MHD_HTTP_BAD_REQUEST},
        {"IMPORT_ERROR_PREMATURE_EOF", MHD_HTTP_BAD_REQUEST},
        {"VDI_IN_USE", MHD_HTTP_CONFLICT},
        {"OTHER_OPERATION_IN_PROGRESS", MHD_HTTP_CONFLICT},
    };
    if (t->status)
        return t->status;
    if (http_auth_status(t->error))
        return http_auth_status(t->error);
    for (size_t i = 0; i < G_N_ELEMENTS(table); i++)
        if (strcmp(t->error->code, table[i].code) == 0)
            return table[i].status;
    return MHD_HTTP_INTERNAL_SERVER_ERROR;
}

static enum MHD_Result queue(struct MHD_Connection *conn, HttpTransfer *t, unsigned status,
                             struct MHD_Response *r)
{
    t->replied = true;
    return http_task_queue(conn, &t->task, status, r);
}

/* The outcome as a reply: 200, or the error's status with its code and
 * parameters as a line of text. */
static enum MHD_Result reply(struct MHD_Connection *conn, HttpTransfer *t)
{
    t->replied = true;
    return http_task_reply(conn, &t->task, t->error, t->error ? status_of(t) : MHD_HTTP_OK);
}

/* ---- export ------------------------------------------------------------------- */

/* The last byte handed to the connection ends the export: the VDI is
 * unlocked and the task settled then, before the client can have read it
 * (XAPI too completes the task once the bytes are written to the socket). */
static ssize_t export_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    HttpTransfer *t = cls;
    if (!t->ex)
        return MHD_CONTENT_READER_END_OF_STREAM;
    int64_t length = vdi_export_length(t->ex);
    ssize_t n = vdi_export_read(t->ex, (int64_t)pos, buf, max, &t->error);
    if (n < 0 || (n == 0 && (int64_t)pos < length))
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if ((int64_t)pos + n >= length) {
        vdi_export_free(g_steal_pointer(&t->ex));
        settle(t, "");
    }
    return n ? n : MHD_CONTENT_READER_END_OF_STREAM;
}

static enum MHD_Result send_export(struct MHD_Connection *conn, HttpTransfer *t,
                                   VdiStreamFormat format)
{
    struct MHD_Response *r = MHD_create_response_from_callback(
        (uint64_t)vdi_export_length(t->ex), EXPORT_BLOCK, export_read, t, NULL);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, vdi_stream_content_type(format));
    g_autofree char *disposition =
        g_strdup_printf("attachment; filename=\"%s\"", vdi_export_filename(t->ex));
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition);
    return queue(conn, t, MHD_HTTP_OK, r);
}

/* ---- the request ---------------------------------------------------------------- */

static const char *url_of(const HttpTransfer *t)
{
    return t->import ? "/import_raw_vdi" : "/export_raw_vdi";
}

static int64_t content_length(struct MHD_Connection *conn)
{
    const char *v =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return v ? (int64_t)g_ascii_strtoll(v, NULL, 10) : -1;
}

/* The headers are in: authenticate, find the task, the VDI and the format,
 * and lock the VDI. An error is answered at once (an upload is then not
 * read at all). */
static enum MHD_Result start(struct MHD_Connection *conn, bool trusted, HttpTransfer *t)
{
    if (authorize(conn, trusted, t) < 0)
        return reply(conn, t);
    int64_t length = content_length(conn);
    if (t->import && length == 0) { /* Xen Orchestra's probe: answered, nothing touched */
        t->settled = true;
        return reply(conn, t);
    }
    /* A VDI whose SR is not plugged here is served by a host that has it
     * (XAPI's 302; the caller's task is that host's to complete). */
    const char *named = http_param(conn, "vdi");
    g_autoptr(XapiError) unknown = NULL;
    g_autofree char *named_ref = named ? vdi_transfer_resolve(named, &unknown) : NULL;
    g_autofree char *location = pool_redirect_for_vdi(conn, url_of(t), named_ref);
    if (location) {
        t->settled = t->replied = true;
        return pool_redirect_reply(conn, location);
    }
    if (take_task(conn, t) < 0)
        return reply(conn, t);
    if (t->import && length == UNKNOWN_LENGTH) {
        t->until_eof = true;
        length = -1;
    }
    const char *vdi = http_param(conn, "vdi");
    const char *format_name = http_param(conn, "format");
    const char *base = http_param(conn, "base");
    VdiStreamFormat format = VDI_STREAM_RAW;
    g_autofree char *base_ref = NULL;
    if (format_name && !vdi_stream_format_parse(format_name, &format)) {
        g_autofree char *why = g_strdup_printf("Unknown format %s", format_name);
        xapi_error_set(&t->error, "INTERNAL_ERROR", why, NULL);
        t->status = MHD_HTTP_BAD_REQUEST;
    } else if (t->import && http_param(conn, "chunked")) {
        /* XAPI's own framing of raw blocks (vhd-tool's chunked protocol) */
        xapi_error_set(&t->error, "IMPORT_ERROR_CANNOT_HANDLE_CHUNKED", NULL);
        t->status = MHD_HTTP_BAD_REQUEST;
    } else if (!vdi) {
        xapi_error_set(&t->error, "VDI_MISSING", "", "", NULL);
        t->status = MHD_HTTP_BAD_REQUEST;
    } else if (!named_ref) { /* resolved once: the 302 decided on the same VDI */
        t->error = g_steal_pointer(&unknown);
    } else if ((t->vdi = g_steal_pointer(&named_ref)) &&
               (!base || (base_ref = vdi_transfer_resolve(base, &t->error)))) {
        if (t->import)
            t->im = vdi_import_begin(t->vdi, format, length, t->task.ref, &t->error);
        else
            t->ex = vdi_export_begin(t->vdi, base_ref, format, t->task.ref, &t->error);
    }
    if (!t->im && !t->ex) {
        fail(t);
        return reply(conn, t);
    }
    return t->ex ? send_export(conn, t, format) : MHD_YES;
}

static void import_done(HttpTransfer *t)
{
    int rc = vdi_import_finish(t->im, &t->error);
    vdi_import_free(g_steal_pointer(&t->im)); /* unlocked before the reply */
    if (rc < 0) {
        fail(t);
        return;
    }
    GString *result = g_string_new(NULL);
    g_autoptr(Xv) ref = xv_new_string(t->vdi);
    xmlrpc_append_value(result, ref); /* XAPI's task result: the VDI */
    settle(t, result->str);
    g_string_free(result, TRUE);
}

enum MHD_Result http_transfer_request(struct MHD_Connection *conn, bool trusted, const char *url,
                                      const char *upload_data, size_t *upload_data_size,
                                      HttpTransfer **state)
{
    HttpTransfer *t = *state;
    if (!t) {
        *state = t = g_new0(HttpTransfer, 1);
        t->import = path_is(url, "/import_raw_vdi");
        return start(conn, trusted, t);
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (!t->im) /* failed: read on a little, to be able to say why */
            return (t->drained += n) > DRAIN_LIMIT ? MHD_NO : MHD_YES;
        if (vdi_import_write(t->im, upload_data, n, &t->error) < 0) {
            vdi_import_free(g_steal_pointer(&t->im));
            fail(t);
        }
        return MHD_YES;
    }
    if (t->im)
        import_done(t);
    return t->replied ? MHD_YES : reply(conn, t);
}

void http_transfer_completed(HttpTransfer *t, enum MHD_RequestTerminationCode toe)
{
    if (!t)
        return;
    if (!t->settled && t->im && t->until_eof && toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT) {
        import_done(t); /* the peer's end-of-file ended the stream */
    } else if (!t->settled && t->im) {
        xapi_error_set(&t->error, "IMPORT_ERROR_PREMATURE_EOF", NULL);
        /* unlocked before the task says it failed: its watcher may go on */
        vdi_import_free(g_steal_pointer(&t->im));
        fail(t);
    } else if (!t->settled && t->ex) {
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
            xapi_error_set(&t->error, "VDI_IO_ERROR", "the client closed the connection", NULL);
        if (t->error)
            fail(t);
        else
            settle(t, "");
    }
    vdi_import_free(t->im);
    vdi_export_free(t->ex);
    http_task_release(&t->task);
    http_caller_end(&t->caller);
    xapi_error_free(t->error);
    g_free(t->vdi);
    g_free(t);
}
