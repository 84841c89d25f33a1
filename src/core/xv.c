/* xv.c: construction, copying and comparison of XenAPI values. */
#include "xv.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

struct XvLazy {
    guint n;
    void *ctx;
    XvLazyVisit visit;
    GDestroyNotify destroy;
};

static Xv *xv_alloc(XvKind kind)
{
    Xv *v = g_new0(Xv, 1);
    v->kind = kind;
    return v;
}

Xv *xv_new_nil(void) { return xv_alloc(XV_NIL); }

/* The null ref fills a dozen fields of every VM: one shared copy. */
static const char null_ref[] = "OpaqueRef:NULL";

static bool share_string(Xv *v, const char *s)
{
    if (s && s[0] == 'O' && strcmp(s, null_ref) == 0) {
        v->s = (char *)null_ref;
        v->flags |= XV_FLAG_SHARED;
        return true;
    }
    return false;
}

Xv *xv_new_string(const char *s)
{
    Xv *v = xv_alloc(XV_STRING);
    if (!share_string(v, s))
        v->s = (s && *s) ? g_strdup(s) : NULL;
    return v;
}

Xv *xv_new_static_string(const char *s)
{
    Xv *v = xv_alloc(XV_STRING);
    v->s = (char *)s;
    v->flags |= XV_FLAG_SHARED;
    return v;
}

Xv *xv_new_string_take(char *s)
{
    Xv *v = xv_alloc(XV_STRING);
    if (share_string(v, s) || (s && !*s)) {
        g_free(s);
        return v;
    }
    v->s = s;
    return v;
}

Xv *xv_new_string_len(const char *s, size_t len)
{
    Xv *v = xv_alloc(XV_STRING);
    v->s = len ? g_strndup(s, len) : NULL;
    return v;
}

Xv *xv_new_int(int64_t i)
{
    Xv *v = xv_alloc(XV_INT);
    v->i = i;
    return v;
}

Xv *xv_new_i4(int32_t i)
{
    Xv *v = xv_new_int(i);
    v->flags |= XV_FLAG_I4;
    return v;
}

Xv *xv_new_float(double f)
{
    Xv *v = xv_alloc(XV_FLOAT);
    v->f = f;
    return v;
}

Xv *xv_new_bool(bool b)
{
    Xv *v = xv_alloc(XV_BOOL);
    v->b = b;
    return v;
}

Xv *xv_new_datetime(int64_t epoch_seconds)
{
    Xv *v = xv_alloc(XV_DATETIME);
    v->i = epoch_seconds;
    return v;
}

Xv *xv_new_local_datetime(int64_t wall_seconds)
{
    Xv *v = xv_new_datetime(wall_seconds);
    v->flags = XV_FLAG_NO_ZONE;
    return v;
}

Xv *xv_new_array(void) { return xv_alloc(XV_ARRAY); }

Xv *xv_new_array_sharing(const Xv *src)
{
    Xv *v = xv_alloc(XV_ARRAY);
    if (src->items && src->items->len)
        v->items = g_array_ref(src->items);
    return v;
}
Xv *xv_new_struct(void) { return xv_alloc(XV_STRUCT); }

static void member_clear(gpointer p)
{
    XvMember *m = p;
    if (!m->static_key)
        g_free(m->key);
    xv_clear(&m->value);
}

void xv_clear(Xv *v)
{
    if (!v)
        return;
    switch (v->kind) {
    case XV_STRING:
        if (!(v->flags & XV_FLAG_SHARED))
            g_free(v->s);
        break;
    case XV_ARRAY:
    case XV_STRUCT:
        if (v->items)
            g_array_unref(v->items);
        break;
    case XV_LAZY:
        if (v->lazy->destroy)
            v->lazy->destroy(v->lazy->ctx);
        g_free(v->lazy);
        break;
    default:
        break;
    }
    memset(v, 0, sizeof *v);
    v->kind = XV_NIL;
}

