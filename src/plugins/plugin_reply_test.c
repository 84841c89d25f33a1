/* plugin_reply_test.c: a plugin's stdout read as XAPI reads it: the
 * string of a Success, the plugin's own error code of a Failure, and
 * XENAPI_PLUGIN_FAILURE's parameters for everything else; and the call
 * xapid writes for a plugin. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <glib.h>
#include <string.h>

#include "plugin_reply.h"
#include "xmlrpc.h"

/* What Python's xmlrpc.client.dumps(..., methodresponse=True) writes. */
#define PY_HEAD "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><struct>\n"
#define PY_TAIL "</struct></value>\n</param>\n</params>\n</methodResponse>\n"

static XapiError *parse(const char *out, char **value)
{
    XapiError *err = NULL;
    int rc = plugin_reply_parse(out, strlen(out), value, &err);
    assert_int_equal(rc, err ? -1 : 0);
    return err;
}

static void assert_failure(XapiError *err, const char *status)
{
    assert_non_null(err);
    assert_string_equal(err->code, "XENAPI_PLUGIN_FAILURE");
    assert_string_equal(err->params->pdata[0], status);
}

static void test_success_typed_and_untyped(void **state)
{
    char *value = NULL;
    assert_null(parse(PY_HEAD "<member>\n<name>Status</name>\n<value><string>Success</string>"
                      "</value>\n</member>\n<member>\n<name>Value</name>\n<value><string>"
                      "args were: {'a': 'b'}</string></value>\n</member>\n" PY_TAIL, &value));
    assert_string_equal(value, "args were: {'a': 'b'}");
    g_free(value);
    assert_null(parse("<methodResponse><params><param><value><struct><member><name>Status"
                      "</name><value>Success</value></member><member><name>Value</name>"
                      "<value/></member></struct></value></param></params></methodResponse>",
                      &value));
    assert_string_equal(value, "");
    g_free(value);
}

static void test_failure_is_the_plugins_error(void **state)
{
    char *value = NULL;
    g_autoptr(XapiError) err =
        parse(PY_HEAD "<member><name>Status</name><value>Failure</value></member><member>"
                      "<name>ErrorDescription</name><value><array><data><value>MY_CODE</value>"
                      "<value>p1</value><value>p2</value></data></array></value></member>" PY_TAIL,
              &value);
    assert_non_null(err);
    assert_string_equal(err->code, "MY_CODE");
    assert_int_equal(err->params->len, 2);
    assert_string_equal(err->params->pdata[1], "p2");
    assert_null(value);
}

static void test_not_xml(void **state)
{
    char *value = NULL;
    g_autoptr(XapiError) err = parse("hello, world\n", &value);
    assert_failure(err, "failed to parse plugin output");
    assert_int_equal(err->params->len, 3);
    assert_string_equal(err->params->pdata[1], "hello, world\n");
    assert_true(strlen(err->params->pdata[2]) > 0);
}

static void test_fault(void **state)
{
    char *value = NULL;
    g_autoptr(XapiError) err =
        parse("<methodResponse><fault><value><struct><member><name>faultCode</name><value>"
              "<int>42</int></value></member><member><name>faultString</name><value>bad"
              "</value></member></struct></value></fault></methodResponse>", &value);
    assert_failure(err, "fault");
    assert_string_equal(err->params->pdata[1], "42");
    assert_string_equal(err->params->pdata[2], "bad");
}

static void test_unexpected_shapes(void **state)
{
    static const char *const shapes[] = {
        "<other/>",
        "<methodResponse><params></params></methodResponse>",
        "<methodResponse><params><param><value>x</value></param></params></methodResponse>",
        PY_HEAD "<member><name>Value</name><value>v</value></member>" PY_TAIL,
        PY_HEAD "<member><name>Status</name><value>Maybe</value></member>" PY_TAIL,
        PY_HEAD "<member><name>Status</name><value>Success</value></member><member><name>"
                "Value</name><value><int>3</int></value></member>" PY_TAIL,
        PY_HEAD "<member><name>Status</name><value>Failure</value></member><member><name>"
                "ErrorDescription</name><value><array><data></data></array></value></member>"
                PY_TAIL,
    };
    for (unsigned i = 0; i < G_N_ELEMENTS(shapes); i++) {
        char *value = NULL;
        g_autoptr(XapiError) err = parse(shapes[i], &value);
        assert_failure(err, "unexpected XMLRPC result");
        assert_string_equal(err->params->pdata[1], shapes[i]);
    }
}

static void test_call_as_xapi_writes_it(void **state)
{
    g_autoptr(Xv) params = xv_new_array();
    xv_array_append_string(params, "OpaqueRef:s");
    Xv *args = xv_new_struct();
    xv_struct_set_string(args, "k", "a<b&c");
    xv_array_append(params, args);
    size_t len;
    g_autofree char *xml = xmlrpc_format_call("main", params, &len);
    assert_string_equal(xml, "<methodCall><methodName>main</methodName><params><param><value>"
                             "OpaqueRef:s</value></param><param><value><struct><member><name>k"
                             "</name><value>a&lt;b&amp;c</value></member></struct></value>"
                             "</param></params></methodCall>");
    assert_int_equal(len, strlen(xml));
    /* and our own parser reads it back */
    g_autofree char *method = NULL, *why = NULL;
    g_autoptr(Xv) back = NULL;
    assert_int_equal(xmlrpc_parse_call(xml, len, &method, &back, &why), 0);
    assert_string_equal(method, "main");
    assert_true(xv_equal(back, params));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success_typed_and_untyped),
        cmocka_unit_test(test_failure_is_the_plugins_error),
        cmocka_unit_test(test_not_xml),
        cmocka_unit_test(test_fault),
        cmocka_unit_test(test_unexpected_shapes),
        cmocka_unit_test(test_call_as_xapi_writes_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
