/* vbd_qos.c: see vbd_qos.h. */
#include "vbd_qos.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define IOPRIO_CLASS_SHIFT 13
#define IOPRIO_CLASS_RT 1
#define IOPRIO_CLASS_BE 2
#define IOPRIO_CLASS_IDLE 3
#define IOPRIO_WHO_PROCESS 1

static const char *param(const DbRow *vbd, const char *key)
{
    const Xv *v = xv_struct_get(db_get(vbd, "qos_algorithm_params"), key);
    return v ? xv_str(v) : NULL;
}

/* XAPI's class names and their levels (Highest 0 .. Lowest 7). */
static int level_of(const char *text)
{
    static const struct {
        const char *name;
        int level;
    } names[] = {{"highest", 0}, {"high", 2}, {"normal", 4}, {"low", 6}, {"lowest", 7}};
    if (!text)
        return 4;
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
        if (strcmp(text, names[i].name) == 0)
            return names[i].level;
    char *end = NULL;
    long n = strtol(text, &end, 10);
    return *text && !*end && n >= 0 && n <= 7 ? (int)n : -1;
}

/* A positive count of at most 2^40 (a limit QEMU takes). */
static bool parse_rate(const char *text, int64_t *out)
{
    char *end = NULL;
    int64_t v = g_ascii_strtoll(text, &end, 10);
    if (!*text || *end || v <= 0 || v > (INT64_C(1) << 40))
        return false;
    *out = v;
    return true;
}

int vbd_qos_rate(const DbRow *vbd, HvDisk *disk, XapiError **err)
{
    if (strcmp(xv_str(db_get(vbd, "qos_algorithm_type")), "ratelimit") != 0)
        return 0;
    if (disk->cdrom || disk->floppy)
        return xapi_error_set(err, "VALUE_NOT_SUPPORTED", "VBD.qos_algorithm_type", "ratelimit",
                              "a rate limit is for disks (virtio-blk)", NULL);
    const char *kbps = param(vbd, "kbps"), *iops = param(vbd, "iops");
    const char *group = param(vbd, "group");
    if (!kbps && !iops)
        return xapi_error_set(err, "INVALID_VALUE", "VBD.qos_algorithm_params",
                              "kbps or iops is needed", NULL);
    if (kbps && !parse_rate(kbps, &disk->rate_bps))
        return xapi_error_set(err, "INVALID_VALUE", "VBD.qos_algorithm_params:kbps", kbps, NULL);
    if (iops && !parse_rate(iops, &disk->rate_iops))
        return xapi_error_set(err, "INVALID_VALUE", "VBD.qos_algorithm_params:iops", iops, NULL);
    disk->rate_bps *= 1024;
    if (group) {
        bool plain = *group && strlen(group) < 24;
        for (const char *c = group; plain && *c; c++)
            plain = g_ascii_isalnum(*c) || *c == '-' || *c == '_';
        if (!plain)
            return xapi_error_set(err, "INVALID_VALUE", "VBD.qos_algorithm_params:group", group,
                                  NULL);
        g_snprintf(disk->rate_group, sizeof disk->rate_group, "tg-%s", group);
    } else {
        g_snprintf(disk->rate_group, sizeof disk->rate_group, "tg-vbd%d", disk->slot);
    }
    return 0;
}

int vbd_qos_ioprio(const DbRow *vbd, XapiError **err)
{
    const char *type = xv_str(db_get(vbd, "qos_algorithm_type"));
    if (!*type || strcmp(type, "ratelimit") == 0)
        return 0;
    if (strcmp(type, "ionice") != 0)
        return xapi_error_set(err, "VALUE_NOT_SUPPORTED", "VBD.qos_algorithm_type", type,
                              "XAPI's VBD QoS is ionice (xapid's own: ratelimit)", NULL);
    const char *sched = param(vbd, "sched");
    int class_;
    if (!sched || strcmp(sched, "best-effort") == 0)
        class_ = IOPRIO_CLASS_BE;
    else if (strcmp(sched, "real-time") == 0 || strcmp(sched, "rt") == 0)
        class_ = IOPRIO_CLASS_RT;
    else if (strcmp(sched, "idle") == 0)
        class_ = IOPRIO_CLASS_IDLE;
    else
        return xapi_error_set(err, "INVALID_VALUE", "VBD.qos_algorithm_params:sched", sched,
                              NULL);
    int level = class_ == IOPRIO_CLASS_IDLE ? 0 : level_of(param(vbd, "class"));
    if (level < 0)
        return xapi_error_set(err, "INVALID_VALUE", "VBD.qos_algorithm_params:class",
                              param(vbd, "class"), NULL);
    return class_ << IOPRIO_CLASS_SHIFT | level;
}

int vbd_qos_common(const int *ioprios, size_t n, const char *vm_ref, int *ioprio,
                   XapiError **err)
{
    *ioprio = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ioprios[i])
            continue;
        if (*ioprio && *ioprio != ioprios[i])
            return xapi_error_set(err, "VALUE_NOT_SUPPORTED", "VBD.qos_algorithm_params",
                                  vm_ref,
                                  "one QEMU serves all of a VM's disks: their ionice settings "
                                  "must agree",
                                  NULL);
        *ioprio = ioprios[i];
    }
    return 0;
}

int vbd_qos_apply(int64_t pid, int ioprio, XapiError **err)
{
    if (!ioprio)
        return 0;
    g_autofree char *dir_path = g_strdup_printf("/proc/%" G_GINT64_FORMAT "/task", pid);
    DIR *dir = opendir(dir_path);
    if (!dir)
        return xapi_error_internal(err, "%s: %s", dir_path, g_strerror(errno));
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(dir));) {
        char *end = NULL;
        long tid = strtol(e->d_name, &end, 10);
        if (tid <= 0 || *end)
            continue;
        if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, (int)tid, ioprio) < 0 && errno != ESRCH)
            rc = xapi_error_internal(err, "ioprio_set of thread %ld: %s", tid, g_strerror(errno));
    }
    closedir(dir);
    return rc;
}

int vbd_qos_check_plug(const DbRow *vm, const DbRow *vbd, int ioprio, XapiError **err)
{
    const Xv *vbds = db_get(vm, "VBDs");
    GArray *prios = g_array_new(FALSE, TRUE, sizeof(int));
    g_array_append_val(prios, ioprio);
    for (guint i = 0; i < xv_len(vbds); i++) {
        DbRow *other = db_lookup(dm_class_by_name("VBD"), xv_str(xv_at(vbds, i)));
        if (!other || other == vbd || !db_get(other, "currently_attached")->b)
            continue;
        g_autoptr(XapiError) ignored = NULL;
        int p = vbd_qos_ioprio(other, &ignored);
        if (p > 0)
            g_array_append_val(prios, p);
    }
    int common;
    int rc = vbd_qos_common((const int *)prios->data, prios->len, vm->ref, &common, err);
    g_array_unref(prios);
    return rc;
}
