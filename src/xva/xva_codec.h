/* xva_codec.h: the compression of an XVA stream, gzip (zlib) or zstd
 * (libzstd), both ways, a piece at a time. */
#pragma once

#include <glib.h>
#include <stdbool.h>

typedef enum { XVA_PLAIN, XVA_GZIP, XVA_ZSTD } XvaCompression;

/* XAPI's use_compression: true and gzip mean gzip, zstd zstd, anything
 * else (false, absent) none. */
XvaCompression xva_compression_parse(const char *use_compression);

typedef struct XvaEncoder XvaEncoder;
XvaEncoder *xva_encoder_new(XvaCompression c);
/* Compresses data (finish: and ends the stream), appending to out. */
void xva_encoder_write(XvaEncoder *e, const void *data, size_t len, bool finish, GByteArray *out);
void xva_encoder_free(XvaEncoder *e);

typedef struct XvaDecoder XvaDecoder;
/* Receives what is decompressed; -1 stops the stream. */
typedef int (*XvaSink)(void *ctx, const guint8 *data, size_t len);
XvaDecoder *xva_decoder_new(XvaCompression c);
/* Decompresses data into sink: 0, or -1 when the data is not of the
 * format (*why set, caller frees) or the sink said stop. */
int xva_decoder_write(XvaDecoder *d, const void *data, size_t len, XvaSink sink, void *ctx,
                      char **why);
void xva_decoder_free(XvaDecoder *d);
