/* boot_files.h: the host directories a VM's PV_kernel and PV_ramdisk may
 * come from (XAPI's allowed directories for boot files). */
#pragma once

#include "xapi_error.h"

/* The default, as XAPI's was before /var/lib/xcp/guest. */
#define BOOT_FILES_DEFAULT_DIR "/boot/guest"

/* Adds a directory (--guest-kernel-dir) to the default one. */
void boot_files_allow_dir(const char *dir);

/* field ("PV_kernel"/"PV_ramdisk") names path: 0 if it resolves to a
 * regular file inside an allowed directory, else INVALID_VALUE [field,
 * path, reason] as XAPI raises it. */
int boot_files_check(const char *field, const char *path, XapiError **err);

/* QEMU reads a boot file through a descriptor xapid opened (fd, of size
 * bytes): for a file QEMU's user may not read, a memfd holding a copy,
 * which it may. -1 with an error naming path. */
int boot_file_memfd_copy(int fd, long long size, const char *path, XapiError **err);
