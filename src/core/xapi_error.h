/* xapi_error.h: a XenAPI error (code + string parameters), set once where
 * a problem is detected and carried up to the dispatcher, which writes it
 * as ErrorDescription. Functions that can fail take `XapiError **err` and
 * return -1 (or NULL/false) after setting it. */
#pragma once

#include <glib.h>

typedef struct XapiError {
    char *code;        /* e.g. "HANDLE_INVALID" */
    GPtrArray *params; /* char*, owned */
} XapiError;

/* Sets *err (if err is non-NULL and *err is still unset). The variadic
 * parameters are strings terminated by NULL. Always returns -1 so that
 * detectors can write `return xapi_error_set(err, ...)`. */
int xapi_error_set(XapiError **err, const char *code, ...) G_GNUC_NULL_TERMINATED;
int xapi_error_setv(XapiError **err, const char *code, const char *const *params,
                    guint n_params);
/* INTERNAL_ERROR with a formatted message. */
int xapi_error_internal(XapiError **err, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
void xapi_error_free(XapiError *e);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(XapiError, xapi_error_free)
