/* jsonrpc_test.c: the JSON-RPC codec against golden requests and replies, and every rejection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <math.h>
#include <string.h>

#include "jsonrpc.h"

/* ---- Golden files ---- */

static char *golden_path(const char *name)
{
    const char *root = g_getenv("SOURCE_ROOT");
    if (!root)
        fail_msg("SOURCE_ROOT is not set (run through meson test)");
    return g_build_filename(root, "src", "jsonrpc", "golden", name, NULL);
}

static bool updating_goldens(void)
{
    return g_strcmp0(g_getenv("XAPID_UPDATE_GOLDEN"), "1") == 0;
}

static char *read_golden(const char *name, size_t *len)
{
    g_autofree char *path = golden_path(name);
    char *text = NULL;
    gsize n = 0;
    if (!g_file_get_contents(path, &text, &n, NULL))
        fail_msg("cannot read %s", path);
    *len = n;
    return text;
}

/* Compares bytes with golden/<name>, or rewrites it under XAPID_UPDATE_GOLDEN=1. */
static void check_golden(const char *name, const char *actual, size_t len)
{
    g_autofree char *path = golden_path(name);
    if (updating_goldens()) {
        g_autoptr(GError) error = NULL;
        if (!g_file_set_contents(path, actual, (gssize)len, &error))
            fail_msg("cannot write %s: %s", path, error->message);
        return;
    }
    g_autofree char *expected = NULL;
    gsize expected_len = 0;
    if (!g_file_get_contents(path, &expected, &expected_len, NULL))
        fail_msg("missing golden %s (XAPID_UPDATE_GOLDEN=1 writes it)", path);
    if (expected_len != len || memcmp(expected, actual, len) != 0)
        fail_msg("%s differs\n--- expected\n%s--- actual\n%.*s", path, expected, (int)len,
                 actual);
}

/* json-c, strict and UTF-8 checking, as an independent judge of our output. */
static void assert_valid_json(const char *text, size_t len)
{
    struct json_tokener *tok = json_tokener_new_ex(200);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    struct json_object *obj = json_tokener_parse_ex(tok, text, (int)len);
    if (!obj || json_tokener_get_error(tok) != json_tokener_success ||
        json_tokener_get_parse_end(tok) != len)
        fail_msg("json-c rejects %.*s: %s", (int)len, text,
                 json_tokener_error_desc(json_tokener_get_error(tok)));
    json_object_put(obj);
    json_tokener_free(tok);
}

/* ---- Requests ---- */

/* The debug rendering writes float 100 and int 100 alike: name the kinds too. */
static const char *kind_name(const Xv *v)
{
    static const char *const names[] = {"nil",      "string", "int",   "float",
                                        "bool",     "datetime", "array", "struct"};
    return v->kind < G_N_ELEMENTS(names) ? names[v->kind] : "?";
}

static char *render_request(const JsonRpcRequest *req)
{
    g_autofree char *params = xv_to_debug_string(req->params);
    g_autoptr(GString) kinds = g_string_new(NULL);
    for (guint i = 0; i < xv_len(req->params); i++)
        g_string_append_printf(kinds, "%s%s", i ? " " : "", kind_name(xv_at(req->params, i)));
    return g_strdup_printf("version: %d\nmethod: %s\nid: %s\nparams: %s\nkinds: %s\n",
                           req->version, req->method, req->id_json, params, kinds->str);
}

static void test_request_goldens(void **state)
{
    static const char *const names[] = {
        "xo_login_v2",   "xo_call_v2",    "python_string_id_v2",
        "login_v1",      "no_params_v1",  "nested_v2",
        "scalars_v1",    "pretty_extra_members_v2",
        "float_id_v1",   "escaped_string_id_v2",
        "duplicate_inner_keys_v1",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autofree char *in_name = g_strdup_printf("request_%s.json", names[i]);
        g_autofree char *out_name = g_strdup_printf("request_%s.out", names[i]);
        size_t len;
        g_autofree char *body = read_golden(in_name, &len);
        JsonRpcRequest req = {0};
        g_autofree char *why = NULL;
        if (jsonrpc_parse_request(body, len, &req, &why) < 0)
            fail_msg("%s: %s", in_name, why);
        assert_int_equal(req.params->kind, XV_ARRAY);
        g_autofree char *text = render_request(&req);
        check_golden(out_name, text, strlen(text));
        jsonrpc_request_clear(&req);
        assert_null(req.method);
    }
}

