/* xva_import.h: an XVA stream made into VMs (XAPI's PUT /import and
 * /import_metadata, import.ml): plain, gzip or zstd (detected from the
 * first bytes), ova.xml read, a VDI made on the SR for each disk and its
 * blocks checked (XXH64 or SHA-1) before they are written through
 * vdi_transfer's raw import; the VMs, VBDs and VIFs are recorded at the
 * end, in one write.
 *
 * Nothing is left of an import that fails: its VDIs are destroyed. They
 * carry other_config:xapid_import_pending from their creation until the
 * write that records the VMs takes it away, so that a crash in between is
 * undone at the next start (xva_import_sweep). */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "xapi_error.h"

typedef struct {
    const char *sr;     /* the SR for new disks (a ref) */
    bool restore;       /* keep the VMs' uuids and mac_seed */
    bool force;         /* checksum failures are ignored */
    bool metadata_only; /* ova.xml only: the disks exist already (by uuid) */
    bool dry_run;       /* metadata only: checks, records nothing */
} XvaImportOptions;

/* The SR an import goes to: ref, else uuid, else the pool's default SR
 * (caller frees); HANDLE_INVALID, UUID_INVALID, DEFAULT_SR_NOT_FOUND, or
 * SR_OPERATION_NOT_SUPPORTED for an ISO library. */
char *xva_import_target_sr(const char *ref, const char *uuid, XapiError **err);

typedef struct XvaImport XvaImport;
XvaImport *xva_import_begin(const XvaImportOptions *opt, const char *task_ref);
/* The next bytes of the upload. */
int xva_import_write(XvaImport *im, const void *data, size_t len, XapiError **err);
/* The upload is complete: the VMs are recorded; *result is the task's
 * result (the XML-RPC text of the new VMs' refs, caller frees). */
int xva_import_finish(XvaImport *im, char **result, XapiError **err);
/* After xva_import_finish: the refs of the result. */
const GPtrArray *xva_import_new_vms(const XvaImport *im);
/* An import not finished is undone. */
void xva_import_free(XvaImport *im);

/* At start-up: destroys the VDIs of imports that a crash interrupted. */
void xva_import_sweep(void);
