/* typed_value.c: wire value -> canonical typed value. */
#include "typed_value.h"

#include <errno.h>
#include <stdlib.h>

#include "db_text.h"

static Xv *type_error(XapiError **err, const char *what)
{
    xapi_error_set(err, "FIELD_TYPE_ERROR", what, NULL);
    return NULL;
}

static bool parse_int(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return false;
    *out = n;
    return true;
}

/* Map keys arrive as struct member names; give them their DB text form. */
static char *map_key(const DmType *key_type, const char *key, const char *what,
                     XapiError **err)
{
    g_autoptr(Xv) wire = xv_new_string(key);
    g_autoptr(Xv) typed = typed_value_from_wire(key_type, wire, what, err);
    return typed ? db_text_from_value(key_type, typed) : NULL;
}

Xv *typed_value_from_wire(const DmType *type, const Xv *wire, const char *what,
                          XapiError **err)
{
    switch (type->kind) {
    case DM_STRING:
    case DM_REF:
        if (wire->kind != XV_STRING)
            return type_error(err, what);
        return xv_dup(wire);
    case DM_ENUM: {
        if (wire->kind != XV_STRING)
            return type_error(err, what);
        const char *member = dm_enum_value_from_wire(type->enumeration, xv_str(wire));
        if (!member) {
            xapi_error_set(err, "INVALID_VALUE", what, xv_str(wire), NULL);
            return NULL;
        }
        return xv_new_static_string(member); /* enum values are shared */
    }
    case DM_INT: {
        int64_t n;
        if (wire->kind == XV_INT)
            return xv_new_int(wire->i);
        if (wire->kind == XV_STRING && parse_int(xv_str(wire), &n))
            return xv_new_int(n);
        return type_error(err, what);
    }
    case DM_FLOAT: {
        if (wire->kind == XV_FLOAT)
            return xv_new_float(wire->f);
        if (wire->kind == XV_INT)
            return xv_new_float((double)wire->i);
        if (wire->kind == XV_STRING) {
            char *end;
            const char *s = xv_str(wire);
            double d = g_ascii_strtod(s, &end);
            if (end != s && !*end)
                return xv_new_float(d);
        }
        return type_error(err, what);
    }
    case DM_BOOL:
        if (wire->kind == XV_BOOL)
            return xv_new_bool(wire->b);
        if (wire->kind == XV_STRING) {
            const char *s = xv_str(wire);
            if (g_ascii_strcasecmp(s, "true") == 0 || g_str_equal(s, "1"))
                return xv_new_bool(true);
            if (g_ascii_strcasecmp(s, "false") == 0 || g_str_equal(s, "0"))
                return xv_new_bool(false);
        }
        return type_error(err, what);
    case DM_DATETIME: {
        int64_t t;
        if (wire->kind == XV_DATETIME)
            return xv_new_datetime(wire->i);
        if (wire->kind == XV_STRING && xv_datetime_parse(xv_str(wire), &t))
            return xv_new_datetime(t);
        return type_error(err, what);
    }
    case DM_SET: {
        if (wire->kind != XV_ARRAY)
            return type_error(err, what);
        g_autoptr(Xv) out = xv_new_array();
        for (guint i = 0; i < xv_len(wire); i++) {
            Xv *e = typed_value_from_wire(type->elem, xv_at(wire, i), what, err);
            if (!e)
                return NULL;
            xv_array_append(out, e);
        }
        return g_steal_pointer(&out);
    }
    case DM_MAP: {
        if (wire->kind != XV_STRUCT)
            return type_error(err, what);
        g_autoptr(Xv) out = xv_new_struct();
        for (guint i = 0; i < xv_len(wire); i++) {
            const XvMember *m = xv_member_at(wire, i);
            g_autofree char *key = map_key(type->key, m->key, what, err);
            if (!key)
                return NULL;
            Xv *e = typed_value_from_wire(type->elem, &m->value, what, err);
            if (!e)
                return NULL;
            xv_struct_set(out, key, e);
        }
        return g_steal_pointer(&out);
    }
    case DM_RECORD:
        /* Records are checked field by field by their consumer (create). */
        if (wire->kind != XV_STRUCT)
            return type_error(err, what);
        return xv_dup(wire);
    case DM_OPTION:
        if (wire->kind == XV_NIL)
            return xv_new_nil();
        return typed_value_from_wire(type->elem, wire, what, err);
    case DM_VOID:
        return xv_new_string("");
    }
    return type_error(err, what);
}
