/* qemu_fdsets.h: disk images handed to a running QEMU as fdsets over its
 * monitor (QMP add-fd), and the sets removed when their disk goes. */
#pragma once

#include <stdint.h>

#include "image_chain.h"
#include "qmp.h"
#include "xapi_error.h"

/* One fdset per image of chain, holding its descriptors, its opaque
 * naming the disk's slot (QEMU_DISK_FDSET_FMT); fdsets[i] gets image i's
 * set. On failure the sets made so far are removed. */
int qemu_fdsets_add_chain(QmpMonitor *mon, int slot, const ImageChain *chain, int64_t *fdsets,
                          XapiError **err);

/* Removes sets (QEMU closes a set's descriptors once no node uses them). */
void qemu_fdsets_remove(QmpMonitor *mon, const int64_t *fdsets, size_t n);

/* Removes every set of slot but those in keep[0..n_keep). */
void qemu_fdsets_remove_slot(QmpMonitor *mon, int slot, const int64_t *keep, size_t n_keep);
