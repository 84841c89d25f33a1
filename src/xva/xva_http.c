/* xva_http.c: the XVA handlers (import.ml handler, export.ml handler and
 * metadata_handler, xapi_http.ml): the caller's session_id (query or
 * cookie) or HTTP basic auth, with the rights of VM.copy (vm-admin); the
 * caller's task_id, which gets progress and outcome (XO reads the new VMs
 * from the import task's result), else a task of our own.
 *
 * An upload of unknown length (Content-Length 2^50, then the connection
 * closed, as Xen Orchestra's connector sends one) ends at the peer's
 * end-of-file, as with /import_raw_vdi; the tar's own end says whether
 * the stream is whole.
 *
 * An import is answered before its body is read, as XAPI answers it
 * (import.ml: 200, then the outcome on the task): Xen Orchestra's
 * putResource waits for that answer before it ends a stream of unknown
 * length. libmicrohttpd queues a response only once the upload is read,
 * so the answer is written on the connection's socket (its TLS session
 * for HTTPS) from the connection's own thread, the only one in which MHD
 * reads or writes that connection (console_proxy.c takes it over so
 * too), and the request ends by closing the connection.
 *
 * Not served: the 302 to a host that sees the SR (no pools yet: an SR
 * not plugged here is its error), chunked uploads (XAPI's 403
 * IMPORT_ERROR_CANNOT_HANDLE_CHUNKED, here answered likewise). */
#include "xva_http.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <string.h>
#include <sys/socket.h>

#include "db.h"
#include "dm_handlers.h"
#include "http_auth.h"
#include "http_server.h"
#include "http_task.h"
#include "pool_redirect.h"
#include "task.h"
#include "xva_export.h"
#include "xva_import.h"
#include "http_actions.h"
#include "xva_ova.h"
#include "xva_tar.h"

#define UNKNOWN_LENGTH ((int64_t)1 << 50)
#define DRAIN_LIMIT ((size_t)64 << 20)
#define EXPORT_BLOCK ((size_t)256 << 10)
#define PROGRESS_STEP ((int64_t)64 << 20)

typedef enum { XVA_EXPORT, XVA_EXPORT_METADATA, XVA_IMPORT, XVA_IMPORT_METADATA } XvaAction;

struct XvaHttp {
    XvaAction action;
    bool replied;
    bool answered_early; /* an import's 200 is on the socket: MHD sends nothing more */
    bool answer_due;     /* after MHD's 100 Continue, at the first bytes of the body */
    bool until_eof;
    HttpCaller caller;
    HttpTask task;
    XvaExport *ex;
    XvaImport *im;
    int64_t length, received, reported;
    XapiError *error;
    unsigned status;
    size_t drained;
    /* The VM (export) or SR (import) named, resolved once before the 302
     * (which decided on it): the request goes on with the same one. */
    char *target;
    XapiError *target_error;
};

/* The target resolved at the start (caller frees); NULL with h->error. */
static char *take_target(XvaHttp *h)
{
    if (!h->target) {
        h->error = h->target_error;
        h->target_error = NULL;
    }
    return g_steal_pointer(&h->target);
}

static bool path_is(const char *url, const char *path)
{
    size_t n = strlen(path);
    return strncmp(url, path, n) == 0 && (url[n] == '\0' || strcmp(url + n, "/") == 0);
}

bool xva_http_route(const char *method, const char *url)
{
    if (strcmp(method, MHD_HTTP_METHOD_GET) == 0)
        return path_is(url, "/export") || path_is(url, "/export_metadata");
    if (strcmp(method, MHD_HTTP_METHOD_PUT) == 0)
        return path_is(url, "/import") || path_is(url, "/import_metadata");
    return false;
}

static void fail(XvaHttp *h)
{
    if (!h->task.settled)
        http_task_settle(&h->task, h->error, NULL);
}

/* ---- replies -------------------------------------------------------------------- */

static unsigned status_of(const XvaHttp *h)
{
    if (h->status)
        return h->status;
    unsigned auth = http_auth_status(h->error);
    if (auth)
        return auth;
    const char *code = h->error->code;
    if (strcmp(code, "HANDLE_INVALID") == 0 || strcmp(code, "UUID_INVALID") == 0)
        return MHD_HTTP_NOT_FOUND;
    if (g_str_has_prefix(code, "IMPORT_") || strcmp(code, "SR_FULL") == 0 ||
        strcmp(code, "SR_OPERATION_NOT_SUPPORTED") == 0 ||
        strcmp(code, "DEFAULT_SR_NOT_FOUND") == 0)
        return MHD_HTTP_BAD_REQUEST;
    if (strcmp(code, "OTHER_OPERATION_IN_PROGRESS") == 0 ||
        strcmp(code, "VM_BAD_POWER_STATE") == 0 || strcmp(code, "OPERATION_NOT_ALLOWED") == 0)
        return MHD_HTTP_CONFLICT;
    return MHD_HTTP_INTERNAL_SERVER_ERROR;
}

