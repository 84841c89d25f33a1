/* pool_master.h: what the master serves its members: the change stream
 * (GET /pool/changes, which doubles as the member's heartbeat), shipped
 * commits (POST /pool/commit), and the liveness of members. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "xapi_error.h"

/* The JSON batch of changes after since (pool_wire.h), waiting up to
 * wait_s seconds for one when there is none yet; host is the polling
 * member's host ref (its heartbeat). Caller frees. */
char *pool_master_changes(uint64_t since, const char *host, unsigned wait_s);
/* Applies a member's write set in one transaction; the JSON reply. */
char *pool_master_commit(const char *body, size_t len);

/* Starts the liveness watch: a member silent for pool_member_timeout()
 * seconds gets host_metrics.live=false; its next poll sets it true. */
void pool_master_start(void);
/* Whether host is this host or a live member (read lock not held). */
bool pool_master_host_live(const char *host);
/* When (monotonic us) this master last heard from member host's poll;
 * a member not heard from since this master started counts from the
 * first time it is asked (HA: ha_restart.h). */
int64_t pool_master_last_heard(const char *host);
