/* storage_live.h: what storage asks of the VM layer for VDIs that a
 * running guest has open (xenops registers these at start-up). */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "xapi_error.h"

typedef struct {
    /* 1 if a running domain writes to vdi (its VM's uuid in *domain,
     * caller frees), 0 if none does, -1 on error. */
    int (*writer)(const char *vdi_ref, char **domain, XapiError **err);
    /* Moves the domain's disks of vdis[i] onto the new empty overlays at
     * new_paths[i] (made over the images they use now), all at the same
     * instant. Disks already there, or no longer attached, are left. */
    int (*switch_leaves)(const char *domain, const char *const *vdis,
                         const char *const *new_paths, guint n, XapiError **err);
    /* Stops the domain at once (a move that must happen could not). */
    void (*stop_writer)(const char *domain);
    /* If a running domain has vdi open: grows it there (QEMU resizes the
     * image) and returns 1; 0 if none has; -1 on error. */
    int (*resize_attached)(const char *vdi_ref, int64_t size, XapiError **err);
} StorageLiveHooks;

void storage_set_live_hooks(const StorageLiveHooks *hooks);
const StorageLiveHooks *storage_live_hooks(void);
