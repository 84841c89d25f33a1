/* disk_stats.c: disk I/O rates and their sources (see disk_stats.h). */
#include "disk_stats.h"

#include <string.h>

#include "rrd_archive.h"

typedef struct {
    DiskCounters c;
    int64_t t;
} Reading;

struct DiskStats {
    GHashTable *last; /* key -> Reading* */
};

DiskStats *disk_stats_new(void)
{
    DiskStats *ds = g_new0(DiskStats, 1);
    ds->last = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return ds;
}

void disk_stats_free(DiskStats *ds)
{
    if (!ds)
        return;
    g_hash_table_unref(ds->last);
    g_free(ds);
}

static bool counters_known(const DiskCounters *c)
{
    return c->read_bytes >= 0 && c->write_bytes >= 0 && c->read_ops >= 0 && c->write_ops >= 0 &&
           c->read_ns >= 0 && c->write_ns >= 0;
}

static bool rate(int64_t now, int64_t before, double seconds, double *out)
{
    if (now < before)
        return false;
    *out = (double)(now - before) / seconds;
    return true;
}

bool disk_stats_update(DiskStats *ds, const char *key, int64_t now, const DiskCounters *c,
                       DiskRates *rates)
{
    if (!counters_known(c)) {
        g_hash_table_remove(ds->last, key);
        return false;
    }
    Reading *last = g_hash_table_lookup(ds->last, key);
    bool ok = false;
    if (last && now > last->t) {
        double s = (double)(now - last->t);
        const DiskCounters *b = &last->c;
        ok = rate(c->read_bytes, b->read_bytes, s, &rates->read_bytes) &&
             rate(c->write_bytes, b->write_bytes, s, &rates->write_bytes) &&
             rate(c->read_ops, b->read_ops, s, &rates->read_ops) &&
             rate(c->write_ops, b->write_ops, s, &rates->write_ops) &&
             rate(c->read_ns, b->read_ns, s, &rates->read_ns) &&
             rate(c->write_ns, b->write_ns, s, &rates->write_ns);
    }
    if (!last) {
        last = g_new0(Reading, 1);
        g_hash_table_insert(ds->last, g_strdup(key), last);
    }
    last->c = *c;
    last->t = now;
    return ok;
}

static gboolean older(gpointer key, gpointer value, gpointer now)
{
    (void)key;
    return ((Reading *)value)->t < *(int64_t *)now;
}

void disk_stats_expire(DiskStats *ds, int64_t now)
{
    g_hash_table_foreach_remove(ds->last, older, &now);
}

void disk_rates_add(DiskRates *to, const DiskRates *r)
{
    to->read_bytes += r->read_bytes;
    to->write_bytes += r->write_bytes;
    to->read_ops += r->read_ops;
    to->write_ops += r->write_ops;
    to->read_ns += r->read_ns;
    to->write_ns += r->write_ns;
}

/* Microseconds per request, 0 with none (XAPI's rd_avg_usecs). */
static double latency_us(double ns, double ops) { return ops > 0 ? ns / ops / 1000.0 : 0.0; }

static void add(GPtrArray *names, GArray *samples, const char *prefix, const char *key,
                const char *suffix, double value)
{
    char *name = g_strconcat(prefix, key, suffix, NULL);
    g_ptr_array_add(names, name);
    RrdSample s = {name, RRD_GAUGE, value};
    g_array_append_val(samples, s);
}

void disk_rates_samples(const DiskRates *r, const char *prefix, const char *suffix,
                        GPtrArray *names, GArray *samples)
{
    const double mib = 1024.0 * 1024.0;
    add(names, samples, prefix, "io_throughput_read", suffix, r->read_bytes / mib);
    add(names, samples, prefix, "io_throughput_write", suffix, r->write_bytes / mib);
    add(names, samples, prefix, "io_throughput_total", suffix,
        (r->read_bytes + r->write_bytes) / mib);
    add(names, samples, prefix, "iops_read", suffix, r->read_ops);
    add(names, samples, prefix, "iops_write", suffix, r->write_ops);
    add(names, samples, prefix, "iops_total", suffix, r->read_ops + r->write_ops);
    add(names, samples, prefix, "read_latency", suffix, latency_us(r->read_ns, r->read_ops));
    add(names, samples, prefix, "write_latency", suffix, latency_us(r->write_ns, r->write_ops));
    add(names, samples, prefix, "latency", suffix,
        latency_us(r->read_ns + r->write_ns, r->read_ops + r->write_ops));
    add(names, samples, prefix, "iowait", suffix, (r->read_ns + r->write_ns) / 1e9);
}

/* XAPI's descriptions (rrdp_iostat.ml make_ds). */
static const struct {
    const char *key, *description, *units;
} known[] = {
    {"io_throughput_read", "Data read from the disk, in MiB/s", "MiB/s"},
    {"io_throughput_write", "Data written to the disk, in MiB/s", "MiB/s"},
    {"io_throughput_total", "All disk I/O, in MiB/s", "MiB/s"},
    {"iops_read", "Read requests per second", "requests/s"},
    {"iops_write", "Write requests per second", "requests/s"},
    {"iops_total", "I/O Requests per second", "requests/s"},
    {"read_latency", "Read latency from device disk, in microseconds", "μs"},
    {"write_latency", "Write latency from device disk, in microseconds", "μs"},
    {"latency", "Average I/O latency", "μs"},
    {"iowait", "Total I/O wait time (all requests) per second", "s/s"},
};

bool disk_stats_describe(const char *name, const char **description, const char **units)
{
    g_autofree char *key = NULL;
    size_t len = strlen(name);
    if (g_str_has_prefix(name, "vbd_")) { /* vbd_<dev>_<key> */
        const char *us = strchr(name + 4, '_');
        key = g_strdup(us ? us + 1 : "");
    } else if (len > 9 && name[len - 9] == '_' &&
               strspn(name + len - 8, "0123456789abcdef") == 8) { /* <key>_<sr> */
        key = g_strndup(name, len - 9);
    } else {
        key = g_strdup(name);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(known); i++)
        if (strcmp(key, known[i].key) == 0) {
            *description = known[i].description;
            *units = known[i].units;
            return true;
        }
    return false;
}
