/* bootstrap.h: first-start objects and the static role objects. */
#pragma once

#include <stdint.h>

#include "xapi_error.h"

/* Creates the host's initial objects if the database has no pool yet, and
 * the role objects (never persisted) on every start; refreshes what the
 * host record says of the machine (hostname, address, memory, CPUs,
 * versions, agent_start_time) and enables the host, on every start. */
int bootstrap_database(const char *state_dir, XapiError **err);

/* The single host this daemon runs: the pool's master (caller frees;
 * lock held). */
char *bootstrap_this_host(void);
/* pool.master ("OpaqueRef:NULL" before the pool record exists; caller
 * frees; lock held). */
char *bootstrap_pool_master(void);

/* A /proc/meminfo value in bytes (0 if absent). */
int64_t bootstrap_meminfo_bytes(const char *key);

/* HANDLE_INVALID unless host names a host, HOST_OFFLINE unless it is this
 * one (other hosts come with pools). */
int bootstrap_check_this_host(const char *host, XapiError **err);

/* HOST_DISABLED [host] when this host is disabled (lock held): VMs do
 * not start on it. */
int bootstrap_check_host_enabled(XapiError **err);

/* Gives the host the free edition's licence record (host.license_remove). */
int bootstrap_license_free(const char *host, XapiError **err);
