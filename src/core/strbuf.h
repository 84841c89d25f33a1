/* Inline appends to a GString for the reply writers.
 *
 * GLib before 2.76 makes every g_string_append* a function call that goes
 * through g_string_insert_len; writing a 60 MB get_all_records reply makes
 * millions of small appends, so these copy straight into spare capacity
 * and fall back to GLib only when the string must grow. */
#pragma once

#include <glib.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* memcpy for the short runs replies are made of (tags, names, numbers):
 * two overlapping loads and stores instead of a library call. */
static inline void sb_copy(char *dst, const char *src, size_t n)
{
    if (n >= 16 && n <= 32) {
        char a[16], b[16];
        memcpy(a, src, 16);
        memcpy(b, src + n - 16, 16);
        memcpy(dst, a, 16);
        memcpy(dst + n - 16, b, 16);
    } else if (n >= 8 && n < 16) {
        uint64_t a, b;
        memcpy(&a, src, 8);
        memcpy(&b, src + n - 8, 8);
        memcpy(dst, &a, 8);
        memcpy(dst + n - 8, &b, 8);
    } else if (n >= 4 && n < 8) {
        uint32_t a, b;
        memcpy(&a, src, 4);
        memcpy(&b, src + n - 4, 4);
        memcpy(dst, &a, 4);
        memcpy(dst + n - 4, &b, 4);
    } else if (n > 0 && n < 4) {
        dst[0] = src[0];
        dst[n / 2] = src[n / 2];
        dst[n - 1] = src[n - 1];
    } else if (n > 32) {
        memcpy(dst, src, n);
    }
}

static inline void sb_append_len(GString *out, const char *p, size_t n)
{
    if (G_LIKELY(out->len + n < out->allocated_len)) {
        sb_copy(out->str + out->len, p, n);
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

static inline void sb_append_int(GString *out, int64_t n);

/* Appends a whole double below 10^15 in magnitude as plain digits (what
 * %.15g and %.16g write for it) and returns true; false, appending
 * nothing, for any other value (fractions, -0, huge, NaN, infinities). */
static inline bool sb_append_whole(GString *out, double f)
{
    if (!(fabs(f) < 1e15) || f != (double)(int64_t)f || (f == 0 && signbit(f)))
        return false;
    sb_append_int(out, (int64_t)f);
    return true;
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