static void test_request_details(void **state)
{
    JsonRpcRequest req = {0};
    g_autofree char *why = NULL;
    /* Not NUL-terminated: the length alone bounds the body. */
    const char body[] = "{\"method\":\"a.b\",\"id\":5}GARBAGE";
    assert_int_equal(jsonrpc_parse_request(body, strlen("{\"method\":\"a.b\",\"id\":5}"), &req,
                                           &why),
                     0);
    assert_int_equal(req.version, 1);
    assert_string_equal(req.method, "a.b");
    assert_int_equal(xv_len(req.params), 0);
    assert_string_equal(req.id_json, "5");
    jsonrpc_request_clear(&req);
    jsonrpc_request_clear(&req); /* harmless twice */

    /* Integer bounds are exact. */
    const char *edges = "{\"method\":\"m\",\"params\":[9223372036854775807,"
                        "-9223372036854775808],\"id\":1}";
    assert_int_equal(jsonrpc_parse_request(edges, strlen(edges), &req, &why), 0);
    assert_int_equal(xv_at(req.params, 0)->kind, XV_INT);
    assert_true(xv_at(req.params, 0)->i == INT64_MAX);
    assert_true(xv_at(req.params, 1)->i == INT64_MIN);
    jsonrpc_request_clear(&req);

    /* A repeated key inside a value: the first one wins, as in XAPI. */
    const char *dup = "{\"method\":\"m\",\"params\":[{\"a\":1,\"b\":2,\"a\":3}],\"id\":1}";
    assert_int_equal(jsonrpc_parse_request(dup, strlen(dup), &req, &why), 0);
    Xv *st = xv_at(req.params, 0);
    assert_int_equal(xv_len(st), 2);
    assert_string_equal(xv_member_at(st, 0)->key, "a");
    assert_int_equal(xv_struct_get(st, "a")->i, 1);
    jsonrpc_request_clear(&req);
}

/* Past a few members repeated keys are found by a hash set: same rule. */
static void test_large_objects(void **state)
{
    GString *text = g_string_new("{");
    for (int i = 0; i < 1000; i++)
        g_string_append_printf(text, "%s\"k%d\":%d", i ? "," : "", i % 700, i);
    g_string_append(text, "}");
    g_autofree char *why = NULL;
    g_autoptr(Xv) v = jsonrpc_value_from_json(text->str, text->len, &why);
    g_string_free(text, TRUE);
    assert_non_null(v);
    assert_int_equal(xv_len(v), 700);
    for (int i = 0; i < 700; i += 37) {
        g_autofree char *key = g_strdup_printf("k%d", i);
        assert_string_equal(xv_member_at(v, (guint)i)->key, key);
        assert_int_equal(xv_struct_get(v, key)->i, i);
    }
}

/* Nesting: the request object itself is level 1, params level 2. */
static char *nested_request(int arrays_in_params)
{
    GString *s = g_string_new("{\"method\":\"m\",\"params\":");
    for (int i = 0; i < arrays_in_params; i++)
        g_string_append_c(s, '[');
    for (int i = 0; i < arrays_in_params; i++)
        g_string_append_c(s, ']');
    g_string_append(s, ",\"id\":1}");
    return g_string_free(s, FALSE);
}

static void test_depth_limit(void **state)
{
    JsonRpcRequest req = {0};
    g_autofree char *ok = nested_request(63);
    g_autofree char *why = NULL;
    assert_int_equal(jsonrpc_parse_request(ok, strlen(ok), &req, &why), 0);
    jsonrpc_request_clear(&req);

    g_autofree char *deep = nested_request(64);
    assert_int_equal(jsonrpc_parse_request(deep, strlen(deep), &req, &why), -1);
    assert_non_null(strstr(why, "nesting"));
    g_clear_pointer(&why, g_free);

    /* Far deeper than the stack could take if nothing stopped it. */
    g_autofree char *abyss = nested_request(200000);
    assert_int_equal(jsonrpc_parse_request(abyss, strlen(abyss), &req, &why), -1);
    g_clear_pointer(&why, g_free);

    /* The same limit for plain values: 64 levels pass, 65 do not. */
    g_autofree char *v64 = g_strnfill(64, '[');
    g_autofree char *c64 = g_strnfill(64, ']');
    g_autofree char *text64 = g_strconcat(v64, c64, NULL);
    g_autoptr(Xv) v = jsonrpc_value_from_json(text64, strlen(text64), &why);
    assert_non_null(v);
    g_autofree char *text65 = g_strconcat("{\"a\":", text64, "}", NULL);
    assert_null(jsonrpc_value_from_json(text65, strlen(text65), &why));
    assert_non_null(strstr(why, "nesting"));
}

/* A request of 20,000 values passes; one more is refused (its tree is
 * what a body at the size limit could make cost megabytes). */
