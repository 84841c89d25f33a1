/* xva_url.c: VM.import from an http(s) URL (see xva_url.h), over GIO's
 * socket client (TLS through GIO's backend when the URL is https; the
 * peer's certificate is not checked, as XAPI's import from URL does not). */
#include "xva_url.h"

#include <gio/gio.h>
#include <string.h>

#include "xva_import.h"

#define READ_CHUNK ((gsize)256 << 10)
#define HEADER_MAX ((gsize)64 << 10)

static int fetch_error(XapiError **err, const char *url, const char *why)
{
    g_autofree char *msg = g_strdup_printf("cannot fetch %s: %s", url, why);
    return xapi_error_set(err, "IMPORT_ERROR_GENERIC", msg, NULL);
}

/* Sends the GET and reads the reply's head: 0 when it is a 200. */
static int request(GIOStream *io, GUri *uri, const char *url, GDataInputStream **in,
                   XapiError **err)
{
    const char *path = g_uri_get_path(uri);
    const char *query = g_uri_get_query(uri);
    g_autofree char *req =
        g_strdup_printf("GET %s%s%s HTTP/1.0\r\nHost: %s\r\nUser-Agent: xapid\r\n\r\n",
                        *path ? path : "/", query ? "?" : "", query ? query : "",
                        g_uri_get_host(uri));
    g_autoptr(GError) gerr = NULL;
    if (!g_output_stream_write_all(g_io_stream_get_output_stream(io), req, strlen(req), NULL,
                                   NULL, &gerr))
        return fetch_error(err, url, gerr->message);
    *in = g_data_input_stream_new(g_io_stream_get_input_stream(io));
    g_data_input_stream_set_newline_type(*in, G_DATA_STREAM_NEWLINE_TYPE_ANY);
    gsize total = 0;
    for (bool first = true;; first = false) {
        gsize len = 0;
        g_autofree char *line = g_data_input_stream_read_line(*in, &len, NULL, &gerr);
        if (!line)
            return fetch_error(err, url, gerr ? gerr->message : "no reply");
        total += len;
        if (total > HEADER_MAX)
            return fetch_error(err, url, "the reply's header is too long");
        if (first) {
            /* "HTTP/1.x 200 ..." */
            const char *sp = strchr(line, ' ');
            if (!g_str_has_prefix(line, "HTTP/") || !sp || strncmp(sp + 1, "200", 3) != 0)
                return fetch_error(err, url, line);
        } else if (len == 0) {
            return 0;
        }
    }
}

int xva_import_url(const char *url, const char *sr, bool restore, bool force,
                   const char *task_ref, Xv **vms, XapiError **err)
{
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GUri) uri = g_uri_parse(url, G_URI_FLAGS_ENCODED, &gerr);
    const char *scheme = uri ? g_uri_get_scheme(uri) : NULL;
    if (!uri || !g_uri_get_host(uri) ||
        (g_ascii_strcasecmp(scheme, "http") != 0 && g_ascii_strcasecmp(scheme, "https") != 0))
        return fetch_error(err, url, "not an http or https URL");
    bool tls = g_ascii_strcasecmp(scheme, "https") == 0;
    g_autofree char *target = xva_import_target_sr(sr, NULL, err);
    if (!target)
        return -1;
    g_autoptr(GSocketClient) client = g_socket_client_new();
    if (tls) {
        g_socket_client_set_tls(client, TRUE);
        G_GNUC_BEGIN_IGNORE_DEPRECATIONS
        g_socket_client_set_tls_validation_flags(client, 0);
        G_GNUC_END_IGNORE_DEPRECATIONS
    }
    int port = g_uri_get_port(uri);
    g_autoptr(GSocketConnection) conn = g_socket_client_connect_to_host(
        client, g_uri_get_host(uri), (guint16)(port > 0 ? port : tls ? 443 : 80), NULL, &gerr);
    if (!conn)
        return fetch_error(err, url, gerr->message);
    g_autoptr(GDataInputStream) in = NULL;
    if (request(G_IO_STREAM(conn), uri, url, &in, err) < 0)
        return -1;
    XvaImportOptions opt = {.sr = target, .restore = restore, .force = force};
    XvaImport *im = xva_import_begin(&opt, task_ref);
    g_autofree guint8 *buf = g_malloc(READ_CHUNK);
    int rc = 0;
    for (;;) {
        gssize n = g_input_stream_read(G_INPUT_STREAM(in), buf, READ_CHUNK, NULL, &gerr);
        if (n < 0) {
            rc = fetch_error(err, url, gerr->message);
            break;
        }
        if (n == 0)
            break;
        if ((rc = xva_import_write(im, buf, (size_t)n, err)) < 0)
            break;
    }
    g_autofree char *result = NULL;
    if (rc == 0)
        rc = xva_import_finish(im, &result, err);
    if (rc == 0) {
        *vms = xv_new_array();
        const GPtrArray *refs = xva_import_new_vms(im);
        for (guint i = 0; i < refs->len; i++)
            xv_array_append_string(*vms, refs->pdata[i]);
    }
    xva_import_free(im);
    return rc;
}
