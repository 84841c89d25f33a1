/* xva_codec.c: gzip and zstd streams of an XVA (see xva_codec.h). Level 1
 * for both: an export is limited by the compressor, as `gzip -1` and
 * `zstd -1` are the usual choices for disk images. */
#include "xva_codec.h"

#include <string.h>
#include <zlib.h>
#include <zstd.h>

#define OUT_CHUNK ((size_t)256 << 10)

XvaCompression xva_compression_parse(const char *v)
{
    if (!v)
        return XVA_PLAIN;
    if (g_ascii_strcasecmp(v, "true") == 0 || g_ascii_strcasecmp(v, "gzip") == 0)
        return XVA_GZIP;
    if (g_ascii_strcasecmp(v, "zstd") == 0)
        return XVA_ZSTD;
    return XVA_PLAIN;
}

struct XvaEncoder {
    XvaCompression c;
    z_stream z;
    ZSTD_CCtx *zstd;
};

XvaEncoder *xva_encoder_new(XvaCompression c)
{
    XvaEncoder *e = g_new0(XvaEncoder, 1);
    e->c = c;
    if (c == XVA_GZIP)
        deflateInit2(&e->z, 1, Z_DEFLATED, 15 + 16 /* gzip wrapper */, 8, Z_DEFAULT_STRATEGY);
    else if (c == XVA_ZSTD) {
        e->zstd = ZSTD_createCCtx();
        ZSTD_CCtx_setParameter(e->zstd, ZSTD_c_compressionLevel, 1);
    }
    return e;
}

void xva_encoder_write(XvaEncoder *e, const void *data, size_t len, bool finish, GByteArray *out)
{
    if (e->c == XVA_PLAIN) {
        g_byte_array_append(out, data, (guint)len);
        return;
    }
    if (e->c == XVA_GZIP) {
        e->z.next_in = (Bytef *)data;
        e->z.avail_in = (uInt)len;
        int rc;
        do {
            guint old = out->len;
            g_byte_array_set_size(out, old + (guint)OUT_CHUNK);
            e->z.next_out = out->data + old;
            e->z.avail_out = (uInt)OUT_CHUNK;
            rc = deflate(&e->z, finish ? Z_FINISH : Z_NO_FLUSH);
            g_byte_array_set_size(out, old + (guint)(OUT_CHUNK - e->z.avail_out));
        } while (e->z.avail_in > 0 || (finish && rc != Z_STREAM_END) ||
                 (!finish && e->z.avail_out == 0));
        return;
    }
    ZSTD_inBuffer in = {data, len, 0};
    size_t left;
    do {
        guint old = out->len;
        g_byte_array_set_size(out, old + (guint)OUT_CHUNK);
        ZSTD_outBuffer o = {out->data + old, OUT_CHUNK, 0};
        left = ZSTD_compressStream2(e->zstd, &o, &in, finish ? ZSTD_e_end : ZSTD_e_continue);
        g_byte_array_set_size(out, old + (guint)o.pos);
        if (ZSTD_isError(left))
            break;
    } while (in.pos < in.size || (finish && left != 0));
}

void xva_encoder_free(XvaEncoder *e)
{
    if (!e)
        return;
    if (e->c == XVA_GZIP)
        deflateEnd(&e->z);
    ZSTD_freeCCtx(e->zstd);
    g_free(e);
}

struct XvaDecoder {
    XvaCompression c;
    z_stream z;
    ZSTD_DCtx *zstd;
    guint8 *buf;
};

XvaDecoder *xva_decoder_new(XvaCompression c)
{
    XvaDecoder *d = g_new0(XvaDecoder, 1);
    d->c = c;
    d->buf = g_malloc(OUT_CHUNK);
    if (c == XVA_GZIP)
        inflateInit2(&d->z, 15 + 32 /* gzip or zlib, detected */);
    else if (c == XVA_ZSTD)
        d->zstd = ZSTD_createDCtx();
    return d;
}

static int gzip_write(XvaDecoder *d, const void *data, size_t len, XvaSink sink, void *ctx,
                      char **why)
{
    d->z.next_in = (Bytef *)data;
    d->z.avail_in = (uInt)len;
    do {
        d->z.next_out = d->buf;
        d->z.avail_out = (uInt)OUT_CHUNK;
        int rc = inflate(&d->z, Z_NO_FLUSH);
        size_t n = OUT_CHUNK - d->z.avail_out;
        if (n && sink(ctx, d->buf, n) < 0)
            return -1;
        if (rc == Z_STREAM_END) {
            inflateReset(&d->z); /* gzip members may follow each other */
        } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
            *why = g_strdup_printf("gzip: %s", d->z.msg ? d->z.msg : "corrupt data");
            return -1;
        } else if (rc == Z_BUF_ERROR && n == 0) {
            break;
        }
    } while (d->z.avail_in > 0 || d->z.avail_out == 0); /* output may be pending */
    return 0;
}

static int zstd_write(XvaDecoder *d, const void *data, size_t len, XvaSink sink, void *ctx,
                      char **why)
{
    ZSTD_inBuffer in = {data, len, 0};
    for (;;) {
        ZSTD_outBuffer o = {d->buf, OUT_CHUNK, 0};
        size_t rc = ZSTD_decompressStream(d->zstd, &o, &in);
        if (ZSTD_isError(rc)) {
            *why = g_strdup_printf("zstd: %s", ZSTD_getErrorName(rc));
            return -1;
        }
        if (o.pos && sink(ctx, d->buf, o.pos) < 0)
            return -1;
        if (in.pos == in.size && o.pos < o.size)
            return 0;
    }
}

int xva_decoder_write(XvaDecoder *d, const void *data, size_t len, XvaSink sink, void *ctx,
                      char **why)
{
    switch (d->c) {
    case XVA_GZIP:
        return gzip_write(d, data, len, sink, ctx, why);
    case XVA_ZSTD:
        return zstd_write(d, data, len, sink, ctx, why);
    case XVA_PLAIN:
        break;
    }
    return sink(ctx, data, len);
}

void xva_decoder_free(XvaDecoder *d)
{
    if (!d)
        return;
    if (d->c == XVA_GZIP)
        inflateEnd(&d->z);
    ZSTD_freeDCtx(d->zstd);
    g_free(d->buf);
    g_free(d);
}