static void test_value_count_limit(void **state)
{
    for (int extra = 0; extra <= 1; extra++) {
        /* the envelope's own values: method, id and the params array */
        int zeros = 20000 - 3 + extra;
        GString *body = g_string_new("{\"method\":\"VM.get_all\",\"id\":1,\"params\":[");
        for (int i = 0; i < zeros; i++)
            g_string_append(body, i ? ",0" : "0");
        g_string_append(body, "]}");
        JsonRpcRequest req = {0};
        g_autofree char *why = NULL;
        int rc = jsonrpc_parse_request(body->str, body->len, &req, &why);
        g_string_free(body, TRUE);
        if (extra) {
            assert_int_equal(rc, -1);
            assert_non_null(strstr(why, "values"));
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(xv_len(req.params), zeros);
        }
        jsonrpc_request_clear(&req);
    }
}

typedef struct BadRequest {
    const char *text;
    size_t len;
    const char *says; /* a word the error text must contain, or NULL */
} BadRequest;

#define BAD(s, says) {s, sizeof(s) - 1, says}

static const BadRequest bad_requests[] = {
    /* Malformed JSON. */
    BAD("", "empty"),
    BAD("  \n\t ", "empty"),
    BAD("{", "malformed"),
    BAD("{\"method\":\"m\",\"params\":[],\"id\":1", "malformed"),
    BAD("{\"method\":\"m\" \"id\":1}", "malformed"),
    BAD("{method:\"m\",\"id\":1}", "malformed"),
    BAD("{'method':'m','id':1}", "malformed"),
    BAD("{\"method\":\"m\",\"params\":[1,],\"id\":1}", "malformed"),
    BAD("{\"method\":\"m\",\"id\":1,}", "malformed"),
    BAD("{\"method\":\"m\",\"params\":[1 2],\"id\":1}", "malformed"),
    BAD("{\"method\":\"m\",\"id\":01}", "malformed"),
    BAD("{\"method\":\"m\",\"id\":1.}", "malformed"),
    BAD("{\"method\":\"m\",\"id\":.5}", "malformed"),
    BAD("{\"method\":\"m\",\"id\":1e}", "malformed"),
    BAD("{\"method\":\"m\",\"id\":-}", "malformed"),
    BAD("{\"method\":\"m\",\"id\":+1}", "malformed"),
    BAD("{\"method\":\"m\",\"id\":0x10}", "malformed"),
    BAD("{\"method\":\"m\",\"params\":[NaN],\"id\":1}", "malformed"),
    BAD("{\"method\":\"m\",\"params\":[Infinity],\"id\":1}", "malformed"),
    BAD("{\"method\":\"m\",\"params\":[tru],\"id\":1}", "malformed"),
    BAD("{\"method\":\"m\",\"params\":[nul],\"id\":1}", "malformed"),
    BAD("{\"method\":\"m\",\"params\":[True],\"id\":1}", "malformed"),
    BAD("/* c */{\"method\":\"m\",\"id\":1}", "object"),
    BAD("{\"method\":\"m\",/* c */\"id\":1}", "malformed"),
    BAD("{\"method\":\"m\",\"params\":[\"\\x\"],\"id\":1}", "escape"),
    BAD("{\"method\":\"m\",\"params\":[\"\\u12\"],\"id\":1}", "escape"),
    BAD("{\"method\":\"m\",\"params\":[\"\\u12g4\"],\"id\":1}", "escape"),
    BAD("{\"method\":\"m\",\"params\":[\"a\tb\"],\"id\":1}", "control"),
    BAD("{\"method\":\"m\",\"params\":[\"a\nb\"],\"id\":1}", "control"),
    BAD("{\"method\":\"m\",\"params\":[\"open", "unterminated"),
    BAD("{\"method\":\"m\",\"params\":[\"\\", "unterminated"),
    BAD("\xef\xbb\xbf{\"method\":\"m\",\"id\":1}", "object"),
    /* Trailing data. */
    BAD("{\"method\":\"m\",\"id\":1} x", "trailing"),
    BAD("{\"method\":\"m\",\"id\":1}{}", "trailing"),
    BAD("{\"method\":\"m\",\"id\":1}\0", "trailing"),
    /* Not an object; batches are refused by name. */
    BAD("[]", "batch"),
    BAD("[{\"method\":\"m\",\"id\":1}]", "batch"),
    BAD("\"m\"", "object"),
    BAD("1", "object"),
    BAD("null", "object"),
    /* Invalid UTF-8, raw or through escapes, in method, params and keys. */
    BAD("{\"method\":\"m\xff\",\"id\":1}", "UTF-8"),
    BAD("{\"method\":\"m\",\"params\":[\"\xc0\xaf\"],\"id\":1}", "UTF-8"),
    BAD("{\"method\":\"m\",\"params\":[\"\xed\xa0\x80\"],\"id\":1}", "UTF-8"),
    BAD("{\"method\":\"m\",\"params\":[\"\xe2\x82\"],\"id\":1}", "UTF-8"),
    BAD("{\"method\":\"m\",\"params\":[\"\xf4\x90\x80\x80\"],\"id\":1}", "UTF-8"),
    BAD("{\"method\":\"m\",\"params\":[{\"k\x80\":1}],\"id\":1}", "UTF-8"),
    BAD("{\"method\":\"m\",\"params\":[\"\\ud800\"],\"id\":1}", "surrogate"),
    BAD("{\"method\":\"m\",\"params\":[\"\\udc00\\ud800\"],\"id\":1}", "surrogate"),
    BAD("{\"method\":\"m\",\"params\":[\"\\ud800\\u0041\"],\"id\":1}", "surrogate"),
    BAD("{\"method\":\"m\",\"params\":[\"\\ud800x\"],\"id\":1}", "surrogate"),
    /* NUL, escaped or raw. */
    BAD("{\"method\":\"m\\u0000x\",\"id\":1}", "NUL"),
    BAD("{\"method\":\"m\",\"params\":[\"a\\u0000\"],\"id\":1}", "NUL"),
    BAD("{\"method\":\"m\",\"params\":[{\"\\u0000\":1}],\"id\":1}", "NUL"),
    BAD("{\"method\":\"m\",\"params\":[\"a\0b\"],\"id\":1}", "NUL"),
    /* Numbers out of range. */
    BAD("{\"method\":\"m\",\"params\":[9223372036854775808],\"id\":1}", "range"),
    BAD("{\"method\":\"m\",\"params\":[-9223372036854775809],\"id\":1}", "range"),
    BAD("{\"method\":\"m\",\"params\":[123456789012345678901234567890],\"id\":1}", "range"),
    BAD("{\"method\":\"m\",\"params\":[1e400],\"id\":1}", "range"),
    BAD("{\"method\":\"m\",\"params\":[-1e400],\"id\":1}", "range"),
    /* Repeated envelope members. */
    BAD("{\"method\":\"a\",\"method\":\"b\",\"id\":1}", "duplicate"),
    BAD("{\"method\":\"a\",\"params\":[],\"params\":[1],\"id\":1}", "duplicate"),
    BAD("{\"method\":\"a\",\"id\":1,\"id\":2}", "duplicate"),
    BAD("{\"jsonrpc\":\"2.0\",\"jsonrpc\":\"2.0\",\"method\":\"a\",\"id\":1}", "duplicate"),
    /* Envelope members of the wrong kind, or missing. */
    BAD("{\"params\":[],\"id\":1}", "method"),
    BAD("{}", "method"),
    BAD("{\"method\":1,\"id\":1}", "method"),
    BAD("{\"method\":null,\"id\":1}", "method"),
    BAD("{\"method\":[\"m\"],\"id\":1}", "method"),
    BAD("{\"method\":\"m\",\"params\":{},\"id\":1}", "params"),
    BAD("{\"method\":\"m\",\"params\":\"x\",\"id\":1}", "params"),
    BAD("{\"method\":\"m\",\"params\":null,\"id\":1}", "params"),
    BAD("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":{\"a\":1},\"id\":1}", "params"),
    BAD("{\"method\":\"m\",\"params\":[]}", "notification"),
    BAD("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[]}", "notification"),
    BAD("{\"method\":\"m\",\"params\":[],\"id\":null}", "notification"),
    BAD("{\"method\":\"m\",\"id\":true}", "id"),
    BAD("{\"method\":\"m\",\"id\":[1]}", "id"),
    BAD("{\"method\":\"m\",\"id\":{}}", "id"),
    BAD("{\"jsonrpc\":\"1.0\",\"method\":\"m\",\"id\":1}", "jsonrpc"),
    BAD("{\"jsonrpc\":2.0,\"method\":\"m\",\"id\":1}", "jsonrpc"),
    BAD("{\"jsonrpc\":null,\"method\":\"m\",\"id\":1}", "jsonrpc"),
    BAD("{\"jsonrpc\":\"2.0 \",\"method\":\"m\",\"id\":1}", "jsonrpc"),
};

static void test_rejections(void **state)
{
    for (size_t i = 0; i < G_N_ELEMENTS(bad_requests); i++) {
        const BadRequest *b = &bad_requests[i];
        JsonRpcRequest req = {0};
        g_autofree char *why = NULL;
        int rc = jsonrpc_parse_request(b->text, b->len, &req, &why);
        if (rc != -1)
            fail_msg("accepted bad request #%zu: %.*s", i, (int)b->len, b->text);
        assert_non_null(why);
        assert_true(why[0] != '\0');
        if (b->says && !strstr(why, b->says))
            fail_msg("bad request #%zu (%.*s): \"%s\" does not say \"%s\"", i, (int)b->len,
                     b->text, why, b->says);
        /* Nothing is left behind for the caller to free. */
        assert_null(req.method);
        assert_null(req.params);
        assert_null(req.id_json);
        /* The same text as a plain value never crashes, and errors carry text. */
        g_autofree char *why2 = NULL;
        g_autoptr(Xv) v = jsonrpc_value_from_json(b->text, b->len, &why2);
        assert_true((v != NULL) != (why2 != NULL));
    }
    /* A NULL error_text is allowed. */
    JsonRpcRequest req = {0};
    assert_int_equal(jsonrpc_parse_request("[]", 2, &req, NULL), -1);
}

/* ---- Replies ---- */

typedef Xv *(*ValueFn)(void);

static Xv *v_string_plain(void) { return xv_new_string("OpaqueRef:7a3f1b2c-0d4e-4f5a-8b6c-9d0e1f2a3b4c"); }
static Xv *v_string_empty(void) { return xv_new_string(""); }
static Xv *v_string_escapes(void)
{
    return xv_new_string("quote\" backslash\\ slash/ nl\n cr\r tab\t bs\b ff\f "
                         "c01\x01 c1f\x1f del\x7f");
}
static Xv *v_string_unicode(void) { return xv_new_string("h\u00e9llo \u65e5\u672c \U0001F600 \u2028"); }
static Xv *v_string_invalid_utf8(void) { return xv_new_string("ok\xff\xfe!\xc3"); }
static Xv *v_int_zero(void) { return xv_new_int(0); }
static Xv *v_int64_max(void) { return xv_new_int(INT64_MAX); }
static Xv *v_int64_min(void) { return xv_new_int(INT64_MIN); }
static Xv *v_float(void) { return xv_new_float(1.5); }
static Xv *v_float_tenth(void) { return xv_new_float(0.1); }
static Xv *v_float_whole(void) { return xv_new_float(3.0); }
static Xv *v_float_extremes(void)
{
    Xv *a = xv_new_array();
    xv_array_append(a, xv_new_float(1e300));
    xv_array_append(a, xv_new_float(-2.5e-3));
    xv_array_append(a, xv_new_float(5e-324));
    xv_array_append(a, xv_new_float(-0.0));
    xv_array_append(a, xv_new_float(1e21));
    xv_array_append(a, xv_new_float(123456789.125));
    return a;
}
static Xv *v_float_nonfinite(void)
{
    Xv *a = xv_new_array();
    xv_array_append(a, xv_new_float(NAN));
    xv_array_append(a, xv_new_float(INFINITY));
    xv_array_append(a, xv_new_float(-INFINITY));
    return a;
}
static Xv *v_bool_true(void) { return xv_new_bool(true); }
static Xv *v_bool_false(void) { return xv_new_bool(false); }
static Xv *v_datetime(void) { return xv_new_datetime(1704110400); }
static Xv *v_datetime_epoch(void) { return xv_new_datetime(0); }
static Xv *v_nil(void) { return xv_new_nil(); }
static Xv *v_void(void) { return NULL; }
static Xv *v_empty_array(void) { return xv_new_array(); }
static Xv *v_empty_struct(void) { return xv_new_struct(); }
static Xv *v_nested(void)
{
    /* Shaped like a VM record: maps, sets, refs and scalars. */
    Xv *rec = xv_new_struct();
    xv_struct_set_string(rec, "uuid", "5f0e9c1a-2b3d-4e5f-8a7b-6c5d4e3f2a1b");
    xv_struct_set_string(rec, "name_label", "web \"1\"");
    xv_struct_set_string(rec, "power_state", "Running");
    xv_struct_set(rec, "memory_static_max", xv_new_int(4294967296));
    xv_struct_set(rec, "is_a_template", xv_new_bool(false));
    xv_struct_set(rec, "start_time", xv_new_datetime(1704110400));
    xv_struct_set(rec, "VCPUs_utilisation", xv_new_float(0.25));
    Xv *vbds = xv_new_array();
    xv_array_append_string(vbds, "OpaqueRef:a");
    xv_array_append_string(vbds, "OpaqueRef:b");
    xv_struct_set(rec, "VBDs", vbds);
    Xv *oc = xv_new_struct();
    xv_struct_set_string(oc, "folder", "/prod");
    xv_struct_set_string(oc, "note", "line1\nline2");
    xv_struct_set(rec, "other_config", oc);
    xv_struct_set(rec, "tags", xv_new_array());
    xv_struct_set(rec, "blocked_operations", xv_new_struct());
    xv_struct_set(rec, "snapshot_of", xv_new_nil());
    Xv *deep = xv_new_array();
    Xv *inner = xv_new_array();
    Xv *leaf = xv_new_struct();
    xv_struct_set(leaf, "k", xv_new_array());
    xv_array_append(inner, leaf);
    xv_array_append(deep, inner);
    xv_struct_set(rec, "deep", deep);
    Xv *map = xv_new_struct();
    xv_struct_set(map, "OpaqueRef:r1", rec);
    return map;
}

typedef struct ReplyCase {
    const char *name;
    ValueFn make;
} ReplyCase;

static const ReplyCase reply_cases[] = {
    {"string_plain", v_string_plain},
    {"string_empty", v_string_empty},
    {"string_escapes", v_string_escapes},
    {"string_unicode", v_string_unicode},
    {"string_invalid_utf8", v_string_invalid_utf8},
    {"int_zero", v_int_zero},
    {"int64_max", v_int64_max},
    {"int64_min", v_int64_min},
    {"float", v_float},
    {"float_tenth", v_float_tenth},
    {"float_whole", v_float_whole},
    {"float_extremes", v_float_extremes},
    {"float_nonfinite", v_float_nonfinite},
    {"bool_true", v_bool_true},
    {"bool_false", v_bool_false},
    {"datetime", v_datetime},
    {"datetime_epoch", v_datetime_epoch},
    {"nil", v_nil},
    {"void", v_void},
    {"empty_array", v_empty_array},
    {"empty_struct", v_empty_struct},
    {"nested", v_nested},
};

/* The two requests every reply golden answers: v1 with a numeric id and v2
 * with a string id, as clients send them. */
static JsonRpcRequest request_v1(void)
{
    return (JsonRpcRequest){.version = 1, .id_json = (char *)"1"};
}

static JsonRpcRequest request_v2(void)
{
    return (JsonRpcRequest){.version = 2, .id_json = (char *)"\"5f0e9c1a\""};
}

static void append_reply_line(GString *golden, char *reply, size_t len)
{
    assert_int_equal(len, strlen(reply));
    assert_null(memchr(reply, '\n', len)); /* one line each, by construction */
    assert_valid_json(reply, len);
    g_string_append_len(golden, reply, (gssize)len);
    g_string_append_c(golden, '\n');
    g_free(reply);
}

static void test_reply_goldens(void **state)
{
    JsonRpcRequest v1 = request_v1(), v2 = request_v2();
    for (size_t i = 0; i < G_N_ELEMENTS(reply_cases); i++) {
        g_autoptr(Xv) value = reply_cases[i].make();
        g_autoptr(GString) golden = g_string_new(NULL);
        size_t len;
        char *reply = jsonrpc_format_result(&v1, value, &len);
        append_reply_line(golden, reply, len);
        reply = jsonrpc_format_result(&v2, value, &len);
        append_reply_line(golden, reply, len);
        g_autofree char *name = g_strdup_printf("reply_%s.json", reply_cases[i].name);
        check_golden(name, golden->str, golden->len);
    }
}

static XapiError *error_of(const char *code, const char *const *params, guint n)
{
    XapiError *err = NULL;
    xapi_error_setv(&err, code, params, n);
    return err;
}

static void test_error_goldens(void **state)
{
    static const char *const count[] = {"VM.start", "2", "1"};
    static const char *const handle[] = {"VM", "OpaqueRef:7a3f1b2c"};
    static const char *const odd[] = {"", "quote\" backslash\\ nl\n",
                                      "h\u00e9llo \U0001F600", "bad\xff"};
    struct {
        const char *name;
        const char *code;
        const char *const *params;
        guint n;
    } cases[] = {
        {"no_params", "EVENTS_LOST", NULL, 0},
        {"session_auth", "SESSION_AUTHENTICATION_FAILED",
         (const char *const[]){"root", "Authentication failure"}, 2},
        {"parameter_count", "MESSAGE_PARAMETER_COUNT_MISMATCH", count, 3},
        {"handle_invalid", "HANDLE_INVALID", handle, 2},
        {"odd_params", "INTERNAL_ERROR", odd, 4},
    };
    JsonRpcRequest v1 = request_v1(), v2 = request_v2();
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(XapiError) err = error_of(cases[i].code, cases[i].params, cases[i].n);
        g_autoptr(GString) golden = g_string_new(NULL);
        size_t len;
        char *reply = jsonrpc_format_error(&v1, err, &len);
        append_reply_line(golden, reply, len);
        reply = jsonrpc_format_error(&v2, err, &len);
        append_reply_line(golden, reply, len);
        g_autofree char *name = g_strdup_printf("reply_error_%s.json", cases[i].name);
        check_golden(name, golden->str, golden->len);
    }
}

