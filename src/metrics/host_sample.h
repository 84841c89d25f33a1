/* host_sample.h: the host's figures for its archive, read from /proc and
 * /sys (XAPI's rrdd host sources: cpuN, cpu_avg, memory_total_kib,
 * memory_free_kib, loadavg, pif_<dev>_rx/tx). */
#pragma once

#include <glib.h>

#include "rrd_archive.h"

typedef struct HostSampler HostSampler;

HostSampler *host_sampler_new(void);
void host_sampler_free(HostSampler *hs);

/* Appends RrdSamples (names owned by hs until the next call) for a
 * reading now; pifs: the devices whose counters to read. CPU figures need
 * two readings: the first gives none. */
void host_sampler_read(HostSampler *hs, const char *const *pifs, GArray *samples);
