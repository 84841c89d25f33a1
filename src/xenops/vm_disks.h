/* vm_disks.h: a VM's VBDs as the hypervisor's disks, and the VBD records
 * following what the domain has attached. */
#pragma once

#include "db.h"
#include "hv_driver.h"
#include "operations.h"

extern const ObjectOperations vbd_operations;

/* The slot of a VBD's userdevice, or -1 if it is not a valid one. */
int vbd_slot(const char *userdevice, bool cdrom);

/* One VBD's disk (lock held; caller clears with hv_disks_free(d, 1)
 * semantics: free d->path). Errors: the VDI's SR not plugged, a read-only
 * VDI on a read-write VBD (VDI_READONLY). */
int vbd_disk(const DbRow *vbd, HvDisk *out, XapiError **err);

/* The disks of every VBD of vm for booting it, with boot positions from
 * HVM_boot_params:order (lock held; caller frees with hv_disks_free). */
int vm_disks_for_start(const DbRow *vm, HvDisk **disks, size_t *n, XapiError **err);

/* Each disk's image and its backing chain are files of its SR, no link
 * and no backing file elsewhere (sr_chain_check; qemu-img runs: no lock
 * held). */
int hv_disks_check_chains(const HvDisk *disks, size_t n, XapiError **err);

/* After the domain started (attached) or stopped: every VBD's
 * currently_attached and device, and the allowed operations of the VBDs
 * and their VDIs (write lock held). */
int vm_vbds_set_attached(DbRow *vm, bool attached, XapiError **err);
/* The same for one VBD. */
int vbd_set_attached(DbRow *vbd, bool attached, XapiError **err);

/* 0 if the VBD's VDI has no operation in flight but copies (which only
 * read); else VDI_IN_USE [vdi, the operation]: an import, destroy or
 * resize under way. Lock held. */
int vbd_vdi_check_idle(const DbRow *vbd, XapiError **err);

/* The attach locks of a VM that is about to start: every VBD with a VDI
 * records task_ref -> attach (XAPI's with_vbds_marked), so that VDI
 * operations see the VDI as in use; a VDI with an operation of its own
 * in flight (an import, destroy, resize: anything but a copy) refuses
 * with VDI_IN_USE [vdi, that operation]. Write lock held, in the same
 * transaction as the VM's own operation lock, after vm_disks_check (which
 * changes nothing) passed. */
int vm_disks_check(DbRow *vm, XapiError **err);
int vm_disks_lock(DbRow *vm, const char *task_ref, XapiError **err);
/* Removes them again (write lock held). */
int vm_disks_unlock(DbRow *vm, const char *task_ref, XapiError **err);

/* Registers the VBD operation locks and storage's live hooks. */
void vbd_init(void);
