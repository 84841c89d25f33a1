/* jsonrpc_fuzz.c: libFuzzer target for the JSON-RPC request reader and the reply writer. */
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonrpc.h"

/* json-c, strict and UTF-8 checking, is the independent judge of our
 * output: every reply must be one complete JSON value. */
static void check_json(const char *text, size_t len)
{
    struct json_tokener *tok = json_tokener_new_ex(200);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    struct json_object *obj = json_tokener_parse_ex(tok, text, (int)len);
    if (!obj || json_tokener_get_error(tok) != json_tokener_success ||
        json_tokener_get_parse_end(tok) != len)
        abort();
    json_object_put(obj);
    json_tokener_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    JsonRpcRequest req = {0};
    g_autofree char *why = NULL;
    if (jsonrpc_parse_request((const char *)data, size, &req, &why) < 0) {
        if (!why || !*why || req.method || req.params || req.id_json)
            abort();
        return 0;
    }

    size_t len = 0;
    g_autofree char *reply = jsonrpc_format_result(&req, req.params, &len);
    if (len != strlen(reply))
        abort();
    check_json(reply, len);

    /* Our own reader must get the params back unchanged from the reply. */
    g_autoptr(Xv) back = jsonrpc_value_from_json(reply, len, NULL);
    const Xv *result = back ? xv_struct_get(back, "result") : NULL;
    if (!result || !xv_equal(result, req.params))
        abort();

    /* An error whose code and parameters come from the input. */
    const char *params[2] = {req.id_json, ""};
    if (xv_len(req.params) > 0 && xv_str(xv_at(req.params, 0)))
        params[1] = xv_str(xv_at(req.params, 0));
    XapiError *err = NULL;
    xapi_error_setv(&err, req.method, params, 2);
    g_autofree char *error_reply = jsonrpc_format_error(&req, err, &len);
    check_json(error_reply, len);
    xapi_error_free(err);

    jsonrpc_request_clear(&req);
    return 0;
}
