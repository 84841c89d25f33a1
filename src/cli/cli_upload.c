/* cli_upload.c: /cli_upload/<token>, the body of `xe vdi-import` (see
 * cli_upload.h). */
#include "cli_upload.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include "cli_wire.h"
#include "http_server.h"

#define UPLOAD_PREFIX "/cli_upload/"
#define UPLOAD_BLOCK ((size_t)1 << 20)
/* An upload silent this long is given up (MHD's idle timeout does not
 * watch a connection taken over), so that its command ends. */
#define UPLOAD_IDLE_MS (300 * 1000)

struct CliUpload {
    char *token;
    char *path;
    char *vdi, *task;
    VdiStreamFormat format;
    bool claimed; /* its request came (a token serves once) */
    bool done;    /* and ended */
    XapiError *error;
};

static GMutex lock;
static GCond changed;
static GHashTable *by_token; /* token -> CliUpload* (not owned) */

CliUpload *cli_upload_register(const char *vdi_ref, VdiStreamFormat format, const char *task_ref)
{
    CliUpload *up = g_new0(CliUpload, 1);
    guint8 raw[16];
    for (unsigned i = 0; i < sizeof raw; i += 4) {
        guint32 r = g_random_int(); /* GLib seeds from /dev/urandom */
        memcpy(raw + i, &r, 4);
    }
    GString *hex = g_string_new(NULL);
    for (unsigned i = 0; i < sizeof raw; i++)
        g_string_append_printf(hex, "%02x", raw[i]);
    up->token = g_string_free(hex, FALSE);
    up->path = g_strconcat(UPLOAD_PREFIX, up->token, NULL);
    up->vdi = g_strdup(vdi_ref);
    up->task = g_strdup(task_ref);
    up->format = format;
    g_mutex_lock(&lock);
    if (!by_token)
        by_token = g_hash_table_new(g_str_hash, g_str_equal);
    g_hash_table_insert(by_token, up->token, up);
    g_mutex_unlock(&lock);
    return up;
}

const char *cli_upload_path(const CliUpload *up)
{
    return up->path;
}

int cli_upload_finish(CliUpload *up, bool client_ok, XapiError **err)
{
    g_mutex_lock(&lock);
    g_hash_table_remove(by_token, up->token); /* no request can claim it from now */
    while (up->claimed && !up->done)
        g_cond_wait(&changed, &lock);
    bool came = up->claimed;
    g_mutex_unlock(&lock);
    int rc = 0;
    if (up->error) {
        *err = g_steal_pointer(&up->error);
        rc = -1;
    } else if (!came || !client_ok) {
        rc = xapi_error_set(err, "INTERNAL_ERROR", "the client did not upload the file", NULL);
    }
    g_free(up->token);
    g_free(up->path);
    g_free(up->vdi);
    g_free(up->task);
    g_free(up);
    return rc;
}

bool cli_upload_route(const char *method, const char *url)
{
    return strcmp(method, MHD_HTTP_METHOD_PUT) == 0 && g_str_has_prefix(url, UPLOAD_PREFIX);
}

static enum MHD_Result refuse(struct MHD_Connection *conn)
{
    static const char text[] = "Not found\n";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof text - 1, (void *)text, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_NOT_FOUND, r);
    MHD_destroy_response(r);
    return ret;
}

/* The body into the import: Content-Length bytes, else up to the end. */
static int receive(CliWire *w, VdiImport *im, int64_t length, XapiError **err)
{
    g_autofree char *buf = g_malloc(UPLOAD_BLOCK);
    int64_t got = 0;
    while (length < 0 || got < length) {
        size_t want = length < 0 ? UPLOAD_BLOCK : (size_t)MIN((int64_t)UPLOAD_BLOCK, length - got);
        ssize_t n = cli_wire_read_some(w, buf, want);
        if (n == 0 && length < 0)
            break;
        if (n <= 0)
            return xapi_error_set(err, "INTERNAL_ERROR", "the upload ended early", NULL);
        if (vdi_import_write(im, buf, (size_t)n, err) < 0)
            return -1;
        got += n;
    }
    return vdi_import_finish(im, err);
}

enum MHD_Result cli_upload_serve(struct MHD_Connection *conn, const char *url)
{
    const char *token = url + strlen(UPLOAD_PREFIX);
    g_mutex_lock(&lock);
    CliUpload *up = by_token ? g_hash_table_lookup(by_token, token) : NULL;
    if (up && !up->claimed)
        up->claimed = true;
    else
        up = NULL;
    g_mutex_unlock(&lock);
    if (!up)
        return refuse(conn);
    gnutls_session_t tls;
    int fd = http_connection_socket(conn, &tls);
    const char *len_text =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    int64_t length = len_text ? g_ascii_strtoll(len_text, NULL, 10) : -1;
    XapiError *err = NULL;
    VdiImport *im = fd >= 0 ? vdi_import_begin(up->vdi, up->format, length, up->task, &err) : NULL;
    if (im) {
        CliWire w = {.fd = fd, .tls = tls, .idle_ms = UPLOAD_IDLE_MS};
        static const char ok[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
        if (cli_wire_write(&w, ok, sizeof ok - 1) < 0)
            xapi_error_set(&err, "INTERNAL_ERROR", "the client went away", NULL);
        else
            receive(&w, im, length, &err);
        vdi_import_free(im);
    } else if (!err) {
        xapi_error_set(&err, "INTERNAL_ERROR", "no socket for the upload", NULL);
    }
    g_mutex_lock(&lock);
    up->error = err;
    up->done = true;
    g_cond_broadcast(&changed);
    g_mutex_unlock(&lock);
    return MHD_NO; /* MHD closes the connection */
}
