/* disk_stats.h: disk I/O rates from the drivers' counters, with XAPI's
 * iostat source names (rrdp_iostat.ml Stats_value/Iostats_value):
 * io_throughput_read/write/total (MiB/s), iops_read/write/total,
 * read_latency/write_latency/latency (us per request completed in the
 * step, 0 when none), iowait (request-seconds per second). A VM's disk
 * gives them as vbd_<dev>_<key>; an SR's sum as <key> in its own archive
 * and as <key>_<first 8 of its uuid> in the host's, as XAPI's host RRD
 * holds them (Xen Orchestra's host stats read those). QEMU counts no
 * requests in flight: there is no inflight source. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

/* Counters of one disk, in total (-1: the driver has none). */
typedef struct {
    int64_t read_bytes, write_bytes, read_ops, write_ops, read_ns, write_ns;
} DiskCounters;

/* What moved over an interval: per-second rates of each counter. */
typedef struct {
    double read_bytes, write_bytes, read_ops, write_ops, read_ns, write_ns;
} DiskRates;

typedef struct DiskStats DiskStats;

DiskStats *disk_stats_new(void);
void disk_stats_free(DiskStats *ds);

/* Records the reading of one disk (key: its owner and slot) at time now;
 * true with its rates since the last reading when there was one, the
 * counters all known and none gone back. */
bool disk_stats_update(DiskStats *ds, const char *key, int64_t now, const DiskCounters *c,
                       DiskRates *rates);
/* Forgets the disks not updated since the round that began at now. */
void disk_stats_expire(DiskStats *ds, int64_t now);

/* to += r */
void disk_rates_add(DiskRates *to, const DiskRates *r);

/* Appends r's sources, named prefix KEY suffix, to samples (RrdSample,
 * names owned by names). */
void disk_rates_samples(const DiskRates *r, const char *prefix, const char *suffix,
                        GPtrArray *names, GArray *samples);

/* XAPI's description and units of an I/O source of these names; false
 * when name is none of them. */
bool disk_stats_describe(const char *name, const char **description, const char **units);
