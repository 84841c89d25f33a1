/* vbd_qos.h: a VBD's QoS. "ratelimit" (xapid's, after XAPI's VIF QoS of
 * that name, which XAPI's VBDs lack): qos_algorithm_params kbps (KiB/s)
 * and/or iops, the total for reads and writes, and group: disks of a VM
 * naming one group share one QEMU throttle group's limits (default: the
 * disk's own). "ionice" (XAPI's only VBD QoS,
 * xapi_xenops.ml): qos_algorithm_params sched ("real-time"/"rt",
 * "best-effort", "idle"; best-effort when absent) and class ("highest",
 * "high", "normal", "low", "lowest" or 0..7; normal when absent), as
 * Linux I/O priorities (ioprio_set) of the VM's QEMU. One QEMU serves all
 * of a VM's disks, so its disks' ionice settings must agree. */
#pragma once

#include <stdint.h>

#include "db.h"
#include "hv_driver.h"
#include "xapi_error.h"

/* The Linux I/O priority value of vbd's QoS (0: none given); -1 with
 * VALUE_NOT_SUPPORTED for another type, INVALID_VALUE for a bad param. */
int vbd_qos_ioprio(const DbRow *vbd, XapiError **err);

/* The ratelimit of vbd into disk (nothing for another type); -1 with
 * INVALID_VALUE for a bad param, VALUE_NOT_SUPPORTED on a CD or floppy. */
int vbd_qos_rate(const DbRow *vbd, HvDisk *disk, XapiError **err);

/* The disks' I/O priorities agree (0 counts as no opinion): the common
 * one in *ioprio, else VALUE_NOT_SUPPORTED naming vm. */
int vbd_qos_common(const int *ioprios, size_t n, const char *vm_ref, int *ioprio,
                   XapiError **err);

/* A hot-plug of vbd (its ioprio) agrees with the VM's attached disks
 * (lock held). */
int vbd_qos_check_plug(const DbRow *vm, const DbRow *vbd, int ioprio, XapiError **err);

/* Every thread of pid gets ioprio (new threads inherit it). */
int vbd_qos_apply(int64_t pid, int ioprio, XapiError **err);
