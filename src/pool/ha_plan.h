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
    bool agile;     /* it can restart on any host (agility.ml) */
    char *pinned;   /* not agile: the one host it restarts on, NULL: none can run it */
} HaPlanVm;

typedef struct {
    GPtrArray *hosts;  /* HaPlanHost *, live hosts only */
    GPtrArray *vms;    /* HaPlanVm *, every protected VM */
    int total_hosts;   /* hosts of the pool, live or not */
} HaPlanPool;

typedef enum {
    HA_PLAN_EXISTS,    /* XAPI's Plan_exists_for_all_VMs */
    HA_PLAN_EXCLUDING_NON_AGILE, /* Plan_exists_excluding_non_agile_VMs */
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
/* A VM that is not agile (xapi_ha_vm_failover.ml host_of_non_agile_vm):
 * pinned to one host (NULL: none can run it), where it counts as that
 * host's overhead once offline; failures never move it. */
void ha_plan_add_non_agile_vm(HaPlanPool *p, const char *ref, int64_t memory, const char *host,
                              const char *pinned);

/* Whether ref is one of p's (live) hosts. */
bool ha_plan_has_host(const HaPlanPool *p, const char *ref);

/* XAPI's biggest-fit-decreasing: each VM, biggest first, goes to the host
 * with the most free memory if it fits there; a VM that does not fit is
 * left out. hosts (HaPlanHost *) are copied, not changed; vms are refs of
 * p's VMs. Returns HaPlanMove * (caller frees: g_ptr_array_unref). */
GPtrArray *ha_plan_pack(const HaPlanPool *p, const GPtrArray *hosts, const GPtrArray *vms);

/* compute_restart_plan: the offline non-agile VMs go to the host they are
 * pinned to, then the offline agile ones are placed (biggest fit
 * decreasing); *not_restarted (may be NULL) gets the refs of those that
 * fit nowhere, and, as XAPI's, of every offline non-agile one. Returns
 * the moves (caller frees). */
GPtrArray *ha_plan_restart(const HaPlanPool *p, GPtrArray **not_restarted);

/* plan_for_n_failures: with the offline VMs placed first, whether every
 * agile protected VM can be restarted after any n hosts fail, in any
 * order (XAPI's exhaustive check for small pools, its conservative
 * approximation above 3,500 cases or 32 hosts), the non-agile ones
 * counted as their hosts' overhead: HA_PLAN_EXCLUDING_NON_AGILE when
 * there are any (their hosts' failures are not planned for); none when
 * an offline VM cannot be placed (a non-agile one never is, as XAPI). */
HaPlanStatus ha_plan_for_n_failures(const HaPlanPool *p, int n);

/* The largest n in [0, cap] for which a plan for all VMs exists (0 when
 * none does). */
int ha_plan_max_failures(const HaPlanPool *p, int cap);

/* How many failures the pool's quorum survives, as XAPI's corosync
 * bound (compute_corosync_max_host_failures): (voters - 1) / 2. */
int ha_plan_quorum_cap(int voters);
