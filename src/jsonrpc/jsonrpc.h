/* jsonrpc.h: the JSON-RPC 1.0 and 2.0 codec for XenAPI calls (/jsonrpc), and the JSON text form of Xv values. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "xapi_error.h"
#include "xv.h"
#include <glib.h>

typedef struct JsonRpcRequest {
    int version;      /* 1 or 2: 2 when the request has "jsonrpc":"2.0" */
    char *method;
    Xv *params;       /* XV_ARRAY */
    char *id_json;    /* the request's id, re-serialised as JSON text (number, string...) */
} JsonRpcRequest;

/* Frees the contents and leaves the request zeroed; safe on a zeroed one. */
void jsonrpc_request_clear(JsonRpcRequest *req);

/* 0 on success; -1 with *error_text (g_malloc'd) on malformed input.
 * body need not be NUL-terminated. *req is overwritten; on failure it is
 * left zeroed, so clearing it afterwards is harmless. */
int jsonrpc_parse_request(const char *body, size_t len, JsonRpcRequest *req, char **error_text);

/* Replies, compact (g_malloc'd, *len set):
 *   v1 {"result":v,"error":null,"id":id} / {"result":null,"error":[CODE,...],"id":id}
 *   v2 {"jsonrpc":"2.0","result":v,"id":id} /
 *      {"jsonrpc":"2.0","error":{"code":1,"message":CODE,"data":[...]},"id":id}
 * req may be NULL (v1 reply, id null); a NULL value is written as null. */
char *jsonrpc_format_result(const JsonRpcRequest *req, const Xv *value, size_t *len);
char *jsonrpc_format_error(const JsonRpcRequest *req, const XapiError *err, size_t *len);

/* Encode one value as JSON text (used elsewhere, e.g. for the DB's JSON
 * columns and tests); datetimes become XAPI's "YYYYMMDDTHH:MM:SSZ" strings. */
char *jsonrpc_value_to_json(const Xv *v);
/* Appends ["," unless first] "key":value (for replies written in pieces). */
void jsonrpc_append_member(GString *out, const char *key, const Xv *value, bool first);
/* Decode JSON text to Xv (same mapping as params); NULL + *error_text on failure. */
Xv *jsonrpc_value_from_json(const char *text, size_t len, char **error_text);
