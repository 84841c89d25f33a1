/* xmlrpc.c: XML-RPC parsing with libxml2 (no network, no DTDs, errors
 * not printed) and compact writing with GString. */
#include "xmlrpc.h"

#include <errno.h>
#include <stdint.h>
#include <libxml/SAX2.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <math.h>
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "key_memo.h"
#include "strbuf.h"
#include "wire_text.h"

#define XMLRPC_MAX_DEPTH 64
/* The document tree of a body at the size limit is what costs memory
 * (300 KiB of "<a/>" is 77,000 elements, 10 MB): libxml2 is stopped at the
 * element past this many, or nested deeper than XMLRPC_MAX_DEPTH values
 * can be (value, struct, member: three elements a level). */
#define XMLRPC_MAX_ELEMENTS 20000
#define XMLRPC_MAX_ELEMENT_DEPTH (3 * XMLRPC_MAX_DEPTH + 8)
/* Bodies are UTF-8 whatever their declaration says (IGNORE_ENC, with no
 * encoding named): libxml2 then reads them in place instead of through
 * its UTF-8 input converter, a fifth of a small call's parse. */
#define PARSE_OPTIONS                                                                      \
    (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA |       \
     XML_PARSE_IGNORE_ENC)

static bool named(const xmlNode *n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static bool is_blank_text(const xmlNode *n)
{
    if (n->type == XML_COMMENT_NODE || n->type == XML_PI_NODE)
        return true;
    if (n->type != XML_TEXT_NODE)
        return false;
    for (const xmlChar *p = n->content; p && *p; p++)
        if (!g_ascii_isspace(*p))
            return false;
    return true;
}

/* The only element child of n (ignoring blank text and comments); NULL if
 * there are none; *extra set when there is anything else. */
static xmlNode *sole_element(const xmlNode *n, bool *extra)
{
    xmlNode *found = NULL;
    *extra = false;
    for (xmlNode *c = n->children; c; c = c->next) {
        if (is_blank_text(c))
            continue;
        if (c->type == XML_ELEMENT_NODE && !found)
            found = c;
        else
            *extra = true;
    }
    return found;
}

static char *text_of(const xmlNode *n)
{
    GString *out = g_string_new(NULL);
    for (xmlNode *c = n->children; c; c = c->next)
        if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE)
            g_string_append(out, (const char *)c->content);
    return g_string_free(out, FALSE);
}

static Xv *fail(char **why, const char *fmt, const char *arg)
{
    if (!*why)
        *why = g_strdup_printf(fmt, arg);
    return NULL;
}

static Xv *parse_value(const xmlNode *value, int depth, char **why);

static Xv *parse_scalar(const xmlNode *t, char **why)
{
    const char *tag = (const char *)t->name;
    g_autofree char *text = text_of(t);
    if (strcmp(tag, "string") == 0)
        return xv_new_string(text);
    g_strstrip(text);
    if (!strcmp(tag, "int") || !strcmp(tag, "i4") || !strcmp(tag, "i8")) {
        char *end;
        errno = 0;
        long long n = strtoll(text, &end, 10);
        if (errno || end == text || *end)
            return fail(why, "bad integer '%s'", text);
        return xv_new_int(n);
    }
    if (!strcmp(tag, "double")) {
        char *end;
        double d = g_ascii_strtod(text, &end);
        if (end == text || *end)
            return fail(why, "bad double '%s'", text);
        return xv_new_float(d);
    }
    if (!strcmp(tag, "boolean")) {
        if (!strcmp(text, "1") || !g_ascii_strcasecmp(text, "true"))
            return xv_new_bool(true);
        if (!strcmp(text, "0") || !g_ascii_strcasecmp(text, "false"))
            return xv_new_bool(false);
        return fail(why, "bad boolean '%s'", text);
    }
    if (!strcmp(tag, "dateTime.iso8601")) {
        int64_t t64;
        if (!xv_datetime_parse(text, &t64))
            return fail(why, "bad dateTime.iso8601 '%s'", text);
        return xv_new_datetime(t64);
    }
    if (!strcmp(tag, "base64")) {
        gsize n = 0;
        g_autofree guchar *bytes = g_base64_decode(text, &n);
        if (!g_utf8_validate((const char *)bytes, (gssize)n, NULL) || memchr(bytes, 0, n))
            return fail(why, "%s", "base64 value is not UTF-8 text");
        return xv_new_string_len((const char *)bytes, n);
    }
    if (!strcmp(tag, "nil"))
        return xv_new_nil();
    return fail(why, "unknown value type <%s>", tag);
}

