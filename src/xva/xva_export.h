/* xva_export.h: a VM as an XVA stream (XAPI's GET /export, export.ml and
 * stream_vdi.ml): ova.xml, then each disk in 1 MiB blocks, each followed
 * by its XXH64, all-zero blocks other than the first and last left out,
 * optionally compressed. The disks are read through vdi_transfer's raw
 * export; a running VM is exported from a snapshot taken for it (and
 * destroyed afterwards), as XenServer does. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "call.h"
#include "xva_codec.h"

typedef struct {
    XvaCompression compression;
    bool preserve_power_state;
    bool include_snapshots;
} XvaExportOptions;

typedef struct XvaExport XvaExport;
/* Locks the VM (operation export) for task_ref. NULL with *err. */
XvaExport *xva_export_begin(const char *vm_ref, const XvaExportOptions *opt, const char *task_ref,
                            XapiError **err);
/* The next bytes of the stream, at most max: 0 at the end, -1 on error. */
ssize_t xva_export_read(XvaExport *x, void *buf, size_t max, XapiError **err);
/* Unlocks, drops the snapshot of a running VM. */
void xva_export_free(XvaExport *x);
