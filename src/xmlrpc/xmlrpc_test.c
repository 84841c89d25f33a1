/* xmlrpc_test.c: the XML-RPC codec against golden files: every request in
 * golden/NAME.request.xml parses to golden/NAME.parsed.txt; replies for every
 * value kind are byte-identical to golden/NAME.response.xml. Set
 * XAPID_UPDATE_GOLDEN=1 to rewrite the expected files (then review them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdint.h>
#include <string.h>

#include "xmlrpc.h"

static char *golden_path(const char *name)
{
    const char *root = g_getenv("SOURCE_ROOT");
    return g_build_filename(root ? root : ".", "src", "xmlrpc", "golden", name, NULL);
}

static void check_golden(const char *name, const char *actual)
{
    g_autofree char *path = golden_path(name);
    if (g_getenv("XAPID_UPDATE_GOLDEN")) {
        g_file_set_contents(path, actual, -1, NULL);
        return;
    }
    g_autofree char *expected = NULL;
    if (!g_file_get_contents(path, &expected, NULL, NULL))
        fail_msg("missing golden file %s", path);
    assert_string_equal(actual, expected);
}

static void test_requests_parse_to_goldens(void **state)
{
    g_autofree char *dir_path = golden_path("");
    g_autoptr(GDir) dir = g_dir_open(dir_path, 0, NULL);
    assert_non_null(dir);
    unsigned checked = 0;
    for (const char *f; (f = g_dir_read_name(dir));) {
        if (!g_str_has_suffix(f, ".request.xml"))
            continue;
        g_autofree char *path = golden_path(f);
        g_autofree char *body = NULL;
        gsize len;
        assert_true(g_file_get_contents(path, &body, &len, NULL));
        g_autofree char *method = NULL, *why = NULL;
        g_autoptr(Xv) params = NULL;
        int rc = xmlrpc_parse_call(body, len, &method, &params, &why);
        g_autofree char *rendered = rc == 0 ? xv_to_debug_string(params) : NULL;
        g_autofree char *actual = rc == 0 ? g_strdup_printf("%s %s\n", method, rendered)
                                          : g_strdup_printf("error: %s\n", why);
        g_autofree char *stem = g_strndup(f, strlen(f) - strlen(".request.xml"));
        g_autofree char *expected_name = g_strconcat(stem, ".parsed.txt", NULL);
        check_golden(expected_name, actual);
        checked++;
    }
    assert_true(checked >= 6);
}

static Xv *rich_value(void)
{
    Xv *st = xv_new_struct();
    xv_struct_set_string(st, "text", "a & b < c > d\r\ne \xc3\xa9");
    xv_struct_set_string(st, "empty", "");
    xv_struct_set(st, "int_min", xv_new_int(INT64_MIN));
    xv_struct_set(st, "int_max", xv_new_int(INT64_MAX));
    xv_struct_set(st, "float", xv_new_float(0.1));
    xv_struct_set(st, "true", xv_new_bool(true));
    xv_struct_set(st, "false", xv_new_bool(false));
    xv_struct_set(st, "epoch", xv_new_datetime(0));
    xv_struct_set(st, "nil", xv_new_nil());
    xv_struct_set(st, "empty_array", xv_new_array());
    xv_struct_set(st, "empty_struct", xv_new_struct());
    Xv *arr = xv_new_array();
    xv_array_append_string(arr, "OpaqueRef:NULL");
    Xv *inner = xv_new_struct();
    xv_struct_set_string(inner, "k<", "v");
    xv_array_append(arr, inner);
    xv_struct_set(st, "nested", arr);
    return st;
}

static void test_reply_is_compact_and_exact(void **state)
{
    g_autoptr(Xv) v = rich_value();
    size_t len;
    g_autofree char *out = xmlrpc_format_response(v, &len);
    assert_int_equal(strlen(out), len);
    g_autofree char *with_newline = g_strconcat(out, "\n", NULL);
    check_golden("rich.response.xml", with_newline);
    assert_null(strstr(out, "> <"));
    assert_null(strstr(out, "<nil"));
    assert_null(strstr(out, "<i8>"));
    assert_null(strstr(out, "<string>"));
}

/* The escaper skips plain text a word at a time: a special character at
 * any position of a word, or in the tail after the last whole word, is
 * still escaped, and nothing else changes. */