void xv_free(Xv *v)
{
    if (!v)
        return;
    xv_clear(v);
    g_free(v);
}

static GArray *items_for(Xv *v, guint reserve)
{
    if (!v->items) {
        bool is_array = v->kind == XV_ARRAY;
        v->items = g_array_sized_new(FALSE, FALSE, is_array ? sizeof(Xv) : sizeof(XvMember),
                                     reserve);
        g_array_set_clear_func(v->items, is_array ? (GDestroyNotify)xv_clear : member_clear);
    }
    return v->items;
}

Xv *xv_new_lazy(guint n, void *ctx, XvLazyVisit visit, GDestroyNotify destroy)
{
    Xv *v = xv_alloc(XV_LAZY);
    v->lazy = g_new(XvLazy, 1);
    *v->lazy = (XvLazy){n, ctx, visit, destroy};
    return v;
}

guint xv_lazy_len(const Xv *v)
{
    return v->kind == XV_LAZY ? v->lazy->n : 0;
}

bool xv_lazy_visit(const Xv *v, guint i, XvEmit emit, void *emit_ctx)
{
    g_return_val_if_fail(v->kind == XV_LAZY && i < v->lazy->n, false);
    return v->lazy->visit(v->lazy->ctx, i, emit, emit_ctx);
}

/* emit() for materialising a lazy struct into a concrete one. */
static void append_copy(const char *key, const Xv *value, void *dst)
{
    xv_struct_append(dst, key, xv_dup(value));
}

Xv *xv_new_struct_view(guint n)
{
    Xv *v = xv_alloc(XV_STRUCT);
    /* No clear function: the members' values belong to someone else. */
    v->items = g_array_sized_new(FALSE, FALSE, sizeof(XvMember), n);
    return v;
}

void xv_struct_view_append(Xv *view, const char *static_key, const Xv *borrowed)
{
    XvMember m = {.key = (char *)static_key, .static_key = true, .value = *borrowed};
    g_array_append_vals(view->items, &m, 1);
}

void xv_struct_view_clear(Xv *view)
{
    g_array_set_size(view->items, 0);
}

XvMember *xv_struct_view_reset(Xv *view, guint n)
{
    g_array_set_size(view->items, n);
    return (XvMember *)(void *)view->items->data;
}

void xv_copy_into(Xv *dst, const Xv *src)
{
    memset(dst, 0, sizeof *dst);
    dst->kind = src->kind;
    switch (src->kind) {
    case XV_LAZY:
        dst->kind = XV_STRUCT;
        for (guint i = 0; i < src->lazy->n; i++)
            xv_lazy_visit(src, i, append_copy, dst);
        break;
    case XV_STRING:
        dst->flags = src->flags;
        dst->s = (src->flags & XV_FLAG_SHARED) ? src->s : g_strdup(src->s);
        break;
    case XV_ARRAY:
        if (src->items && src->items->len) {
            GArray *out = items_for(dst, src->items->len);
            g_array_set_size(out, src->items->len);
            for (guint i = 0; i < src->items->len; i++)
                xv_copy_into(&g_array_index(out, Xv, i), &g_array_index(src->items, Xv, i));
        }
        break;
    case XV_STRUCT:
        if (src->items && src->items->len) {
            GArray *out = items_for(dst, src->items->len);
            g_array_set_size(out, src->items->len);
            for (guint i = 0; i < src->items->len; i++) {
                const XvMember *m = &g_array_index(src->items, XvMember, i);
                XvMember *c = &g_array_index(out, XvMember, i);
                c->static_key = m->static_key;
                c->key = m->static_key ? m->key : g_strdup(m->key);
                xv_copy_into(&c->value, &m->value);
            }
        }
        break;
    default:
        dst->flags = src->flags;
        dst->i = src->i; /* copies the widest union member */
        break;
    }
}

