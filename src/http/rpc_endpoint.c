/* rpc_endpoint.c: XML-RPC and JSON-RPC envelopes around dispatch_call. */
#include "rpc_endpoint.h"

#include <string.h>

#include "jsonrpc.h"
#include "xmlrpc.h"

/* The envelope is written around a placeholder, then split there: the
 * members of the lazy result go between prefix and suffix. */
#define LAZY_PLACEHOLDER "@@xapid-lazy-result@@"

struct RpcStream {
    RpcProtocol protocol;
    char *prefix, *suffix;
    Xv *lazy;
    guint next;  /* member to produce next */
    int stage;   /* 0 prefix, 1 members, 2 suffix, 3 done */
    bool first;  /* no JSON member written yet */
};

typedef struct {
    RpcStream *stream;
    GString *out;
} StreamEmit;

static void emit_member(const char *key, const Xv *value, void *ctx)
{
    StreamEmit *e = ctx;
    if (e->stream->protocol == RPC_JSON)
        jsonrpc_append_member(e->out, key, value, e->stream->first);
    else
        xmlrpc_append_member(e->out, key, value);
    e->stream->first = false;
}

bool rpc_stream_next(RpcStream *s, GString *out)
{
    switch (s->stage) {
    case 0:
        g_string_append(out, s->prefix);
        s->stage = xv_lazy_len(s->lazy) ? 1 : 2;
        return true;
    case 1: {
        StreamEmit e = {s, out};
        xv_lazy_visit(s->lazy, s->next, emit_member, &e);
        if (++s->next == xv_lazy_len(s->lazy))
            s->stage = 2;
        return true;
    }
    case 2:
        g_string_append(out, s->suffix);
        s->stage = 3;
        return true;
    default:
        return false;
    }
}

void rpc_stream_free(RpcStream *s)
{
    if (!s)
        return;
    g_free(s->prefix);
    g_free(s->suffix);
    xv_free(s->lazy);
    g_free(s);
}

/* Splits a formatted envelope at the placeholder's value. */
static RpcStream *stream_new(RpcProtocol protocol, char *envelope, const char *hole,
                             const char *open, const char *close, Xv *lazy)
{
    char *at = strstr(envelope, hole);
    g_assert(at);
    RpcStream *s = g_new0(RpcStream, 1);
    s->protocol = protocol;
    s->prefix = g_strdup_printf("%.*s%s", (int)(at - envelope), envelope, open);
    s->suffix = g_strconcat(close, at + strlen(hole), NULL);
    s->lazy = lazy;
    s->first = true;
    g_free(envelope);
    return s;
}

static void reply_bad_request(RpcReply *reply, const char *why)
{
    reply->http_status = 400;
    reply->content_type = "text/plain";
    reply->body = g_strdup_printf("Bad request: %s\n", why);
    reply->len = strlen(reply->body);
}

/* XML-RPC replies wrap the value as {Status, Value} or
 * {Status, ErrorDescription}; system.* replies are bare. */
static Xv *xml_envelope(Xv *value, XapiError *err, bool bare)
{
    if (bare && value)
        return value;
    Xv *env = xv_new_struct();
    if (err) {
        Xv *desc = xv_new_array();
        xv_array_append_string(desc, err->code);
        for (guint i = 0; i < err->params->len; i++)
            xv_array_append_string(desc, err->params->pdata[i]);
        xv_struct_set_string(env, "Status", "Failure");
        xv_struct_set(env, "ErrorDescription", desc);
    } else {
        xv_struct_set_string(env, "Status", "Success");
        xv_struct_set(env, "Value", value);
    }
    return env;
}

static void handle_xml(const char *body, size_t len, const DispatchOrigin *origin,
                       RpcReply *reply)
{
    g_autofree char *method = NULL;
    g_autofree char *why = NULL;
    g_autoptr(Xv) params = NULL;
    if (xmlrpc_parse_call(body, len, &method, &params, &why) < 0) {
        reply_bad_request(reply, why);
        return;
    }
    g_autoptr(XapiError) err = NULL;
    bool bare = false;
    Xv *value = dispatch_call(method, params, origin, &bare, &err);
    reply->http_status = 200;
    reply->content_type = "text/xml";
    if (value && value->kind == XV_LAZY) {
        g_autoptr(Xv) env = xml_envelope(xv_new_string(LAZY_PLACEHOLDER), NULL, bare);
        size_t len;
        reply->stream = stream_new(RPC_XML, xmlrpc_format_response(env, &len),
                                   "<value>" LAZY_PLACEHOLDER "</value>", "<value><struct>",
                                   "</struct></value>", value);
        return;
    }
    g_autoptr(Xv) env = xml_envelope(value, err, bare);
    reply->body = xmlrpc_format_response(env, &reply->len);
}

static void handle_json(const char *body, size_t len, const DispatchOrigin *origin,
                        RpcReply *reply)
{
    JsonRpcRequest req = {0};
    g_autofree char *why = NULL;
    if (jsonrpc_parse_request(body, len, &req, &why) < 0) {
        reply_bad_request(reply, why);
        jsonrpc_request_clear(&req);
        return;
    }
    g_autoptr(XapiError) err = NULL;
    bool bare = false;
    g_autoptr(Xv) value = dispatch_call(req.method, req.params, origin, &bare, &err);
    reply->http_status = 200;
    reply->content_type = "application/json";
    if (value && value->kind == XV_LAZY) {
        g_autoptr(Xv) hole = xv_new_string(LAZY_PLACEHOLDER);
        size_t len;
        reply->stream = stream_new(RPC_JSON, jsonrpc_format_result(&req, hole, &len),
                                   "\"" LAZY_PLACEHOLDER "\"", "{", "}",
                                   g_steal_pointer(&value));
    } else {
        reply->body = err ? jsonrpc_format_error(&req, err, &reply->len)
                          : jsonrpc_format_result(&req, value, &reply->len);
    }
    jsonrpc_request_clear(&req);
}

RpcProtocol rpc_protocol_sniff(const char *body, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (g_ascii_isspace(body[i]))
            continue;
        return body[i] == '{' ? RPC_JSON : RPC_XML;
    }
    return RPC_XML;
}

void rpc_endpoint_handle(RpcProtocol protocol, const char *body, size_t len,
                         const DispatchOrigin *origin, RpcReply *reply)
{
    memset(reply, 0, sizeof *reply);
    if (protocol == RPC_JSON)
        handle_json(body, len, origin, reply);
    else
        handle_xml(body, len, origin, reply);
}
