/* pool_join.h: pool.join on the joining host and pool.eject on both
 * sides, with XAPI's checks and errors (xapi_pool.ml pre_join_checks,
 * join_common, eject). */
#pragma once

#include <stdbool.h>

#include "xapi_error.h"

/* This build's database schema: a digest of every stored class and field
 * with its type, as host.software_version:db_schema (XAPI compares it at
 * join). Static storage. */
const char *pool_db_schema(void);

/* Joins the pool whose master is at master_address (force: skips the
 * homogeneity checks, as pool.join_force). On success this host's
 * records are on the master, the role file says member, and the agent
 * restarts as a member a second later. */
int pool_join(const char *master_address, const char *user, const char *password, bool force,
              XapiError **err);

/* On the master: the checks, the member told to leave, its records
 * deleted from the pool's database. */
int pool_eject(const char *host, XapiError **err);
/* On the member being ejected (called by the master): forgets the pool
 * (role, secret, replica) and restarts standalone with a fresh database. */
int pool_eject_self(XapiError **err);
