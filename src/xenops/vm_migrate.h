/* vm_migrate.h: VM.pool_migrate between two hosts of a pool (vm_migrate.c).
 *
 * The source host (the master forwards the call to the VM's resident
 * host) checks, records the pool_migrate operation, opens the pool's
 * migration route on the destination (pool_migrate_http.h) and drives the
 * driver's migrate_send over it; the destination checks again, makes the
 * domain with its NICs on its own bridges (migrate_receive), and once it
 * runs records resident_on, a new domid and the power state. Any failure
 * leaves the VM running on the source and the database as it was. */
#pragma once

#include "call.h"
#include "db.h"

/* XAPI's checks of VM.pool_migrate to host, on the database (read lock
 * not held): the VM's power state and operations, not its own host, the
 * host live (HOST_OFFLINE) and enabled (HOST_DISABLED), every SR of its
 * disks plugged there (VM_REQUIRES_SR), every network of its VIFs there
 * (VM_REQUIRES_NETWORK), the host's free memory
 * (HOST_NOT_ENOUGH_FREE_MEMORY). */
int vm_migrate_check(const char *vm_ref, const char *host_ref, XapiError **err);

/* Whether host can run the VM (read lock held): live (HOST_OFFLINE),
 * enabled (HOST_DISABLED), its disks' SRs plugged there (VM_REQUIRES_SR),
 * its VIFs' networks there (VM_REQUIRES_NETWORK), memory free for it
 * (HOST_NOT_ENOUGH_FREE_MEMORY). VM.start's placement, get_possible_hosts,
 * assert_can_boot_here and pool_migrate use it. */
int vm_host_can_run(const DbRow *vm, const char *host_ref, XapiError **err);
/* The same without the memory check (XAPI's assert_can_boot_here with
 * do_memory_check false: HA pins a non-agile VM with it). */
int vm_host_can_run_ignoring_memory(const DbRow *vm, const char *host_ref, XapiError **err);

/* Source side: moves the VM (live unless live is false) to host. */
int vm_pool_migrate(Call *call, const char *vm_ref, const char *host_ref, bool live);

/* Destination side, in the route's thread: checks the VM may come here,
 * calls accept(ctx) (which answers the source: the link begins), then
 * receives the domain over fd and records it. Before accept, a refusal is
 * err and nothing was done; after it, the link told the source. */
int vm_migrate_receive(const char *vm_uuid, int fd, int (*accept)(void *ctx), void *ctx,
                       XapiError **err);
