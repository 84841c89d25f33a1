/* image_chain.h: a disk image and its backing files, opened by xapid so
 * that QEMU gets descriptors and needs no right to open them by name. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "xapi_error.h"

/* Deeper chains are refused (a loop, or a chain nobody should run). */
#define IMAGE_CHAIN_MAX 64

typedef struct {
    char *format; /* "qcow2" or "raw" */
    int fd_rw;    /* the top of a writable disk only, else -1 */
    int fd_ro;    /* always: QEMU reopens a node read-only when it may */
} ImageLayer;

typedef struct {
    ImageLayer *layers; /* [0] the image the disk names, then its backing files */
    size_t n;
} ImageChain;

/* Opens path (format "qcow2", "raw" or "iso") and every backing file its
 * qcow2 headers name, as QEMU would find them (relative names from the
 * directory of the image naming them), never through a symlink. The
 * backing file's format must be recorded in its overlay (qemu-img -F):
 * xapid never lets QEMU guess it. */
int image_chain_open(const char *path, const char *format, bool writable, ImageChain *chain,
                     XapiError **err);
void image_chain_close(ImageChain *chain);
