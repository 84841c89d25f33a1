/* dispatch.h: one XenAPI call from method name and wire parameters to a
 * result: message lookup, arity, typed parameters, session, RBAC, then the
 * handler (hand-written, or the generic engine for implicit messages). */
#pragma once

#include <stdbool.h>

#include "xapi_error.h"
#include "xv.h"

typedef struct DispatchOrigin {
    bool trusted;      /* unix socket: pre-authenticated as root */
    const char *peer;  /* the client's IP address as text, or NULL */
    const char *task_ref; /* the task of a call forwarded by a pool's master, or NULL */
} DispatchOrigin;

/* Returns the result value (caller owns), or NULL with *err set. *bare is
 * set for system.* methods whose reply has no Status envelope. */
Xv *dispatch_call(const char *method, const Xv *params, const DispatchOrigin *origin,
                  bool *bare, XapiError **err);

/* system.listMethods: every implemented message, sorted. */
Xv *dispatch_list_methods(void);
