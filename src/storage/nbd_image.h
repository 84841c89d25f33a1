/* nbd_image.h: an image file read and written block by block through a
 * private qemu-nbd (libnbd, socket activation): any format QEMU reads,
 * backing chains seen as one disk, holes known from base:allocation.
 * A failure gives VDI_IO_ERROR [reason]. One handle, one thread. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "xapi_error.h"

typedef struct NbdImage NbdImage;

/* Serves path (of format, "qcow2", "raw" or "vpc") read-only or writable. */
NbdImage *nbd_image_open(const char *path, const char *format, bool writable, XapiError **err);
int64_t nbd_image_size(const NbdImage *img);

int nbd_image_read(NbdImage *img, void *buf, size_t len, int64_t offset, XapiError **err);
int nbd_image_write(NbdImage *img, const void *buf, size_t len, int64_t offset, XapiError **err);
int nbd_image_zero(NbdImage *img, int64_t len, int64_t offset, XapiError **err);

/* The run of blocks from offset (at most max bytes) that are alike: *len
 * bytes that all read as zeros (*zero) or may hold data. */
int nbd_image_extent(NbdImage *img, int64_t offset, int64_t max, int64_t *len, bool *zero,
                     XapiError **err);

/* Makes every write durable (flush), then disconnects; qemu-nbd exits. */
int nbd_image_close(NbdImage *img, XapiError **err);
/* Disconnects without flushing (after a failure); NULL is fine. */
void nbd_image_free(NbdImage *img);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NbdImage, nbd_image_free)
