/* sr_driver.h: the storage driver interface.
 *
 * A driver keeps VDIs as files in one directory (the PBD's
 * device_config:location). Each VDI is named by its location, a file name
 * in that directory; the database above (vdi_api.c) decides which
 * locations are VDIs, snapshots and hidden bases. Two drivers: `file`
 * (qcow2 images chained by backing files, and raw files, which only ever
 * sit at the bottom of a chain; `shared=true` on a directory
 * that several hosts see) and `iso` (read-only .iso files). */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "xapi_error.h"

typedef struct {
    int64_t virtual_size;
    int64_t physical_utilisation;
    char *parent;      /* location of the backing image in the same SR, or NULL */
    const char *format; /* "qcow2", "raw" (static) */
    bool read_only;
} VdiInfo;
void vdi_info_clear(VdiInfo *info);

typedef struct SrDriver {
    const char *type;             /* SR.type and SM.type */
    const char *name_label;
    const char *description;
    const char *content_type;     /* the default SR.content_type */
    /* SM capabilities (XAPI's names: SR_PROBE, VDI_CREATE, ...); the
     * operations a driver leaves NULL are those it lacks. */
    const char *const *capabilities;
    /* Makes a new SR in dir (created if missing); a directory that holds
     * anything but an SR marker is refused (SR_BACKEND_FAILURE_42, SM's
     * SRExists), as is a link. */
    int (*create)(const char *dir, XapiError **err);
    /* Checks that dir holds an SR this driver can serve. */
    int (*attach)(const char *dir, XapiError **err);
    /* The space of the file system under dir. */
    int (*stat)(const char *dir, int64_t *size, int64_t *used, XapiError **err);
    /* The locations of every image in dir (caller frees the array). */
    GPtrArray *(*list)(const char *dir, XapiError **err);
    int (*vdi_info)(const char *dir, const char *location, VdiInfo *out, XapiError **err);
    /* A new empty image; its location (caller frees). */
    char *(*vdi_create)(const char *dir, int64_t size, XapiError **err);
    int (*vdi_delete)(const char *dir, const char *location, XapiError **err);
    int (*vdi_resize)(const char *dir, const char *location, int64_t size, XapiError **err);
    /* A new empty image over base (which becomes read-only by convention:
     * nothing writes to a base); its location. */
    char *(*vdi_overlay)(const char *dir, const char *base, int64_t size, XapiError **err);
    /* A new stand-alone image with src's contents (src is a full path, of
     * format src_format, e.g. a VDI of another SR), in the same format;
     * its location. */
    char *(*vdi_import)(const char *dir, const char *src, const char *src_format,
                        XapiError **err);
} SrDriver;

extern const SrDriver sr_file_driver;
extern const SrDriver sr_iso_driver;

/* The driver for an SR.type, or NULL. */
const SrDriver *sr_driver_for(const char *type);
/* The full path of location in dir (caller frees). */
char *sr_path(const char *dir, const char *location);
/* 0 if location names a regular file in dir itself (not a symbolic link,
 * which is never followed, nor a directory); else SR_BACKEND_FAILURE_46
 * ("The VDI is not available", SM's VDIUnavailable). */
int sr_file_check(const char *dir, const char *location, XapiError **err);
/* sr_file_check of location and of every image under it in its backing
 * chain, each of which must be an image of dir (qemu-img info, one level
 * at a time, never opening a backing file): a chain leading out of the SR
 * is SR_BACKEND_FAILURE_46 too. No database lock held. */
int sr_chain_check(const char *dir, const char *location, XapiError **err);