static Xv *parse_array(const xmlNode *t, int depth, char **why)
{
    bool extra;
    xmlNode *data = sole_element(t, &extra);
    if (!named(data, "data") || extra)
        return fail(why, "%s", "<array> needs one <data>");
    g_autoptr(Xv) out = xv_new_array();
    for (xmlNode *c = data->children; c; c = c->next) {
        if (is_blank_text(c))
            continue;
        if (!named(c, "value"))
            return fail(why, "%s", "<data> holds only <value>s");
        Xv *item = parse_value(c, depth + 1, why);
        if (!item)
            return NULL;
        xv_array_append(out, item);
    }
    return g_steal_pointer(&out);
}

static Xv *parse_struct(const xmlNode *t, int depth, char **why)
{
    g_autoptr(Xv) out = xv_new_struct();
    for (xmlNode *m = t->children; m; m = m->next) {
        if (is_blank_text(m))
            continue;
        if (!named(m, "member"))
            return fail(why, "%s", "<struct> holds only <member>s");
        xmlNode *name = NULL, *value = NULL;
        for (xmlNode *c = m->children; c; c = c->next) {
            if (is_blank_text(c))
                continue;
            if (named(c, "name") && !name)
                name = c;
            else if (named(c, "value") && !value)
                value = c;
            else
                return fail(why, "%s", "<member> needs one <name> and one <value>");
        }
        if (!name || !value)
            return fail(why, "%s", "<member> needs one <name> and one <value>");
        g_autofree char *key = text_of(name);
        Xv *item = parse_value(value, depth + 1, why);
        if (!item)
            return NULL;
        xv_struct_set(out, key, item);
    }
    return g_steal_pointer(&out);
}

static Xv *parse_value(const xmlNode *value, int depth, char **why)
{
    if (depth > XMLRPC_MAX_DEPTH)
        return fail(why, "values nested deeper than %s levels", G_STRINGIFY(XMLRPC_MAX_DEPTH));
    bool extra;
    xmlNode *t = sole_element(value, &extra);
    if (!t) {
        g_autofree char *text = text_of(value); /* untyped: a string, spaces kept */
        return xv_new_string(text);
    }
    if (extra)
        return fail(why, "%s", "<value> holds more than one type");
    if (named(t, "array"))
        return parse_array(t, depth, why);
    if (named(t, "struct"))
        return parse_struct(t, depth, why);
    return parse_scalar(t, why);
}

/* What the SAX hooks below count in the document being parsed. */
typedef struct ParseLimits {
    bool capped;          /* a request: the caps apply */
    unsigned elements;
    const char *exceeded; /* why the parser was stopped, or NULL */
} ParseLimits;

static void free_parser(gpointer data)
{
    xmlParserCtxt *ctxt = data;
    g_free(ctxt->_private);
    xmlFreeParserCtxt(ctxt);
}

static void stop(xmlParserCtxt *ctxt, const char *why)
{
    ParseLimits *limits = ctxt->_private;
    if (!limits->exceeded)
        limits->exceeded = why;
    ctxt->wellFormed = 0;
    xmlStopParser(ctxt);
}

