/* filter_fuzz.c: libFuzzer target for the filter parser and evaluator. */
#include <stdint.h>
#include <string.h>

#include "filter.h"

static char *lookup(void *ctx, const char *name)
{
    return strlen(name) % 2 ? g_strdup("x") : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *text = g_strndup((const char *)data, size);
    XapiError *err = NULL;
    FilterExpr *e = filter_parse(text, &err);
    if (e)
        filter_eval(e, lookup, NULL);
    filter_free(e);
    xapi_error_free(err);
    return 0;
}