void xv_move_into(Xv *dst, Xv *src_heap)
{
    *dst = *src_heap;
    g_free(src_heap);
}

Xv *xv_dup(const Xv *v)
{
    if (!v)
        return NULL;
    Xv *c = g_new(Xv, 1);
    xv_copy_into(c, v);
    return c;
}

const char *xv_str(const Xv *v)
{
    if (!v || v->kind != XV_STRING)
        return NULL;
    return v->s ? v->s : "";
}

guint xv_len(const Xv *v)
{
    if (!v || (v->kind != XV_ARRAY && v->kind != XV_STRUCT) || !v->items)
        return 0;
    return v->items->len;
}

Xv *xv_at(const Xv *v, guint i)
{
    g_return_val_if_fail(v->kind == XV_ARRAY && i < xv_len(v), NULL);
    return &g_array_index(v->items, Xv, i);
}

const XvMember *xv_member_at(const Xv *v, guint i)
{
    g_return_val_if_fail(v->kind == XV_STRUCT && i < xv_len(v), NULL);
    return &g_array_index(v->items, XvMember, i);
}

void xv_array_append(Xv *arr, Xv *item)
{
    g_return_if_fail(arr->kind == XV_ARRAY);
    g_array_append_vals(items_for(arr, 4), item, 1);
    g_free(item);
}

void xv_array_append_string(Xv *arr, const char *s)
{
    xv_array_append(arr, xv_new_string(s));
}

void xv_array_remove_at(Xv *arr, guint i)
{
    g_return_if_fail(arr->kind == XV_ARRAY && i < xv_len(arr));
    g_array_remove_index(arr->items, i);
}

void xv_array_take_at(Xv *arr, guint i, Xv *out)
{
    g_return_if_fail(arr->kind == XV_ARRAY && i < xv_len(arr));
    Xv *slot = &g_array_index(arr->items, Xv, i);
    *out = *slot;
    *slot = (Xv){0}; /* nothing left for the clear function */
    g_array_remove_index(arr->items, i);
}

void xv_array_insert_at(Xv *arr, guint i, Xv *item)
{
    g_return_if_fail(arr->kind == XV_ARRAY && i <= xv_len(arr));
    g_array_insert_vals(items_for(arr, 4), i, item, 1);
    *item = (Xv){0};
}

static gint member_index(const Xv *st, const char *key)
{
    for (guint i = 0; i < xv_len(st); i++)
        if (strcmp(g_array_index(st->items, XvMember, i).key, key) == 0)
            return (gint)i;
    return -1;
}

static void append_member(Xv *st, char *key, bool static_key, Xv *value)
{
    XvMember m = {.key = key, .static_key = static_key, .value = *value};
    g_array_append_vals(items_for(st, 8), &m, 1);
    g_free(value);
}

void xv_struct_append(Xv *st, const char *key, Xv *value)
{
    g_return_if_fail(st->kind == XV_STRUCT);
    append_member(st, g_strdup(key), false, value);
}

void xv_struct_append_static(Xv *st, const char *key, Xv *value)
{
    g_return_if_fail(st->kind == XV_STRUCT);
    append_member(st, (char *)key, true, value);
}

void xv_struct_append_static_copy(Xv *st, const char *key, const Xv *value)
{
    g_return_if_fail(st->kind == XV_STRUCT);
    XvMember m = {.key = (char *)key, .static_key = true};
    xv_copy_into(&m.value, value);
    g_array_append_vals(items_for(st, 8), &m, 1);
}

void xv_struct_set(Xv *st, const char *key, Xv *value)
{
    g_return_if_fail(st->kind == XV_STRUCT);
    gint i = member_index(st, key);
    if (i >= 0) {
        XvMember *m = &g_array_index(st->items, XvMember, i);
        xv_clear(&m->value);
        xv_move_into(&m->value, value);
        return;
    }
    append_member(st, g_strdup(key), false, value);
}