/* libxml2's own element start, after the counts. */
static void start_element(void *data, const xmlChar *name, const xmlChar *prefix,
                          const xmlChar *uri, int nb_namespaces, const xmlChar **namespaces,
                          int nb_attributes, int nb_defaulted, const xmlChar **attributes)
{
    xmlParserCtxt *ctxt = data;
    ParseLimits *limits = ctxt->_private;
    if (limits->capped && ++limits->elements > XMLRPC_MAX_ELEMENTS) {
        stop(ctxt, "more than " G_STRINGIFY(XMLRPC_MAX_ELEMENTS) " elements");
        return;
    }
    if (limits->capped && ctxt->nameNr > XMLRPC_MAX_ELEMENT_DEPTH) {
        stop(ctxt, "values nested deeper than " G_STRINGIFY(XMLRPC_MAX_DEPTH) " levels");
        return;
    }
    xmlSAX2StartElementNs(data, name, prefix, uri, nb_namespaces, namespaces, nb_attributes,
                          nb_defaulted, attributes);
}

/* A DOCTYPE is refused anyway: stop before its entities are declared. */
static void internal_subset(void *data, const xmlChar *name, const xmlChar *external_id,
                            const xmlChar *system_id)
{
    stop(data, "DOCTYPE declarations are not accepted");
}

/* One parser per thread, reset for each document: a connection's thread
 * parses its requests without building a parser, its buffers and its
 * name dictionary again each time. */
static GPrivate thread_parser = G_PRIVATE_INIT(free_parser);

static xmlParserCtxt *parser_of_this_thread(bool capped)
{
    xmlParserCtxt *ctxt = g_private_get(&thread_parser);
    if (!ctxt) {
        ctxt = xmlNewParserCtxt();
        if (!ctxt)
            return NULL;
        ctxt->_private = g_new0(ParseLimits, 1);
        ctxt->sax->startElementNs = start_element;
        ctxt->sax->internalSubset = internal_subset;
        g_private_set(&thread_parser, ctxt);
    }
    *(ParseLimits *)ctxt->_private = (ParseLimits){.capped = capped};
    return ctxt;
}

/* capped: a request from the network, held to the caps above. root NULL:
 * any root element (the caller looks at it). */
static xmlDoc *read_doc(const char *body, size_t len, const char *root, bool capped, char **why)
{
    if (len > G_MAXINT) {
        *why = g_strdup("body too large");
        return NULL;
    }
    xmlParserCtxt *ctxt = parser_of_this_thread(capped);
    if (!ctxt) {
        *why = g_strdup("out of memory");
        return NULL;
    }
    xmlDoc *doc = xmlCtxtReadMemory(ctxt, body, (int)len, NULL, NULL, PARSE_OPTIONS);
    const ParseLimits *limits = ctxt->_private;
    if (limits->exceeded) {
        if (doc)
            xmlFreeDoc(doc);
        *why = g_strdup_printf("refused: %s", limits->exceeded);
        return NULL;
    }
    if (!doc) {
        const xmlError *e = xmlCtxtGetLastError(ctxt);
        *why = g_strdup_printf("XML parse error%s%s", e && e->message ? ": " : "",
                               e && e->message ? g_strchomp(e->message) : "");
        return NULL;
    }
    if (doc->intSubset || doc->extSubset) {
        xmlFreeDoc(doc);
        *why = g_strdup("DOCTYPE declarations are not accepted");
        return NULL;
    }
    if (root && !named(xmlDocGetRootElement(doc), root)) {
        xmlFreeDoc(doc);
        *why = g_strdup_printf("the document is not a <%s>", root);
        return NULL;
    }
    return doc;
}

