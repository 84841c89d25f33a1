/* websocket_test.c: the accept key (RFC 6455's own example), header
 * tokens, the frame parser on whole and split input, fragmentation,
 * control frames between fragments, the rules a client's frame breaks,
 * and the server's frame headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <glib.h>
#include <string.h>

#include "websocket.h"

static void test_accept_key(void **state)
{
    g_autofree char *accept = ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==");
    assert_string_equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_true(ws_key_valid("dGhlIHNhbXBsZSBub25jZQ=="));
    assert_false(ws_key_valid(""));
    assert_false(ws_key_valid("dGhlIHNhbXBsZSBub25jZQ"));      /* no padding */
    assert_false(ws_key_valid("dGhlIHNhbXBsZSBub25j*Q=="));    /* not base64 */
    assert_false(ws_key_valid("dGhlIHNhbXBsZSBub25jZSE="));    /* 17 bytes */
}

static void test_tokens(void **state)
{
    assert_true(ws_header_has_token("keep-alive, Upgrade", "upgrade", true));
    assert_false(ws_header_has_token("keep-alive, Upgrade", "upgrade", false));
    assert_true(ws_header_has_token("base64,binary", "binary", false));
    assert_true(ws_header_has_token(" binary ", "binary", false));
    assert_false(ws_header_has_token("binaryx, xbinary", "binary", false));
    assert_false(ws_header_has_token("", "binary", false));
    assert_false(ws_header_has_token(NULL, "binary", false));
}

/* A client frame: masked with key, payload copied. */
static GByteArray *frame(GByteArray *out, uint8_t first, const void *payload, size_t len,
                         const uint8_t key[4])
{
    uint8_t h[14];
    size_t n = ws_frame_header(h, (WsOpcode)(first & 0x0f), len);
    h[0] = first;
    h[1] |= 0x80;
    memcpy(h + n, key, 4);
    g_byte_array_append(out, h, (guint)n + 4);
    for (size_t i = 0; i < len; i++) {
        uint8_t b = ((const uint8_t *)payload)[i] ^ key[i & 3];
        g_byte_array_append(out, &b, 1);
    }
    return out;
}

static const uint8_t KEY[4] = {0x37, 0xfa, 0x21, 0x3d};

typedef struct {
    GByteArray *data;
    GPtrArray *events; /* "ping:<payload>", "close:<code>", "error:<code>", "pong:" */
} Seen;

/* Feeds input in pieces of step bytes (0: all at once). */
static void feed(const GByteArray *input, size_t step, Seen *seen)
{
    WsParser p;
    ws_parser_init(&p);
    g_autoptr(GByteArray) copy = g_byte_array_new();
    g_byte_array_append(copy, input->data, input->len);
    seen->data = g_byte_array_new();
    seen->events = g_ptr_array_new_with_free_func(g_free);
    size_t at = 0;
    while (at < copy->len) {
        size_t piece = step ? MIN(step, copy->len - at) : copy->len - at;
        uint8_t *buf = copy->data + at;
        size_t left = piece;
        while (left) {
            WsEvent ev;
            size_t n = ws_parse(&p, buf, left, &ev);
            assert_true(n > 0 && n <= left);
            buf += n;
            left -= n;
            switch (ev.kind) {
            case WS_EVENT_DATA:
                g_byte_array_append(seen->data, ev.data, (guint)ev.len);
                break;
            case WS_EVENT_PING:
            case WS_EVENT_PONG:
                g_ptr_array_add(seen->events,
                                g_strdup_printf("%s:%.*s", ev.kind == WS_EVENT_PING ? "ping" : "pong",
                                                (int)ev.len, ev.data));
                break;
            case WS_EVENT_CLOSE:
                g_ptr_array_add(seen->events, g_strdup_printf("close:%u", ev.code));
                break;
            case WS_EVENT_ERROR:
                g_ptr_array_add(seen->events, g_strdup_printf("error:%u", ev.code));
                break;
            case WS_EVENT_NONE:
                break;
            }
        }
        at += piece;
    }
}

static void seen_clear(Seen *s)
{
    g_byte_array_unref(s->data);
    g_ptr_array_unref(s->events);
}

static void assert_events(const Seen *s, const char *joined)
{
    g_autoptr(GString) all = g_string_new(NULL);
    for (guint i = 0; i < s->events->len; i++)
        g_string_append_printf(all, "%s%s", i ? " " : "", (char *)s->events->pdata[i]);
    assert_string_equal(all->str, joined);
}

