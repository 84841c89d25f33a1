/* qemu_balloon.c: the guest's memory statistics through its virtio-balloon.
 *
 * QEMU asks the guest's balloon driver for its statistics every
 * guest-stats-polling-interval seconds and keeps the last answer in the
 * device's guest-stats property: {"stats": {"stat-free-memory": bytes,
 * "stat-available-memory": bytes, ...}, "last-update": seconds}, a figure
 * the guest does not give being -1 and last-update 0 before the first
 * answer. XAPI's memory_internal_free (KiB) is what the guest's tools
 * report free; MemAvailable is the figure a Linux guest's tools give. */
#include "qemu_balloon.h"

#include "qemu_cmdline.h"

#define BALLOON_PATH "/machine/peripheral/" QEMU_BALLOON_ID

int qemu_balloon_stats_enable(QmpMonitor *mon, XapiError **err)
{
    json_object *args = json_object_new_object();
    json_object_object_add(args, "path", json_object_new_string(BALLOON_PATH));
    json_object_object_add(args, "property", json_object_new_string("guest-stats-polling-interval"));
    json_object_object_add(args, "value", json_object_new_int(QEMU_BALLOON_STATS_PERIOD_S));
    json_object *ret = qmp_monitor_command(mon, "qom-set", args, -1, err);
    if (!ret)
        return -1;
    json_object_put(ret);
    return 0;
}

static int64_t stat_of(json_object *stats, const char *name)
{
    json_object *v;
    return json_object_object_get_ex(stats, name, &v) && json_object_is_type(v, json_type_int)
               ? json_object_get_int64(v) : -1;
}

int64_t qemu_balloon_free_kib_of(json_object *reply)
{
    json_object *stats, *updated;
    if (!reply || !json_object_object_get_ex(reply, "stats", &stats) ||
        !json_object_object_get_ex(reply, "last-update", &updated) ||
        json_object_get_int64(updated) <= 0)
        return -1;
    int64_t bytes = stat_of(stats, "stat-available-memory");
    if (bytes < 0)
        bytes = stat_of(stats, "stat-free-memory");
    return bytes < 0 ? -1 : bytes / 1024;
}

int64_t qemu_balloon_free_kib(QmpMonitor *mon)
{
    json_object *args = json_object_new_object();
    json_object_object_add(args, "path", json_object_new_string(BALLOON_PATH));
    json_object_object_add(args, "property", json_object_new_string("guest-stats"));
    g_autoptr(XapiError) ignored = NULL;
    json_object *reply = qmp_monitor_command(mon, "qom-get", args, -1, &ignored);
    int64_t kib = qemu_balloon_free_kib_of(reply);
    json_object_put(reply);
    return kib;
}
