/* db_text.c: conversion between typed values and their DB text form. */
#include "db_text.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>

static char *scalar_text(const DmType *type, const Xv *v)
{
    switch (v->kind) {
    case XV_STRING:
        return g_strdup(xv_str(v));
    case XV_INT:
        return g_strdup_printf("%" G_GINT64_FORMAT, (gint64)v->i);
    case XV_FLOAT:
        return g_strdup_printf("%.17g", v->f);
    case XV_BOOL:
        return g_strdup(v->b ? "true" : "false");
    case XV_DATETIME:
        return xv_datetime_format(v->i);
    case XV_NIL:
        return g_strdup(type->kind == DM_REF ? "OpaqueRef:NULL" : "");
    default:
        return NULL;
    }
}

char *db_text_from_value(const DmType *type, const Xv *v)
{
    switch (type->kind) {
    case DM_SET: {
        json_object *arr = json_object_new_array();
        for (guint i = 0; i < xv_len(v); i++) {
            g_autofree char *t = db_text_from_value(type->elem, xv_at(v, i));
            json_object_array_add(arr, json_object_new_string(t ? t : ""));
        }
        char *out = g_strdup(json_object_to_json_string_ext(
            arr, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(arr);
        return out;
    }
    case DM_MAP:
    case DM_RECORD: {
        json_object *obj = json_object_new_object();
        for (guint i = 0; v->kind == XV_STRUCT && i < xv_len(v); i++) {
            const XvMember *m = xv_member_at(v, i);
            g_autofree char *t = type->kind == DM_MAP
                                     ? db_text_from_value(type->elem, &m->value)
                                     : scalar_text(type, &m->value);
            json_object_object_add(obj, m->key, json_object_new_string(t ? t : ""));
        }
        char *out = g_strdup(json_object_to_json_string_ext(
            obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(obj);
        return out;
    }
    case DM_OPTION:
        return v->kind == XV_NIL ? g_strdup("") : db_text_from_value(type->elem, v);
    default:
        return scalar_text(type, v);
    }
}

static Xv *parse_fail(XapiError **err, const DmType *type, const char *text)
{
    xapi_error_internal(err, "stored value %.64s does not parse as %s", text,
                        type->text);
    return NULL;
}

static Xv *json_to_value(const DmType *type, const char *text, XapiError **err)
{
    json_object *j = json_tokener_parse(text);
    json_type want = type->kind == DM_SET ? json_type_array : json_type_object;
    if (!j || !json_object_is_type(j, want)) {
        json_object_put(j);
        return parse_fail(err, type, text);
    }
    Xv *out = type->kind == DM_SET ? xv_new_array() : xv_new_struct();
    if (type->kind == DM_SET) {
        for (size_t i = 0; i < json_object_array_length(j); i++) {
            json_object *item = json_object_array_get_idx(j, i);
            Xv *e = db_text_to_value(type->elem, json_object_get_string(item), err);
            if (!e)
                goto fail;
            xv_array_append(out, e);
        }
    } else {
        json_object_object_foreach(j, key, val)
        {
            const DmType *vt = type->kind == DM_MAP ? type->elem : NULL;
            Xv *e = vt ? db_text_to_value(vt, json_object_get_string(val), err)
                       : xv_new_string(json_object_get_string(val));
            if (!e)
                goto fail;
            xv_struct_set(out, key, e);
        }
    }
    json_object_put(j);
    return out;
fail:
    json_object_put(j);
    xv_free(out);
    return NULL;
}

Xv *db_text_to_value(const DmType *type, const char *text, XapiError **err)
{
    if (!text)
        return db_type_zero(type);
    switch (type->kind) {
    case DM_ENUM: {
        const char *member = dm_enum_value(type->enumeration, text);
        return member ? xv_new_static_string(member) : xv_new_string(text);
    }
    case DM_STRING:
    case DM_REF:
        return xv_new_string(text);
    case DM_INT: {
        char *end;
        errno = 0;
        long long n = strtoll(text, &end, 10);
        if (errno || end == text || *end)
            return parse_fail(err, type, text);
        return xv_new_int(n);
    }
    case DM_FLOAT: {
        char *end;
        double d = g_ascii_strtod(text, &end);
        if (end == text || *end)
            return parse_fail(err, type, text);
        return xv_new_float(d);
    }
    case DM_BOOL:
        if (g_str_equal(text, "true"))
            return xv_new_bool(true);
        if (g_str_equal(text, "false"))
            return xv_new_bool(false);
        return parse_fail(err, type, text);
    case DM_DATETIME: {
        int64_t t;
        if (!xv_datetime_parse(text, &t))
            return parse_fail(err, type, text);
        return xv_new_datetime(t);
    }
    case DM_SET:
    case DM_MAP:
    case DM_RECORD:
        return json_to_value(type, text, err);
    case DM_OPTION:
        return *text ? db_text_to_value(type->elem, text, err) : xv_new_nil();
    case DM_VOID:
        return xv_new_string("");
    }
    return parse_fail(err, type, text);
}

Xv *db_type_zero(const DmType *type)
{
    switch (type->kind) {
    case DM_INT:
        return xv_new_int(0);
    case DM_FLOAT:
        return xv_new_float(0);
    case DM_BOOL:
        return xv_new_bool(false);
    case DM_DATETIME:
        return xv_new_datetime(0);
    case DM_REF:
        return xv_new_string("OpaqueRef:NULL");
    case DM_ENUM:
        return type->enumeration->n_values ? xv_new_static_string(type->enumeration->values[0])
                                           : xv_new_string("");
    case DM_SET:
        return xv_new_array();
    case DM_MAP:
    case DM_RECORD:
        return xv_new_struct();
    case DM_OPTION:
        return xv_new_nil();
    default:
        return xv_new_string("");
    }
}

Xv *db_field_default(const DmField *field)
{
    if (field->default_db) {
        Xv *v = db_text_to_value(field->type, field->default_db, NULL);
        if (v)
            return v;
    }
    return db_type_zero(field->type);
}
