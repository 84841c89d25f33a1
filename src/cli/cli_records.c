/* cli_records.c: the generic commands of every class (XAPI's
 * make_param_funs): <class>-list with params= and field filters, and
 * -param-list/-get/-set/-add/-remove/-clear, over the record tables
 * generated from the datamodel (cli_classes.c). Reads come from the
 * object tables; writes go through the class's setters, so that their
 * checks and permissions apply. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "db.h"

const CliClass *cli_class_by_dm(const char *dm_class)
{
    for (unsigned i = 0; i < cli_n_classes; i++)
        if (strcmp(cli_classes[i].dm_class, dm_class) == 0)
            return &cli_classes[i];
    return NULL;
}

static const CliField *field_lookup(const CliClass *cls, const char *name)
{
    for (unsigned i = 0; i < cls->n_fields; i++)
        if (strcmp(cls->fields[i].name, name) == 0)
            return &cls->fields[i];
    return NULL;
}

/* The datamodel field a CLI field shows (on the via object's class). */
static const DmField *dm_field_of(const CliClass *cls, const CliField *f)
{
    const DmClass *dc = dm_class_by_name(cls->dm_class);
    if (f->call)
        return NULL;
    if (!f->via)
        return dm_field_by_name(dc, f->field);
    const DmField *ref = dm_field_by_name(dc, f->via);
    const DmClass *target = ref ? dm_class_by_name(ref->type->class_name) : NULL;
    return target ? dm_field_by_name(target, f->field) : NULL;
}

/* ---- values as xe prints them (Record_util), under the read lock ---- */

static void format_value(GString *out, const DmType *t, const Xv *v)
{
    char buf[XV_DATETIME_BUF];
    switch (t->kind) {
    case DM_REF: {
        DbRow *row = xv_str(v) ? db_lookup_any(xv_str(v)) : NULL;
        const Xv *uuid = row ? db_get(row, "uuid") : NULL;
        g_string_append(out, uuid ? xv_str(uuid) : "<not in database>");
        break;
    }
    case DM_SET:
        for (guint i = 0; i < xv_len(v); i++) {
            if (i)
                g_string_append(out, "; ");
            format_value(out, t->elem, xv_at(v, i));
        }
        break;
    case DM_MAP:
        for (guint i = 0; i < xv_len(v); i++) {
            const XvMember *m = xv_member_at(v, i);
            g_string_append_printf(out, "%s%s: ", i ? "; " : "", m->key);
            format_value(out, t->elem, &m->value);
        }
        break;
    case DM_OPTION:
        format_value(out, t->elem, v);
        break;
    case DM_ENUM: /* Record_util writes power states in lower case ("running") */
        if (strcmp(t->enumeration->name, "vm_power_state") == 0) {
            g_autofree char *low = g_ascii_strdown(xv_str(v), -1);
            g_string_append(out, low);
        } else {
            g_string_append(out, xv_str(v));
        }
        break;
    default:
        switch (v->kind) {
        case XV_STRING:
            g_string_append(out, xv_str(v));
            break;
        case XV_INT:
            g_string_append_printf(out, "%" G_GINT64_FORMAT, v->i);
            break;
        case XV_FLOAT:
            g_string_append_printf(out, "%.3f", v->f);
            break;
        case XV_BOOL:
            g_string_append(out, v->b ? "true" : "false");
            break;
        case XV_DATETIME:
            xv_datetime_write(v->i, buf);
            g_string_append(out, buf);
            break;
        default:
            break;
        }
    }
}

/* The value of f on row, or NULL when its via object is gone. */
static const Xv *field_value(const CliClass *cls, const CliField *f, DbRow *row)
{
    if (!f->via)
        return db_get(row, f->field);
    const Xv *ref = db_get(row, f->via);
    DbRow *target = ref && xv_str(ref) ? db_lookup_any(xv_str(ref)) : NULL;
    return target ? db_get(target, f->field) : NULL;
}

static char *field_text(const CliClass *cls, const CliField *f, DbRow *row)
{
    const DmField *df = f->call ? NULL : dm_field_of(cls, f);
    const Xv *v = df ? field_value(cls, f, row) : NULL;
    if (!v)
        return g_strdup("<not in database>");
    GString *out = g_string_new(NULL);
    format_value(out, df->type, v);
    return g_string_free(out, FALSE);
}

