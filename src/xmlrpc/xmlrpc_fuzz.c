/* xmlrpc_fuzz.c: libFuzzer target: parse a call; what parses must format
 * and parse back as a response, and as a call; the same bytes read as a
 * plugin's methodResponse. */
#include <stdint.h>
#include <stdlib.h>

#include "xmlrpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *method = NULL, *why = NULL;
    Xv *params = NULL;
    if (xmlrpc_parse_call((const char *)data, size, &method, &params, &why) == 0) {
        size_t len;
        char *out = xmlrpc_format_response(params, &len);
        Xv *back = NULL;
        char *why2 = NULL;
        if (xmlrpc_parse_response(out, len, &back, &why2) != 0)
            abort();
        xv_free(back);
        g_free(out);
        out = xmlrpc_format_call(method, params, &len);
        char *method2 = NULL, *why3 = NULL;
        Xv *params2 = NULL;
        if (xmlrpc_parse_call(out, len, &method2, &params2, &why3) != 0)
            abort();
        g_free(method2);
        g_free(why3);
        xv_free(params2);
        g_free(out);
    }
    Xv *reply = NULL;
    char *reply_why = NULL;
    xmlrpc_parse_any_response((const char *)data, size, &reply, &reply_why);
    xv_free(reply);
    g_free(reply_why);
    g_free(method);
    g_free(why);
    xv_free(params);
    return 0;
}
