/* wire_check.c: refuses calls whose parameters hold text the wire may not
 * carry, before anything else looks at them. */
#include "wire_check.h"

#include "wire_text.h"

static int refuse(const char *s, XapiError **err)
{
    g_autofree char *shown = wire_text_repair(s);
    return xapi_error_set(err, "INVALID_VALUE", "Invalid UTF-8 string in parameter", shown,
                          NULL);
}

static int check_value(const Xv *v, XapiError **err)
{
    switch (v->kind) {
    case XV_STRING:
        return v->s && !wire_text_is_valid(v->s) ? refuse(v->s, err) : 0;
    case XV_ARRAY:
        for (guint i = 0; i < xv_len(v); i++)
            if (check_value(xv_at(v, i), err) < 0)
                return -1;
        return 0;
    case XV_STRUCT:
        for (guint i = 0; i < xv_len(v); i++) {
            const XvMember *m = xv_member_at(v, i);
            if (!wire_text_is_valid(m->key))
                return refuse(m->key, err);
            if (check_value(&m->value, err) < 0)
                return -1;
        }
        return 0;
    default: /* numbers, booleans, dates; requests hold no lazy values */
        return 0;
    }
}

int wire_check_params(const Xv *params, XapiError **err)
{
    return check_value(params, err);
}