/* The accessor of kind on df, by XAPI's names (set_name_label,
 * add_to_other_config, add_tags...), implicit or hand-written; NULL when
 * the class has none implemented. */
static const DmMessage *accessor(const DmField *df, DmImplicitKind kind)
{
    const char *fmt = kind == DM_IMPLICIT_SET_FIELD         ? "set_%s"
                      : kind == DM_IMPLICIT_ADD_TO_MAP      ? "add_to_%s"
                      : kind == DM_IMPLICIT_REMOVE_FROM_MAP ? "remove_from_%s"
                      : kind == DM_IMPLICIT_ADD_TO_SET      ? "add_%s"
                                                            : "remove_%s";
    g_autofree char *name = g_strdup_printf(fmt, df->name);
    for (unsigned i = 0; i < df->cls->n_messages; i++) {
        const DmMessage *m = &df->cls->messages[i];
        if (strcmp(m->name, name) == 0)
            return dm_message_implemented(m) ? m : NULL;
    }
    return NULL;
}

static bool settable(const CliField *f, const DmField *df)
{
    if (f->via || !df || df->derived)
        return false;
    DmKind k = df->type->kind;
    return accessor(df, k == DM_MAP ? DM_IMPLICIT_ADD_TO_MAP
                        : k == DM_SET ? DM_IMPLICIT_ADD_TO_SET : DM_IMPLICIT_SET_FIELD) != NULL;
}

/* print_field's key: "name ( RW)", "(MRO)", "(SRW)". */
static char *field_key(const CliClass *cls, const CliField *f)
{
    const DmField *df = dm_field_of(cls, f);
    bool rw = settable(f, df);
    const char *q = rw ? " ( RW)" : " ( RO)";
    if (df && df->type->kind == DM_SET)
        q = rw ? " (SRW)" : " (SRO)";
    else if (df && df->type->kind == DM_MAP)
        q = rw ? " (MRW)" : " (MRO)";
    return g_strconcat(f->name, q, df && df->state == DM_DEPRECATED ? " [DEPRECATED]" : "", NULL);
}

/* ---- selection: the field filters of <class>-list and the selectors ---- */

static bool matches(const CliClass *cls, DbRow *row, const char *key, const char *value,
                    bool *unknown)
{
    const char *colon = strchr(key, ':');
    g_autofree char *name = colon ? g_strndup(key, (gsize)(colon - key)) : g_strdup(key);
    const CliField *f = field_lookup(cls, name);
    const DmField *df = f ? dm_field_of(cls, f) : NULL;
    if (!df) {
        *unknown = true;
        return false;
    }
    const Xv *v = field_value(cls, f, row);
    if (!v)
        return false;
    if (colon && df->type->kind == DM_MAP) { /* map-param:key=value */
        const Xv *m = xv_struct_get(v, colon + 1);
        g_autoptr(GString) text = g_string_new(NULL);
        if (m)
            format_value(text, df->type->elem, m);
        return m && strcmp(text->str, value) == 0;
    }
    if (colon && df->type->kind == DM_SET && strcmp(colon + 1, "contains") == 0) {
        for (guint i = 0; i < xv_len(v); i++) {
            g_autoptr(GString) text = g_string_new(NULL);
            format_value(text, df->type->elem, xv_at(v, i));
            if (strcmp(text->str, value) == 0)
                return true;
        }
        return false;
    }
    if (colon) {
        *unknown = true;
        return false;
    }
    g_autoptr(GString) text = g_string_new(NULL);
    format_value(text, df->type, v);
    return strcmp(text->str, value) == 0;
}

static bool skipped(const char *key, const char *const *skip)
{
    if (cli_param_is_standard(key) || g_str_has_prefix(key, "database:"))
        return true;
    for (; skip && *skip; skip++)
        if (strcmp(key, *skip) == 0)
            return true;
    return false;
}

typedef struct {
    const CliClass *cls;
    GPtrArray *filters; /* CliParam* (borrowed) */
    GPtrArray *refs;
    const char *unknown;
} SelectCtx;

