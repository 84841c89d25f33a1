/* host_sample.c: the host's figures (see host_sample.h). */
#include "host_sample.h"

#include <stdio.h>
#include <string.h>

struct HostSampler {
    GArray *busy, *total;  /* per pCPU, jiffies at the previous reading */
    bool have_previous;
    GPtrArray *names;      /* the sample names of the last reading */
};

HostSampler *host_sampler_new(void)
{
    HostSampler *hs = g_new0(HostSampler, 1);
    hs->busy = g_array_new(FALSE, TRUE, sizeof(guint64));
    hs->total = g_array_new(FALSE, TRUE, sizeof(guint64));
    hs->names = g_ptr_array_new_with_free_func(g_free);
    return hs;
}

void host_sampler_free(HostSampler *hs)
{
    if (!hs)
        return;
    g_array_unref(hs->busy);
    g_array_unref(hs->total);
    g_ptr_array_unref(hs->names);
    g_free(hs);
}

static void add(HostSampler *hs, GArray *samples, char *name, RrdDsType type, double value)
{
    g_ptr_array_add(hs->names, name);
    RrdSample s = {name, type, value};
    g_array_append_val(samples, s);
}

/* cpuN = 1 - idle share of the interval (idle and iowait are idle). */
static void read_cpus(HostSampler *hs, GArray *samples)
{
    g_autofree char *stat = NULL;
    if (!g_file_get_contents("/proc/stat", &stat, NULL, NULL))
        return;
    g_auto(GStrv) lines = g_strsplit(stat, "\n", -1);
    double sum = 0;
    unsigned n = 0;
    for (char **l = lines; *l; l++) {
        unsigned cpu;
        guint64 v[8] = {0};
        if (sscanf(*l, "cpu%u %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT
                       " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT
                       " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT,
                   &cpu, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 5 ||
            cpu > 4096)
            continue;
        guint64 total = 0;
        for (int i = 0; i < 8; i++)
            total += v[i];
        guint64 busy = total - v[3] - v[4];
        if (cpu >= hs->busy->len) {
            g_array_set_size(hs->busy, cpu + 1);
            g_array_set_size(hs->total, cpu + 1);
        }
        guint64 *pb = &g_array_index(hs->busy, guint64, cpu);
        guint64 *pt = &g_array_index(hs->total, guint64, cpu);
        if (hs->have_previous && total > *pt && busy >= *pb) {
            double f = (double)(busy - *pb) / (double)(total - *pt);
            add(hs, samples, g_strdup_printf("cpu%u", cpu), RRD_GAUGE, f);
            sum += f;
            n++;
        }
        *pb = busy;
        *pt = total;
    }
    if (n)
        add(hs, samples, g_strdup("cpu_avg"), RRD_GAUGE, sum / n);
    hs->have_previous = true;
}

static void read_memory(HostSampler *hs, GArray *samples)
{
    g_autofree char *text = NULL;
    if (!g_file_get_contents("/proc/meminfo", &text, NULL, NULL))
        return;
    guint64 total = 0, avail = 0;
    const char *t = strstr(text, "MemTotal:"), *a = strstr(text, "MemAvailable:");
    if (t && a && sscanf(t, "MemTotal: %" G_GUINT64_FORMAT, &total) == 1 &&
        sscanf(a, "MemAvailable: %" G_GUINT64_FORMAT, &avail) == 1) {
        add(hs, samples, g_strdup("memory_total_kib"), RRD_GAUGE, (double)total);
        add(hs, samples, g_strdup("memory_free_kib"), RRD_GAUGE, (double)avail);
    }
}

static void read_loadavg(HostSampler *hs, GArray *samples)
{
    g_autofree char *text = NULL;
    double load;
    if (g_file_get_contents("/proc/loadavg", &text, NULL, NULL) && sscanf(text, "%lf", &load) == 1)
        add(hs, samples, g_strdup("loadavg"), RRD_GAUGE, load);
}

static bool read_counter(const char *dev, const char *counter, double *out)
{
    g_autofree char *path = g_strdup_printf("/sys/class/net/%s/statistics/%s", dev, counter);
    g_autofree char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return false;
    *out = (double)g_ascii_strtoull(text, NULL, 10);
    return true;
}

void host_sampler_read(HostSampler *hs, const char *const *pifs, GArray *samples)
{
    g_ptr_array_set_size(hs->names, 0);
    read_cpus(hs, samples);
    read_memory(hs, samples);
    read_loadavg(hs, samples);
    double rx_all = 0, tx_all = 0;
    for (const char *const *p = pifs; p && *p; p++) {
        double rx, tx;
        if (!read_counter(*p, "rx_bytes", &rx) || !read_counter(*p, "tx_bytes", &tx))
            continue;
        add(hs, samples, g_strdup_printf("pif_%s_rx", *p), RRD_DERIVE, rx);
        add(hs, samples, g_strdup_printf("pif_%s_tx", *p), RRD_DERIVE, tx);
        rx_all += rx;
        tx_all += tx;
    }
    add(hs, samples, g_strdup("pif_aggr_rx"), RRD_DERIVE, rx_all);
    add(hs, samples, g_strdup("pif_aggr_tx"), RRD_DERIVE, tx_all);
}
