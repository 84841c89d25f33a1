/* ha.h: high availability without a statefile (docs/ha.md). The pool's
 * database on Raft (--pool-dqlite) is the heartbeat: a host that cannot
 * reach a majority for the timeout fences itself (ha_fence.h), and the
 * master, once timeout and a margin have passed, declares it dead and
 * restarts its protected VMs elsewhere (ha_restart.h). This part holds
 * the pool's HA settings (pool.enable_ha and the pool's ha_* fields) and
 * the failover planning over the database (XAPI's
 * xapi_ha_vm_failover.ml, with ha_plan.h's binpacker). */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "xapi_error.h"
#include "xv.h"

/* XAPI's default (xapi_globs ha_default_timeout). */
#define HA_DEFAULT_TIMEOUT_S 60

/* pool.ha_enabled (takes the read lock). */
bool ha_enabled(void);
/* configuration:timeout of an enabled pool, in seconds (the default when
 * absent); 0 when HA is off. Read lock held or not: takes it. */
unsigned ha_timeout_s(void);
/* How long after the timeout the master waits before it declares a
 * silent host dead: the fence has happened by then. */
int64_t ha_margin_us(unsigned timeout_s);

/* pool.enable_ha on the master: XAPI's checks (HA_IS_ENABLED,
 * HOST_OFFLINE [host]), HA_NOT_INSTALLED [host] without --pool-dqlite;
 * heartbeat_srs must be shared SRs (none needed); configuration holds
 * only timeout. */
int ha_enable(const Xv *heartbeat_srs, const Xv *configuration, XapiError **err);
int ha_disable(XapiError **err);
int ha_set_failures_to_tolerate(int64_t value, XapiError **err);

/* HA on and ha_allow_overcommit false: changes that would break the plan
 * are refused. Read lock held. */
bool ha_plan_guarded(void);

/* The planning questions (read lock not held). */
int64_t ha_compute_max_failures(void);
int ha_compute_hypothetical_max(const Xv *configuration, int64_t *out, XapiError **err);
/* NULL with HANDLE_INVALID for a host or VM that is none. */
Xv *ha_compute_vm_failover_plan(const Xv *failed_hosts, const Xv *failed_vms, XapiError **err);
bool ha_failover_plan_exists(int64_t n);

/* host.disable: the plan must survive the host leaving the live set
 * (XAPI's assert_host_disable_preserves_ha_plan). */
int ha_check_host_disable(const char *host_ref, XapiError **err);

/* compute_restart_plan: the protected VMs that run nowhere live -> the
 * host the plan restarts each on (refs; caller frees). */
GHashTable *ha_offline_restart_plan(void);

/* XAPI's assert_*_preserves_ha_plan: HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN
 * when a plan exists for ha_plan_exists_for failures now but not after
 * the change (nothing is refused when HA is off, overcommit is allowed,
 * or no plan exists already). vm_ref becomes protected (new_vm), or
 * arrives on host (a start). Read lock not held. */
int ha_check_new_protected_vm(const char *vm_ref, XapiError **err);
int ha_check_vm_arriving(const char *vm_ref, const char *host_ref, XapiError **err);

/* XAPI's update_pool_status on the master: ha_overcommitted and
 * ha_plan_exists_for follow the plan, with HA_POOL_OVERCOMMITTED on the
 * transition and HA_POOL_DROP_IN_PLAN_EXISTS_FOR on a drop. */
void ha_update_pool_status(void);

/* A VM's start on this host (unless forced: HA's own restarts are): the
 * plan must survive it. After it ran: a VM to protect is protected
 * (ha_always_run, as XAPI's VM.start). Before a shutdown or suspend:
 * it is not (XAPI clears ha_always_run). Read lock not held. */
int ha_vm_before_start(const char *vm_ref, XapiError **err);
void ha_vm_started(const char *vm_ref);
void ha_vm_stopping(const char *vm_ref);

/* The HA section of docs/compat.md. */
void ha_markdown(GString *out);

/* VM.set_ha_restart_priority (and the deprecated set_ha_always_run). */
int ha_set_restart_priority(const char *vm_ref, const char *value, XapiError **err);
