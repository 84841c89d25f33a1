/* qemu_balloon.h: the guest's own memory figures from its virtio-balloon
 * (the driver's statistics queue), for the memory_internal_free source. */
#pragma once

#include <stdint.h>

#include "qmp.h"
#include "xapi_error.h"

/* How often the balloon asks the guest for its statistics, in seconds. */
#define QEMU_BALLOON_STATS_PERIOD_S 5

/* Turns the statistics on (QOM guest-stats-polling-interval of the
 * domain's balloon); a timer of QEMU's, so again after each start,
 * resume or reattach. */
int qemu_balloon_stats_enable(QmpMonitor *mon, XapiError **err);

/* What the guest reports it could use at once, in KiB (its
 * MemAvailable, MemFree on a kernel without it), from QOM guest-stats;
 * -1 while it has reported nothing (no balloon driver, or none yet). */
int64_t qemu_balloon_free_kib(QmpMonitor *mon);

/* The same from guest-stats' reply (the JSON of its "return"); for the
 * unit test. */
int64_t qemu_balloon_free_kib_of(json_object *stats);