static enum MHD_Result queue(struct MHD_Connection *conn, XvaHttp *h, unsigned status,
                             struct MHD_Response *r)
{
    h->replied = true;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache, no-store");
    return http_task_queue(conn, &h->task, status, r);
}

/* The outcome as a line of text: OK, or the error's code and parameters. */
static enum MHD_Result reply(struct MHD_Connection *conn, XvaHttp *h)
{
    h->replied = true;
    return http_task_reply(conn, &h->task, h->error, h->error ? status_of(h) : MHD_HTTP_OK);
}

static void attachment_headers(struct MHD_Response *r)
{
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_DISPOSITION,
                            "attachment; filename=\"export.xva\"");
}

/* ---- the VMs named ------------------------------------------------------------------ */

static bool param_true(struct MHD_Connection *conn, const char *name, bool fallback)
{
    const char *v = http_param(conn, name);
    return v ? g_ascii_strcasecmp(v, "true") == 0 : fallback;
}

/* ref= (preferred) or uuid=: the VM's ref (caller frees). */
static char *named_vm(struct MHD_Connection *conn, XapiError **err)
{
    const char *ref = http_param(conn, "ref");
    const char *uuid = http_param(conn, "uuid");
    char *out = NULL;
    db_read_begin();
    DbRow *vm = ref ? db_lookup(dm_class_by_name("VM"), ref)
                    : uuid ? db_lookup_uuid(dm_class_by_name("VM"), uuid) : NULL;
    if (vm)
        out = g_strdup(vm->ref);
    db_read_end();
    if (!out && ref)
        xapi_error_set(err, "HANDLE_INVALID", "VM", ref, NULL);
    else if (!out && uuid)
        xapi_error_set(err, "UUID_INVALID", "VM", uuid, NULL);
    else if (!out)
        xapi_error_set(err, "HANDLE_INVALID", "VM", "", NULL);
    return out;
}

typedef struct {
    GPtrArray *refs;
    bool include_dom0;
} AllVms;

static bool add_vm(DbRow *vm, void *ctx)
{
    AllVms *a = ctx;
    bool dom0 = db_get(vm, "is_control_domain")->b;
    if (!db_get(vm, "is_a_snapshot")->b && (!dom0 || a->include_dom0))
        g_ptr_array_add(a->refs, g_strdup(vm->ref));
    return true;
}

/* ---- export ----------------------------------------------------------------------- */

static ssize_t export_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    XvaHttp *h = cls;
    if (!h->ex)
        return MHD_CONTENT_READER_END_OF_STREAM;
    ssize_t n = xva_export_read(h->ex, buf, max, &h->error);
    if (n < 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (n == 0) { /* unlocked, the snapshot dropped, then the task says so */
        xva_export_free(g_steal_pointer(&h->ex));
        http_task_settle(&h->task, NULL, "");
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    return n;
}

static enum MHD_Result start_export(struct MHD_Connection *conn, XvaHttp *h)
{
    g_autofree char *vm = take_target(h);
    XvaExportOptions opt = {
        .compression = xva_compression_parse(http_param(conn, "use_compression")),
        .preserve_power_state = param_true(conn, "preserve_power_state", false),
        .include_snapshots = param_true(conn, "include_snapshots",
                                        param_true(conn, "export_snapshots", false)),
    };
    if (vm)
        h->ex = xva_export_begin(vm, &opt, h->task.ref, &h->error);
    if (!h->ex) {
        fail(h);
        return reply(conn, h);
    }
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, EXPORT_BLOCK, export_read, h, NULL);
    MHD_set_response_options(r, MHD_RF_HTTP_1_0_SERVER, MHD_RO_END);
    attachment_headers(r);
    return queue(conn, h, MHD_HTTP_OK, r);
}

