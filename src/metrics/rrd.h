/* rrd.h: round-robin archives with XAPI's layout and consolidation
 * (xapi-rrd's rrd.ml): a 5 s primary step, archives of 1/120, 12/120,
 * 720/168 and 17280/366 primary points per row, AVERAGE (and MIN and MAX
 * where asked), data sources added as they first appear. */
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

/* A fresh archive set whose rows start at now; min_max: the coarser
 * archives also keep MIN and MAX (the host's always do in XAPI). */
Rrd *rrd_new(bool min_max, int64_t now);
void rrd_free(Rrd *rrd);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Rrd, rrd_free)

/* One reading of a data source at the time of the update. */
typedef struct {
    const char *name;
    RrdDsType type;
    double value; /* a gauge's value, a counter's total */
} RrdSample;

/* Feeds readings taken at time t (seconds); a source not read this time
 * is unknown for the interval, a new one is added (its past unknown).
 * An update not after the last one is ignored. */
void rrd_update(Rrd *rrd, int64_t t, const RrdSample *samples, size_t n);

int64_t rrd_last_update(const Rrd *rrd);
/* Bytes the archives hold (for the per-VM memory bound). */
size_t rrd_bytes(const Rrd *rrd);

/* The sources, in the order of the archives. */
guint rrd_n_sources(const Rrd *rrd);
const char *rrd_source_name(const Rrd *rrd, guint i);
/* The source's value over the last step (NaN when unknown). */
double rrd_source_value(const Rrd *rrd, guint i);
int rrd_source_index(const Rrd *rrd, const char *name); /* -1 if none */
/* Empties every archive of the source (its past becomes unknown). */
void rrd_forget_source(Rrd *rrd, guint i);

/* /rrd_updates over several archive sets (rrd_updates.ml create_multi). */
typedef struct {
    const char *owner; /* "host", "vm", "sr" */
    const char *uuid;
    const Rrd *rrd;
} RrdSource;
/* cf < 0: every consolidation function. Appends XAPI's XML or JSON. */
void rrd_xport(GString *out, const RrdSource *sources, size_t n, int64_t start, int64_t interval,
               int cf, bool json);

/* The whole archive set in rrdtool's dump layout, as /host_rrd serves it. */
void rrd_dump_xml(GString *out, const Rrd *rrd);

/* A binary image for the state dir, and back (NULL if it is not one). */
GBytes *rrd_serialize(const Rrd *rrd);
Rrd *rrd_deserialize(const void *data, size_t len);

/* XAPI's number text (rrd_utils.ml f_to_s): %0.15g, "0.0", NaN, Infinity. */
void rrd_format_value(GString *out, double v);