/* Each reply golden also reads back: the result (or error) is what was sent. */
static void test_replies_read_back(void **state)
{
    JsonRpcRequest v2 = request_v2();
    g_autoptr(Xv) value = v_nested();
    size_t len;
    g_autofree char *reply = jsonrpc_format_result(&v2, value, &len);
    g_autofree char *why = NULL;
    g_autoptr(Xv) back = jsonrpc_value_from_json(reply, len, &why);
    assert_non_null(back);
    assert_string_equal(xv_str(xv_struct_get(back, "jsonrpc")), "2.0");
    assert_string_equal(xv_str(xv_struct_get(back, "id")), "5f0e9c1a");
    assert_null(xv_struct_get(back, "error"));

    static const char *const params[] = {"VM.start", "2", "1"};
    g_autoptr(XapiError) err = error_of("MESSAGE_PARAMETER_COUNT_MISMATCH", params, 3);
    g_autofree char *e1 = jsonrpc_format_error(NULL, err, &len);
    g_autoptr(Xv) b1 = jsonrpc_value_from_json(e1, len, &why);
    assert_non_null(b1);
    assert_int_equal(xv_struct_get(b1, "result")->kind, XV_NIL);
    assert_int_equal(xv_struct_get(b1, "id")->kind, XV_NIL);
    Xv *desc = xv_struct_get(b1, "error");
    assert_int_equal(xv_len(desc), 4);
    assert_string_equal(xv_str(xv_at(desc, 0)), "MESSAGE_PARAMETER_COUNT_MISMATCH");
    assert_string_equal(xv_str(xv_at(desc, 3)), "1");

    /* No request (it could not be read): v1 shape, id null. */
    g_autoptr(Xv) one = xv_new_int(1);
    g_autofree char *r0 = jsonrpc_format_result(NULL, one, &len);
    assert_string_equal(r0, "{\"result\":1,\"error\":null,\"id\":null}");
    assert_int_equal(len, strlen(r0));
}

