/* jsonrpc.h: the JSON-RPC 1.0 and 2.0 codec for XenAPI calls (/jsonrpc). */
#pragma once
#include "xv.h"
#include "xapi_error.h"
typedef struct JsonRpcRequest {
    int version;   /* 2 when the request has "jsonrpc":"2.0", else 1 */
    char *method;
    Xv *params;    /* XV_ARRAY */
    char *id_json; /* the request's id re-serialised as JSON text */
} JsonRpcRequest;
void jsonrpc_request_clear(JsonRpcRequest *req);
/* 0, or -1 with *error_text (g_malloc'd) for malformed input. */
int jsonrpc_parse_request(const char *body, size_t len, JsonRpcRequest *req, char **error_text);
/* Replies, compact (g_malloc'd, *len set):
 *   v1 {"result":v,"error":null,"id":id} / {"result":null,"error":[CODE,...],"id":id}
 *   v2 {"jsonrpc":"2.0","result":v,"id":id} /
 *      {"jsonrpc":"2.0","error":{"code":1,"message":CODE,"data":[...]},"id":id} */
char *jsonrpc_format_result(const JsonRpcRequest *req, const Xv *value, size_t *len);
char *jsonrpc_format_error(const JsonRpcRequest *req, const XapiError *err, size_t *len);
/* One value as compact JSON text (datetimes as XAPI's strings). */
char *jsonrpc_value_to_json(const Xv *v);
