/* ha_plan.h: HA's failover planning, XAPI's binpacker (binpack.ml and
 * xapi_ha_vm_failover.ml) over plain data, no database: live hosts with
 * their free memory, protected VMs with the memory they need and where
 * they run (or nowhere: offline, to be restarted), and the number of host
 * failures to plan for. Deterministic: callers give hosts sorted by uuid
 * and VMs sorted by uuid, as XAPI sorts them. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    char *ref;
    int64_t free; /* bytes free for guests, protected VMs running there counted */
} HaPlanHost;

typedef struct {
    char *ref;
    int64_t memory; /* bytes it needs (static max and overhead) */
    char *host;     /* a live host it runs on (or is scheduled to), NULL: offline */
} HaPlanVm;

typedef struct {
    GPtrArray *hosts;  /* HaPlanHost *, live hosts only */
    GPtrArray *vms;    /* HaPlanVm *, every protected VM */
    int total_hosts;   /* hosts of the pool, live or not */
} HaPlanPool;

typedef enum {
    HA_PLAN_EXISTS,    /* XAPI's Plan_exists_for_all_VMs */
    HA_PLAN_NONE,      /* No_plan_exists */
} HaPlanStatus;

/* A VM -> host assignment. */
typedef struct {
    char *vm;
    char *host;
} HaPlanMove;

HaPlanPool *ha_plan_pool_new(int total_hosts);
void ha_plan_pool_free(HaPlanPool *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HaPlanPool, ha_plan_pool_free)
void ha_plan_add_host(HaPlanPool *p, const char *ref, int64_t free);
/* host NULL: the VM is offline. */
void ha_plan_add_vm(HaPlanPool *p, const char *ref, int64_t memory, const char *host);

/* Whether ref is one of p's (live) hosts. */
bool ha_plan_has_host(const HaPlanPool *p, const char *ref);

/* XAPI's biggest-fit-decreasing: each VM, biggest first, goes to the host
 * with the most free memory if it fits there; a VM that does not fit is
 * left out. hosts (HaPlanHost *) are copied, not changed; vms are refs of
 * p's VMs. Returns HaPlanMove * (caller frees: g_ptr_array_unref). */
GPtrArray *ha_plan_pack(const HaPlanPool *p, const GPtrArray *hosts, const GPtrArray *vms);

/* compute_restart_plan: places the offline VMs (biggest fit decreasing);
 * *not_restarted (may be NULL) gets the refs of those that fit nowhere.
 * Returns the moves (caller frees). */
GPtrArray *ha_plan_restart(const HaPlanPool *p, GPtrArray **not_restarted);

/* plan_for_n_failures: with the offline VMs placed first, whether every
 * protected VM can be restarted after any n hosts fail, in any order
 * (XAPI's exhaustive check for small pools, its conservative
 * approximation above 3,500 cases or 32 hosts). */
HaPlanStatus ha_plan_for_n_failures(const HaPlanPool *p, int n);

/* The largest n in [0, cap] for which a plan exists (0 when none does). */
int ha_plan_max_failures(const HaPlanPool *p, int cap);

/* How many failures the pool's quorum survives, as XAPI's corosync
 * bound (compute_corosync_max_host_failures): (voters - 1) / 2. */
int ha_plan_quorum_cap(int voters);