static void test_escaping_at_every_position(void **state)
{
    static const struct { char c; const char *entity; } specials[] = {
        {'&', "&amp;"}, {'<', "&lt;"}, {'>', "&gt;"}, {'\r', "&#13;"}};
    for (size_t k = 0; k < G_N_ELEMENTS(specials); k++) {
        for (size_t len = 1; len <= 19; len++) {
            for (size_t at = 0; at < len; at++) {
                g_autofree char *text = g_strnfill(len, 'a');
                text[at] = specials[k].c;
                g_autoptr(Xv) v = xv_new_string(text);
                size_t n;
                g_autofree char *out = xmlrpc_format_response(v, &n);
                g_autofree char *expected = g_strdup_printf(
                    "<methodResponse><params><param><value>%.*s%s%s</value></param></params>"
                    "</methodResponse>",
                    (int)at, text, specials[k].entity, text + at + 1);
                assert_string_equal(out, expected);
            }
        }
    }
}

static void test_round_trip_turns_ints_into_strings(void **state)
{
    g_autoptr(Xv) v = rich_value();
    size_t len;
    g_autofree char *out = xmlrpc_format_response(v, &len);
    g_autoptr(Xv) back = NULL;
    g_autofree char *why = NULL;
    assert_int_equal(xmlrpc_parse_response(out, len, &back, &why), 0);
    /* ints travel as untyped strings, nil as "" */
    assert_string_equal(xv_str(xv_struct_get(back, "int_max")), "9223372036854775807");
    assert_string_equal(xv_str(xv_struct_get(back, "nil")), "");
    assert_string_equal(xv_str(xv_struct_get(back, "text")), "a & b < c > d\r\ne \xc3\xa9");
    assert_true(xv_equal(xv_struct_get(back, "nested"), xv_struct_get(v, "nested")));
    assert_int_equal(xv_struct_get(back, "epoch")->kind, XV_DATETIME);
}

static void test_rejections(void **state)
{
    const char *bad[] = {
        "",
        "<methodCall>",
        "<methodCall><methodName>x</methodName></methodCall>trailing<x/>",
        "<notACall/>",
        "<methodCall><params/></methodCall>",
        "<methodCall><methodName>x</methodName><params><param><value><int>12a</int></value></param></params></methodCall>",
        "<methodCall><methodName>x</methodName><params><param><value><blob>1</blob></value></param></params></methodCall>",
        "<methodCall><methodName>x</methodName><params><param><value><struct><member><name>a</name></member></struct></value></param></params></methodCall>",
        "<methodCall><methodName>x</methodName><params><param><value>\xff\xfe</value></param></params></methodCall>",
        "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><methodCall><methodName>&e;</methodName></methodCall>",
        "<methodCall><methodName>x</methodName><params><param><value><int>99999999999999999999</int></value></param></params></methodCall>",
    };
    for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *method = NULL, *why = NULL;
        g_autoptr(Xv) params = NULL;
        assert_int_equal(xmlrpc_parse_call(bad[i], strlen(bad[i]), &method, &params, &why), -1);
        assert_non_null(why);
        assert_true(strlen(why) > 0);
        assert_null(method);
        assert_null(params);
    }
    GString *deep = g_string_new("<methodCall><methodName>x</methodName><params><param>");
    for (int i = 0; i < 100; i++)
        g_string_append(deep, "<value><array><data>");
    for (int i = 0; i < 100; i++)
        g_string_append(deep, "</data></array></value>");
    g_string_append(deep, "</param></params></methodCall>");
    g_autofree char *method = NULL, *why = NULL;
    g_autoptr(Xv) params = NULL;
    assert_int_equal(xmlrpc_parse_call(deep->str, deep->len, &method, &params, &why), -1);
    g_string_free(deep, TRUE);
}

static int parse_with_values(int n, char **why)
{
    GString *body = g_string_new("<methodCall><methodName>x</methodName><params>");
    for (int i = 0; i < n; i++)
        g_string_append(body, "<param><value/></param>");
    g_string_append(body, "</params></methodCall>");
    g_autofree char *method = NULL;
    g_autoptr(Xv) params = NULL;
    int rc = xmlrpc_parse_call(body->str, body->len, &method, &params, why);
    g_string_free(body, TRUE);
    return rc;
}

