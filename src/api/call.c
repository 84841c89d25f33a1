/* call.c: access to a call's typed arguments. */
#include "call.h"

Xv *call_arg(const Call *call, unsigned i)
{
    return xv_at(call->args, i);
}