void xv_struct_set_string(Xv *st, const char *key, const char *s)
{
    xv_struct_set(st, key, xv_new_string(s));
}

Xv *xv_struct_get(const Xv *st, const char *key)
{
    if (!st || st->kind != XV_STRUCT)
        return NULL;
    gint i = member_index(st, key);
    return i < 0 ? NULL : &g_array_index(st->items, XvMember, i).value;
}

bool xv_struct_remove(Xv *st, const char *key)
{
    gint i = member_index(st, key);
    if (i < 0)
        return false;
    g_array_remove_index(st->items, (guint)i);
    return true;
}

bool xv_equal(const Xv *a, const Xv *b)
{
    if (a->kind == XV_LAZY || b->kind == XV_LAZY) {
        g_autoptr(Xv) ca = xv_dup(a), cb = xv_dup(b);
        return xv_equal(ca, cb);
    }
    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
    case XV_NIL:
        return true;
    case XV_STRING:
        return strcmp(xv_str(a), xv_str(b)) == 0;
    case XV_INT:
    case XV_DATETIME:
        return a->i == b->i;
    case XV_FLOAT:
        return a->f == b->f;
    case XV_BOOL:
        return a->b == b->b;
    case XV_ARRAY:
        if (xv_len(a) != xv_len(b))
            return false;
        for (guint i = 0; i < xv_len(a); i++)
            if (!xv_equal(xv_at(a, i), xv_at(b, i)))
                return false;
        return true;
    case XV_LAZY: /* materialised above */
        return false;
    case XV_STRUCT:
        if (xv_len(a) != xv_len(b))
            return false;
        for (guint i = 0; i < xv_len(a); i++) {
            const XvMember *m = xv_member_at(a, i);
            const Xv *other = xv_struct_get(b, m->key);
            if (!other || !xv_equal(&m->value, other))
                return false;
        }
        return true;
    }
    return false;
}

static char *put_digits(char *p, int value, int width)
{
    for (int i = width - 1; i >= 0; i--, value /= 10)
        p[i] = (char)('0' + value % 10);
    return p + width;
}

/* Proleptic Gregorian date of a day count from 1970-01-01, by 400-year
 * eras counted from 0000-03-01 (leap days then fall at an era's end). */
static void civil_from_days(int64_t days, int *year, int *month, int *day)
{
    int64_t z = days + 719468; /* days from 0000-03-01 */
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t day_of_era = z - era * 146097;
    int64_t year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    int64_t month_from_march = (5 * day_of_year + 2) / 153;
    *day = (int)(day_of_year - (153 * month_from_march + 2) / 5 + 1);
    *month = (int)(month_from_march < 10 ? month_from_march + 3 : month_from_march - 9);
    *year = (int)(year_of_era + era * 400 + (*month <= 2));
}

size_t xv_datetime_write(int64_t epoch_seconds, char buf[XV_DATETIME_BUF])
{
    int64_t days = epoch_seconds >= 0 ? epoch_seconds / 86400 : -((-epoch_seconds + 86399) / 86400);
    int64_t second_of_day = epoch_seconds - days * 86400;
    int year, month, day;
    civil_from_days(days, &year, &month, &day);
    if (year < 0 || year > 9999) /* beyond four digits: as printf would write it */
        return (size_t)g_snprintf(buf, XV_DATETIME_BUF, "%04d%02d%02dT%02d:%02d:%02dZ", year,
                                  month, day, (int)(second_of_day / 3600),
                                  (int)(second_of_day / 60 % 60), (int)(second_of_day % 60));
    char *p = put_digits(buf, year, 4);
    p = put_digits(p, month, 2);
    p = put_digits(p, day, 2);
    *p++ = 'T';
    p = put_digits(p, (int)(second_of_day / 3600), 2);
    *p++ = ':';
    p = put_digits(p, (int)(second_of_day / 60 % 60), 2);
    *p++ = ':';
    p = put_digits(p, (int)(second_of_day % 60), 2);
    *p++ = 'Z';
    *p = '\0';
    return (size_t)(p - buf);
}

