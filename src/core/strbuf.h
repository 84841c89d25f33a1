/* Inline appends to a GString for the reply writers.
 *
 * GLib before 2.76 makes every g_string_append* a function call that goes
 * through g_string_insert_len; writing a 60 MB get_all_records reply makes
 * millions of small appends, so these copy straight into spare capacity
 * and fall back to GLib only when the string must grow. */
#pragma once

#include <glib.h>
#include <stdint.h>
#include <string.h>

static inline void sb_append_len(GString *out, const char *p, size_t n)
{
    if (G_LIKELY(out->len + n < out->allocated_len)) {
        memcpy(out->str + out->len, p, n);
        out->len += n;
        out->str[out->len] = '\0';
    } else {
        g_string_append_len(out, p, (gssize)n);
    }
}

static inline void sb_append(GString *out, const char *s)
{
    sb_append_len(out, s, strlen(s));
}

static inline void sb_append_c(GString *out, char c)
{
    if (G_LIKELY(out->len + 1 < out->allocated_len)) {
        out->str[out->len++] = c;
        out->str[out->len] = '\0';
    } else {
        g_string_append_c(out, c);
    }
}

static inline void sb_append_int(GString *out, int64_t n)
{
    char buf[24];
    char *p = buf + sizeof buf;
    uint64_t u = n < 0 ? (uint64_t)0 - (uint64_t)n : (uint64_t)n;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (n < 0)
        *--p = '-';
    sb_append_len(out, p, (size_t)(buf + sizeof buf - p));
}
