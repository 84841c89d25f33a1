/* migrate_link_fuzz.c: libFuzzer target for the migration link's frame
 * parser. The input, as the peer's byte stream, is parsed whole and again
 * in pieces whose sizes the first byte picks: both must give the same
 * events and payload bytes, every call must consume between 1 and all of
 * its bytes, and data must lie inside what it was given. */
#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "migrate_link.h"

static void run(const uint8_t *data, size_t size, size_t step, GByteArray *out)
{
    g_autofree uint8_t *copy = g_memdup2(data, size);
    MigrateFrameParser p = {0};
    for (size_t at = 0; at < size;) {
        size_t piece = MIN(step, size - at);
        const uint8_t *buf = copy + at;
        size_t left = piece;
        while (left) {
            MigrateFrameEvent ev;
            size_t n = migrate_frame_parse(&p, buf, left, &ev);
            if (n == 0 || n > left)
                abort();
            if (ev.len && (ev.data < buf || ev.data + ev.len > buf + n))
                abort();
            if (ev.kind != MIGRATE_EVENT_NONE) {
                uint8_t tag[2] = {(uint8_t)ev.kind, ev.last};
                /* Pieces of one payload are one run of bytes, whoever cut them. */
                if (ev.kind != MIGRATE_EVENT_DATA && ev.kind != MIGRATE_EVENT_CONTROL)
                    g_byte_array_append(out, tag, 2);
                if (ev.len)
                    g_byte_array_append(out, ev.data, (guint)ev.len);
                if (ev.kind == MIGRATE_EVENT_CONTROL && ev.last)
                    g_byte_array_append(out, tag, 2);
            }
            if (ev.kind == MIGRATE_EVENT_ERROR)
                return;
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
    size_t step = 1 + data[0] % 7;
    g_autoptr(GByteArray) whole = g_byte_array_new();
    g_autoptr(GByteArray) pieces = g_byte_array_new();
    run(data + 1, size - 1, size, whole);
    run(data + 1, size - 1, step, pieces);
    if (whole->len != pieces->len || memcmp(whole->data, pieces->data, whole->len) != 0)
        abort();
    return 0;
}
