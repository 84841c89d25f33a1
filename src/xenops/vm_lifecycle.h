/* vm_lifecycle.h: how VM operations run (vm_lifecycle.c, vm_clone.c). */
#pragma once

#include "call.h"

typedef struct VmOp {
    Call *call;
    const char *ref;
    char *uuid;
    Xv *record; /* the VM as it was when the operation began */
    const void *arg;
} VmOp;

/* Checks op and records it in the VM's current_operations, runs work
 * holding the VM's lock (with progress on the call's task), reconciles
 * the VM with its domain, then clears the operation. */
int vm_run_operation(Call *call, const char *vm_ref, const char *op, int (*work)(VmOp *o),
                     const void *arg);

/* What VM.start checks before it makes the domain, on the VM's record
 * (vm_fields_check_start, the memory size, the boot files, the host's
 * free memory). No lock held. */
int vm_check_bootable(const char *vm_ref, const Xv *record, XapiError **err);
/* Its checks of the record alone (not of a host). */
int vm_check_record(const char *vm_ref, const Xv *record, XapiError **err);

/* Stops the VM's domain at once and marks it Halted (VM lock held). */
int vm_hard_stop(VmOp *o);

/* Boots the VM's domain with its disks (from resume_image, a saved state,
 * when given) and marks it running with a new domid (VM lock held). */
int vm_boot(VmOp *o, const char *resume_image, bool paused);

/* Removes a suspend image VDI (logged on failure). */
void vm_drop_suspend_image(const char *vdi_ref);
/* At start-up, after reconciliation: removes the suspend images that no
 * VM holds as its suspend_VDI (a suspend, resume or checkpoint that did
 * not finish before xapid died). */
void vm_drop_unowned_suspend_images(void);

/* A snapshot of the VM (its disks snapshotted, live if it runs); the new
 * VM's ref in *result (VM lock held, operation recorded). With memory (a
 * checkpoint's saved state, a VDI) the snapshot is recorded Suspended
 * with it as its suspend_VDI. */
int vm_make_snapshot(VmOp *o, const char *name, const Xv *ignore_vdis, const char *memory,
                     Xv **result);