static bool select_row(DbRow *row, void *data)
{
    SelectCtx *s = data;
    for (guint i = 0; i < s->filters->len; i++) {
        const CliParam *p = g_ptr_array_index(s->filters, i);
        bool unknown = false;
        if (!matches(s->cls, row, p->key, p->value, &unknown)) {
            if (unknown) {
                s->unknown = p->key;
                return false;
            }
            return true;
        }
    }
    g_ptr_array_add(s->refs, g_strdup(row->ref));
    return true;
}

GPtrArray *cli_select(CliCtx *ctx, const CliClass *cls, const char *const *defaults,
                      const char *const *skip)
{
    g_autoptr(GPtrArray) owned = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) filters = g_ptr_array_new();
    for (; defaults && *defaults; defaults++) {
        const char *eq = strchr(*defaults, '=');
        CliParam *p = g_new(CliParam, 1);
        p->key = g_strndup(*defaults, (gsize)(eq - *defaults));
        p->value = (char *)eq + 1;
        g_ptr_array_add(owned, p->key);
        g_ptr_array_add(owned, p);
        g_ptr_array_add(filters, p); /* as well as the caller's, as XAPI's */
    }
    for (guint i = 0; i < ctx->params->len; i++) {
        CliParam *p = g_ptr_array_index(ctx->params, i);
        if (!skipped(p->key, skip))
            g_ptr_array_add(filters, p);
    }
    SelectCtx s = {.cls = cls, .filters = filters, .refs = g_ptr_array_new_with_free_func(g_free)};
    db_read_begin();
    db_foreach(dm_class_by_name(cls->dm_class), select_row, &s);
    db_read_end();
    if (s.unknown) {
        const char *colon = strchr(s.unknown, ':');
        g_autofree char *name =
            colon ? g_strndup(s.unknown, (gsize)(colon - s.unknown)) : g_strdup(s.unknown);
        xapi_error_set(&ctx->error, "Missing parameter", name, NULL);
        g_ptr_array_free(s.refs, TRUE);
        return NULL;
    }
    return s.refs;
}

/* ---- printing ---- */

static bool wanted(const char *name, char **names)
{
    if (!names)
        return true;
    for (; *names; names++)
        if (strcmp(*names, name) == 0)
            return true;
    return false;
}

/* A field computed by a call ("host.compute_free_memory"), made without
 * the read lock held: its text, or XAPI's "<not in database>". */
static char *call_text(CliCtx *ctx, const CliClass *cls, const CliField *f, const char *ref)
{
    g_autofree char *method = g_strdup_printf("%s.%s", cls->dm_class, f->call);
    XapiError *saved = g_steal_pointer(&ctx->error);
    g_autoptr(Xv) r = cli_call_s(ctx, method, ref, NULL);
    g_clear_pointer(&ctx->error, xapi_error_free); /* shown as absent, as XAPI's default */
    ctx->error = saved;
    if (!r)
        return g_strdup("<not in database>");
    if (r->kind == XV_INT)
        return g_strdup_printf("%" G_GINT64_FORMAT, r->i);
    return g_strdup(xv_str(r) ? xv_str(r) : "");
}

/* names: the fields to print, NULL for all. */
static int print_records(CliCtx *ctx, const CliClass *cls, GPtrArray *refs, char **names)
{
    g_autoptr(GPtrArray) records = g_ptr_array_new_with_free_func((GDestroyNotify)g_ptr_array_unref);
    g_autoptr(GPtrArray) pending = g_ptr_array_new(); /* CliPair* of call fields, then their ref */
    const DmClass *dc = dm_class_by_name(cls->dm_class);
    db_read_begin();
    for (guint i = 0; i < refs->len; i++) {
        DbRow *row = db_lookup(dc, g_ptr_array_index(refs, i));
        if (!row)
            continue; /* gone since it was selected */
        GPtrArray *rec = g_ptr_array_new_with_free_func(cli_pair_free);
        for (unsigned j = 0; j < cls->n_fields; j++) {
            const CliField *f = &cls->fields[j];
            if (!wanted(f->name, names))
                continue;
            CliPair *p = g_new(CliPair, 1);
            p->key = field_key(cls, f);
            p->value = f->call ? NULL : field_text(cls, f, row);
            if (f->call) {
                g_ptr_array_add(pending, p);
                g_ptr_array_add(pending, (gpointer)f);
                g_ptr_array_add(pending, g_ptr_array_index(refs, i));
            }
            g_ptr_array_add(rec, p);
        }
        g_ptr_array_add(records, rec);
    }
    db_read_end();
    for (guint i = 0; i + 2 < pending->len; i += 3) {
        CliPair *p = g_ptr_array_index(pending, i);
        p->value = call_text(ctx, cls, g_ptr_array_index(pending, i + 1),
                             g_ptr_array_index(pending, i + 2));
    }
    cli_out_records(ctx, records);
    return 0;
}

