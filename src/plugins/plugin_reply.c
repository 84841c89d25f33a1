/* plugin_reply.c: a plugin's methodResponse to a result or an error; the
 * status strings and parameters are XAPI's (xapi_plugins.ml), so that
 * clients matching them keep working. */
#include "plugin_reply.h"

#include <string.h>

#include "xmlrpc.h"

#define FAILURE "XENAPI_PLUGIN_FAILURE"

static int unexpected(const char *out, size_t len, XapiError **err)
{
    g_autofree char *text = g_strndup(out, len);
    return xapi_error_set(err, FAILURE, "unexpected XMLRPC result", text, NULL);
}

static const char *string_member(const Xv *st, const char *key)
{
    const Xv *v = xv_struct_get(st, key);
    return v && v->kind == XV_STRING ? xv_str(v) : NULL;
}

/* A fault's faultCode as XAPI prints an int32. */
static char *fault_code(const Xv *fault)
{
    const Xv *code = fault->kind == XV_STRUCT ? xv_struct_get(fault, "faultCode") : NULL;
    if (code && code->kind == XV_INT)
        return g_strdup_printf("%" G_GINT64_FORMAT, code->i);
    return NULL;
}

static int failure_error(const Xv *description, const char *out, size_t len, XapiError **err)
{
    guint n = description && description->kind == XV_ARRAY ? xv_len(description) : 0;
    if (n == 0)
        return unexpected(out, len, err);
    g_autoptr(GPtrArray) params = g_ptr_array_new();
    for (guint i = 0; i < n; i++) {
        const Xv *item = xv_at(description, i);
        if (item->kind != XV_STRING)
            return unexpected(out, len, err);
        g_ptr_array_add(params, (char *)xv_str(item));
    }
    return xapi_error_setv(err, params->pdata[0], (const char *const *)params->pdata + 1,
                           n - 1);
}

int plugin_reply_parse(const char *out, size_t len, char **value, XapiError **err)
{
    *value = NULL;
    g_autoptr(Xv) v = NULL;
    g_autofree char *why = NULL;
    switch (xmlrpc_parse_any_response(out, len, &v, &why)) {
    case XMLRPC_RESPONSE_NOT_XML: {
        g_autofree char *text = g_strndup(out, len);
        return xapi_error_set(err, FAILURE, "failed to parse plugin output", text, why, NULL);
    }
    case XMLRPC_RESPONSE_MALFORMED:
        return unexpected(out, len, err);
    case XMLRPC_RESPONSE_FAULT: {
        g_autofree char *code = fault_code(v);
        const char *text = v->kind == XV_STRUCT ? string_member(v, "faultString") : NULL;
        if (!code || !text)
            return unexpected(out, len, err);
        return xapi_error_set(err, FAILURE, "fault", code, text, NULL);
    }
    case XMLRPC_RESPONSE_PARAMS:
        break;
    }
    const Xv *envelope = xv_len(v) == 1 ? xv_at(v, 0) : NULL;
    if (!envelope || envelope->kind != XV_STRUCT)
        return unexpected(out, len, err);
    const char *status = string_member(envelope, "Status");
    if (status && strcmp(status, "Success") == 0) {
        const char *result = string_member(envelope, "Value");
        if (!result)
            return unexpected(out, len, err);
        *value = g_strdup(result);
        return 0;
    }
    if (status && strcmp(status, "Failure") == 0)
        return failure_error(xv_struct_get(envelope, "ErrorDescription"), out, len, err);
    return unexpected(out, len, err);
}
