/* call.h: one XenAPI call in flight, as handlers see it. */
#pragma once

#include <stdbool.h>

#include "datamodel.h"
#include "xapi_error.h"
#include "xv.h"

struct Call {
    const DmMessage *msg;
    char *session_ref;   /* the caller's session; NULL if the message takes none */
    Xv *args;            /* XV_ARRAY, typed per msg->params (session excluded) */
    XapiError *error;    /* set once by whoever detects a failure */
    char *task_ref;      /* the task of an Async call, else NULL */
    bool trusted;        /* arrived on the unix socket: pre-authenticated root */
    const char *peer;    /* the client's address (login penalties); NULL if unknown */
};

/* The i-th parameter (after the session), already converted to its type. */
Xv *call_arg(const Call *call, unsigned i);

/* Runs the call here (its handler, or the generic engine), or on the host
 * of the pool that owns the work (pool_forward.h). */
int call_run(Call *call, Xv **result);
