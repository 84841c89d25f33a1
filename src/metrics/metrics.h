/* metrics.h: the metrics subsystem: a sampler thread that every 5 s reads
 * the host's and each running VM's figures into their round-robin
 * archives, librrd files STATE_DIR/rrd/UUID.rrd (rrd_archive.h) updated
 * at every round off the RPC threads and outside the database's locks,
 * made durable (fsync) at a clean stop and every few minutes, as XAPI's
 * rrdd backs them up; a handle is held for running VMs and plugged SRs
 * only; and the reads /rrd_updates, /host_rrd, /vm_rrd and /sr_rrd
 * serve. Each SR plugged here has an archive of the I/O of the disks on
 * it (disk_stats.h). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "xapi_error.h"
#include "xv.h"

/* Loads the host's archive and starts the sampler. */
int metrics_start(const char *state_dir, XapiError **err);
/* Stops the sampler and writes every archive. */
void metrics_stop(void);
/* Whether metrics_start ran (xapid --no-metrics: not). */
bool metrics_running(void);

/* Whose archive: the host's (uuid NULL), a VM's or an SR's. */
typedef enum { METRICS_HOST, METRICS_VM, METRICS_SR } MetricsOwner;

/* /rrd_updates: the host's archive when host, then the VMs' (vm_uuids, or
 * every running VM's when NULL), then the SRs' (sr_uuids; none when
 * NULL); start < 0 counts back from the last update; cf < 0 for all. */
void metrics_rrd_updates(GString *out, int64_t start, int64_t interval, int cf, bool host,
                         const char *const *vm_uuids, const char *const *sr_uuids, bool json);
/* The whole archive of the host, a VM or an SR, in memory or saved;
 * false if there is none. */
bool metrics_rrd_dump(GString *out, MetricsOwner owner, const char *uuid);
/* The data sources of the host's, a running VM's or a plugged SR's
 * archive, as data_source records (an empty set when it has none). */
Xv *metrics_data_sources(MetricsOwner owner, const char *uuid);
/* A source's value over the last 5 s step: 0, or -1 with
 * INTERNAL_ERROR [Datasource_missing(NAME)] when there is no such source.
 * forget empties its archives; record checks that it is recorded (every
 * source here is). */
int metrics_query_source(MetricsOwner owner, const char *uuid, const char *name, double *value,
                         XapiError **err);
int metrics_forget_source(MetricsOwner owner, const char *uuid, const char *name,
                          XapiError **err);
int metrics_record_source(MetricsOwner owner, const char *uuid, const char *name,
                          XapiError **err);

/* Bytes held in memory for a VM's archive (0 if none). */
size_t metrics_vm_bytes(const char *vm_uuid);
