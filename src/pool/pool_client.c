/* pool_client.c: a small blocking HTTP/1.1 client over GIO sockets for
 * host-to-host calls within a pool. */
#include "pool_client.h"

#include <gio/gio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#include "xmlrpc.h"

void pool_http_reply_clear(PoolHttpReply *r)
{
    g_free(r->body);
    *r = (PoolHttpReply){0};
}

static int io_failed(XapiError **err, const char *endpoint, GError *gerr)
{
    return xapi_error_internal(err, "%s: %s", endpoint, gerr ? gerr->message : "connection closed");
}

/* Reads the whole reply (the request asked for Connection: close). */
static int read_reply(GInputStream *in, const char *endpoint, PoolHttpReply *reply,
                      XapiError **err)
{
    g_autoptr(GByteArray) all = g_byte_array_new();
    guint8 buf[16384];
    for (;;) {
        g_autoptr(GError) gerr = NULL;
        gssize n = g_input_stream_read(in, buf, sizeof buf, NULL, &gerr);
        if (n < 0)
            return io_failed(err, endpoint, gerr);
        if (n == 0)
            break;
        g_byte_array_append(all, buf, (guint)n);
    }
    g_byte_array_append(all, (const guint8 *)"", 1);
    const char *text = (const char *)all->data;
    const char *end = strstr(text, "\r\n\r\n");
    if (!g_str_has_prefix(text, "HTTP/1.") || !end || strlen(text) < 12)
        return xapi_error_internal(err, "%s: not an HTTP reply", endpoint);
    reply->status = (int)g_ascii_strtoll(text + 9, NULL, 10);
    const char *body = end + 4;
    size_t len = all->len - 1 - (size_t)(body - text);
    /* Chunked replies (streamed RPC results) are joined. */
    g_autofree char *headers = g_ascii_strdown(text, end - text);
    if (strstr(headers, "transfer-encoding: chunked")) {
        GString *joined = g_string_new(NULL);
        const char *p = body, *stop = body + len;
        while (p < stop) {
            char *after = NULL;
            guint64 size = g_ascii_strtoull(p, &after, 16);
            const char *data = strstr(after, "\r\n");
            if (!data || size == 0)
                break;
            data += 2;
            if ((size_t)(stop - data) < size)
                size = (guint64)(stop - data);
            g_string_append_len(joined, data, (gssize)size);
            p = data + size + 2;
        }
        reply->len = joined->len;
        reply->body = g_string_free(joined, FALSE);
        return 0;
    }
    reply->body = g_strndup(body, len);
    reply->len = len;
    return 0;
}

int pool_http(const char *endpoint, const char *method, const char *path,
              const char *const *headers, const char *body, size_t len, unsigned timeout_s,
              PoolHttpReply *reply, XapiError **err)
{
    return pool_http_connect_within(endpoint, method, path, headers, body, len, timeout_s,
                                    timeout_s, reply, err);
}

int pool_http_connect_within(const char *endpoint, const char *method, const char *path,
                             const char *const *headers, const char *body, size_t len,
                             unsigned connect_s, unsigned timeout_s, PoolHttpReply *reply,
                             XapiError **err)
{
    *reply = (PoolHttpReply){0};
    g_autoptr(GSocketClient) client = g_socket_client_new();
    g_socket_client_set_timeout(client, connect_s);
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GSocketConnection) conn =
        g_socket_client_connect_to_host(client, endpoint, 80, NULL, &gerr);
    if (!conn)
        return io_failed(err, endpoint, gerr);
    GSocket *socket = g_socket_connection_get_socket(conn);
    g_socket_set_timeout(socket, timeout_s);
    g_socket_set_option(socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
    GString *req = g_string_new(NULL);
    g_string_append_printf(req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method,
                           path, endpoint);
    for (const char *const *h = headers; h && *h; h++)
        g_string_append_printf(req, "%s\r\n", *h);
    if (body)
        g_string_append_printf(req, "Content-Length: %zu\r\n", len);
    g_string_append(req, "\r\n");
    GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(conn));
    bool sent = g_output_stream_write_all(out, req->str, req->len, NULL, NULL, &gerr) &&
                (!body || g_output_stream_write_all(out, body, len, NULL, NULL, &gerr));
    g_string_free(req, TRUE);
    if (!sent)
        return io_failed(err, endpoint, gerr);
    return read_reply(g_io_stream_get_input_stream(G_IO_STREAM(conn)), endpoint, reply, err);
}

int pool_rpc_raw(const char *endpoint, const char *path, const char *content_type,
                 const char *const *headers, const char *body, size_t len, unsigned timeout_s,
                 PoolHttpReply *reply, XapiError **err)
{
    g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(all, g_strconcat("Content-Type: ", content_type, NULL));
    for (const char *const *h = headers; h && *h; h++)
        g_ptr_array_add(all, g_strdup(*h));
    g_ptr_array_add(all, NULL);
    return pool_http(endpoint, "POST", path, (const char *const *)all->pdata, body, len,
                     timeout_s, reply, err);
}

int pool_rpc(const char *endpoint, const char *method, const Xv *params, unsigned timeout_s,
             Xv **value, XapiError **err)
{
    return pool_rpc_with_headers(endpoint, method, params, NULL, timeout_s, value, err);
}

int pool_rpc_with_headers(const char *endpoint, const char *method, const Xv *params,
                          const char *const *headers, unsigned timeout_s, Xv **value,
                          XapiError **err)
{
    *value = NULL;
    size_t len;
    g_autofree char *body = xmlrpc_format_call(method, params, &len);
    PoolHttpReply reply;
    if (pool_rpc_raw(endpoint, "/", "text/xml", headers, body, len, timeout_s, &reply, err) < 0)
        return -2;
    g_autoptr(Xv) envelope = NULL;
    g_autofree char *why = NULL;
    int rc = reply.status == 200 ? xmlrpc_parse_response(reply.body, reply.len, &envelope, &why)
                                 : -1;
    pool_http_reply_clear(&reply);
    if (rc < 0 || envelope->kind != XV_STRUCT) {
        xapi_error_internal(err, "%s: bad reply to %s: %s", endpoint, method,
                            why ? why : "not a struct");
        return -2;
    }
    const Xv *status = xv_struct_get(envelope, "Status");
    if (status && g_strcmp0(xv_str(status), "Success") == 0) {
        const Xv *v = xv_struct_get(envelope, "Value");
        *value = v ? xv_dup(v) : xv_new_string("");
        return 0;
    }
    const Xv *desc = xv_struct_get(envelope, "ErrorDescription");
    if (!desc || desc->kind != XV_ARRAY || !xv_len(desc)) {
        xapi_error_internal(err, "%s: %s failed without a description", endpoint, method);
        return -1;
    }
    g_autoptr(GPtrArray) params_text = g_ptr_array_new();
    for (guint i = 1; i < xv_len(desc); i++)
        g_ptr_array_add(params_text, (gpointer)(xv_str(xv_at(desc, i)) ? xv_str(xv_at(desc, i)) : ""));
    xapi_error_setv(err, xv_str(xv_at(desc, 0)), (const char *const *)params_text->pdata,
                    params_text->len);
    return -1;
}
