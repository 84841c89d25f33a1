/* pool_replica.h: a member's side of replication: the thread that
 * long-polls the master's change stream into the in-memory replica (and
 * so heartbeats), and the commit hook that ships this host's writes. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "xapi_error.h"

/* Installs the commit hook and starts the stream; waits up to wait_s
 * seconds for the first (full) batch. False if it did not come (the
 * replica is then empty until the master answers). */
bool pool_replica_start(unsigned wait_s);
/* Stops the stream thread (before the db closes). */
void pool_replica_stop(void);
/* Stops the stream thread but keeps the commit hook (a member turning
 * master: db_adopt_store drops the hook under the write lock). */
void pool_replica_stop_stream(void);
/* The member follows a new master (its role names it already): a new
 * stream thread asks it for a full batch (its generations are taken
 * whole); the old thread, which may be waiting on a master that cannot
 * answer, applies nothing more. */
void pool_replica_repoint(void);
/* When (monotonic us) the last poll that reached the master began: the
 * master had heard from this host by then (HA's contact, ha_fence.h). */
int64_t pool_replica_last_contact(void);
/* Whether the last poll reached the master. */
bool pool_replica_connected(void);
