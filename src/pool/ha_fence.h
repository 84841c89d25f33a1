/* ha_fence.h: a host's own half of HA: it fences itself when it has
 * been out of contact with the pool's Raft majority for most of the
 * timeout. Contact is, on the master, that its dqlite node leads (Raft's
 * leader steps down when it cannot reach a majority), and on a member,
 * that its poll of the master's change stream (the master's heartbeat
 * of it) went through. After 3/4 of the timeout without contact (1 s
 * before at least) the host destroys every domain it runs and refuses
 * every call (HA_SHOULD_BE_FENCED [host]) until contact is back; then it
 * raises HA_HOST_WAS_FENCED and serves again (its VMs were restarted
 * elsewhere by then, or will be). The watch never waits for the
 * database's lock while out of contact: a member's write in flight holds
 * it until the master answers. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "xapi_error.h"

/* A domain about to be made here (a start, a migration in): a fence
 * destroys it even before the watch's list of VMs has it. */
void ha_fence_track(const char *uuid);
/* Starts the watch (once; every host with a dqlite node). */
void ha_fence_start(void);
/* Stops it (before the database closes). */
void ha_fence_stop(void);
/* Whether this host has fenced itself and refuses work. */
bool ha_fenced(void);
/* How long the master may hold a member's poll under HA (0: HA off). */
int64_t ha_fence_poll_hold_us(void);
/* The age of the fence deadline: seconds without contact after which a
 * host fences, for a timeout (3/4 of it, at least 1 s before its end). */
int64_t ha_fence_after_us(unsigned timeout_s);

/* host.emergency_ha_disable on this host: the watch stops fencing it
 * (until the process restarts or HA is enabled again); HA_NOT_ENABLED
 * when this host is not armed, unless soft. */
int ha_fence_emergency_disable(bool soft, XapiError **err);