/* ---- Values ---- */

static void test_value_to_json(void **state)
{
    g_autoptr(Xv) dt = xv_new_datetime(0);
    g_autofree char *d = jsonrpc_value_to_json(dt);
    assert_string_equal(d, "\"19700101T00:00:00Z\"");
    g_autofree char *n = jsonrpc_value_to_json(NULL);
    assert_string_equal(n, "null");
    g_autoptr(Xv) s = xv_new_struct();
    xv_struct_set(s, "b", xv_new_int(-7));
    xv_struct_set(s, "a", xv_new_array());
    xv_struct_set_string(s, "c", "x/y");
    g_autofree char *t = jsonrpc_value_to_json(s);
    /* Member order kept, compact, slashes not escaped. */
    assert_string_equal(t, "{\"b\":-7,\"a\":[],\"c\":\"x/y\"}");
}

/* Strings are checked a word at a time for what needs escaping: any such
 * byte at any position, or in the tail, takes the careful path; the text
 * reads back the same, and bad UTF-8 becomes U+FFFD. */
static void test_string_escaping_at_every_position(void **state)
{
    static const char *const specials[] = {"\"", "\\", "\n", "\x01", "\x1f",
                                           "\xc3\xa9", "\x7f", "\xff"};
    for (size_t k = 0; k < G_N_ELEMENTS(specials); k++) {
        for (size_t len = 1; len <= 19; len++) {
            for (size_t at = 0; at < len; at++) {
                g_autofree char *plain = g_strnfill(len, 'a');
                g_autofree char *text = g_strdup_printf("%.*s%s%s", (int)at, plain, specials[k],
                                                        plain + at + 1);
                g_autoptr(Xv) v = xv_new_string(text);
                g_autofree char *json = jsonrpc_value_to_json(v);
                g_autofree char *why = NULL;
                g_autoptr(Xv) back = jsonrpc_value_from_json(json, strlen(json), &why);
                if (!back)
                    fail_msg("%s does not read back: %s", json, why);
                bool valid = g_utf8_validate(text, -1, NULL);
                g_autofree char *expected = valid ? g_strdup(text) : g_utf8_make_valid(text, -1);
                assert_string_equal(xv_str(back), expected);
                for (const char *c = json; *c; c++)
                    assert_true((unsigned char)*c >= 0x20);
            }
        }
    }
    g_autoptr(Xv) plain = xv_new_string("0123456789abcdef/x");
    g_autofree char *json = jsonrpc_value_to_json(plain);
    assert_string_equal(json, "\"0123456789abcdef/x\"");
}

