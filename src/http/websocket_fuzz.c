/* websocket_fuzz.c: libFuzzer target for the WebSocket frame parser. The
 * input, as a client's byte stream, is parsed whole and again in pieces
 * whose sizes the first byte picks: both must give the same data and the
 * same events, and every call must consume between 1 and all of its
 * bytes. */
#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "websocket.h"

static void run(const uint8_t *data, size_t size, size_t step, GByteArray *out)
{
    g_autofree uint8_t *copy = g_memdup2(data, size);
    WsParser p;
    ws_parser_init(&p);
    size_t at = 0;
    while (at < size) {
        size_t piece = MIN(step, size - at);
        uint8_t *buf = copy + at;
        size_t left = piece;
        while (left) {
            WsEvent ev;
            size_t n = ws_parse(&p, buf, left, &ev);
            if (n == 0 || n > left)
                abort();
            if (ev.kind == WS_EVENT_DATA && (ev.data < buf || ev.data + ev.len > buf + n))
                abort();
            uint8_t tag[3] = {(uint8_t)ev.kind, (uint8_t)(ev.code >> 8), (uint8_t)ev.code};
            if (ev.kind != WS_EVENT_NONE && ev.kind != WS_EVENT_DATA) {
                g_byte_array_append(out, tag, sizeof tag);
                g_byte_array_append(out, ev.data ? ev.data : tag, (guint)ev.len);
            } else if (ev.kind == WS_EVENT_DATA) {
                g_byte_array_append(out, ev.data, (guint)ev.len);
            }
            buf += n;
            left -= n;
        }
        at += piece;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] % 17 + 1;
    g_autoptr(GByteArray) whole = g_byte_array_new();
    g_autoptr(GByteArray) pieces = g_byte_array_new();
    run(data + 1, size - 1, size, whole);
    run(data + 1, size - 1, step, pieces);
    /* Data events split differently; the bytes and the events between
     * them must not. */
    if (whole->len != pieces->len || memcmp(whole->data, pieces->data, whole->len) != 0)
        abort();
    return 0;
}
