/* xenops.h: the VM lifecycle's shared state: the driver in use, a lock per
 * VM, domids, host memory, and keeping the database true to the domains
 * (after a restart of xapid, and when a guest stops by itself). */
#pragma once

#include "db.h"
#include "hv_driver.h"

/* hypervisor: "qemu" or "sim". Reattaches to running domains and
 * reconciles every VM resident here. runtime_dir holds the domains' own
 * directories (sockets, pid files), state_dir what outlives them (NVRAM,
 * vTPM state). */
int xenops_init(const char *state_dir, const char *runtime_dir, const char *hypervisor,
                XapiError **err);
const HvDriver *xenops_driver(void);

/* Serialises lifecycle work on one VM (held across driver calls, never
 * while waiting for the database's write lock... it may be taken inside). */
void xenops_lock_vm(const char *uuid);
void xenops_unlock_vm(const char *uuid);
/* An operation waiting for its guest gives the lock up meanwhile (so that
 * hard_shutdown can interrupt it) and owns the outcome: reconciliation
 * leaves the VM alone until it ends. Called with the lock held. */
void xenops_wait_unlocked_begin(const char *uuid);
void xenops_wait_unlocked_end(const char *uuid);

/* Brings the VM's record in line with its domain (VM lock held):
 * applies actions_after_shutdown/reboot/crash to a stopped guest, marks a
 * VM whose domain vanished Halted. */
void xenops_reconcile(const char *uuid);
/* HA's fence (ha_fence.h): the domains of these VMs (uuids) that exist
 * here are destroyed, nothing written; how many were. */
guint xenops_fence_domains(const char *const *uuids, guint n);
/* The same later, from a thread of its own (callers holding other locks). */
void xenops_queue_reconcile(const char *uuid);

/* Database updates after a domain changed (they take the write lock). */
int xenops_mark_running(const char *vm_ref, bool paused, bool new_domid, XapiError **err);
int xenops_mark_paused(const char *vm_ref, bool paused, XapiError **err);
int xenops_mark_halted(const char *vm_ref, XapiError **err);
/* Its memory image is in suspend_vdi; no domain. */
int xenops_mark_suspended(const char *vm_ref, const char *suspend_vdi, XapiError **err);

/* Free memory for guests on this host, in bytes (lock held). */
int64_t xenops_host_free_memory(void);
/* The same but for vm_ref's own reservation (a start asking for itself). */
int64_t xenops_host_free_memory_for(const char *vm_ref);
/* The same for any host of the pool, from its record (its
 * memory_overhead is what it keeps for itself; lock held). */
int64_t xenops_host_free_memory_of(const char *host_ref);
/* The memory a VM needs to start (lock held). */
int64_t xenops_vm_memory_need(const DbRow *vm);

/* Before xapid re-executes itself: the driver's hand-over (hv_driver.h). */
void xenops_prepare_reexec(void);