/* Whatever a stored string holds (every C0 byte, invalid UTF-8), a reply
 * is JSON that json-c's strict, UTF-8-checking parser accepts: controls
 * escaped (JSON can carry them), bad bytes U+FFFD. */
static void test_any_stored_bytes_give_strict_json(void **state)
{
    static const char *const bad[] = {"\x80", "abc\xff", "\xc0\xaf", "\xed\xa0\x80",
                                      "\xe2\x82", "\xe2\x82x", "\xf4\x90\x80\x80",
                                      "\xf8\x88\x80\x80\x80", "a\x01\"\\\xc3"};
    GPtrArray *texts = g_ptr_array_new_with_free_func(g_free);
    for (unsigned c = 1; c < 0x20; c++)
        g_ptr_array_add(texts, g_strdup_printf("ab%ccd", c));
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
        g_ptr_array_add(texts, g_strdup(bad[i]));
    for (guint i = 0; i < texts->len; i++) {
        const char *text = texts->pdata[i];
        g_autoptr(Xv) v = xv_new_struct();
        xv_struct_set_string(v, text, text);
        g_autofree char *json = jsonrpc_value_to_json(v);
        assert_valid_json(json, strlen(json));
    }
    g_ptr_array_unref(texts);
}

static void test_value_from_json(void **state)
{
    g_autofree char *why = NULL;
    g_autoptr(Xv) scalar = jsonrpc_value_from_json(" 42 ", 4, &why);
    assert_non_null(scalar);
    assert_int_equal(scalar->kind, XV_INT);
    g_autoptr(Xv) f = jsonrpc_value_from_json("-0.0", 4, &why);
    assert_int_equal(f->kind, XV_FLOAT);
    assert_true(signbit(f->f));
    g_autoptr(Xv) z = jsonrpc_value_from_json("-0", 2, &why);
    assert_int_equal(z->kind, XV_INT);
    g_autoptr(Xv) e = jsonrpc_value_from_json("1E2", 3, &why);
    assert_int_equal(e->kind, XV_FLOAT);
    assert_true(e->f == 100.0);
    static const char *const bad[] = {"", " ", "1 2", "[1,]", "{\"a\"}", "{\"a\":}", "\"x",
                                      "[", "01", "-", "nan", "\"\\u0000\""};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_clear_pointer(&why, g_free);
        if (jsonrpc_value_from_json(bad[i], strlen(bad[i]), &why))
            fail_msg("accepted \"%s\"", bad[i]);
        assert_non_null(why);
        assert_true(why[0] != '\0');
    }
}