char *xv_datetime_format(int64_t epoch_seconds)
{
    char buf[XV_DATETIME_BUF];
    size_t len = xv_datetime_write(epoch_seconds, buf);
    return g_strndup(buf, len);
}

static bool read_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!g_ascii_isdigit((*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

bool xv_datetime_parse(const char *text, int64_t *epoch_seconds)
{
    const char *p = text;
    int year, mon, day, hour = 0, min = 0, sec = 0;
    if (!read_digits(&p, 4, &year))
        return false;
    if (*p == '-')
        p++;
    if (!read_digits(&p, 2, &mon))
        return false;
    if (*p == '-')
        p++;
    if (!read_digits(&p, 2, &day))
        return false;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!read_digits(&p, 2, &hour))
            return false;
        if (*p == ':')
            p++;
        if (!read_digits(&p, 2, &min))
            return false;
        if (*p == ':')
            p++;
        if (!read_digits(&p, 2, &sec))
            return false;
        if (*p == '.') { /* fractional seconds are dropped */
            p++;
            while (g_ascii_isdigit(*p))
                p++;
        }
    }
    int offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om = 0;
        p++;
        if (!read_digits(&p, 2, &oh))
            return false;
        if (*p == ':')
            p++;
        if (*p && !read_digits(&p, 2, &om))
            return false;
        offset = sign * (oh * 3600 + om * 60);
    }
    if (*p != '\0')
        return false;
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 ||
        sec > 60)
        return false;
    /* Days from civil (proleptic Gregorian), valid for all years here. */
    int y = year - (mon <= 2);
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (mon + (mon > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t)era * 146097 + doe - 719468;
    *epoch_seconds = days * 86400 + hour * 3600 + min * 60 + sec - offset;
    return true;
}

static void debug_append(GString *out, const Xv *v)
{
    switch (v->kind) {
    case XV_NIL:
        g_string_append(out, "nil");
        break;
    case XV_STRING: {
        g_autofree char *esc = g_strescape(xv_str(v), NULL);
        g_string_append_printf(out, "\"%s\"", esc);
        break;
    }
    case XV_INT:
        g_string_append_printf(out, "%" G_GINT64_FORMAT, (gint64)v->i);
        break;
    case XV_FLOAT:
        g_string_append_printf(out, "%.17g", v->f);
        break;
    case XV_BOOL:
        g_string_append(out, v->b ? "true" : "false");
        break;
    case XV_DATETIME: {
        g_autofree char *d = xv_datetime_format(v->i);
        g_string_append_printf(out, "@%s", d);
        break;
    }
    case XV_ARRAY:
        g_string_append_c(out, '[');
        for (guint i = 0; i < xv_len(v); i++) {
            if (i)
                g_string_append_c(out, ',');
            debug_append(out, xv_at(v, i));
        }
        g_string_append_c(out, ']');
        break;
    case XV_LAZY: /* materialised by the caller */
        g_string_append(out, "lazy");
        break;
    case XV_STRUCT:
        g_string_append_c(out, '{');
        for (guint i = 0; i < xv_len(v); i++) {
            const XvMember *m = xv_member_at(v, i);
            g_autofree char *esc = g_strescape(m->key, NULL);
            if (i)
                g_string_append_c(out, ',');
            g_string_append_printf(out, "\"%s\":", esc);
            debug_append(out, &m->value);
        }
        g_string_append_c(out, '}');
        break;
    }
}

char *xv_to_debug_string(const Xv *v)
{
    GString *out = g_string_new(NULL);
    g_autoptr(Xv) concrete = v->kind == XV_LAZY ? xv_dup(v) : NULL;
    debug_append(out, concrete ? concrete : v);
    return g_string_free(out, FALSE);
}