/* ova.xml alone, for one VM or all of them, with its Content-Length. */
static enum MHD_Result start_export_metadata(struct MHD_Connection *conn, XvaHttp *h)
{
    g_autoptr(GPtrArray) vms = g_ptr_array_new_with_free_func(g_free);
    if (param_true(conn, "all", false)) {
        AllVms a = {vms, param_true(conn, "include_dom0", true)};
        db_read_begin();
        db_foreach(dm_class_by_name("VM"), add_vm, &a);
        db_read_end();
    } else {
        char *vm = named_vm(conn, &h->error);
        if (vm)
            g_ptr_array_add(vms, vm);
    }
    XvaOvaOptions opt = {.preserve_power_state = true,
                         .include_snapshots = param_true(conn, "export_snapshots", true)};
    g_autoptr(XvaOva) ova =
        h->error ? NULL
                 : xva_ova_build((const char *const *)vms->pdata, vms->len, &opt, &h->error);
    if (!ova) {
        fail(h);
        return reply(conn, h);
    }
    GByteArray *tar = g_byte_array_new();
    size_t len = strlen(ova->xml);
    xva_tar_append_header(tar, "ova.xml", len, g_get_real_time() / G_USEC_PER_SEC);
    g_byte_array_append(tar, (const guint8 *)ova->xml, (guint)len);
    xva_tar_append_padding(tar, len);
    xva_tar_append_end(tar);
    size_t size = tar->len;
    struct MHD_Response *r = MHD_create_response_from_buffer(
        size, g_byte_array_free(tar, FALSE), MHD_RESPMEM_MUST_FREE);
    attachment_headers(r);
    http_task_settle(&h->task, NULL, "");
    return queue(conn, h, MHD_HTTP_OK, r);
}

/* ---- import -------------------------------------------------------------------------- */

static int64_t content_length(struct MHD_Connection *conn)
{
    const char *v =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return v ? (int64_t)g_ascii_strtoll(v, NULL, 10) : -1;
}

static int socket_send(struct MHD_Connection *conn, const char *data, size_t len)
{
    gnutls_session_t session;
    int fd = http_connection_socket(conn, &session);
    if (fd < 0)
        return -1;
    while (len > 0) {
        ssize_t n = session ? gnutls_record_send(session, data, len)
                            : send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && (session ? n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED
                              : errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* XAPI's answer to an import, before the body (import.ml; "task-id:"
 * without a space, as XAPI writes it). */
static void answer_early(struct MHD_Connection *conn, XvaHttp *h)
{
    g_autofree char *answer = g_strdup_printf(
        "HTTP/1.1 200 OK\r\nConnection: close\r\nCache-Control: no-cache, no-store\r\n"
        "task-id:%s\r\ncontent-type: application/octet-stream\r\n\r\n",
        h->task.ref);
    h->answered_early = socket_send(conn, answer, strlen(answer)) == 0;
    h->replied = h->answered_early;
}

static enum MHD_Result start_import(struct MHD_Connection *conn, XvaHttp *h)
{
    if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        xapi_error_set(&h->error, "IMPORT_ERROR_CANNOT_HANDLE_CHUNKED", NULL);
        h->status = MHD_HTTP_FORBIDDEN;
        fail(h);
        return reply(conn, h);
    }
    bool metadata = h->action == XVA_IMPORT_METADATA;
    g_autofree char *sr = metadata ? NULL : take_target(h);
    if (!metadata && !sr) {
        fail(h);
        return reply(conn, h);
    }
    XvaImportOptions opt = {.sr = sr,
                            .restore = param_true(conn, "restore", false),
                            .force = param_true(conn, "force", false),
                            .metadata_only = metadata,
                            .dry_run = metadata && param_true(conn, "dry_run", false)};
    h->im = xva_import_begin(&opt, h->task.ref);
    h->length = content_length(conn);
    if (h->length == UNKNOWN_LENGTH) {
        h->until_eof = true;
        h->length = -1;
    }
    /* A client that asked for 100 Continue gets it from MHD once this
     * returns, and the answer after it, with the body's first bytes. */
    if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT))
        h->answer_due = true;
    else
        answer_early(conn, h);
    return MHD_YES;
}

static void import_done(XvaHttp *h)
{
    g_autofree char *result = NULL;
    int rc = xva_import_finish(h->im, &result, &h->error);
    xva_import_free(g_steal_pointer(&h->im)); /* a failed one undone before the reply */
    if (rc < 0)
        fail(h);
    else
        http_task_settle(&h->task, NULL, result);
}

static void import_progress(XvaHttp *h, size_t n)
{
    h->received += (int64_t)n;
    if (h->length > 0 && h->received - h->reported >= PROGRESS_STEP) {
        h->reported = h->received;
        task_set_progress(h->task.ref, 0.99 * (double)h->received / (double)h->length);
    }
}