static Xv *rich_value(Xv **as_read_back)
{
    Xv *v = xv_new_struct();
    xv_struct_set_string(v, "name_label", "vm \"one\"\n\t\\ \x01 h\u00e9 \U0001F600");
    xv_struct_set(v, "memory", xv_new_int(INT64_MAX));
    xv_struct_set(v, "offset", xv_new_int(INT64_MIN));
    xv_struct_set(v, "zero", xv_new_int(0));
    xv_struct_set(v, "ratio", xv_new_float(0.1));
    xv_struct_set(v, "big", xv_new_float(1e300));
    xv_struct_set(v, "tiny", xv_new_float(5e-324));
    xv_struct_set(v, "whole", xv_new_float(3.0));
    xv_struct_set(v, "negzero", xv_new_float(-0.0));
    xv_struct_set(v, "third", xv_new_float(1.0 / 3.0));
    xv_struct_set(v, "running", xv_new_bool(true));
    xv_struct_set(v, "paused", xv_new_bool(false));
    xv_struct_set(v, "nothing", xv_new_nil());
    Xv *tags = xv_new_array();
    xv_array_append_string(tags, "a");
    xv_array_append_string(tags, "");
    xv_array_append(tags, xv_new_array());
    xv_array_append(tags, xv_new_struct());
    xv_struct_set(v, "tags", tags);
    Xv *oc = xv_new_struct();
    xv_struct_set_string(oc, "k", "v");
    xv_struct_set_string(oc, "\u65e5\u672c", "\"quoted key's value\"");
    xv_struct_set(v, "other_config", oc);
    *as_read_back = xv_dup(v);
    /* Datetimes travel as strings and come back as strings. */
    xv_struct_set(v, "created", xv_new_datetime(1704110400));
    xv_struct_set_string(*as_read_back, "created", "20240101T12:00:00Z");
    return v;
}

