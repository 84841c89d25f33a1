/* pool_failover.h: the change of master on a dqlite pool. Every host with
 * a dqlite node watches which node leads (ten times a second): a member
 * whose node leads turns master in-process (its replica adopts the pool's
 * database, pool.master names it, the role files say so, the master's
 * services start), a member follows a leader on another host than its
 * master (in-process: role file, stream and shipped commits re-point), and
 * a master whose node no longer leads restarts as a member of the leader.
 * While a role changes in-process, every call is refused with
 * HOST_STILL_BOOTING. */
#pragma once

#include "xapi_error.h"

/* Starts the watch (once; with the first node started). */
void pool_failover_watch_start(void);
/* Stops it (before the database closes). */
void pool_failover_watch_stop(void);
/* pool.master := this host, in one transaction (on the leader). */
int pool_failover_claim_master(XapiError **err);
