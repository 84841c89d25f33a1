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
#include "xv.h"

/* Starts the watch (once; with the first node started). */
void pool_failover_watch_start(void);
/* When (monotonic us) the watch last saw this host's node lead (0:
 * never). */
int64_t pool_failover_last_led(void);
/* The master may have changed (a new master's announcement, or the
 * old one's HOST_IS_SLAVE): for the next seconds a member whose node
 * stands by asks the voters which node leads. */
void pool_failover_hint(void);
/* Stops it (before the database closes). */
void pool_failover_watch_stop(void);
/* pool.master := this host, in one transaction (on the leader). */
int pool_failover_claim_master(XapiError **err);

/* pool.designate_new_master's move (checks made): Raft hands leadership
 * to that host's node; the watchers move the role. One at a time
 * (DESIGNATE_NEW_MASTER_IN_PROGRESS). */
int pool_failover_designate(const char *host_address, XapiError **err);
/* pool.emergency_transition_to_master on a dqlite member: nothing when
 * its node leads; OPERATION_NOT_ALLOWED when another does (Raft already
 * chose: designate_new_master moves it); without any leader (no quorum)
 * the node becomes the only voter and xapid restarts as the master. */
int pool_failover_emergency_master(XapiError **err);
/* pool.emergency_reset_master on a member: on a dqlite host, nothing when
 * master_address is the leader's host, else OPERATION_NOT_ALLOWED (the
 * leader is the master); otherwise the member role names master_address
 * and xapid restarts. */
int pool_failover_reset_master(const char *master_address, XapiError **err);
/* pool.recover_slaves on the master: emergency_reset_master(my_address)
 * on every other host; the hosts that took it. */
Xv *pool_failover_recover_slaves(const char *my_address);