static void test_round_trip(void **state)
{
    g_autoptr(Xv) expected = NULL;
    g_autoptr(Xv) value = rich_value(&expected);
    g_autofree char *text = jsonrpc_value_to_json(value);
    assert_valid_json(text, strlen(text));
    g_autofree char *why = NULL;
    g_autoptr(Xv) back = jsonrpc_value_from_json(text, strlen(text), &why);
    if (!back)
        fail_msg("%s", why);
    Xv *created = xv_struct_get(back, "created");
    assert_int_equal(created->kind, XV_STRING);
    assert_string_equal(xv_str(created), "20240101T12:00:00Z");
    assert_false(xv_equal(value, back));
    assert_true(xv_equal(expected, back));
    /* Writing what was read gives the same bytes. */
    g_autofree char *again = jsonrpc_value_to_json(back);
    assert_string_equal(text, again);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_goldens),
        cmocka_unit_test(test_any_stored_bytes_give_strict_json),
        cmocka_unit_test(test_request_details),
        cmocka_unit_test(test_large_objects),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_reply_goldens),
        cmocka_unit_test(test_error_goldens),
        cmocka_unit_test(test_replies_read_back),
        cmocka_unit_test(test_value_to_json),
        cmocka_unit_test(test_string_escaping_at_every_position),
        cmocka_unit_test(test_value_from_json),
        cmocka_unit_test(test_value_count_limit),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
