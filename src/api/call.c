/* call.c: access to a call's typed arguments, and running it. */
#include "call.h"

#include "implicit.h"
#include "pool_forward.h"

Xv *call_arg(const Call *call, unsigned i)
{
    return xv_at(call->args, i);
}

int call_run(Call *call, Xv **result)
{
    int rc = pool_forward_call(call, result); /* a pool's master sends host-bound work on */
    if (rc != 1)
        return rc;
    return call->msg->impl ? call->msg->glue(call, result) : implicit_execute(call, result);
}
