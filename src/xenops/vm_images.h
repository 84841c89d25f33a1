/* vm_images.h: files a domain's state is written to in a file SR (its
 * saved state, a crash dump of its memory), recorded as VDIs. */
#pragma once

#include "xapi_error.h"

typedef struct {
    const char *type;  /* the VDI's type: "suspend", "crashdump" */
    const char *label; /* its name_label */
    /* Makes the file at path (the domain writes it). */
    int (*write)(const char *path, const void *arg, XapiError **err);
    const void *write_arg;
    /* In the transaction that records the VDI (lock held), with its ref:
     * what points at it (a VM's suspend_VDI, a crashdump). NULL: none. */
    int (*link)(const char *vdi_ref, const void *arg, XapiError **err);
    const void *link_arg;
} VmImage;

/* Writes a new raw file in the file SR sr_ref (the SR held against scans
 * meanwhile, the file noted as pending so that a crash leaves no orphan)
 * and records it as a VDI: its ref (caller frees), or NULL with err set
 * (the file removed). */
char *vm_image_write(const char *sr_ref, const VmImage *image, XapiError **err);