static void test_rfc_example(void **state)
{
    /* RFC 6455 5.7: a masked text "Hello" is 81 85 37 fa 21 3d 7f 9f 4d 51 58;
     * as binary (0x82), the same bytes but the first. */
    const uint8_t wire[] = {0x82, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    g_autoptr(GByteArray) in = g_byte_array_new();
    g_byte_array_append(in, wire, sizeof wire);
    for (size_t step = 0; step <= sizeof wire; step++) {
        Seen s;
        feed(in, step, &s);
        assert_int_equal(s.data->len, 5);
        assert_memory_equal(s.data->data, "Hello", 5);
        assert_events(&s, "");
        seen_clear(&s);
    }
}

static void test_fragments_and_control(void **state)
{
    g_autoptr(GByteArray) in = g_byte_array_new();
    frame(in, WS_OP_BINARY, "RFB 003", 7, KEY);             /* not final */
    frame(in, 0x80 | WS_OP_PING, "hi", 2, KEY);               /* between fragments */
    frame(in, WS_OP_CONTINUATION, "", 0, KEY);                /* empty fragment */
    frame(in, 0x80 | WS_OP_CONTINUATION, ".008\n", 5, KEY);
    frame(in, 0x80 | WS_OP_PONG, "", 0, KEY);
    frame(in, 0x80 | WS_OP_BINARY, "\x01", 1, KEY);
    frame(in, 0x80 | WS_OP_CLOSE, "\x03\xe8" "bye", 5, KEY);
    frame(in, 0x80 | WS_OP_BINARY, "ignored", 7, KEY);        /* after the close */
    for (size_t step = 0; step <= 9; step++) {
        Seen s;
        feed(in, step, &s);
        assert_int_equal(s.data->len, 13);
        assert_memory_equal(s.data->data, "RFB 003.008\n\x01", 13);
        assert_events(&s, "ping:hi pong: close:1000");
        seen_clear(&s);
    }
}

static void test_lengths(void **state)
{
    size_t sizes[] = {125, 126, 65535, 65536, 200000};
    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        g_autofree uint8_t *payload = g_malloc(sizes[i]);
        for (size_t j = 0; j < sizes[i]; j++)
            payload[j] = (uint8_t)(j * 7);
        g_autoptr(GByteArray) in = g_byte_array_new();
        frame(in, 0x80 | WS_OP_BINARY, payload, sizes[i], KEY);
        size_t steps[] = {0, 1000, 3};
        for (size_t k = 0; k < G_N_ELEMENTS(steps); k++) {
            Seen s;
            feed(in, steps[k], &s);
            assert_int_equal(s.data->len, sizes[i]);
            assert_memory_equal(s.data->data, payload, sizes[i]);
            seen_clear(&s);
        }
    }
}

static void expect_error(GByteArray *in, const char *events)
{
    Seen s;
    feed(in, 0, &s);
    assert_events(&s, events);
    seen_clear(&s);
    g_byte_array_unref(in);
}

static void test_protocol_errors(void **state)
{
    uint8_t unmasked[] = {0x82, 0x01, 'x'};
    GByteArray *in = g_byte_array_new();
    g_byte_array_append(in, unmasked, sizeof unmasked);
    expect_error(in, "error:1002");
    expect_error(frame(g_byte_array_new(), 0xC2, "x", 1, KEY), "error:1002");      /* RSV1 */
    expect_error(frame(g_byte_array_new(), 0x83, "x", 1, KEY), "error:1002");      /* opcode 3 */
    expect_error(frame(g_byte_array_new(), 0x80, "x", 1, KEY), "error:1002");      /* lone continuation */
    expect_error(frame(g_byte_array_new(), 0x09, "x", 1, KEY), "error:1002");      /* fragmented ping */
    expect_error(frame(g_byte_array_new(), 0x81, "x", 1, KEY), "error:1003");      /* text */
    char big[126] = {0};
    expect_error(frame(g_byte_array_new(), 0x89, big, sizeof big, KEY), "error:1002");
    GByteArray *twice = frame(g_byte_array_new(), 0x02, "a", 1, KEY);
    expect_error(frame(twice, 0x82, "b", 1, KEY), "error:1002"); /* new message inside one */
    expect_error(frame(g_byte_array_new(), 0x88, "\x03", 1, KEY), "error:1002");   /* 1-byte close */
    expect_error(frame(g_byte_array_new(), 0x88, "\x03\xed", 2, KEY), "error:1002"); /* 1005 */
    expect_error(frame(g_byte_array_new(), 0x88, "\x03\xe8\xff", 3, KEY), "error:1007");
    expect_error(frame(g_byte_array_new(), 0x88, "", 0, KEY), "close:1005");
    uint8_t huge[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    in = g_byte_array_new();
    g_byte_array_append(in, huge, sizeof huge);
    expect_error(in, "error:1002");
}

static void test_server_frames(void **state)
{
    uint8_t h[WS_HEADER_MAX];
    assert_int_equal(ws_frame_header(h, WS_OP_BINARY, 5), 2);
    assert_memory_equal(h, "\x82\x05", 2);
    assert_int_equal(ws_frame_header(h, WS_OP_BINARY, 126), 4);
    assert_memory_equal(h, "\x82\x7e\x00\x7e", 4);
    assert_int_equal(ws_frame_header(h, WS_OP_PONG, 65535), 4);
    assert_memory_equal(h, "\x8a\x7e\xff\xff", 4);
    assert_int_equal(ws_frame_header(h, WS_OP_BINARY, 65536), 10);
    assert_memory_equal(h, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
    uint8_t c[WS_CLOSE_FRAME_SIZE];
    assert_int_equal(ws_close_frame(c, WS_CLOSE_GOING_AWAY), 4);
    assert_memory_equal(c, "\x88\x02\x03\xe9", 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_key),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_rfc_example),
        cmocka_unit_test(test_fragments_and_control),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_protocol_errors),
        cmocka_unit_test(test_server_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