int cli_print_objects(CliCtx *ctx, const CliClass *cls, GPtrArray *refs,
                      const char *const *def)
{
    const char *params = cli_param(ctx, "params");
    g_auto(GStrv) names = NULL;
    if (params && strcmp(params, "all") != 0)
        names = g_strsplit(params, ",", -1);
    else if (!params && def)
        names = g_strdupv((char **)def);
    return print_records(ctx, cls, refs, names);
}

void cli_print_object(CliCtx *ctx, const char *title, const CliClass *cls, const char *ref,
                      const char *const *def)
{
    g_autoptr(GPtrArray) one = g_ptr_array_new();
    g_ptr_array_add(one, (gpointer)ref);
    cli_out_msg(ctx, title);
    cli_print_objects(ctx, cls, one, def);
}

/* ---- the commands ---- */

static int list_cmd(CliCtx *ctx)
{
    const CliClass *cls = ctx->cmd->cls;
    g_autoptr(GPtrArray) refs = cli_select(ctx, cls, cls->filters, NULL);
    if (!refs)
        return -1;
    return cli_print_objects(ctx, cls, refs, cls->list_default);
}

static char *object_of(CliCtx *ctx)
{
    return cli_ref_of_uuid(ctx, ctx->cmd->cls->dm_class, cli_param(ctx, "uuid"));
}

static int param_list_cmd(CliCtx *ctx)
{
    g_autofree char *ref = object_of(ctx);
    if (!ref)
        return -1;
    g_autoptr(GPtrArray) refs = g_ptr_array_new();
    g_ptr_array_add(refs, ref);
    return print_records(ctx, ctx->cmd->cls, refs, NULL); /* every field, whatever params= */
}

static const CliField *named_field(CliCtx *ctx, const char *name)
{
    const CliField *f = field_lookup(ctx->cmd->cls, name);
    if (!f)
        xapi_error_set(&ctx->error, "Missing parameter", name, NULL);
    return f;
}

static int param_get_cmd(CliCtx *ctx)
{
    g_autofree char *ref = object_of(ctx);
    const CliClass *cls = ctx->cmd->cls;
    const CliField *f = ref ? named_field(ctx, cli_param(ctx, "param-name")) : NULL;
    if (!f)
        return -1;
    const char *key = cli_param(ctx, "param-key");
    const DmField *df = dm_field_of(cls, f);
    g_autofree char *text = NULL;
    db_read_begin();
    DbRow *row = db_lookup(dm_class_by_name(cls->dm_class), ref);
    if (row && key && df && df->type->kind == DM_MAP) {
        const Xv *map = field_value(cls, f, row);
        const Xv *v = map ? xv_struct_get(map, key) : NULL;
        if (v) {
            GString *out = g_string_new(NULL);
            format_value(out, df->type->elem, v);
            text = g_string_free(out, FALSE);
        }
    } else if (row) {
        text = field_text(cls, f, row);
    }
    db_read_end();
    if (!text)
        return key ? cli_fail(ctx, "Key %s not found in map", key)
                   : xapi_error_set(&ctx->error, "HANDLE_INVALID", cls->dm_class, ref, NULL);
    const char *items[] = {text};
    cli_out_list(ctx, items, 1);
    return 0;
}

