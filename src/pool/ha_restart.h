/* ha_restart.h: the master's half of HA. A member the master has not
 * heard from (its change-stream poll, pool_master.h) for the HA timeout
 * plus a margin (ha_margin_us) has fenced itself by then (ha_fence.h):
 * the master declares it dead (host_metrics.live false, HA_HOST_FAILED),
 * resets its VMs to Halted and restarts them on the live hosts: the
 * protected ones (ha_restart_priority "restart") first, by VM.order
 * (negative last), a group's start_delay waited before the next, on the
 * host the failover plan gives (VM.start_on) or where placement finds
 * room (VM.start); the best-effort ones after, if room remains. A
 * protected VM that cannot be restarted raises
 * HA_PROTECTED_VM_RESTART_FAILED once and is tried again every 120 s, as
 * XAPI does. The plan fields (ha_overcommitted, ha_plan_exists_for) are
 * kept current. Runs on whichever host is the master (a new master takes
 * over at once). */
#pragma once

#include <stdint.h>

/* Starts the master's watch (once; every host with a dqlite node: it
 * idles while the host is a member). */
void ha_restart_start(void);
/* Stops it (before the database closes; a restart under way ends). */
void ha_restart_stop(void);
/* pool.ha_prevent_restarts_for: no restart for that many seconds (0:
 * restarts allowed again at once). */
void ha_restart_prevent_for(int64_t seconds);
