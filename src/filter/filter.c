/* filter.c: a recursive-descent parser and evaluator for filters. */
#include "filter.h"

#include <string.h>

#define FILTER_MAX_DEPTH 64
#define FILTER_MAX_LENGTH (64 * 1024)

typedef enum { F_TRUE, F_FALSE, F_EQ, F_AND, F_OR, F_NOT } FilterKind;

typedef struct FilterValue {
    bool is_field;
    char *text; /* literal or field name */
} FilterValue;

struct FilterExpr {
    FilterKind kind;
    FilterExpr *left, *right;  /* AND, OR; NOT uses left */
    FilterValue a, b;          /* EQ */
};

typedef struct Parser {
    const char *p;
    int depth;
    bool failed;
} Parser;

void filter_free(FilterExpr *e)
{
    if (!e)
        return;
    filter_free(e->left);
    filter_free(e->right);
    g_free(e->a.text);
    g_free(e->b.text);
    g_free(e);
}

static FilterExpr *node(FilterKind kind, FilterExpr *left, FilterExpr *right)
{
    FilterExpr *e = g_new0(FilterExpr, 1);
    e->kind = kind;
    e->left = left;
    e->right = right;
    return e;
}

static void skip_space(Parser *ps)
{
    while (g_ascii_isspace(*ps->p))
        ps->p++;
}

/* Consumes keyword kw if it is next and is not the prefix of a longer word. */
static bool accept_word(Parser *ps, const char *kw)
{
    skip_space(ps);
    size_t n = strlen(kw);
    if (strncmp(ps->p, kw, n) != 0 || g_ascii_isalnum(ps->p[n]) || ps->p[n] == '_')
        return false;
    ps->p += n;
    return true;
}

static bool accept_char(Parser *ps, char c)
{
    skip_space(ps);
    if (*ps->p != c)
        return false;
    ps->p++;
    return true;
}

static char *parse_string(Parser *ps)
{
    skip_space(ps);
    if (*ps->p != '"') {
        ps->failed = true;
        return NULL;
    }
    ps->p++;
    GString *out = g_string_new(NULL);
    while (*ps->p && *ps->p != '"') {
        if (*ps->p == '\\' && ps->p[1])
            ps->p++;
        g_string_append_c(out, *ps->p++);
    }
    if (*ps->p != '"') {
        g_string_free(out, TRUE);
        ps->failed = true;
        return NULL;
    }
    ps->p++;
    return g_string_free(out, FALSE);
}

static bool parse_value(Parser *ps, FilterValue *v)
{
    v->is_field = accept_word(ps, "field");
    v->text = parse_string(ps);
    return v->text != NULL;
}

static FilterExpr *parse_or(Parser *ps);

static FilterExpr *parse_unary(Parser *ps)
{
    if (++ps->depth > FILTER_MAX_DEPTH) {
        ps->failed = true;
        return NULL;
    }
    FilterExpr *e = NULL;
    if (accept_word(ps, "not")) {
        FilterExpr *inner = parse_unary(ps);
        e = inner ? node(F_NOT, inner, NULL) : NULL;
    } else if (accept_word(ps, "true")) {
        e = node(F_TRUE, NULL, NULL);
    } else if (accept_word(ps, "false")) {
        e = node(F_FALSE, NULL, NULL);
    } else if (accept_char(ps, '(')) {
        e = parse_or(ps);
        if (e && !accept_char(ps, ')')) {
            filter_free(e);
            e = NULL;
        }
    } else {
        e = node(F_EQ, NULL, NULL);
        if (!parse_value(ps, &e->a) || !accept_char(ps, '=') || !parse_value(ps, &e->b)) {
            filter_free(e);
            e = NULL;
        }
    }
    ps->depth--;
    if (!e)
        ps->failed = true;
    return e;
}

static FilterExpr *parse_and(Parser *ps)
{
    FilterExpr *left = parse_unary(ps);
    while (left && accept_word(ps, "and")) {
        FilterExpr *right = parse_unary(ps);
        if (!right) {
            filter_free(left);
            return NULL;
        }
        left = node(F_AND, left, right);
    }
    return left;
}

static FilterExpr *parse_or(Parser *ps)
{
    FilterExpr *left = parse_and(ps);
    while (left && accept_word(ps, "or")) {
        FilterExpr *right = parse_and(ps);
        if (!right) {
            filter_free(left);
            return NULL;
        }
        left = node(F_OR, left, right);
    }
    return left;
}

FilterExpr *filter_parse(const char *text, XapiError **err)
{
    if (strlen(text) > FILTER_MAX_LENGTH) {
        xapi_error_set(err, "INVALID_VALUE", "expr", "filter too long", NULL);
        return NULL;
    }
    Parser ps = {.p = text};
    FilterExpr *e = parse_or(&ps);
    skip_space(&ps);
    if (!e || ps.failed || *ps.p) {
        filter_free(e);
        xapi_error_set(err, "INVALID_VALUE", "expr", text, NULL);
        return NULL;
    }
    return e;
}

static char *value_text(const FilterValue *v, FilterFieldLookup lookup, void *ctx)
{
    return v->is_field ? lookup(ctx, v->text) : g_strdup(v->text);
}

bool filter_eval(const FilterExpr *e, FilterFieldLookup lookup, void *ctx)
{
    switch (e->kind) {
    case F_TRUE:
        return true;
    case F_FALSE:
        return false;
    case F_NOT:
        return !filter_eval(e->left, lookup, ctx);
    case F_AND:
        return filter_eval(e->left, lookup, ctx) && filter_eval(e->right, lookup, ctx);
    case F_OR:
        return filter_eval(e->left, lookup, ctx) || filter_eval(e->right, lookup, ctx);
    case F_EQ: {
        g_autofree char *a = value_text(&e->a, lookup, ctx);
        g_autofree char *b = value_text(&e->b, lookup, ctx);
        return a && b && strcmp(a, b) == 0;
    }
    }
    return false;
}
