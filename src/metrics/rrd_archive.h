/* rrd_archive.h: round-robin archives with XAPI's layout (xapi-rrd's rrd.ml),
 * kept by librrd (RRDtool) in one .rrd file each: a 5 s primary step,
 * archives of 1/120, 12/120, 720/168 and 17280/366 primary points per
 * row, AVERAGE (and MIN and MAX where asked), data sources added as they
 * first appear (rrdtool tune). RRDtool's data source names are short
 * ([A-Za-z0-9_]{1,19}) and XAPI's are not: the file's sources are named
 * s0, s1, ... and FILE.names beside it maps them to XAPI's names.
 * Counters are DDERIVE with a minimum of 0 (a counter gone back gives an
 * unknown rate), gauges GAUGE; XAPI's xff 1.0 is 0.999999 (RRDtool
 * refuses 1.0; the same for every row of at most 17280 points). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#define RRD_STEP 5
#define RRD_HEARTBEAT 300

typedef enum { RRD_GAUGE, RRD_DERIVE } RrdDsType; /* DERIVE: a counter, stored as its rate */
typedef enum { RRD_AVERAGE, RRD_MIN, RRD_MAX } RrdCf;

typedef struct Rrd Rrd;

/* A fresh archive set at path (any file there is replaced at the first
 * update, which creates it) whose rows start at now; min_max: the coarser
 * archives also keep MIN and MAX (the host's always do in XAPI). */
Rrd *rrda_new(const char *path, bool min_max, int64_t now);
/* The archive set saved at path; NULL when there is none or it is no
 * RRDtool file of ours (logged). */
Rrd *rrda_load(const char *path);
/* Frees the handle; the file stays. */
void rrda_free(Rrd *rrd);
/* Makes what the updates wrote durable (fsync of the file), as XAPI's
 * periodic backup of its archives. */
void rrda_sync_path(const char *path);
const char *rrda_path(const Rrd *rrd);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Rrd, rrda_free)

/* One reading of a data source at the time of the update. */
typedef struct {
    const char *name;
    RrdDsType type;
    double value; /* a gauge's value, a counter's total */
} RrdSample;

/* Feeds readings taken at time t (seconds); a source not read this time
 * is unknown for the interval, a new one is added (its past unknown).
 * An update not after the last one is ignored; one librrd refuses is
 * logged. */
void rrda_update(Rrd *rrd, int64_t t, const RrdSample *samples, size_t n);

int64_t rrda_last_update(const Rrd *rrd);
/* Bytes the handle holds in memory (the archives are in the file). */
size_t rrda_bytes(const Rrd *rrd);

/* The sources, in the order of the archives. */
guint rrda_n_sources(const Rrd *rrd);
const char *rrda_source_name(const Rrd *rrd, guint i);
/* The source's value over the last step (NaN when unknown). */
double rrda_source_value(const Rrd *rrd, guint i);
int rrda_source_index(const Rrd *rrd, const char *name); /* -1 if none */
/* Empties every archive of the source (its past becomes unknown): as
 * XAPI's rrd_remove_ds, the source is removed and added afresh, last. */
void rrda_forget_source(Rrd *rrd, guint i);

/* /rrd_updates over several archive sets (rrd_updates.ml create_multi). */
typedef struct {
    const char *owner; /* "host", "vm", "sr" */
    const char *uuid;
    const Rrd *rrd;
} RrdSource;
/* cf < 0: every consolidation function. Appends XAPI's XML or JSON. */
void rrda_xport(GString *out, const RrdSource *sources, size_t n, int64_t start, int64_t interval,
               int cf, bool json);

/* The whole archive set in rrdtool's dump layout, as /host_rrd serves it. */
void rrda_dump_xml(GString *out, const Rrd *rrd);

/* XAPI's number text (rrd_utils.ml f_to_s): %0.15g, "0.0", NaN, Infinity. */
void rrda_format_value(GString *out, double v);
