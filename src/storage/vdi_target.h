/* vdi_target.h: what work on one VDI's image needs from the database,
 * read once the VDI's operation is locked (its location cannot move
 * then): the VDI, its SR, the SR's directory on this host and driver. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "sr_driver.h"
#include "xapi_error.h"

typedef struct {
    char *ref;
    char *uuid;
    char *sr;
    char *dir;          /* the SR's directory on this host */
    char *location;     /* the image's file name in dir */
    char *path;         /* dir/location */
    const char *format; /* of the file: "qcow2" or "raw" */
    int64_t virtual_size;
    bool read_only;
    const SrDriver *driver;
} VdiTarget;

/* HANDLE_INVALID, VDI_NOT_AVAILABLE (no SR), or the SR's error when it is
 * not plugged here. On success t holds copies (vdi_target_clear). */
int vdi_target_read(const char *vdi_ref, VdiTarget *t, XapiError **err);
void vdi_target_clear(VdiTarget *t);
/* The bytes a file of t's SR takes on disk (0 if it cannot be read). */
int64_t vdi_target_allocated(const VdiTarget *t, const char *location);
