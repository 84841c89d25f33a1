/* dqlite_wire_test.c: our encoding and decoding of dqlite's wire protocol
 * against golden bytes written from the protocol's description
 * (dqlite.io, "wire protocol"): little-endian words, an 8-byte header of
 * (body words, type, revision, unused), NUL-terminated text padded to a
 * word, parameter tuples with a one-byte count and one-byte types, rows
 * with 4-bit types and the DONE/PART markers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <glib.h>
#include <string.h>

#include "dqlite_wire.h"

/* Hex with optional spaces and '|' separators to bytes. */
static GByteArray *hex(const char *text)
{
    GByteArray *out = g_byte_array_new();
    for (const char *p = text; *p;) {
        if (*p == ' ' || *p == '|') {
            p++;
            continue;
        }
        char pair[3] = {p[0], p[1], 0};
        uint8_t b = (uint8_t)strtoul(pair, NULL, 16);
        g_byte_array_append(out, &b, 1);
        p += 2;
    }
    return out;
}

static void assert_bytes(GByteArray *got, const char *golden)
{
    GByteArray *want = hex(golden);
    if (got->len != want->len || memcmp(got->data, want->data, got->len) != 0) {
        GString *s = g_string_new(NULL);
        for (guint i = 0; i < got->len; i++)
            g_string_append_printf(s, "%02x%s", got->data[i], i % 8 == 7 ? " " : "");
        fail_msg("bytes differ:\n got  %s\n want %s", s->str, golden);
    }
    g_byte_array_free(want, TRUE);
    g_byte_array_set_size(got, 0);
}

static void test_requests(void **state)
{
    GByteArray *b = g_byte_array_new();
    dqlite_wire_handshake(b);
    assert_bytes(b, "0100000000000000");
    dqlite_wire_encode_leader(b);
    assert_bytes(b, "01000000 00 00 0000 | 0000000000000000");
    dqlite_wire_encode_client(b, 0x0102);
    assert_bytes(b, "01000000 01 00 0000 | 0201000000000000");
    dqlite_wire_encode_open(b, "xapid");
    assert_bytes(b, "04000000 03 00 0000 | 7861706964000000 | 0000000000000000 |"
                    " 766f6c6174696c65 0000000000000000");
    dqlite_wire_encode_sql(b, DQLITE_WIRE_EXEC_SQL, 0, "BEGIN", NULL, 0);
    assert_bytes(b, "02000000 08 00 0000 | 0000000000000000 | 424547494e000000");
    const char *params[] = {"a", NULL};
    dqlite_wire_encode_sql(b, DQLITE_WIRE_QUERY_SQL, 1, "SELECT ?", params, 2);
    assert_bytes(b, "06000000 09 00 0000 | 0100000000000000 | 53454c454354203f 0000000000000000 |"
                    " 0203050000000000 | 6100000000000000 | 0000000000000000");
    /* Seven parameters fill the first header word; the eighth needs another. */
    const char *eight[] = {"", "", "", "", "", "", "", ""};
    dqlite_wire_encode_sql(b, DQLITE_WIRE_EXEC_SQL, 0, "X", eight, 8);
    assert_bytes(b, "0c000000 08 00 0000 | 0000000000000000 | 5800000000000000 |"
                    " 0803030303030303 0300000000000000 |"
                    " 0000000000000000 0000000000000000 0000000000000000 0000000000000000"
                    " 0000000000000000 0000000000000000 0000000000000000 0000000000000000");
    dqlite_wire_encode_add(b, 2, "127.0.0.2:80");
    assert_bytes(b, "03000000 0c 00 0000 | 0200000000000000 | 3132372e302e302e 323a383000000000");
    dqlite_wire_encode_assign(b, 2, DQLITE_ROLE_STANDBY);
    assert_bytes(b, "02000000 0d 00 0000 | 0200000000000000 | 0100000000000000");
    dqlite_wire_encode_remove(b, 3);
    assert_bytes(b, "01000000 0e 00 0000 | 0300000000000000");
    dqlite_wire_encode_cluster(b);
    assert_bytes(b, "01000000 10 00 0000 | 0100000000000000");
    dqlite_wire_encode_transfer(b, 0x2dc171858c3155be);
    assert_bytes(b, "01000000 11 00 0000 | be55318c8571c12d");
    g_byte_array_free(b, TRUE);
}

