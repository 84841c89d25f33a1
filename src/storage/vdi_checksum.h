/* vdi_checksum.h: the MD5 of a VDI's contents as a guest would read them
 * (XAPI's VDI.checksum: Digest of the attached block device). */
#pragma once

#include "xapi_error.h"

/* The hex MD5 of the virtual disk of the VDI vdi_ref (caller frees), read
 * through qemu-nbd whatever the image's format; NULL with err set
 * (HANDLE_INVALID, the SR's error, VDI_IO_ERROR). Takes the database's
 * read lock only to find the file: call it with no lock held. */
char *vdi_checksum_md5(const char *vdi_ref, XapiError **err);