/* The document's tree is capped at 20,000 elements (3 here, 2 per param),
 * and a DOCTYPE stops the parser before its entities are declared. */
/* Bodies are UTF-8 whatever their declaration says (as XAPI reads them):
 * "\xc3\xa9" is one character, not two Latin-1 ones. */
static void test_encoding_declaration_is_ignored(void **state)
{
    const char *body = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><methodCall>"
                       "<methodName>x</methodName><params><param><value>\xc3\xa9</value></param>"
                       "</params></methodCall>";
    g_autofree char *method = NULL, *why = NULL;
    g_autoptr(Xv) params = NULL;
    assert_int_equal(xmlrpc_parse_call(body, strlen(body), &method, &params, &why), 0);
    assert_string_equal(xv_at(params, 0)->s, "\xc3\xa9");
}

static void test_element_and_doctype_limits(void **state)
{
    g_autofree char *why = NULL;
    assert_int_equal(parse_with_values((20000 - 3) / 2, &why), 0);
    assert_int_equal(parse_with_values((20000 - 3) / 2 + 1, &why), -1);
    assert_non_null(strstr(why, "elements"));
    g_clear_pointer(&why, g_free);
    const char *laughs = "<?xml version=\"1.0\"?><!DOCTYPE m [<!ENTITY a \"aaaa\">"
                         "<!ENTITY b \"&a;&a;&a;&a;\">]><methodCall><methodName>&b;"
                         "</methodName></methodCall>";
    g_autofree char *method = NULL;
    g_autoptr(Xv) params = NULL;
    assert_int_equal(xmlrpc_parse_call(laughs, strlen(laughs), &method, &params, &why), -1);
    assert_non_null(strstr(why, "DOCTYPE"));
}

/* Doubles are written as %.16g writes them, whole numbers included. */
static void test_doubles_as_printf_writes_them(void **state)
{
    static const double values[] = {0.0,  -0.0, 1.0,    -3.0, 2.5,  1e15 - 1, 1e15,
                                    1e16, 1e300, 0.1, -123456789012345.0, 4294967296.0};
    for (size_t i = 0; i < G_N_ELEMENTS(values); i++) {
        g_autoptr(Xv) v = xv_new_float(values[i]);
        size_t len;
        g_autofree char *out = xmlrpc_format_response(v, &len);
        char text[G_ASCII_DTOSTR_BUF_SIZE];
        g_ascii_formatd(text, sizeof text, "%.16g", values[i]);
        g_autofree char *expected = g_strdup_printf(
            "<methodResponse><params><param><value><double>%s</double></value></param>"
            "</params></methodResponse>", text);
        assert_string_equal(out, expected);
    }
}

/* Members whose keys are the datamodel's static names (written from a
 * prepared "<member><name>..." string) read the same as copied keys. */
static void test_static_keys_write_like_copied_keys(void **state)
{
    static const char *const keys[] = {"uuid", "name_label", "odd<&>key"};
    g_autoptr(Xv) copied = xv_new_struct();
    g_autoptr(Xv) values = xv_new_array();
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++)
        xv_array_append_string(values, keys[i]);
    g_autoptr(Xv) view = xv_new_struct_view(G_N_ELEMENTS(keys));
    for (int round = 0; round < 2; round++) { /* the second reads the prepared names */
        for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
            xv_struct_set_string(copied, keys[i], keys[i]);
            xv_struct_view_append(view, keys[i], xv_at(values, i));
        }
        size_t a, b;
        g_autofree char *expected = xmlrpc_format_response(copied, &a);
        g_autofree char *out = xmlrpc_format_response(view, &b);
        assert_string_equal(out, expected);
        assert_non_null(strstr(out, "<name>odd&lt;&amp;&gt;key</name>"));
        xv_struct_view_clear(view);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests_parse_to_goldens),
        cmocka_unit_test(test_reply_is_compact_and_exact),
        cmocka_unit_test(test_escaping_at_every_position),
        cmocka_unit_test(test_round_trip_turns_ints_into_strings),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_encoding_declaration_is_ignored),
        cmocka_unit_test(test_element_and_doctype_limits),
        cmocka_unit_test(test_doubles_as_printf_writes_them),
        cmocka_unit_test(test_static_keys_write_like_copied_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