typedef struct {
    GString *seen;
} Rows;

static int collect(void *ctx, unsigned n, const char *const *values)
{
    Rows *r = ctx;
    for (unsigned i = 0; i < n; i++)
        g_string_append_printf(r->seen, "%s%s", i ? "," : "", values[i] ? values[i] : "NULL");
    g_string_append(r->seen, ";");
    return 0;
}

static void test_responses(void **state)
{
    GByteArray *b = hex("0a28000000000000 | 6e6f74206c656164 6572000000000000");
    uint64_t code = 0;
    g_autofree char *message = NULL;
    assert_int_equal(dqlite_wire_decode_failure(b->data, b->len, &code, &message), 0);
    assert_int_equal(code, DQLITE_WIRE_NOT_LEADER);
    assert_string_equal(message, "not leader");
    g_byte_array_free(b, TRUE);

    b = hex("0700000000000000 | 3132372e302e302e 333a383000000000");
    uint64_t id = 0;
    g_autofree char *address = NULL;
    assert_int_equal(dqlite_wire_decode_server(b->data, b->len, &id, &address), 0);
    assert_int_equal(id, 7);
    assert_string_equal(address, "127.0.0.3:80");
    g_byte_array_free(b, TRUE);

    b = hex("0200000000000000 | 0500000000000000 | 683a310000000000 | 0000000000000000 |"
            " 0600000000000000 | 683a320000000000 | 0100000000000000");
    GPtrArray *servers = dqlite_wire_decode_servers(b->data, b->len);
    assert_non_null(servers);
    assert_int_equal(servers->len, 2);
    DqliteServerInfo *second = servers->pdata[1];
    assert_int_equal(second->id, 6);
    assert_string_equal(second->address, "h:2");
    assert_int_equal(second->role, DQLITE_ROLE_STANDBY);
    g_ptr_array_free(servers, TRUE);
    /* A count larger than the body is refused, not read past the end. */
    b->data[0] = 0x40;
    assert_null(dqlite_wire_decode_servers(b->data, b->len));
    g_byte_array_free(b, TRUE);

    b = hex("0400000000000000 | 0300000000000000");
    uint64_t last = 0, affected = 0;
    assert_int_equal(dqlite_wire_decode_result(b->data, b->len, &last, &affected), 0);
    assert_int_equal(last, 4);
    assert_int_equal(affected, 3);
    g_byte_array_free(b, TRUE);

    /* Two columns; a (TEXT, NULL) row, an (INTEGER, TEXT) row, DONE. */
    b = hex("0200000000000000 | 6100000000000000 | 6200000000000000 |"
            " 5300000000000000 | 7800000000000000 | 0000000000000000 |"
            " 3100000000000000 | 2a00000000000000 | 797a000000000000 |"
            " ffffffffffffffff");
    Rows r = {g_string_new(NULL)};
    bool more = true;
    assert_int_equal(dqlite_wire_decode_rows(b->data, b->len, collect, &r, &more), 0);
    assert_false(more);
    assert_string_equal(r.seen->str, "x,NULL;42,yz;");
    /* The PART marker says another ROWS message follows. */
    memset(b->data + b->len - 8, 0xee, 8);
    g_string_truncate(r.seen, 0);
    assert_int_equal(dqlite_wire_decode_rows(b->data, b->len, collect, &r, &more), 0);
    assert_true(more);
    /* A body cut inside a row is malformed. */
    assert_int_equal(dqlite_wire_decode_rows(b->data, b->len - 16, collect, &r, &more), -1);
    g_string_free(r.seen, TRUE);
    g_byte_array_free(b, TRUE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests),
        cmocka_unit_test(test_responses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
