/* xva_ova.h: ova.xml, the metadata of an XVA, as XAPI's export.ml writes
 * it (an XML-RPC struct: version, then objects with class, id and the
 * class's get_record snapshot, refs replaced by Ref:N ids), and read back. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "xapi_error.h"
#include "xv.h"

typedef struct {
    bool preserve_power_state; /* else power_state Halted, suspend_VDI NULL */
    bool include_snapshots;    /* the VMs' snapshots too, as snapshots */
    bool with_disks;           /* list the disks whose blocks follow */
    /* A running VM exported from its snapshot: the snapshot's disks under
     * this VM's identity (name, description, uuid). NULL otherwise. */
    const char *as_vm;
} XvaOvaOptions;

typedef struct {
    char *xml;         /* ova.xml's text */
    GPtrArray *disks;  /* VDI refs whose blocks follow, in stream order */
    GPtrArray *ids;    /* their ids ("Ref:N"), same order */
    int64_t disk_bytes; /* their virtual sizes together */
} XvaOva;

/* The ova.xml of vms (refs). Takes the read lock. NULL with *err. */
XvaOva *xva_ova_build(const char *const *vms, guint n, const XvaOvaOptions *opt, XapiError **err);
void xva_ova_free(XvaOva *ova);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(XvaOva, xva_ova_free)

/* ova.xml's value parsed: the struct of version and objects, or NULL with
 * IMPORT_ERROR_GENERIC. */
Xv *xva_ova_parse(const char *xml, size_t len, XapiError **err);

/* A member of an object's snapshot as the exporter typed it or not:
 * a string ("" if absent), an int (from <int> or its decimal string), a
 * bool (<boolean> or "true"). */
const char *xva_snap_str(const Xv *snap, const char *key);
int64_t xva_snap_int(const Xv *snap, const char *key);
bool xva_snap_bool(const Xv *snap, const char *key);
