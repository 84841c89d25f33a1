/* storage.h: SRs, PBDs and VDIs on this host: which driver and directory
 * serve an SR, the SM records describing the drivers, and keeping VDI
 * records true to the files (scan). */
#pragma once

#include "db.h"
#include "sr_driver.h"

/* The SR roots (sr_roots.h: the state directory's, then sr_roots, which
 * may be NULL), SM records for the drivers, every PBD of this host
 * plugged again (a directory gone, or no longer under a root, leaves it
 * unplugged), every attached SR scanned. */
int storage_init(const char *state_dir, const char *const *sr_roots, XapiError **err);

/* Lock held. */
const SrDriver *storage_driver(const DbRow *sr);  /* NULL: unknown type */
DbRow *storage_host_pbd(const DbRow *sr);         /* this host's PBD, or NULL */
/* The directory of an SR plugged on this host (caller frees), else NULL
 * with SR_HAS_NO_PBDS / SR_NOT_ATTACHED. */
char *storage_sr_dir(const DbRow *sr, XapiError **err);
/* The file of a VDI (caller frees), else NULL with the SR's error. */
char *storage_vdi_path(const DbRow *vdi, XapiError **err);
/* The VDI's file is a regular file in its SR's directory (a link there is
 * never followed): 0, else the SR's or sr_file_check's error. */
int storage_vdi_check_file(const DbRow *vdi, XapiError **err);
/* The image format of a VDI's file: "qcow2" or "raw". */
const char *storage_vdi_format(const DbRow *vdi);

/* Serialises driver work on one SR (image creation, deletion, scans);
 * taken before the database lock, never inside it. */
void storage_lock_sr(const char *sr_ref);
void storage_unlock_sr(const char *sr_ref);

/* Brings the SR's VDI records in line with its files: introduces new
 * files (bases of other images as hidden "base copy" VDIs), forgets
 * records whose file is gone (and that no guest has attached), marks
 * missing those whose header does not read or that a guest has attached
 * (their VBDs untouched; missing clears when they read again), refreshes
 * sizes, parents and the SR's space. SR lock held, database lock not. */
int storage_scan(const char *sr_ref, XapiError **err);
/* The space of an SR's file system (statvfs), read with no database lock
 * held: it may block. known is false when the SR is not plugged here or
 * the file system does not answer. */
typedef struct {
    bool known;
    int64_t size, used;
} SrSpace;
void storage_sr_space_read(const char *sr_ref, SrSpace *out);
/* Only the SR's space fields: physical_size and physical_utilisation from
 * space (when known), virtual_allocation from its VDI records. Write lock
 * held; nothing here blocks. */
int storage_refresh_sr_space(DbRow *sr, const SrSpace *space, XapiError **err);

/* A new VDI row for an image in sr (not inserted). Write lock held. */
DbRow *storage_vdi_row(const DbRow *sr, const char *location, const VdiInfo *info);
/* Inserts it with its allowed_operations. Write lock held. */
int storage_insert_vdi(DbRow *vdi, XapiError **err);
/* sm_config:vhd-parent follows info->parent's VDI (nova walks the chain). */
void storage_set_vdi_parent(DbRow *vdi, const DbRow *sr, const char *parent_location);
/* Whether some VDI of sr names the VDI of uuid in sm_config:vhd-parent
 * (an image is built on it). Lock held. */
bool storage_vdi_has_children(const DbRow *sr, const char *uuid);
