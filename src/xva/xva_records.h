/* xva_records.h: the VMs (and their snapshots), VBDs and VIFs of an
 * imported ova.xml recorded in one write: refs mapped to the rows made
 * here or to the null ref, VIFs onto the network of the same name or the
 * management network, uuids kept with restore, the disks' pending mark
 * taken away in the same write. */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "xapi_error.h"
#include "xv.h"

/* Carried by an import's new VDIs until the VMs are recorded. */
#define XVA_PENDING_KEY "xapid_import_pending"

typedef struct {
    const Xv *ova;          /* the parsed ova.xml */
    GHashTable *objects;    /* id -> snapshot struct */
    GHashTable *disks;      /* id -> the VDI ref for that disk */
    GPtrArray *made_disks;  /* the VDI refs the import made (marked pending) */
    bool restore;
    bool dry_run;           /* checked in the write, then undone */
} XvaRecords;

/* Records the rows; *result is the task result's XML-RPC text (caller
 * frees), new_vms gets its refs. */
int xva_records_write(const XvaRecords *r, GPtrArray *new_vms, char **result, XapiError **err);
