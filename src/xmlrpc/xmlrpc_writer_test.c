/* xmlrpc_writer_test.c: whatever a stored string holds, a reply is a
 * document libxml2's strict parser (no recovery) accepts, and reads back
 * as the string repaired by wire_text's rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <libxml/parser.h>
#include <string.h>

#include "wire_text.h"
#include "xmlrpc.h"

/* text as a struct's key and value, a string, and an array element,
 * written, parsed strictly, and read back. */
static void check_text(const char *text)
{
    g_autoptr(Xv) v = xv_new_struct();
    xv_struct_set_string(v, text, text);
    Xv *list = xv_new_array();
    xv_array_append_string(list, text);
    xv_struct_set(v, "list", list);
    size_t len;
    g_autofree char *out = xmlrpc_format_response(v, &len);
    xmlDoc *doc = xmlReadMemory(out, (int)len, "reply.xml", "UTF-8",
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc)
        fail_msg("libxml2 rejects the reply to %s", out);
    xmlFreeDoc(doc);
    g_autoptr(Xv) back = NULL;
    g_autofree char *why = NULL;
    assert_int_equal(xmlrpc_parse_response(out, len, &back, &why), 0);
    g_autofree char *repaired = wire_text_repair(text);
    const Xv *member = xv_struct_get(back, repaired);
    assert_non_null(member);
    assert_string_equal(xv_str(member), repaired);
    assert_string_equal(xv_str(xv_at(xv_struct_get(back, "list"), 0)), repaired);
}

/* Every C0 byte at every position of a word and of the tail after it. */
static void test_every_control_byte(void **state)
{
    for (unsigned c = 1; c < 0x20; c++)
        for (size_t len = 1; len <= 11; len++)
            for (size_t at = 0; at < len; at++) {
                g_autofree char *text = g_strnfill(len, 'a');
                text[at] = (char)c;
                check_text(text);
            }
}

static void test_invalid_sequences(void **state)
{
    static const char *const bad[] = {
        "\x80",                     /* lone continuation */
        "abc\xff",                  /* never in UTF-8 */
        "\xc0\xaf",                 /* overlong '/' */
        "\xe0\x80\xaf",             /* overlong, 3 bytes */
        "\xed\xa0\x80",             /* surrogate U+D800 */
        "\xe2\x82",                 /* truncated at the end */
        "\xe2\x82x",                /* truncated in the middle */
        "\xf4\x90\x80\x80",         /* above U+10FFFF */
        "\xf8\x88\x80\x80\x80",     /* 5-byte form */
        "\xef\xbf\xbe\xef\xbf\xbf", /* U+FFFE, U+FFFF: UTF-8 but not XML */
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", /* valid, kept as is */
        "a\x01<&>\r\n\t\xc3",       /* everything together */
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        check_text(bad[i]);
        g_autofree char *padded = g_strconcat("0123456789", bad[i], "0123456789", NULL);
        check_text(padded);
    }
}

/* Valid text is written byte for byte (the U+FFFD rule changes nothing
 * else). */
static void test_valid_text_unchanged(void **state)
{
    const char *text = "na\xc3\xafve \xe2\x82\xac 20 \xf0\x9f\x98\x80 tab\there";
    g_autoptr(Xv) v = xv_new_string(text);
    size_t len;
    g_autofree char *out = xmlrpc_format_response(v, &len);
    assert_non_null(strstr(out, text));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_control_byte),
        cmocka_unit_test(test_invalid_sequences),
        cmocka_unit_test(test_valid_text_unchanged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
