/* xva_codec_test.c: tar headers written and read back (GNU tar's checksum
 * rule, ustar prefixes, a zero block, a damaged header), and the gzip and
 * zstd streams both ways fed a byte at a time and in one piece, gzip
 * members one after another, corrupt data refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <glib.h>
#include <string.h>

#include "xva_codec.h"
#include "xva_tar.h"

static void test_tar_header_round_trip(void **state)
{
    g_autoptr(GByteArray) out = g_byte_array_new();
    xva_tar_append_header(out, "Ref:12/00000003.xxhash", 16, 1700000000);
    assert_int_equal(out->len, XVA_TAR_BLOCK);
    assert_memory_equal(out->data + 257, "ustar", 6);
    g_autofree char *name = NULL;
    uint64_t size = 0;
    assert_int_equal(xva_tar_parse_header(out->data, &name, &size), XVA_TAR_ENTRY);
    assert_string_equal(name, "Ref:12/00000003.xxhash");
    assert_int_equal(size, 16);
    out->data[0] ^= 1; /* the checksum no longer matches */
    g_autofree char *other = NULL;
    assert_int_equal(xva_tar_parse_header(out->data, &other, &size), XVA_TAR_BAD);
    guint8 zero[XVA_TAR_BLOCK] = {0};
    assert_int_equal(xva_tar_parse_header(zero, &other, &size), XVA_TAR_END);
}

static void test_tar_padding_and_end(void **state)
{
    assert_int_equal(xva_tar_padding(0), 0);
    assert_int_equal(xva_tar_padding(1), 511);
    assert_int_equal(xva_tar_padding(1 << 20), 0);
    g_autoptr(GByteArray) out = g_byte_array_new();
    xva_tar_append_padding(out, 16);
    xva_tar_append_end(out);
    assert_int_equal(out->len, 496 + 1024);
}

static int collect(void *ctx, const guint8 *data, size_t len)
{
    g_byte_array_append(ctx, data, (guint)len);
    return 0;
}

static void round_trip(XvaCompression c, gsize chunk)
{
    g_autoptr(GByteArray) plain = g_byte_array_new();
    for (guint i = 0; i < 3 << 20; i++) {
        guint8 b = (guint8)(i < (1 << 20) ? 0 : g_random_int());
        g_byte_array_append(plain, &b, 1);
    }
    XvaEncoder *e = xva_encoder_new(c);
    g_autoptr(GByteArray) packed = g_byte_array_new();
    xva_encoder_write(e, plain->data, plain->len / 2, false, packed);
    xva_encoder_write(e, plain->data + plain->len / 2, plain->len - plain->len / 2, true, packed);
    xva_encoder_free(e);
    if (c != XVA_PLAIN)
        assert_true(packed->len < plain->len);
    XvaDecoder *d = xva_decoder_new(c);
    g_autoptr(GByteArray) back = g_byte_array_new();
    for (gsize i = 0; i < packed->len; i += chunk) {
        g_autofree char *why = NULL;
        assert_int_equal(xva_decoder_write(d, packed->data + i, MIN(chunk, packed->len - i),
                                           collect, back, &why), 0);
    }
    xva_decoder_free(d);
    assert_int_equal(back->len, plain->len);
    assert_memory_equal(back->data, plain->data, plain->len);
}

static void test_codecs_round_trip(void **state)
{
    for (XvaCompression c = XVA_PLAIN; c <= XVA_ZSTD; c++) {
        round_trip(c, 1 << 20);
        round_trip(c, 4093);
    }
}

static void test_gzip_members_follow_each_other(void **state)
{
    g_autoptr(GByteArray) packed = g_byte_array_new();
    for (int i = 0; i < 2; i++) {
        XvaEncoder *e = xva_encoder_new(XVA_GZIP);
        xva_encoder_write(e, "hello ", 6, true, packed);
        xva_encoder_free(e);
    }
    XvaDecoder *d = xva_decoder_new(XVA_GZIP);
    g_autoptr(GByteArray) back = g_byte_array_new();
    g_autofree char *why = NULL;
    assert_int_equal(xva_decoder_write(d, packed->data, packed->len, collect, back, &why), 0);
    xva_decoder_free(d);
    assert_int_equal(back->len, 12);
    assert_memory_equal(back->data, "hello hello ", 12);
}

static void test_corrupt_streams_are_refused(void **state)
{
    static const guint8 junk[64] = {0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8};
    for (XvaCompression c = XVA_GZIP; c <= XVA_ZSTD; c++) {
        XvaDecoder *d = xva_decoder_new(c);
        g_autoptr(GByteArray) back = g_byte_array_new();
        g_autofree char *why = NULL;
        guint8 data[64];
        memcpy(data, junk, sizeof data);
        if (c == XVA_ZSTD)
            memcpy(data, "\x28\xb5\x2f\xfd\xff\xff\xff\xff", 8);
        assert_int_equal(xva_decoder_write(d, data, sizeof data, collect, back, &why), -1);
        assert_non_null(why);
        xva_decoder_free(d);
    }
}

static void test_compression_names(void **state)
{
    assert_int_equal(xva_compression_parse(NULL), XVA_PLAIN);
    assert_int_equal(xva_compression_parse("false"), XVA_PLAIN);
    assert_int_equal(xva_compression_parse("true"), XVA_GZIP);
    assert_int_equal(xva_compression_parse("gzip"), XVA_GZIP);
    assert_int_equal(xva_compression_parse("zstd"), XVA_ZSTD);
    assert_int_equal(xva_compression_parse("lz4"), XVA_PLAIN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tar_header_round_trip),
        cmocka_unit_test(test_tar_padding_and_end),
        cmocka_unit_test(test_codecs_round_trip),
        cmocka_unit_test(test_gzip_members_follow_each_other),
        cmocka_unit_test(test_corrupt_streams_are_refused),
        cmocka_unit_test(test_compression_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
