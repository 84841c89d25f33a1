/* jsonrpc.c: a strict JSON reader and a compact JSON writer over Xv, and the
 * JSON-RPC request and reply envelopes built on them. */
#include "jsonrpc.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "key_memo.h"
#include "strbuf.h"

/* Requests come from the network and the reader recurses: bound the stack. */
#define MAX_DEPTH 64
/* And the memory of the values made from a body at the size limit (300
 * KiB of "0," is 150,000 values, 10 MB): a request has at most this many. */
#define MAX_REQUEST_VALUES 20000

/* Reading is done here rather than with json-c because json-c cannot report
 * two things we must refuse: integers beyond int64 (it saturates them) and
 * repeated members (it keeps the last one silently). The grammar is RFC 8259
 * with nothing added: no comments, NaN, single quotes or trailing commas. */

typedef struct Reader {
    const char *start;
    const char *p;
    const char *end;
    int depth;
    unsigned values, max_values; /* read so far, and the cap (0: none) */
    char *error; /* the first problem found; later ones are consequences */
} Reader;

static void reader_fail(Reader *r, const char *at, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static void reader_fail(Reader *r, const char *at, const char *fmt, ...)
{
    if (r->error)
        return;
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    r->error = g_strdup_printf("%s (at byte %zu)", msg, (size_t)(at - r->start));
}

static void fail_unexpected(Reader *r, const char *expected)
{
    if (r->p >= r->end)
        reader_fail(r, r->p, "malformed JSON: unexpected end of input, expected %s", expected);
    else if (g_ascii_isprint(*r->p))
        reader_fail(r, r->p, "malformed JSON: unexpected '%c', expected %s", *r->p, expected);
    else
        reader_fail(r, r->p, "malformed JSON: unexpected byte 0x%02x, expected %s",
                    (unsigned char)*r->p, expected);
}

static bool at_char(const Reader *r, char c)
{
    return r->p < r->end && *r->p == c;
}

static bool at_digit(const Reader *r)
{
    return r->p < r->end && g_ascii_isdigit(*r->p);
}

static void skip_space(Reader *r)
{
    while (r->p < r->end &&
           (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static bool enter(Reader *r)
{
    if (++r->depth > MAX_DEPTH) {
        reader_fail(r, r->p, "nesting deeper than %d levels", MAX_DEPTH);
        return false;
    }
    return true;
}

static bool read_hex4(Reader *r, gunichar *out)
{
    if (r->end - r->p < 4)
        return false;
    gunichar v = 0;
    for (int i = 0; i < 4; i++) {
        int d = g_ascii_xdigit_value(r->p[i]);
        if (d < 0)
            return false;
        v = v * 16 + (gunichar)d;
    }
    r->p += 4;
    *out = v;
    return true;
}

/* One escape sequence, r->p on the backslash. A \u escape must give a
 * Unicode scalar value: surrogates only in a proper pair, and never NUL,
 * because our strings are C strings and would be silently cut. */
static bool read_escape(Reader *r, GString *buf)
{
    const char *esc = r->p;
    if (r->end - r->p < 2) {
        reader_fail(r, esc, "malformed JSON: unterminated string");
        return false;
    }
    char c = r->p[1];
    r->p += 2;
    switch (c) {
    case '"':
    case '\\':
    case '/':
        sb_append_c(buf, c);
        return true;
    case 'b':
        sb_append_c(buf, '\b');
        return true;
    case 'f':
        sb_append_c(buf, '\f');
        return true;
    case 'n':
        sb_append_c(buf, '\n');
        return true;
    case 'r':
        sb_append_c(buf, '\r');
        return true;
    case 't':
        sb_append_c(buf, '\t');
        return true;
    case 'u':
        break;
    default:
        reader_fail(r, esc, "malformed JSON: invalid escape in string");
        return false;
    }
    gunichar cp;
    if (!read_hex4(r, &cp)) {
        reader_fail(r, esc, "malformed JSON: invalid \\u escape in string");
        return false;
    }
    if (cp == 0) {
        reader_fail(r, esc, "string contains NUL (\\u0000)");
        return false;
    }
    if (cp >= 0xDC00 && cp <= 0xDFFF) {
        reader_fail(r, esc, "invalid UTF-8 in string: unpaired surrogate escape");
        return false;
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        gunichar low;
        if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u') {
            reader_fail(r, esc, "invalid UTF-8 in string: unpaired surrogate escape");
            return false;
        }
        r->p += 2;
        if (!read_hex4(r, &low)) {
            reader_fail(r, esc, "malformed JSON: invalid \\u escape in string");
            return false;
        }
        if (low < 0xDC00 || low > 0xDFFF) {
            reader_fail(r, esc, "invalid UTF-8 in string: unpaired surrogate escape");
            return false;
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    g_string_append_unichar(buf, cp);
    return true;
}

/* A string, r->p on the opening quote; returns it g_malloc'd. */
static char *read_string(Reader *r)
{
    const char *open = r->p;
    g_autoptr(GString) buf = g_string_new(NULL);
    r->p++;
    for (;;) {
        const char *run = r->p;
        while (r->p < r->end && *r->p != '"' && *r->p != '\\' && (unsigned char)*r->p >= 0x20)
            r->p++;
        sb_append_len(buf, run, (size_t)(r->p - run));
        if (r->p >= r->end) {
            reader_fail(r, open, "malformed JSON: unterminated string");
            return NULL;
        }
        if (*r->p == '"') {
            r->p++;
            break;
        }
        if (*r->p != '\\') {
            if (*r->p == '\0')
                reader_fail(r, r->p, "string contains a NUL byte");
            else
                reader_fail(r, r->p, "malformed JSON: control character 0x%02x in a string",
                            (unsigned char)*r->p);
            return NULL;
        }
        if (!read_escape(r, buf))
            return NULL;
    }
    /* Escapes above only ever add valid UTF-8, so this judges the raw bytes. */
    if (!g_utf8_validate(buf->str, (gssize)buf->len, NULL)) {
        reader_fail(r, open, "invalid UTF-8 in string");
        return NULL;
    }
    return g_string_free(g_steal_pointer(&buf), FALSE);
}

static Xv *read_number(Reader *r)
{
    const char *s = r->p;
    bool integer = true;
    if (at_char(r, '-'))
        r->p++;
    if (at_char(r, '0')) {
        r->p++;
    } else if (at_digit(r)) {
        while (at_digit(r))
            r->p++;
    } else {
        fail_unexpected(r, "a digit");
        return NULL;
    }
    if (at_char(r, '.')) {
        integer = false;
        r->p++;
        if (!at_digit(r)) {
            fail_unexpected(r, "a digit");
            return NULL;
        }
        while (at_digit(r))
            r->p++;
    }
    if (at_char(r, 'e') || at_char(r, 'E')) {
        integer = false;
        r->p++;
        if (at_char(r, '+') || at_char(r, '-'))
            r->p++;
        if (!at_digit(r)) {
            fail_unexpected(r, "a digit");
            return NULL;
        }
        while (at_digit(r))
            r->p++;
    }
    g_autofree char *text = g_strndup(s, (gsize)(r->p - s));
    errno = 0;
    if (integer) {
        gint64 i = g_ascii_strtoll(text, NULL, 10);
        if (errno == ERANGE) {
            reader_fail(r, s, "integer out of the 64-bit range");
            return NULL;
        }
        return xv_new_int(i);
    }
    /* Underflow quietly gives 0 or a denormal, which is what was meant. */
    double f = g_ascii_strtod(text, NULL);
    if (!isfinite(f)) {
        reader_fail(r, s, "number out of the range of a double");
        return NULL;
    }
    return xv_new_float(f);
}

static bool read_literal(Reader *r, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0) {
        fail_unexpected(r, "a JSON value");
        return false;
    }
    r->p += n;
    return true;
}

static Xv *read_value(Reader *r);

/* Receives one member of an object; takes ownership of value. */
typedef bool (*MemberFn)(Reader *r, const char *key_at, const char *key, Xv *value,
                         void *data);

/* The members of an object, r->p on the '{'; shared by plain objects and
 * the request envelope, which treats its members specially. */
static bool read_members(Reader *r, MemberFn take, void *data)
{
    if (!enter(r))
        return false;
    r->p++;
    skip_space(r);
    if (at_char(r, '}')) {
        r->p++;
        r->depth--;
        return true;
    }
    for (;;) {
        skip_space(r);
        if (!at_char(r, '"')) {
            fail_unexpected(r, "a string key");
            return false;
        }
        const char *key_at = r->p;
        g_autofree char *key = read_string(r);
        if (!key)
            return false;
        skip_space(r);
        if (!at_char(r, ':')) {
            fail_unexpected(r, "':'");
            return false;
        }
        r->p++;
        Xv *value = read_value(r);
        if (!value || !take(r, key_at, key, value, data))
            return false;
        skip_space(r);
        if (at_char(r, ',')) {
            r->p++;
            continue;
        }
        if (at_char(r, '}')) {
            r->p++;
            break;
        }
        fail_unexpected(r, "',' or '}'");
        return false;
    }
    r->depth--;
    return true;
}

/* A struct being read. xv_struct_set looks for the key first, which makes
 * an object of n members cost n^2/2 comparisons (30000 members, a 300 KiB
 * body, took 1.9 s): members are appended, and repeated keys are found by a
 * scan while the object is small and by a hash set once it is not. */
typedef struct ObjectBuilder {
    Xv *st;
    GHashTable *keys; /* borrowed member keys; NULL while small */
} ObjectBuilder;

#define SCAN_MEMBERS 16

static bool take_struct_member(Reader *r, const char *key_at, const char *key, Xv *value,
                               void *data)
{
    ObjectBuilder *b = data;
    if (!b->keys && xv_len(b->st) >= SCAN_MEMBERS) {
        b->keys = g_hash_table_new(g_str_hash, g_str_equal);
        for (guint i = 0; i < xv_len(b->st); i++)
            g_hash_table_add(b->keys, xv_member_at(b->st, i)->key);
    }
    bool seen = b->keys ? g_hash_table_contains(b->keys, key) : xv_struct_get(b->st, key) != NULL;
    if (seen) {
        /* A repeated key: the first one wins, as in XAPI (List.assoc). */
        xv_free(value);
        return true;
    }
    xv_struct_append(b->st, key, value);
    if (b->keys)
        g_hash_table_add(b->keys, xv_member_at(b->st, xv_len(b->st) - 1)->key);
    return true;
}

static Xv *read_object(Reader *r)
{
    g_autoptr(Xv) st = xv_new_struct();
    ObjectBuilder b = {.st = st};
    bool ok = read_members(r, take_struct_member, &b);
    if (b.keys)
        g_hash_table_destroy(b.keys);
    return ok ? g_steal_pointer(&st) : NULL;
}

static Xv *read_array(Reader *r)
{
    if (!enter(r))
        return NULL;
    g_autoptr(Xv) arr = xv_new_array();
    r->p++;
    skip_space(r);
    if (at_char(r, ']')) {
        r->p++;
        r->depth--;
        return g_steal_pointer(&arr);
    }
    for (;;) {
        Xv *item = read_value(r);
        if (!item)
            return NULL;
        xv_array_append(arr, item);
        skip_space(r);
        if (at_char(r, ',')) {
            r->p++;
            continue;
        }
        if (at_char(r, ']')) {
            r->p++;
            break;
        }
        fail_unexpected(r, "',' or ']'");
        return NULL;
    }
    r->depth--;
    return g_steal_pointer(&arr);
}

static Xv *read_value(Reader *r)
{
    skip_space(r);
    if (r->max_values && ++r->values > r->max_values) {
        reader_fail(r, r->p, "more than %u values in one request", r->max_values);
        return NULL;
    }
    if (r->p >= r->end) {
        fail_unexpected(r, "a JSON value");
        return NULL;
    }
    switch (*r->p) {
    case '{':
        return read_object(r);
    case '[':
        return read_array(r);
    case '"': {
        char *s = read_string(r);
        return s ? xv_new_string_take(s) : NULL;
    }
    case 't':
        return read_literal(r, "true") ? xv_new_bool(true) : NULL;
    case 'f':
        return read_literal(r, "false") ? xv_new_bool(false) : NULL;
    case 'n':
        return read_literal(r, "null") ? xv_new_nil() : NULL;
    default:
        if (*r->p == '-' || g_ascii_isdigit(*r->p))
            return read_number(r);
        fail_unexpected(r, "a JSON value");
        return NULL;
    }
}

static void set_error_text(char **error_text, char *text)
{
    if (error_text)
        *error_text = text;
    else
        g_free(text);
}

Xv *jsonrpc_value_from_json(const char *text, size_t len, char **error_text)
{
    Reader r = {.start = text, .p = text, .end = text + len};
    g_autoptr(Xv) v = read_value(&r);
    if (v) {
        skip_space(&r);
        if (r.p < r.end)
            reader_fail(&r, r.p, "trailing data after the JSON value");
    }
    if (r.error) {
        set_error_text(error_text, r.error);
        return NULL;
    }
    return g_steal_pointer(&v);
}

/* ---- Writing ---- */

/* Whether the n bytes at s are ASCII that JSON carries as itself: no
 * control characters, quotes or backslashes (tested 8 bytes at a time). */
static bool is_plain_ascii(const char *s, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    size_t i = 0;
    for (uint64_t w; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\');
        /* High bit set in each byte from 0x20 to 0x7f. */
        uint64_t printable = ((w & ~highs) + ones * 0x60) & ~w & highs;
        if ((~printable & highs) | ((quote - ones) & ~quote & highs) |
            ((backslash - ones) & ~backslash & highs))
            return false;
    }
    for (; i < n; i++) {
        unsigned char u = (unsigned char)s[i];
        if (u < 0x20 || u >= 0x80 || u == '"' || u == '\\')
            return false;
    }
    return true;
}

static void write_string(GString *out, const char *s)
{
    g_autofree char *repaired = NULL;
    if (!s)
        s = "";
    size_t n = strlen(s);
    if (is_plain_ascii(s, n)) {
        sb_append_c(out, '"');
        sb_append_len(out, s, n);
        sb_append_c(out, '"');
        return;
    }
    if (!g_utf8_validate(s, (gssize)n, NULL)) {
        /* Text from guests or disks may reach a reply unchecked; one bad
         * byte must not make the whole reply unreadable, so it becomes
         * U+FFFD rather than passing through as invalid JSON. */
        repaired = g_utf8_make_valid(s, -1);
        s = repaired;
    }
    sb_append_c(out, '"');
    const char *run = s;
    for (const char *c = s; *c; c++) {
        unsigned char u = (unsigned char)*c;
        if (u >= 0x20 && u != '"' && u != '\\')
            continue;
        sb_append_len(out, run, (size_t)(c - run));
        run = c + 1;
        switch (u) {
        case '"':
            sb_append(out, "\\\"");
            break;
        case '\\':
            sb_append(out, "\\\\");
            break;
        case '\b':
            sb_append(out, "\\b");
            break;
        case '\f':
            sb_append(out, "\\f");
            break;
        case '\n':
            sb_append(out, "\\n");
            break;
        case '\r':
            sb_append(out, "\\r");
            break;
        case '\t':
            sb_append(out, "\\t");
            break;
        default:
            g_string_append_printf(out, "\\u%04x", u);
            break;
        }
    }
    sb_append(out, run);
    sb_append_c(out, '"');
}

static void write_float(GString *out, double f)
{
    /* JSON has no NaN or infinity, and a client's parser would reject the
     * whole reply over one such number: NaN becomes 0 and an infinity the
     * largest finite double of its sign, the nearest values JSON can carry. */
    if (isnan(f))
        f = 0.0;
    else if (isinf(f))
        f = f > 0 ? DBL_MAX : -DBL_MAX;
    if (sb_append_whole(out, f)) { /* what %.15g writes, without the call */
        sb_append(out, ".0");
        return;
    }
    /* The shortest of these that reads back as the same double: 0.1 stays
     * "0.1" rather than %.17g's "0.10000000000000001". */
    static const char *const formats[] = {"%.15g", "%.16g", "%.17g"};
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    for (size_t i = 0; i < G_N_ELEMENTS(formats); i++) {
        g_ascii_formatd(buf, sizeof buf, formats[i], f);
        if (g_ascii_strtod(buf, NULL) == f)
            break;
    }
    sb_append(out, buf);
    /* Without a point or exponent it would read back as an integer. */
    if (!strpbrk(buf, ".eE"))
        sb_append(out, ".0");
}

static void write_value(GString *out, const Xv *v);

typedef struct {
    GString *out;
    bool first;
} LazyWriter;

static void emit_member(const char *key, const Xv *value, void *ctx)
{
    LazyWriter *w = ctx;
    jsonrpc_append_member(w->out, key, value, w->first);
    w->first = false;
}

static char *render_key(const char *key, size_t *len)
{
    GString *text = g_string_new(NULL);
    write_string(text, key);
    g_string_append_c(text, ':');
    *len = text->len;
    return g_string_free(text, FALSE);
}

/* "\"KEY\":" of the datamodel's field names. */
static KeyMemo keys = KEY_MEMO_INIT(render_key);

static void append_member(GString *out, const char *key, bool static_key, const Xv *value,
                          bool first)
{
    if (!first)
        sb_append_c(out, ',');
    size_t len;
    const char *text = static_key ? key_memo_lookup(&keys, key, &len) : NULL;
    if (text) {
        sb_append_len(out, text, len);
    } else {
        write_string(out, key);
        sb_append_c(out, ':');
    }
    write_value(out, value);
}

void jsonrpc_append_member(GString *out, const char *key, const Xv *value, bool first)
{
    append_member(out, key, false, value, first);
}

static void write_value(GString *out, const Xv *v)
{
    if (!v) {
        sb_append(out, "null");
        return;
    }
    switch ((XvKind)v->kind) {
    case XV_STRING:
        write_string(out, xv_str(v));
        break;
    case XV_INT:
        sb_append_int(out, v->i);
        break;
    case XV_FLOAT:
        write_float(out, v->f);
        break;
    case XV_BOOL:
        sb_append(out, v->b ? "true" : "false");
        break;
    case XV_DATETIME: {
        char text[XV_DATETIME_BUF];
        size_t len = MIN(xv_datetime_write(v->i, text), sizeof text - 1);
        if ((v->flags & XV_FLAG_NO_ZONE) && len && text[len - 1] == 'Z')
            text[len - 1] = '\0';
        write_string(out, text);
        break;
    }
    case XV_ARRAY:
        sb_append_c(out, '[');
        for (guint i = 0; i < xv_len(v); i++) {
            if (i)
                sb_append_c(out, ',');
            write_value(out, xv_at(v, i));
        }
        sb_append_c(out, ']');
        break;
    case XV_STRUCT:
        sb_append_c(out, '{');
        for (guint i = 0; i < xv_len(v); i++) {
            const XvMember *m = &g_array_index(v->items, XvMember, i);
            append_member(out, m->key, m->static_key, &m->value, i == 0);
        }
        sb_append_c(out, '}');
        break;
    case XV_LAZY: {
        LazyWriter w = {out, true};
        sb_append_c(out, '{');
        for (guint i = 0; i < xv_lazy_len(v); i++)
            xv_lazy_visit(v, i, emit_member, &w);
        sb_append_c(out, '}');
        break;
    }
    case XV_NIL:
    default:
        sb_append(out, "null");
        break;
    }
}

char *jsonrpc_value_to_json(const Xv *v)
{
    GString *out = g_string_new(NULL);
    write_value(out, v);
    return g_string_free(out, FALSE);
}

/* ---- JSON-RPC envelopes ---- */

void jsonrpc_request_clear(JsonRpcRequest *req)
{
    if (!req)
        return;
    g_free(req->method);
    xv_free(req->params);
    g_free(req->id_json);
    memset(req, 0, sizeof *req);
}

/* The members of a request that mean something; all others are ignored,
 * as XAPI does. */
typedef struct Envelope {
    Xv *method;
    Xv *params;
    Xv *id;
    Xv *jsonrpc;
} Envelope;

static void envelope_clear(Envelope *env)
{
    xv_free(env->method);
    xv_free(env->params);
    xv_free(env->id);
    xv_free(env->jsonrpc);
}

static bool take_request_member(Reader *r, const char *key_at, const char *key, Xv *value,
                                void *data)
{
    Envelope *env = data;
    Xv **slot = NULL;
    if (strcmp(key, "method") == 0)
        slot = &env->method;
    else if (strcmp(key, "params") == 0)
        slot = &env->params;
    else if (strcmp(key, "id") == 0)
        slot = &env->id;
    else if (strcmp(key, "jsonrpc") == 0)
        slot = &env->jsonrpc;
    if (!slot) {
        xv_free(value);
        return true;
    }
    /* Readers disagree on which copy wins, so a proxy in front of us could
     * check one method and we would run the other: refuse instead. */
    if (*slot) {
        xv_free(value);
        reader_fail(r, key_at, "duplicate \"%s\" in the request", key);
        return false;
    }
    *slot = value;
    return true;
}

/* Checks the envelope and moves its parts into req; an error text or NULL. */
static char *fill_request(Envelope *env, JsonRpcRequest *req)
{
    if (!env->method)
        return g_strdup("the request has no \"method\"");
    if (env->method->kind != XV_STRING)
        return g_strdup("\"method\" must be a string");
    int version = 1;
    if (env->jsonrpc) {
        if (env->jsonrpc->kind != XV_STRING || strcmp(xv_str(env->jsonrpc), "2.0") != 0)
            return g_strdup("\"jsonrpc\" must be \"2.0\" when present");
        version = 2;
    }
    if (env->params && env->params->kind != XV_ARRAY)
        return g_strdup("\"params\" must be an array");
    if (!env->id)
        return g_strdup("the request has no \"id\": notifications are not supported");
    if (env->id->kind == XV_NIL)
        return g_strdup("the request's \"id\" is null: notifications are not supported");
    if (env->id->kind != XV_STRING && env->id->kind != XV_INT && env->id->kind != XV_FLOAT)
        return g_strdup("\"id\" must be a string or a number");
    req->version = version;
    req->method = g_strdup(xv_str(env->method));
    req->params = env->params ? g_steal_pointer(&env->params) : xv_new_array();
    req->id_json = jsonrpc_value_to_json(env->id);
    return NULL;
}

int jsonrpc_parse_request(const char *body, size_t len, JsonRpcRequest *req, char **error_text)
{
    memset(req, 0, sizeof *req);
    Reader r = {.start = body, .p = body, .end = body + len, .max_values = MAX_REQUEST_VALUES};
    Envelope env = {0};
    skip_space(&r);
    if (r.p >= r.end)
        reader_fail(&r, r.p, "empty request body");
    else if (*r.p == '[')
        reader_fail(&r, r.p, "batch requests (a JSON array) are not supported: "
                             "send one request object per call");
    else if (*r.p != '{')
        reader_fail(&r, r.p, "the request must be a JSON object");
    else if (read_members(&r, take_request_member, &env)) {
        skip_space(&r);
        if (r.p < r.end)
            reader_fail(&r, r.p, "trailing data after the request object");
    }
    char *error = r.error ? r.error : fill_request(&env, req);
    envelope_clear(&env);
    if (error) {
        jsonrpc_request_clear(req);
        set_error_text(error_text, error);
        return -1;
    }
    return 0;
}

static bool is_v2(const JsonRpcRequest *req)
{
    return req && req->version == 2;
}

static const char *id_of(const JsonRpcRequest *req)
{
    return req && req->id_json ? req->id_json : "null";
}

static char *finish(GString *out, size_t *len)
{
    if (len)
        *len = out->len;
    return g_string_free(out, FALSE);
}

char *jsonrpc_format_result(const JsonRpcRequest *req, const Xv *value, size_t *len)
{
    GString *out = g_string_sized_new(256);
    if (is_v2(req)) {
        sb_append(out, "{\"jsonrpc\":\"2.0\",\"result\":");
        write_value(out, value);
    } else {
        sb_append(out, "{\"result\":");
        write_value(out, value);
        sb_append(out, ",\"error\":null");
    }
    g_string_append_printf(out, ",\"id\":%s}", id_of(req));
    return finish(out, len);
}

static void write_error_params(GString *out, const XapiError *err, bool leading_comma)
{
    for (guint i = 0; err && err->params && i < err->params->len; i++) {
        if (i || leading_comma)
            sb_append_c(out, ',');
        write_string(out, g_ptr_array_index(err->params, i));
    }
}

char *jsonrpc_format_error(const JsonRpcRequest *req, const XapiError *err, size_t *len)
{
    const char *code = err && err->code ? err->code : "INTERNAL_ERROR";
    GString *out = g_string_sized_new(128);
    if (is_v2(req)) {
        /* XAPI gives every API error the JSON-RPC code 1; the XenAPI code
         * travels as the message and its parameters as data. */
        sb_append(out, "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":1,\"message\":");
        write_string(out, code);
        sb_append(out, ",\"data\":[");
        write_error_params(out, err, false);
        sb_append(out, "]}");
    } else {
        sb_append(out, "{\"result\":null,\"error\":[");
        write_string(out, code);
        write_error_params(out, err, true);
        sb_append(out, "]");
    }
    g_string_append_printf(out, ",\"id\":%s}", id_of(req));
    return finish(out, len);
}
