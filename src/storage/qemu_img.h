/* qemu_img.h: the image operations the file SR needs, done by qemu-img.
 * A failure gives SR_BACKEND_FAILURE [exit status, stdout, stderr].
 * Every call names the image's format: qemu-img never probes it (a raw
 * disk whose guest wrote a qcow2 header must stay raw, or its "backing
 * file" could name any file of the host). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "xapi_error.h"

/* A qcow2 image of size bytes; over backing (a file name relative to the
 * new image's directory, of backing_format: "qcow2" or "raw") when backing
 * is non-NULL. The backing file is not opened, so it may be in use by a
 * running guest. */
int qemu_img_create_over(const char *path, int64_t size, const char *backing,
                         const char *backing_format, XapiError **err);
/* The same with the backing format told by its name: raw for a ".raw"
 * file, else qcow2. */
int qemu_img_create(const char *path, int64_t size, const char *backing, XapiError **err);

typedef struct {
    char *format;          /* "qcow2", "raw", ... */
    int64_t virtual_size;
    int64_t actual_size;   /* bytes allocated on disk */
    char *backing;         /* as recorded in the image, or NULL */
    char *backing_format;  /* as recorded in the image, or NULL */
} QemuImgInfo;
/* Reads the header of an image of format (shared: the image may be in
 * use); its backing file is not opened. */
int qemu_img_info(const char *path, const char *format, QemuImgInfo *out, XapiError **err);
void qemu_img_info_clear(QemuImgInfo *info);

int qemu_img_resize(const char *path, const char *format, int64_t size, XapiError **err);
/* Copies src (of src_format; its whole backing chain read as one) into a
 * new image dst of dst_format; sparse where src is. */
int qemu_img_convert(const char *src, const char *src_format, const char *dst,
                     const char *dst_format, XapiError **err);
/* Checks that path is a valid image of format (SR_BACKEND_FAILURE if not). */
int qemu_img_check(const char *path, const char *format, XapiError **err);
/* The same into an existing image dst (its size unchanged). */
int qemu_img_convert_into(const char *src, const char *src_format, const char *dst,
                          const char *dst_format, XapiError **err);
