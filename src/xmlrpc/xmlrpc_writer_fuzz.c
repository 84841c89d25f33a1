/* xmlrpc_writer_fuzz.c: libFuzzer target: any bytes, stored as a string
 * and a key, give a reply that parses back as their repaired form. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire_text.h"
#include "xmlrpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = g_strndup((const char *)data, size); /* up to the first NUL */
    Xv *v = xv_new_struct();
    xv_struct_set_string(v, text, text);
    size_t len;
    char *out = xmlrpc_format_response(v, &len);
    Xv *back = NULL;
    char *why = NULL;
    if (xmlrpc_parse_response(out, len, &back, &why) != 0)
        abort();
    char *repaired = wire_text_repair(text);
    const Xv *m = xv_struct_get(back, repaired);
    if (!m || strcmp(xv_str(m), repaired) != 0)
        abort();
    g_free(repaired);
    g_free(why);
    xv_free(back);
    g_free(out);
    xv_free(v);
    g_free(text);
    return 0;
}