/* <params><param><value>..</value></param>...</params> -> array */
static Xv *parse_params(const xmlNode *params, char **why)
{
    g_autoptr(Xv) out = xv_new_array();
    for (xmlNode *p = params->children; p; p = p->next) {
        if (is_blank_text(p))
            continue;
        bool extra;
        xmlNode *v = named(p, "param") ? sole_element(p, &extra) : NULL;
        if (!named(v, "value") || extra)
            return fail(why, "%s", "<params> holds <param><value>...</value></param>s");
        Xv *item = parse_value(v, 1, why);
        if (!item)
            return NULL;
        xv_array_append(out, item);
    }
    return g_steal_pointer(&out);
}

int xmlrpc_parse_call(const char *body, size_t len, char **method, Xv **params,
                      char **error_text)
{
    *method = NULL;
    *params = NULL;
    *error_text = NULL;
    xmlDoc *doc = read_doc(body, len, "methodCall", true, error_text);
    if (!doc)
        return -1;
    xmlNode *name = NULL, *plist = NULL;
    for (xmlNode *c = xmlDocGetRootElement(doc)->children; c; c = c->next) {
        if (is_blank_text(c))
            continue;
        if (named(c, "methodName") && !name)
            name = c;
        else if (named(c, "params") && !plist)
            plist = c;
        else
            fail(error_text, "%s", "unexpected content in <methodCall>");
    }
    if (!*error_text && !name)
        fail(error_text, "%s", "no <methodName>");
    if (!*error_text) {
        *method = g_strstrip(text_of(name));
        *params = plist ? parse_params(plist, error_text) : xv_new_array();
        if (!**method)
            fail(error_text, "%s", "empty <methodName>");
    }
    xmlFreeDoc(doc);
    if (*error_text) {
        g_clear_pointer(method, g_free);
        g_clear_pointer(params, xv_free);
        return -1;
    }
    return 0;
}

int xmlrpc_parse_response(const char *body, size_t len, Xv **value, char **error_text)
{
    *value = NULL;
    *error_text = NULL;
    xmlDoc *doc = read_doc(body, len, "methodResponse", false, error_text);
    if (!doc)
        return -1;
    bool extra;
    xmlNode *params = sole_element(xmlDocGetRootElement(doc), &extra);
    g_autoptr(Xv) all = named(params, "params") && !extra ? parse_params(params, error_text)
                                                         : fail(error_text, "%s", "no <params>");
    xmlFreeDoc(doc);
    if (!all)
        return -1;
    if (xv_len(all) != 1) {
        *error_text = g_strdup("a response holds exactly one value");
        return -1;
    }
    *value = xv_dup(xv_at(all, 0));
    return 0;
}

/* Constant markup: the length is known at compile time. */
#define APPEND_LIT(out, lit) sb_append_len((out), (lit), sizeof(lit) - 1)

/* What each ASCII byte that XML text cannot carry as itself becomes: '\r'
 * a reference, so that it survives line-end normalisation; C0 controls,
 * which no XML 1.0 document may hold even as references, U+FFFD (the
 * rule of wire_text.h, for strings stored before it or from files). */
