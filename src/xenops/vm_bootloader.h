/* vm_bootloader.h: PV_bootloader=pygrub: the default entry's kernel and
 * initrd read out of the VM's bootable disk at VM.start, then booted
 * directly (-kernel/-initrd/-append). */
#pragma once

#include <stdbool.h>

#include "hv_driver.h"
#include "xapi_error.h"
#include "xv.h"

/* The staging directories live in STATE_DIR/bootloader (one per VM). */
int vm_bootloader_init(const char *state_dir, XapiError **err);

/* The VM boots PV (domain_type pv, pvh, pv_in_pvh, or unspecified with no
 * HVM_boot_policy) through PV_bootloader "pygrub" (record: VM.get_record's). */
bool vm_bootloader_wanted(const Xv *record);

/* Reads the boot configuration (grub.cfg, menu.lst, extlinux.conf) of the
 * first bootable disk of disks (raw or qcow2; a partition table, MBR or
 * GPT, or a filesystem over the whole disk; ext2/3/4 or FAT), copies the
 * default entry's kernel and initrd into the VM's staging directory
 * (removing what a crashed start left there), and gives *boot (caller
 * frees) as record with PV_kernel, PV_ramdisk and PV_args (the entry's,
 * then record's) naming them. Disks' boot indexes are cleared: the
 * kernel boots. Nothing bootable: BOOTLOADER_FAILED [vm_ref, why]. */
int vm_bootloader_run(const char *vm_ref, const char *uuid, const Xv *record, HvDisk *disks,
                      size_t n_disks, Xv **boot, XapiError **err);

/* After the start (QEMU holds the files open): the staging directory goes. */
void vm_bootloader_done(const char *uuid);
