/* wire_text_test.c: the wire's character rule against GLib's UTF-8
 * decoder and XML 1.0's Char production, and the repair. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <glib.h>
#include <string.h>

#include "wire_text.h"

/* XML 1.0's Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF] */
static bool xml_char(gunichar c)
{
    return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) ||
           (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

/* The independent judge: GLib's validation, then each character. */
static bool judge(const char *s, size_t n)
{
    if (!g_utf8_validate_len(s, n, NULL))
        return false;
    for (const char *p = s; p < s + n; p = g_utf8_next_char(p))
        if (!xml_char(g_utf8_get_char(p)))
            return false;
    return true;
}

/* Every string of one to three bytes (no NUL: C strings), and the four-byte
 * ones around the edges of the planes. */
static void test_agrees_with_glib_and_xml(void **state)
{
    char buf[5] = {0};
    for (unsigned a = 1; a < 256; a++) {
        buf[0] = (char)a;
        buf[1] = 0;
        assert_int_equal(wire_text_is_valid(buf), judge(buf, 1));
        for (unsigned b = 1; b < 256; b++) {
            buf[1] = (char)b;
            buf[2] = 0;
            assert_int_equal(wire_text_is_valid(buf), judge(buf, 2));
            for (unsigned c = 1; c < 256; c++) {
                buf[2] = (char)c;
                buf[3] = 0;
                if (wire_text_is_valid(buf) != judge(buf, 3))
                    fail_msg("disagree on %02x %02x %02x", a, b, c);
            }
        }
    }
    for (unsigned a = 0xF0; a <= 0xF7; a++)
        for (unsigned b = 0x80; b < 0xC0; b++)
            for (unsigned d = 0x7F; d <= 0xC0; d++) {
                char s[5] = {(char)a, (char)b, (char)0xBF, (char)d, 0};
                if (wire_text_is_valid(s) != judge(s, 4))
                    fail_msg("disagree on %02x %02x bf %02x", a, b, d);
            }
}

static void test_repair_replaces_each_bad_byte(void **state)
{
    for (unsigned c = 1; c < 0x20; c++) {
        char s[4] = {'a', (char)c, 'b', 0};
        g_autofree char *r = wire_text_repair(s);
        if (c == '\t' || c == '\n' || c == '\r')
            assert_string_equal(r, s);
        else
            assert_string_equal(r, "a" WIRE_TEXT_REPLACEMENT "b");
        assert_true(wire_text_is_valid(r));
    }
    g_autofree char *r1 = wire_text_repair("x\xff\xc3(\xe2\x82\xef\xbf\xbf\xc3\xa9");
    assert_string_equal(r1, "x" WIRE_TEXT_REPLACEMENT WIRE_TEXT_REPLACEMENT "("
                            WIRE_TEXT_REPLACEMENT WIRE_TEXT_REPLACEMENT WIRE_TEXT_REPLACEMENT
                            WIRE_TEXT_REPLACEMENT WIRE_TEXT_REPLACEMENT "\xc3\xa9");
    g_autofree char *r2 = wire_text_repair("\xf0\x9f\x98\x80 ok");
    assert_string_equal(r2, "\xf0\x9f\x98\x80 ok");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agrees_with_glib_and_xml),
        cmocka_unit_test(test_repair_replaces_each_bad_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
