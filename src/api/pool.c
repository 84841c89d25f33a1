/* pool.c: the pool class's membership messages: join (run on the joining
 * host), eject (on the master, and its leg on the member that leaves),
 * and initial_auth (the master gives a joining host the pool secret). */
#include <string.h>

#include "bootstrap.h"
#include "call.h"
#include "db.h"
#include "dm_handlers.h"
#include "pool_forward.h"
#include "pool_join.h"
#include "pool_role.h"
#include "pool_secret.h"

int xapi_pool_join(Call *call, const char *master_address, const char *master_username,
                   const char *master_password)
{
    return pool_join(master_address, master_username, master_password, false, &call->error);
}

int xapi_pool_join_force(Call *call, const char *master_address, const char *master_username,
                         const char *master_password)
{
    return pool_join(master_address, master_username, master_password, true, &call->error);
}

int xapi_pool_eject(Call *call, const char *host)
{
    if (!pool_is_member())
        return pool_eject(host, &call->error);
    /* On a member, only the master's own call (in a pool session) for this
     * very host: the rest came over TCP from a client, who asks the master. */
    if (!pool_forward_is_pool_session(call->session_ref))
        return xapi_error_set(&call->error, "HOST_IS_SLAVE", pool_master_address(), NULL);
    if (g_strcmp0(host, pool_this_host()) != 0)
        return xapi_error_set(&call->error, "HOST_OFFLINE", host, NULL);
    return pool_eject_self(&call->error);
}

int xapi_pool_initial_auth(Call *call, Xv **result)
{
    if (pool_is_member())
        return xapi_error_set(&call->error, "HOST_IS_SLAVE", pool_master_address(), NULL);
    char *secret = pool_secret_get(pool_state_dir(), &call->error);
    if (!secret)
        return -1;
    *result = xv_new_string_take(secret);
    return 0;
}