/* A parameter's text as a value of type t (refs given as uuids). */
static Xv *typed(CliCtx *ctx, const char *name, const DmType *t, const char *text)
{
    char *end = NULL;
    switch (t->kind) {
    case DM_INT: {
        long long i = strtoll(text, &end, 10);
        if (!*text || *end)
            return cli_fail(ctx, "Parameter %s must be an integer", name), NULL;
        return xv_new_int(i);
    }
    case DM_FLOAT: {
        double f = strtod(text, &end);
        if (!*text || *end)
            return cli_fail(ctx, "Parameter %s must be a floating-point number", name), NULL;
        return xv_new_float(f);
    }
    case DM_BOOL:
        if (g_ascii_strcasecmp(text, "true") && g_ascii_strcasecmp(text, "false"))
            return cli_fail(ctx, "Parameter %s must be a boolean (true or false)", name), NULL;
        return xv_new_bool(g_ascii_strcasecmp(text, "true") == 0);
    case DM_DATETIME: {
        int64_t s = 0;
        if (!xv_datetime_parse(text, &s))
            return cli_fail(ctx, "Parameter %s must be a date", name), NULL;
        return xv_new_datetime(s);
    }
    case DM_REF: {
        if (!*text || g_str_has_prefix(text, "OpaqueRef:"))
            return xv_new_string(*text ? text : "OpaqueRef:NULL");
        char *ref = cli_ref_of_uuid(ctx, t->class_name, text);
        return ref ? xv_new_string_take(ref) : NULL;
    }
    case DM_OPTION:
        return typed(ctx, name, t->elem, text);
    default:
        return xv_new_string(text);
    }
}

static int call_accessor(CliCtx *ctx, const DmMessage *m, const char *ref, Xv *a, Xv *b)
{
    Xv *args = xv_new_array();
    xv_array_append_string(args, ref);
    if (a)
        xv_array_append(args, a);
    if (b)
        xv_array_append(args, b);
    g_autoptr(Xv) r = cli_call(ctx, m->wire_name, args);
    return r ? 0 : -1;
}

static int set_one(CliCtx *ctx, const char *ref, const CliParam *p)
{
    const CliClass *cls = ctx->cmd->cls;
    const char *colon = strchr(p->key, ':');
    g_autofree char *name = colon ? g_strndup(p->key, (gsize)(colon - p->key)) : g_strdup(p->key);
    const CliField *f = named_field(ctx, name);
    if (!f)
        return -1;
    const DmField *df = dm_field_of(cls, f);
    if (colon) {
        if (!df || df->type->kind != DM_MAP)
            return xapi_error_set(&ctx->error, "Missing parameter", p->key, NULL);
        const DmMessage *add = settable(f, df) ? accessor(df, DM_IMPLICIT_ADD_TO_MAP) : NULL;
        const DmMessage *rm = add ? accessor(df, DM_IMPLICIT_REMOVE_FROM_MAP) : NULL;
        if (!add || !rm)
            return cli_fail(ctx, "Map field '%s' is read-only.", name);
        if (call_accessor(ctx, rm, ref, xv_new_string(colon + 1), NULL) < 0)
            return -1;
        Xv *v = typed(ctx, p->key, df->type->elem, p->value);
        return v ? call_accessor(ctx, add, ref, xv_new_string(colon + 1), v) : -1;
    }
    if (df && df->type->kind == DM_SET)
        return cli_fail(ctx, "Cannot param-set on set fields");
    const DmMessage *set = settable(f, df) ? accessor(df, DM_IMPLICIT_SET_FIELD) : NULL;
    if (!set && df && df->type->kind == DM_MAP)
        return cli_fail(ctx, "Field '%s' is a map or set. use the 'name:key=value' syntax.", name);
    if (!set)
        return cli_fail(ctx, "Field '%s' is read-only.", name);
    Xv *v = typed(ctx, name, df->type, p->value);
    return v ? call_accessor(ctx, set, ref, v, NULL) : -1;
}

static int param_set_cmd(CliCtx *ctx)
{
    g_autofree char *ref = object_of(ctx);
    if (!ref)
        return -1;
    for (guint i = 0; i < ctx->params->len; i++) {
        const CliParam *p = g_ptr_array_index(ctx->params, i);
        if (strcmp(p->key, "uuid") != 0 && !cli_param_is_standard(p->key) &&
            set_one(ctx, ref, p) < 0)
            return -1;
    }
    return 0;
}

/* What param-add, -remove and -clear work on: param-name= on the object uuid= names. */
typedef struct {
    char *ref;
    const CliField *f;
    const DmField *df;
    bool rw; /* settable(f, df) */
} Collection;