#define R WIRE_TEXT_REPLACEMENT
static const char *const xml_entity[128] = {
    [0x01] = R, R, R, R, R, R, R, R, /* 0x09 tab, 0x0a LF */ [0x0b] = R, R,
    ['\r'] = "&#13;", [0x0e] = R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R,
    ['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;",
};
#undef R

/* Whether any byte of w is one of & < >, below 0x20 or above 0x7f (bit
 * tricks over 8 bytes; the slow path sorts out tab, LF and UTF-8). */
static inline bool word_needs_escaping(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
#define HAS_BYTE(w, c) ((((w) ^ (ones * (c))) - ones) & ~((w) ^ (ones * (c))) & highs)
    uint64_t below_space = (w - ones * 0x20) & ~w & highs;
    return (w & highs) | below_space | HAS_BYTE(w, '&') | HAS_BYTE(w, '<') | HAS_BYTE(w, '>');
#undef HAS_BYTE
}

/* s as XML text. Whatever s holds, the output is well-formed: bytes that
 * are not part of a character XML 1.0 allows become U+FFFD. */
static void append_escaped(GString *out, const char *s)
{
    if (!*s) /* most fields of most records are empty */
        return;
    size_t n = strlen(s);
    size_t i = 0;
    /* Most values are plain ASCII: skip them 8 bytes at a time. */
    for (uint64_t w; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        if (word_needs_escaping(w))
            break;
    }
    size_t run = 0;
    while (i < n) {
        unsigned char u = (unsigned char)s[i];
        const char *entity;
        if (u < 0x80) {
            entity = xml_entity[u];
            if (G_LIKELY(!entity)) {
                i++;
                continue;
            }
        } else {
            size_t len = wire_text_char_len((const unsigned char *)s + i, n - i);
            if (G_LIKELY(len)) {
                i += len;
                continue;
            }
            entity = WIRE_TEXT_REPLACEMENT;
        }
        sb_append_len(out, s + run, i - run);
        sb_append(out, entity);
        run = ++i;
    }
    sb_append_len(out, s + run, n - run);
}

static void append_value_body(GString *out, const Xv *v);

static char *render_member_open(const char *key, size_t *len)
{
    GString *text = g_string_new("<member><name>");
    append_escaped(text, key);
    g_string_append(text, "</name><value>");
    *len = text->len;
    return g_string_free(text, FALSE);
}

/* "<member><name>KEY</name><value>" of the datamodel's field names. */
static KeyMemo member_opens = KEY_MEMO_INIT(render_member_open);

static void append_member(GString *out, const char *key, bool static_key, const Xv *value)
{
    size_t len;
    const char *open = static_key ? key_memo_lookup(&member_opens, key, &len) : NULL;
    if (open) {
        sb_append_len(out, open, len);
    } else {
        APPEND_LIT(out, "<member><name>");
        append_escaped(out, key);
        APPEND_LIT(out, "</name><value>");
    }
    append_value_body(out, value);
    APPEND_LIT(out, "</value></member>");
}

void xmlrpc_append_member(GString *out, const char *key, const Xv *value)
{
    append_member(out, key, false, value);
}

static void emit_member(const char *key, const Xv *value, void *out)
{
    append_member(out, key, false, value);
}

/* %.16g of f, which writes integers below 10^15 as plain digits. */
static void append_double(GString *out, double f)
{
    if (sb_append_whole(out, f))
        return;
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    sb_append(out, g_ascii_formatd(buf, sizeof buf, "%.16g", f));
}

/* A value's text between <value> and </value>. */
static void append_value_body(GString *out, const Xv *v)
{
    switch (v->kind) {
    case XV_NIL: /* XAPI never sends <nil/>: absent is the empty string */
        break;
    case XV_STRING:
        if (v->s) /* NULL is the empty string */
            append_escaped(out, v->s);
        break;
    case XV_INT: /* int64 travels as an untyped decimal string */
        if (v->flags & XV_FLAG_I4) {
            APPEND_LIT(out, "<i4>");
            sb_append_int(out, v->i);
            APPEND_LIT(out, "</i4>");
        } else {
            sb_append_int(out, v->i);
        }
        break;
    case XV_FLOAT:
        /* XML-RPC has no NaN or infinities: send 0 and the largest finite value. */
        APPEND_LIT(out, "<double>");
        append_double(out, isnan(v->f) ? 0 : isinf(v->f) ? (v->f > 0 ? DBL_MAX : -DBL_MAX) : v->f);
        APPEND_LIT(out, "</double>");
        break;
    case XV_BOOL:
        if (v->b)
            APPEND_LIT(out, "<boolean>1</boolean>");
        else
            APPEND_LIT(out, "<boolean>0</boolean>");
        break;
    case XV_DATETIME: {
        char text[XV_DATETIME_BUF];
        APPEND_LIT(out, "<dateTime.iso8601>");
        if (v->flags & XV_FLAG_NO_ZONE) { /* a local time: no "Z" (rare) */
            g_autofree char *local = xv_datetime_format(v->i);
            g_strdelimit(local, "Z", '\0');
            sb_append(out, local);
        } else {
            size_t len = xv_datetime_write(v->i, text);
            sb_append_len(out, text, MIN(len, sizeof text - 1));
        }
        APPEND_LIT(out, "</dateTime.iso8601>");
        break;
    }
    case XV_ARRAY: {
        APPEND_LIT(out, "<array><data>");
        guint n = xv_len(v);
        for (guint i = 0; i < n; i++) {
            APPEND_LIT(out, "<value>");
            append_value_body(out, &g_array_index(v->items, Xv, i));
            APPEND_LIT(out, "</value>");
        }
        APPEND_LIT(out, "</data></array>");
        break;
    }
    case XV_STRUCT: {
        APPEND_LIT(out, "<struct>");
        guint n = xv_len(v);
        for (guint i = 0; i < n; i++) {
            const XvMember *m = &g_array_index(v->items, XvMember, i);
            append_member(out, m->key, m->static_key, &m->value);
        }
        APPEND_LIT(out, "</struct>");
        break;
    }
    case XV_LAZY:
        APPEND_LIT(out, "<struct>");
        for (guint i = 0; i < xv_lazy_len(v); i++)
            xv_lazy_visit(v, i, emit_member, out);
        APPEND_LIT(out, "</struct>");
        break;
    }
}

void xmlrpc_append_value(GString *out, const Xv *v)
{
    APPEND_LIT(out, "<value>");
    append_value_body(out, v);
    APPEND_LIT(out, "</value>");
}

char *xmlrpc_format_response(const Xv *value, size_t *len)
{
    GString *out = g_string_sized_new(16384);
    sb_append(out, "<methodResponse><params><param>");
    xmlrpc_append_value(out, value);
    sb_append(out, "</param></params></methodResponse>");
    *len = out->len;
    return g_string_free(out, FALSE);
}

XmlrpcResponseKind xmlrpc_parse_any_response(const char *body, size_t len, Xv **value,
                                             char **error_text)
{
    *value = NULL;
    *error_text = NULL;
    xmlDoc *doc = read_doc(body, len, NULL, true, error_text);
    if (!doc)
        return XMLRPC_RESPONSE_NOT_XML;
    XmlrpcResponseKind kind = XMLRPC_RESPONSE_MALFORMED;
    bool extra = false;
    xmlNode *root = xmlDocGetRootElement(doc);
    xmlNode *top = named(root, "methodResponse") ? sole_element(root, &extra) : NULL;
    if (!top || extra) {
        fail(error_text, "%s", "not a <methodResponse> holding one <params> or <fault>");
    } else if (named(top, "params")) {
        if ((*value = parse_params(top, error_text)))
            kind = XMLRPC_RESPONSE_PARAMS;
    } else if (named(top, "fault")) {
        xmlNode *v = sole_element(top, &extra);
        if (!named(v, "value") || extra)
            fail(error_text, "%s", "<fault> holds one <value>");
        else if ((*value = parse_value(v, 1, error_text)))
            kind = XMLRPC_RESPONSE_FAULT;
    } else {
        fail(error_text, "%s", "not a <methodResponse> holding one <params> or <fault>");
    }
    xmlFreeDoc(doc);
    return kind;
}

char *xmlrpc_format_call(const char *method, const Xv *params, size_t *len)
{
    GString *out = g_string_new("<methodCall><methodName>");
    append_escaped(out, method);
    sb_append(out, "</methodName><params>");
    for (guint i = 0; i < xv_len(params); i++) {
        sb_append(out, "<param>");
        xmlrpc_append_value(out, xv_at(params, i));
        sb_append(out, "</param>");
    }
    sb_append(out, "</params></methodCall>");
    *len = out->len;
    return g_string_free(out, FALSE);
}