/* ---- the request ---------------------------------------------------------------------- */

/* Resolves the target; where the request is served when not here (NULL:
 * here). */
static char *redirect_of(struct MHD_Connection *conn, XvaHttp *h)
{
    if (h->action == XVA_EXPORT) {
        h->target = named_vm(conn, &h->target_error);
        return pool_redirect_for_vm(conn, "/export", h->target);
    }
    if (h->action == XVA_IMPORT) {
        h->target = xva_import_target_sr(http_param(conn, "sr_id"), http_param(conn, "sr_uuid"),
                                         &h->target_error);
        return pool_redirect_for_sr(conn, "/import", h->target);
    }
    return NULL;
}

static enum MHD_Result start(struct MHD_Connection *conn, bool trusted, XvaHttp *h)
{
    /* XAPI's http actions of the four (vm-admin and above) */
    static const char *const actions[] = {"get_export", "get_export_metadata", "put_import",
                                          "put_import_metadata"};
    if (http_caller_authorize(conn, trusted, http_action(actions[h->action]), &h->caller,
                              &h->error) < 0)
        return reply(conn, h);
    bool import = h->action == XVA_IMPORT || h->action == XVA_IMPORT_METADATA;
    if (import && content_length(conn) == 0) { /* a client's probe: nothing touched */
        h->task.settled = true;
        return reply(conn, h);
    }
    /* A VM whose disks are not all here, an import to an SR not plugged
     * here: 302 to the host that can (XAPI's export.ml, import.ml). */
    g_autofree char *location = redirect_of(conn, h);
    if (location) {
        h->task.settled = h->replied = true;
        return pool_redirect_reply(conn, location);
    }
    static const char *const labels[] = {"Export of VM", "Export of VM metadata",
                                         "VM import", "VM metadata import"};
    if (http_task_take(conn, &h->caller, labels[h->action], &h->task, &h->error) < 0)
        return reply(conn, h);
    switch (h->action) {
    case XVA_EXPORT:
        return start_export(conn, h);
    case XVA_EXPORT_METADATA:
        return start_export_metadata(conn, h);
    case XVA_IMPORT:
    case XVA_IMPORT_METADATA:
        break;
    }
    return start_import(conn, h);
}

enum MHD_Result xva_http_request(struct MHD_Connection *conn, bool trusted, const char *url,
                                 const char *upload_data, size_t *upload_data_size,
                                 XvaHttp **state)
{
    XvaHttp *h = *state;
    if (!h) {
        *state = h = g_new0(XvaHttp, 1);
        h->action = path_is(url, "/export")            ? XVA_EXPORT
                    : path_is(url, "/export_metadata") ? XVA_EXPORT_METADATA
                    : path_is(url, "/import")          ? XVA_IMPORT
                                                       : XVA_IMPORT_METADATA;
        return start(conn, trusted, h);
    }
    if (h->answer_due) {
        h->answer_due = false;
        answer_early(conn, h);
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (!h->im) /* failed: read on a little, to be able to say why */
            return (h->drained += n) > DRAIN_LIMIT ? MHD_NO : MHD_YES;
        if (xva_import_write(h->im, upload_data, n, &h->error) < 0) {
            xva_import_free(g_steal_pointer(&h->im));
            fail(h);
        } else {
            import_progress(h, n);
        }
        return MHD_YES;
    }
    if (h->im)
        import_done(h);
    if (h->answered_early)
        return MHD_NO; /* the answer went out already: the connection ends */
    return h->replied ? MHD_YES : reply(conn, h);
}

void xva_http_completed(XvaHttp *h, enum MHD_RequestTerminationCode toe)
{
    if (!h)
        return;
    if (h->im && h->until_eof && toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT) {
        import_done(h); /* the peer's end-of-file ended the stream */
    } else if (h->im) {
        xapi_error_set(&h->error, "IMPORT_ERROR_PREMATURE_EOF", NULL);
        xva_import_free(g_steal_pointer(&h->im));
        fail(h);
    } else if (h->ex) {
        if (!h->error)
            xapi_error_set(&h->error, "VDI_IO_ERROR", "the client closed the connection", NULL);
        xva_export_free(g_steal_pointer(&h->ex));
        fail(h);
    } else if (!h->task.settled && h->error) {
        fail(h);
    }
    http_task_release(&h->task);
    http_caller_end(&h->caller);
    xapi_error_free(h->error);
    xapi_error_free(h->target_error);
    g_free(h->target);
    g_free(h);
}
