/* xapi_error.c: construction of XenAPI errors. */
#include "xapi_error.h"

#include <stdarg.h>

static XapiError *error_new(const char *code)
{
    XapiError *e = g_new0(XapiError, 1);
    e->code = g_strdup(code);
    e->params = g_ptr_array_new_with_free_func(g_free);
    return e;
}

int xapi_error_set(XapiError **err, const char *code, ...)
{
    if (!err || *err)
        return -1;
    XapiError *e = error_new(code);
    va_list ap;
    va_start(ap, code);
    for (const char *p = va_arg(ap, const char *); p; p = va_arg(ap, const char *))
        g_ptr_array_add(e->params, g_strdup(p));
    va_end(ap);
    *err = e;
    return -1;
}

int xapi_error_setv(XapiError **err, const char *code, const char *const *params,
                    guint n_params)
{
    if (!err || *err)
        return -1;
    XapiError *e = error_new(code);
    for (guint i = 0; i < n_params; i++)
        g_ptr_array_add(e->params, g_strdup(params[i]));
    *err = e;
    return -1;
}

int xapi_error_internal(XapiError **err, const char *fmt, ...)
{
    if (!err || *err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    return xapi_error_set(err, "INTERNAL_ERROR", text, NULL);
}

void xapi_error_free(XapiError *e)
{
    if (!e)
        return;
    g_free(e->code);
    g_ptr_array_unref(e->params);
    g_free(e);
}
