/* pool.c: the pool class's membership messages: join (run on the joining
 * host), eject (on the master, and its leg on the member that leaves),
 * initial_auth (the master gives a joining host the pool secret), and the
 * change of master: designate_new_master, the emergency calls;
 * set_https_only; external authentication on and off. */
#include <string.h>

#include "bootstrap.h"
#include "call.h"
#include "db.h"
#include "dm_handlers.h"
#include "host_certificate.h"
#include "external_auth.h"
#include "ha.h"
#include "ha_restart.h"
#include "pool_db.h"
#include "pool_failover.h"
#include "pool_forward.h"
#include "pool_master.h"
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

int xapi_pool_designate_new_master(Call *call, const char *host)
{
    if (pool_is_member())
        return xapi_error_set(&call->error, "HOST_IS_SLAVE", pool_master_address(), NULL);
    db_read_begin();
    DbRow *row = db_lookup(dm_class_by_name("host"), host);
    g_autofree char *address = row ? g_strdup(xv_str(db_get(row, "address"))) : NULL;
    g_autofree char *master = bootstrap_this_host();
    db_read_end();
    if (!row)
        return xapi_error_set(&call->error, "HANDLE_INVALID", "host", host, NULL);
    if (strcmp(host, master) == 0)
        return 0; /* XAPI: the master designated is the master already */
    if (ha_enabled())
        return xapi_error_set(&call->error, "HA_IS_ENABLED", NULL);
    if (!pool_db_running())
        return xapi_error_set(&call->error, "OPERATION_NOT_ALLOWED",
                              "pool.designate_new_master needs the pool's database in dqlite "
                              "(--pool-dqlite on every host)", NULL);
    if (!pool_master_host_live(host))
        return xapi_error_set(&call->error, "HOST_OFFLINE", host, NULL);
    return pool_failover_designate(address, &call->error);
}

int xapi_pool_emergency_transition_to_master(Call *call)
{
    if (!pool_is_member())
        return 0; /* the master already */
    if (ha_enabled())
        return xapi_error_set(&call->error, "HA_IS_ENABLED", NULL);
    if (!pool_db_running())
        return xapi_error_set(&call->error, "OPERATION_NOT_ALLOWED",
                              "a member without --pool-dqlite holds no copy of the pool's "
                              "database to be the master of", NULL);
    return pool_failover_emergency_master(&call->error);
}

int xapi_pool_emergency_reset_master(Call *call, const char *master_address)
{
    if (!pool_is_member())
        return xapi_error_set(&call->error, "OPERATION_NOT_ALLOWED",
                              "this host is the master: pool.designate_new_master moves the "
                              "role", NULL);
    if (ha_enabled())
        return xapi_error_set(&call->error, "HA_IS_ENABLED", NULL);
    return pool_failover_reset_master(master_address, &call->error);
}

int xapi_pool_recover_slaves(Call *call, Xv **result)
{
    if (pool_is_member())
        return xapi_error_set(&call->error, "HOST_IS_SLAVE", pool_master_address(), NULL);
    g_autofree char *me = pool_local_address() ? g_strdup(pool_local_address()) : NULL;
    if (!me)
        return xapi_error_set(&call->error, "OPERATION_NOT_ALLOWED",
                              "this host has no specific --listen address for its members to "
                              "reach", NULL);
    *result = pool_failover_recover_slaves(me);
    return 0;
}

/* pool.set_https_only: each host's plain HTTP off or on. xapid's hosts
 * talk to each other over plain HTTP yet, so a pool of several hosts
 * refuses it rather than cut them off. */
int xapi_pool_set_https_only(Call *call, const char *self, bool value)
{
    if (pool_is_member())
        return xapi_error_set(&call->error, "HOST_IS_SLAVE", pool_master_address(), NULL);
    db_read_begin();
    bool known = db_lookup(dm_class_by_name("pool"), self) != NULL;
    guint hosts = db_count(dm_class_by_name("host"));
    db_read_end();
    if (!known)
        return xapi_error_set(&call->error, "HANDLE_INVALID", "pool", self, NULL);
    if (hosts > 1)
        return xapi_error_set(&call->error, "OPERATION_NOT_ALLOWED",
                              "pool.set_https_only in a pool of several hosts: their own "
                              "traffic goes over plain HTTP in xapid",
                              NULL);
    return host_certificate_set_https_only(value, &call->error);
}

/* External authentication (external_auth.h): pool-wide, type "PAM". */
int xapi_pool_enable_external_auth(Call *call, const char *pool, const Xv *config,
                                   const char *service_name, const char *auth_type)
{
    if (pool_is_member())
        return xapi_error_set(&call->error, "HOST_IS_SLAVE", pool_master_address(), NULL);
    return external_auth_enable(config, service_name, auth_type, &call->error);
}

int xapi_pool_disable_external_auth(Call *call, const char *pool, const Xv *config)
{
    if (pool_is_member())
        return xapi_error_set(&call->error, "HOST_IS_SLAVE", pool_master_address(), NULL);
    return external_auth_disable(&call->error);
}

/* ---- high availability (src/pool/ha.c, docs/ha.md) ------------------------------ */

static int on_master(Call *call)
{
    if (pool_is_member())
        return xapi_error_set(&call->error, "HOST_IS_SLAVE", pool_master_address(), NULL);
    return 0;
}

int xapi_pool_enable_ha(Call *call, const Xv *heartbeat_srs, const Xv *configuration)
{
    if (on_master(call) < 0)
        return -1;
    return ha_enable(heartbeat_srs, configuration, &call->error);
}

int xapi_pool_disable_ha(Call *call)
{
    if (on_master(call) < 0)
        return -1;
    return ha_disable(&call->error);
}

int xapi_pool_set_ha_host_failures_to_tolerate(Call *call, const char *self, int64_t value)
{
    if (on_master(call) < 0)
        return -1;
    return ha_set_failures_to_tolerate(value, &call->error);
}

int xapi_pool_ha_compute_max_host_failures_to_tolerate(Call *call, Xv **result)
{
    *result = xv_new_int(ha_compute_max_failures());
    return 0;
}

int xapi_pool_ha_compute_hypothetical_max_host_failures_to_tolerate(Call *call,
                                                                    const Xv *configuration,
                                                                    Xv **result)
{
    int64_t n = 0;
    if (ha_compute_hypothetical_max(configuration, &n, &call->error) < 0)
        return -1;
    *result = xv_new_int(n);
    return 0;
}

int xapi_pool_ha_compute_vm_failover_plan(Call *call, const Xv *failed_hosts,
                                          const Xv *failed_vms, Xv **result)
{
    *result = ha_compute_vm_failover_plan(failed_hosts, failed_vms, &call->error);
    return *result ? 0 : -1;
}

int xapi_pool_ha_failover_plan_exists(Call *call, int64_t n, Xv **result)
{
    *result = xv_new_bool(ha_failover_plan_exists(n));
    return 0;
}

int xapi_pool_ha_prevent_restarts_for(Call *call, int64_t seconds)
{
    if (on_master(call) < 0)
        return -1;
    ha_restart_prevent_for(seconds);
    return 0;
}