static void collection_clear(Collection *c) { g_free(c->ref); }
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Collection, collection_clear)

/* 0, or -1 with the error set. */
static int collection(CliCtx *ctx, Collection *c)
{
    c->ref = object_of(ctx);
    c->f = c->ref ? named_field(ctx, cli_param(ctx, "param-name")) : NULL;
    c->df = c->f ? dm_field_of(ctx->cmd->cls, c->f) : NULL;
    if (!c->df)
        return -1;
    c->rw = settable(c->f, c->df);
    return 0;
}

/* The remove accessor of a map or set field the CLI may change, or NULL. */
static const DmMessage *remover(const Collection *c)
{
    bool map = c->df->type->kind == DM_MAP;
    return c->rw ? accessor(c->df, map ? DM_IMPLICIT_REMOVE_FROM_MAP : DM_IMPLICIT_REMOVE_FROM_SET)
                 : NULL;
}

static int param_add_cmd(CliCtx *ctx)
{
    g_auto(Collection) c = {0};
    if (collection(ctx, &c) < 0)
        return -1;
    const DmType *t = c.df->type;
    if (t->kind == DM_SET) {
        const DmMessage *add = c.rw ? accessor(c.df, DM_IMPLICIT_ADD_TO_SET) : NULL;
        if (!add)
            return cli_fail(ctx, "Parameter is read-only");
        const char *key = cli_param(ctx, "param-key");
        if (!key)
            return cli_fail(ctx, "When adding a key to a set, use the syntax: *-param-add "
                                 "param-name=<name> param-key=<key>");
        Xv *v = typed(ctx, "param-key", t->elem, key);
        return v ? call_accessor(ctx, add, c.ref, v, NULL) : -1;
    }
    if (t->kind != DM_MAP)
        return cli_fail(ctx, "Can only add to parameters of type Set or Map");
    const DmMessage *add = c.rw ? accessor(c.df, DM_IMPLICIT_ADD_TO_MAP) : NULL;
    if (!add)
        return cli_fail(ctx, "Parameter is read-only");
    for (guint i = 0; i < ctx->params->len; i++) {
        const CliParam *p = g_ptr_array_index(ctx->params, i);
        if (strcmp(p->key, "uuid") == 0 || strcmp(p->key, "param-name") == 0 ||
            strcmp(p->key, "param-key") == 0 || cli_param_is_standard(p->key))
            continue;
        Xv *v = typed(ctx, p->key, t->elem, p->value);
        if (!v || call_accessor(ctx, add, c.ref, xv_new_string(p->key), v) < 0)
            return -1;
    }
    return 0;
}

/* The keys of a map or the elements of a set, as the remove calls take them. */
static GPtrArray *members(const CliClass *cls, const Collection *c)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    db_read_begin();
    DbRow *row = db_lookup(dm_class_by_name(cls->dm_class), c->ref);
    const Xv *v = row ? field_value(cls, c->f, row) : NULL;
    for (guint i = 0; v && i < xv_len(v); i++)
        g_ptr_array_add(out, g_strdup(c->df->type->kind == DM_MAP ? xv_member_at(v, i)->key
                                                                   : xv_str(xv_at(v, i))));
    db_read_end();
    return out;
}

static int param_remove_cmd(CliCtx *ctx)
{
    g_auto(Collection) c = {0};
    if (collection(ctx, &c) < 0)
        return -1;
    const char *key = cli_param(ctx, "param-key");
    const DmType *t = c.df->type;
    bool map = t->kind == DM_MAP;
    if (!map && t->kind != DM_SET)
        return cli_fail(ctx, "Can only remove from parameters of type Set or Map");
    const DmMessage *rm = remover(&c);
    if (!rm)
        return cli_fail(ctx, "Cannot remove parameters from read-only map");
    g_autoptr(Xv) v = typed(ctx, "param-key", map ? t->key : t->elem, key);
    if (!v)
        return -1;
    g_autoptr(GPtrArray) have = members(ctx->cmd->cls, &c);
    bool found = false;
    for (guint i = 0; i < have->len; i++)
        found |= strcmp(g_ptr_array_index(have, i), xv_str(v)) == 0;
    if (!found)
        return cli_fail(ctx, map ? "Key %s is not in map" : "Key %s is not in the set", key);
    return call_accessor(ctx, rm, c.ref, xv_dup(v), NULL);
}

