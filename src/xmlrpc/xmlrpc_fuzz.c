/* xmlrpc_fuzz.c: libFuzzer target: parse a call; what parses must format
 * and parse back as a response. */
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
    }
    g_free(method);
    g_free(why);
    xv_free(params);
    return 0;
}
