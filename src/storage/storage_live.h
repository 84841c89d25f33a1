/* storage_live.h: what storage asks of the VM layer for VDIs that a
 * running guest has open (xenops registers these at start-up). */
#pragma once

#include <stdint.h>

#include "xapi_error.h"

typedef struct {
    /* If a running domain writes to vdi: moves it onto a new empty
     * overlay at new_path over its current image (QEMU makes the file)
     * and returns 1; 0 if no domain has it open read-write; -1 on error. */
    int (*snapshot_attached)(const char *vdi_ref, const char *new_path, XapiError **err);
    /* If a running domain has vdi open: grows it there (QEMU resizes the
     * image) and returns 1; 0 if none has; -1 on error. */
    int (*resize_attached)(const char *vdi_ref, int64_t size, XapiError **err);
} StorageLiveHooks;

void storage_set_live_hooks(const StorageLiveHooks *hooks);
