/* xva_tar.h: the tar entries of an XVA, as XAPI's tar_helpers write them
 * (512-byte ustar headers, data padded to 512, two zero blocks at the end). */
#pragma once

#include <glib.h>
#include <stdint.h>

#define XVA_TAR_BLOCK 512

/* Appends the header of a regular file name of size bytes (mode 0400). */
void xva_tar_append_header(GByteArray *out, const char *name, uint64_t size, int64_t mtime);
/* Appends the zeros that pad size bytes of data to a whole block. */
void xva_tar_append_padding(GByteArray *out, uint64_t size);
/* The padding after size bytes of data. */
size_t xva_tar_padding(uint64_t size);
/* Appends the end of the archive (two zero blocks). */
void xva_tar_append_end(GByteArray *out);

typedef enum { XVA_TAR_ENTRY, XVA_TAR_END, XVA_TAR_BAD } XvaTarHeader;
/* Reads one header block: an entry (*name, caller frees, and *size), the
 * end of the archive (a zero block), or not a header (bad checksum). */
XvaTarHeader xva_tar_parse_header(const guint8 block[XVA_TAR_BLOCK], char **name,
                                  uint64_t *size);