static int param_clear_cmd(CliCtx *ctx)
{
    g_auto(Collection) c = {0};
    if (collection(ctx, &c) < 0)
        return -1;
    DmKind kind = c.df->type->kind;
    if (kind == DM_MAP || kind == DM_SET) {
        const DmMessage *rm = remover(&c);
        if (!rm)
            return cli_fail(ctx, "Can only clear RW parameters");
        g_autoptr(GPtrArray) have = members(ctx->cmd->cls, &c);
        for (guint i = 0; i < have->len; i++)
            if (call_accessor(ctx, rm, c.ref, xv_new_string(g_ptr_array_index(have, i)), NULL) < 0)
                return -1;
        return 0;
    }
    const DmMessage *set = c.rw ? accessor(c.df, DM_IMPLICIT_SET_FIELD) : NULL;
    if (!set)
        return cli_fail(ctx, "Can only clear RW parameters");
    if (kind != DM_STRING)
        return cli_fail(ctx, "Cannot clear this parameter");
    return call_accessor(ctx, set, c.ref, xv_new_string(""), NULL);
}

static void add_generic(GPtrArray *table, const CliClass *cls, const char *suffix,
                        const char *const *reqd, const char *const *optn, const char *help,
                        unsigned flags, CliFn fn)
{
    g_autofree char *name = g_strdup_printf("%s-%s", cls->name, suffix);
    cli_table_add(table, name, reqd, optn, help, flags, fn);
    ((CliCommand *)g_ptr_array_index(table, table->len - 1))->cls = cls;
}

void cli_records_register(GPtrArray *table)
{
    for (unsigned i = 0; i < cli_n_classes; i++) {
        const CliClass *cls = &cli_classes[i];
        if (!dm_class_by_name(cls->dm_class) || !dm_class_by_name(cls->dm_class)->stored)
            continue;
        bool view = strcmp(cls->name, cli_class_by_dm(cls->dm_class)->name) != 0;
        g_autofree char *help = g_strdup_printf(
            "Lists all the %s, filtering on the optional arguments. To filter on map "
            "parameters, use the syntax 'map-param:key=value'",
            cls->plural);
        bool std = strcmp(cls->name, "vm") == 0 || strcmp(cls->name, "network") == 0 ||
                   strcmp(cls->name, "sr") == 0 || view;
        add_generic(table, cls, "list", CLI_NONE, CLI_ARGS("params"), help,
                    std ? CLI_STANDARD : 0, list_cmd);
        add_generic(table, cls, "param-list", CLI_ARGS("uuid"), CLI_NONE,
                    "Lists all the parameters of the object specified by the uuid.", 0,
                    param_list_cmd);
        add_generic(table, cls, "param-get", CLI_ARGS("uuid", "param-name"),
                    CLI_ARGS("param-key"),
                    "Gets the parameter specified of the object. If the parameter is a map of "
                    "key=value pairs, use 'param-key=<key>' to get the value associated with a "
                    "particular key.",
                    0, param_get_cmd);
        add_generic(table, cls, "param-set", CLI_ARGS("uuid"), CLI_NONE,
                    "Sets the parameter specified. If param-value is not given, the parameter is "
                    "set to a null value. To set a (key,value) pair in a map parameter, use the "
                    "syntax 'map-param:key=value'.",
                    0, param_set_cmd);
        add_generic(table, cls, "param-add", CLI_ARGS("uuid", "param-name"),
                    CLI_ARGS("param-key"),
                    "Adds to a set or map parameter. If the parameter is a set, use "
                    "param-key=<key to add>. If the parameter is a map, pass the values to add "
                    "as 'key=value' pairs.",
                    0, param_add_cmd);
        add_generic(table, cls, "param-remove", CLI_ARGS("uuid", "param-name", "param-key"),
                    CLI_NONE,
                    "Removes a key or key/value pair from a map or set parameter.", 0,
                    param_remove_cmd);
        add_generic(table, cls, "param-clear", CLI_ARGS("uuid", "param-name"), CLI_NONE,
                    "Clears the specified parameter (param-name can be a set or map).", 0,
                    param_clear_cmd);
    }
}
