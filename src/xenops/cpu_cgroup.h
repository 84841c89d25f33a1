/* cpu_cgroup.h: VCPUs_params weight and cap given to the host's scheduler
 * through a cgroup of the domain's own (XAPI hands them to Xen's credit
 * scheduler): cgroup v2's cpu.weight/cpu.max where the unified hierarchy
 * has the cpu controller, else cgroup v1's cpu.shares/cpu.cfs_quota_us.
 * The group is /sys/fs/cgroup[/cpu]/xapid/<uuid>. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "xapi_error.h"

/* Checks VCPUs_params weight (1..65535, XAPI's credit weight, default
 * 256) and cap (0..100 per vCPU, percent of one host CPU, 0 no cap):
 * INVALID_VALUE for a bad number, VALUE_NOT_SUPPORTED when this host has
 * no cpu controller. Either may be NULL or empty (not given). */
int cpu_cgroup_check(const char *weight, const char *cap, int64_t vcpus_max, XapiError **err);

/* Puts pid (every thread of it) into the domain's group with weight and
 * cap; nothing when neither is given. */
int cpu_cgroup_apply(const char *uuid, int64_t pid, const char *weight, const char *cap,
                     XapiError **err);

/* Removes the domain's group (once its QEMU has ended: a group that still
 * holds a process stays). */
void cpu_cgroup_remove(const char *uuid);
