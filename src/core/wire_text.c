/* wire_text.c: the wire's character rule (UTF-8, XML 1.0 characters) and
 * the repair of strings that break it. */
#include "wire_text.h"

#include <glib.h>
#include <string.h>

static inline bool is_cont(unsigned char c) { return (c & 0xC0) == 0x80; }

size_t wire_text_char_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return (c >= 0x20 || c == '\t' || c == '\n' || c == '\r') ? 1 : 0;
    if (c >= 0xC2 && c <= 0xDF)
        return n >= 2 && is_cont(s[1]) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || !is_cont(s[1]) || !is_cont(s[2]))
            return 0;
        if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F)) /* overlong, surrogate */
            return 0;
        if (c == 0xEF && s[1] == 0xBF && s[2] >= 0xBE) /* U+FFFE, U+FFFF */
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || !is_cont(s[1]) || !is_cont(s[2]) || !is_cont(s[3]))
            return 0;
        if ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F)) /* overlong, > U+10FFFF */
            return 0;
        return 4;
    }
    return 0;
}

bool wire_text_is_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        if (p[i] >= 0x20 && p[i] < 0x80) { /* the common case */
            i++;
            continue;
        }
        size_t len = wire_text_char_len(p + i, n - i);
        if (!len)
            return false;
        i += len;
    }
    return true;
}

char *wire_text_repair(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    GString *out = g_string_sized_new(n + 1);
    for (size_t i = 0; i < n;) {
        size_t len = wire_text_char_len(p + i, n - i);
        if (len) {
            g_string_append_len(out, s + i, (gssize)len);
            i += len;
        } else {
            g_string_append(out, WIRE_TEXT_REPLACEMENT);
            i++;
        }
    }
    return g_string_free(out, FALSE);
}
