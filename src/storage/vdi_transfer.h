/* vdi_transfer.h: a VDI's contents as a byte stream, in and out (XAPI's
 * /import_raw_vdi and /export_raw_vdi): streamed through qemu-nbd, never
 * held whole, with the VDI's operation lock held throughout.
 *
 * An import writes into a staging image beside the VDI's file and puts it
 * in place only once complete, so a failed or cut upload leaves the VDI
 * as it was. A VDI after snapshot keeps its backing chain: the staging
 * image is an overlay on the same base, written with zeros where the base
 * has data that the stream does not. Raw data for a VDI that stands alone
 * (no backing file, no image built on it) skips qemu-nbd: it is written
 * into a new sparse raw file, which becomes the VDI's image under a new
 * location "<uuid>.raw" (the old image deleted); a raw file is exported
 * straight from the file. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "xapi_error.h"

typedef enum { VDI_STREAM_RAW, VDI_STREAM_VHD, VDI_STREAM_QCOW2 } VdiStreamFormat;

/* XAPI's format names, any case: raw, vhd, qcow2 (tar is not served). */
bool vdi_stream_format_parse(const char *name, VdiStreamFormat *out);
const char *vdi_stream_format_name(VdiStreamFormat format);
const char *vdi_stream_content_type(VdiStreamFormat format);

/* The ref of a VDI named by ref or by uuid, as XAPI accepts either
 * (HANDLE_INVALID / UUID_INVALID); caller frees. */
char *vdi_transfer_resolve(const char *ref_or_uuid, XapiError **err);

typedef struct VdiImport VdiImport;
/* Takes the VDI's "update" operation for task_ref and prepares to receive
 * length bytes (-1: unknown). A raw stream is the disk from its first
 * byte; what it leaves out reads as zeros. qcow2 and vhd streams are
 * image files whose virtual size is at most the VDI's. */
VdiImport *vdi_import_begin(const char *vdi_ref, VdiStreamFormat format, int64_t length,
                            const char *task_ref, XapiError **err);
/* The next bytes of the stream. */
int vdi_import_write(VdiImport *im, const void *data, size_t len, XapiError **err);
/* The stream is complete: its contents become the VDI's, and the VDI's
 * record its new physical_utilisation. */
int vdi_import_finish(VdiImport *im, XapiError **err);
/* Unlocks; an unfinished import is dropped and the VDI left as it was. */
void vdi_import_free(VdiImport *im);

typedef struct VdiExport VdiExport;
/* Takes the VDI's "copy" operation (and base's, if any) for task_ref. raw:
 * the whole virtual disk, backing chain included; qcow2 and vhd: an image
 * file with the same contents. With base, blocks that read the same in
 * base read as zeros (raw) or are left out (qcow2, vhd), as XAPI's
 * differential exports. */
VdiExport *vdi_export_begin(const char *vdi_ref, const char *base_ref, VdiStreamFormat format,
                            const char *task_ref, XapiError **err);
/* The stream's length in bytes (raw: the virtual size). */
int64_t vdi_export_length(const VdiExport *ex);
/* "<uuid>.<format>", the file name XAPI suggests. */
const char *vdi_export_filename(const VdiExport *ex);
/* Up to max bytes of the stream from pos (pos goes forward); 0 at the
 * end, -1 on error. */
ssize_t vdi_export_read(VdiExport *ex, int64_t pos, void *buf, size_t max, XapiError **err);
void vdi_export_free(VdiExport *ex);
