/* cpu_cgroup.c: see cpu_cgroup.h. */
#include "cpu_cgroup.h"

#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define CGROUP_ROOT "/sys/fs/cgroup"
#define XAPI_DEFAULT_WEIGHT 256
#define CFS_PERIOD_US 100000

typedef enum { CPU_CGROUP_NONE, CPU_CGROUP_V1, CPU_CGROUP_V2 } CpuCgroupKind;

static CpuCgroupKind kind(void)
{
    g_autofree char *controllers = NULL;
    if (g_file_get_contents(CGROUP_ROOT "/cgroup.controllers", &controllers, NULL, NULL)) {
        g_auto(GStrv) words = g_strsplit_set(g_strstrip(controllers), " \n", -1);
        return g_strv_contains((const char *const *)words, "cpu") ? CPU_CGROUP_V2
                                                                   : CPU_CGROUP_NONE;
    }
    return g_file_test(CGROUP_ROOT "/cpu/cpu.shares", G_FILE_TEST_EXISTS) ? CPU_CGROUP_V1
                                                                           : CPU_CGROUP_NONE;
}

static bool given(const char *v) { return v && *v; }

static bool parse(const char *text, int64_t lo, int64_t hi, int64_t *out)
{
    char *end = NULL;
    int64_t v = g_ascii_strtoll(text, &end, 10);
    if (!*text || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

int cpu_cgroup_check(const char *weight, const char *cap, int64_t vcpus_max, XapiError **err)
{
    int64_t v;
    if (given(weight) && !parse(weight, 1, 65535, &v))
        return xapi_error_set(err, "INVALID_VALUE", "VCPUs_params:weight", weight, NULL);
    if (given(cap) && !parse(cap, 0, 100 * MAX(vcpus_max, 1), &v))
        return xapi_error_set(err, "INVALID_VALUE", "VCPUs_params:cap", cap, NULL);
    if ((given(weight) || given(cap)) && kind() == CPU_CGROUP_NONE)
        return xapi_error_set(err, "VALUE_NOT_SUPPORTED",
                              given(weight) ? "VCPUs_params:weight" : "VCPUs_params:cap",
                              given(weight) ? weight : cap,
                              "this host's cgroups have no cpu controller", NULL);
    return 0;
}

static char *group_dir(CpuCgroupKind k, const char *uuid)
{
    return g_build_filename(CGROUP_ROOT, k == CPU_CGROUP_V1 ? "cpu" : "", "xapid", uuid, NULL);
}

static int write_file(const char *dir, const char *name, const char *text, XapiError **err)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    /* cgroup files take one write(2); g_file_set_contents would rename. */
    FILE *f = fopen(path, "we");
    bool ok = f && fputs(text, f) >= 0;
    int saved = errno;
    if (f && fclose(f) != 0 && ok) {
        ok = false;
        saved = errno;
    }
    if (!ok)
        return xapi_error_internal(err, "%s: %s", path, g_strerror(saved));
    return 0;
}

int cpu_cgroup_apply(const char *uuid, int64_t pid, const char *weight, const char *cap,
                     XapiError **err)
{
    if (!given(weight) && !given(cap))
        return 0;
    CpuCgroupKind k = kind();
    if (k == CPU_CGROUP_NONE)
        return cpu_cgroup_check(weight, cap, 1, err);
    g_autofree char *parent = g_build_filename(CGROUP_ROOT, k == CPU_CGROUP_V1 ? "cpu" : "",
                                               "xapid", NULL);
    g_autofree char *dir = group_dir(k, uuid);
    if (g_mkdir_with_parents(dir, 0755) < 0)
        return xapi_error_internal(err, "%s: %s", dir, g_strerror(errno));
    if (k == CPU_CGROUP_V2 && (write_file(CGROUP_ROOT, "cgroup.subtree_control", "+cpu", err) < 0 ||
                               write_file(parent, "cgroup.subtree_control", "+cpu", err) < 0))
        return -1;
    int64_t w = given(weight) ? g_ascii_strtoll(weight, NULL, 10) : XAPI_DEFAULT_WEIGHT;
    int64_t c = given(cap) ? g_ascii_strtoll(cap, NULL, 10) : 0;
    g_autofree char *share = NULL, *quota = NULL;
    int rc;
    if (k == CPU_CGROUP_V1) {
        /* cpu.shares' default 1024 stands for Xen's default weight 256 */
        share = g_strdup_printf("%" G_GINT64_FORMAT, CLAMP(w * 4, 2, 262144));
        quota = g_strdup_printf("%" G_GINT64_FORMAT, c ? c * CFS_PERIOD_US / 100 : -1);
        rc = write_file(dir, "cpu.shares", share, err) < 0 ||
                     write_file(dir, "cpu.cfs_period_us", G_STRINGIFY(CFS_PERIOD_US), err) < 0 ||
                     write_file(dir, "cpu.cfs_quota_us", quota, err) < 0
                 ? -1
                 : 0;
    } else {
        /* cpu.weight's default 100 stands for 256 */
        share = g_strdup_printf("%" G_GINT64_FORMAT, CLAMP(w * 100 / XAPI_DEFAULT_WEIGHT, 1, 10000));
        quota = c ? g_strdup_printf("%" G_GINT64_FORMAT " %d", c * CFS_PERIOD_US / 100,
                                    CFS_PERIOD_US)
                  : g_strdup_printf("max %d", CFS_PERIOD_US);
        rc = write_file(dir, "cpu.weight", share, err) < 0 ||
                     write_file(dir, "cpu.max", quota, err) < 0
                 ? -1
                 : 0;
    }
    g_autofree char *proc = g_strdup_printf("%" G_GINT64_FORMAT, pid);
    if (rc == 0)
        rc = write_file(dir, "cgroup.procs", proc, err);
    if (rc < 0)
        rmdir(dir);
    return rc;
}

void cpu_cgroup_remove(const char *uuid)
{
    CpuCgroupKind k = kind();
    if (k == CPU_CGROUP_NONE)
        return;
    g_autofree char *dir = group_dir(k, uuid);
    if (rmdir(dir) < 0 && errno != ENOENT && errno != EBUSY)
        g_message("%s not removed: %s", dir, g_strerror(errno));
}
