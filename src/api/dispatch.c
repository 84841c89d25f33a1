/* dispatch.c: from a method name and wire parameters to a handler call. */
#include "dispatch.h"

#include <string.h>

#include "audit_log.h"
#include "call.h"
#include "db_text.h"
#include "ha_fence.h"
#include "implicit.h"
#include "pool_forward.h"
#include "pool_role.h"
#include "session.h"
#include "task.h"
#include "typed_value.h"
#include "wire_check.h"

Xv *dispatch_list_methods(void)
{
    g_autoptr(GPtrArray) names = g_ptr_array_new();
    DM_FOREACH_MESSAGE(cls, msg)
    {
        if (dm_message_implemented(msg) && !msg->hidden)
            g_ptr_array_add(names, (gpointer)msg->wire_name);
    }
    g_ptr_array_add(names, (gpointer) "system.listMethods");
    g_ptr_array_sort(names, (GCompareFunc)g_strcmp0);
    Xv *out = xv_new_array();
    for (guint i = 0; i < names->len; i++)
        xv_array_append_string(out, names->pdata[i]);
    return out;
}

static void call_clear(Call *call)
{
    g_free(call->session_ref);
    xv_free(call->args);
    g_free(call->task_ref);
}

static int check_arity(const DmMessage *msg, const char *method, guint given, XapiError **err)
{
    guint expected = msg->n_required + (msg->takes_session ? 1 : 0);
    guint most = msg->n_params + (msg->takes_session ? 1 : 0);
    if (given >= expected && given <= most)
        return 0;
    if (msg->takes_session && given == 0) /* not even a session */
        return xapi_error_set(err, "SESSION_INVALID", "", NULL);
    g_autofree char *want = g_strdup_printf("%u", msg->n_required);
    g_autofree char *got =
        g_strdup_printf("%d", (int)given - (msg->takes_session ? 1 : 0));
    return xapi_error_set(err, "MESSAGE_PARAMETER_COUNT_MISMATCH", method, want, got, NULL);
}

/* Converts the wire parameters to their types, filling defaults. */
static Xv *typed_args(const DmMessage *msg, const Xv *params, XapiError **err)
{
    guint first = msg->takes_session ? 1 : 0;
    g_autoptr(Xv) args = xv_new_array();
    for (unsigned i = 0; i < msg->n_params; i++) {
        const DmParam *p = &msg->params[i];
        Xv *v;
        if (first + i < xv_len(params)) {
            v = typed_value_from_wire(p->type, xv_at(params, first + i), p->name, err);
        } else {
            v = db_text_to_value(p->type, p->default_db, err);
        }
        if (!v)
            return NULL;
        xv_array_append(args, v);
    }
    return g_steal_pointer(&args);
}

Xv *dispatch_call(const char *method, const Xv *params, const DispatchOrigin *origin,
                  bool *bare, XapiError **err)
{
    *bare = false;
    /* XAPI's order: the text check before anything, arity included. */
    if (wire_check_params(params, err) < 0)
        return NULL;
    if (strcmp(method, "system.listMethods") == 0) {
        *bare = true;
        return dispatch_list_methods();
    }
    /* Async.<class>.<message> runs as a task; InternalAsync. is XAPI's
     * spelling between its own hosts. */
    const char *name = method;
    bool async = false;
    if (g_str_has_prefix(method, "Async.") || g_str_has_prefix(method, "InternalAsync.")) {
        name = strchr(method, '.') + 1;
        async = true;
    }
    /* Joined or ejected, restarting into the new role: what this process
     * would answer or write belongs to a database the host has set aside. */
    if (pool_role_changed()) {
        xapi_error_set(err, "HOST_STILL_BOOTING", NULL);
        return NULL;
    }
    /* HA fenced this host (ha_fence.h): it runs nothing until it is back
     * in contact with the pool's majority. */
    if (ha_fenced()) {
        xapi_error_set(err, "HA_SHOULD_BE_FENCED", pool_own_host() ? pool_own_host() : "", NULL);
        return NULL;
    }
    const DmMessage *msg = dm_message_by_wire_name(name);
    if (!msg || !dm_message_implemented(msg) || (async && !msg->has_async)) {
        xapi_error_set(err, "MESSAGE_METHOD_UNKNOWN", method, NULL);
        return NULL;
    }
    if (check_arity(msg, name, xv_len(params), err) < 0)
        return NULL;
    Call call = {.msg = msg, .trusted = origin->trusted, .peer = origin->peer};
    Xv *result = NULL;
    /* XAPI's audit: a line for each side-effecting call, allowed or not. */
    bool audited = msg->takes_session && audit_log_wanted(msg->wire_name);
    bool denied = false;
    g_autofree char *audit_args = NULL;
    g_autofree char *audit_session = NULL; /* an Async call's job takes call's own */
    call.args = typed_args(msg, params, &call.error);
    if (!call.args)
        goto out;
    if (msg->takes_session) {
        const Xv *s = xv_at(params, 0);
        if (s->kind != XV_STRING) {
            xapi_error_set(&call.error, "SESSION_INVALID", "", NULL);
            goto out;
        }
        call.session_ref = g_strdup(xv_str(s));
        if (session_authorize(&call) < 0) {
            denied = strcmp(call.error->code, "RBAC_PERMISSION_DENIED") == 0;
            if (denied && audited)
                audit_args = audit_log_args(&call);
            goto out;
        }
        if (audited)
            audit_args = audit_log_args(&call);
        audit_session = g_strdup(call.session_ref);
        /* The master sent its caller's task along (in a pool session only). */
        if (origin->task_ref && !async && pool_forward_is_pool_session(call.session_ref))
            call.task_ref = g_strdup(origin->task_ref);
    }
    if (async) {
        char *task = task_submit(&call, &call.error);
        if (task)
            result = xv_new_string_take(task);
        goto out;
    }
    int rc = call_run(&call, &result);
    if (rc < 0) {
        xv_free(result);
        result = NULL;
        if (!call.error)
            xapi_error_internal(&call.error, "%s failed without saying why", method);
    } else if (!result) {
        result = xv_new_string(""); /* void */
    }
out:
    if (audit_args)
        audit_log_line(audit_session ? audit_session : call.session_ref, origin->peer,
                       msg->wire_name, !denied, call.error ? call.error->code : NULL,
                       audit_args);
    if (call.error) {
        *err = g_steal_pointer(&call.error);
        xv_free(result);
        result = NULL;
    }
    call_clear(&call);
    return result;
}
