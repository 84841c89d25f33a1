/* cli_util.c: what xe's commands share: failures, XenAPI calls with the
 * command's session, lookups and the printer (Cli_printer). */
#include <stdarg.h>
#include <string.h>

#include "cli.h"
#include "db.h"

int cli_fail(CliCtx *ctx, const char *fmt, ...)
{
    if (ctx->failure || ctx->error)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    ctx->failure = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    return -1;
}

Xv *cli_call(CliCtx *ctx, const char *method, Xv *args)
{
    g_autoptr(Xv) params = xv_new_array();
    xv_array_append_string(params, ctx->session);
    for (guint i = 0; args && i < xv_len(args); i++)
        xv_array_append(params, xv_dup(xv_at(args, i)));
    xv_free(args);
    bool bare = false;
    XapiError *err = NULL;
    Xv *r = dispatch_call(method, params, &ctx->origin, &bare, &err);
    if (!r) {
        if (ctx->error || ctx->failure)
            xapi_error_free(err);
        else
            ctx->error = err;
    }
    return r;
}

Xv *cli_call_s(CliCtx *ctx, const char *method, ...)
{
    Xv *args = xv_new_array();
    va_list ap;
    va_start(ap, method);
    for (const char *s; (s = va_arg(ap, const char *));)
        xv_array_append_string(args, s);
    va_end(ap);
    return cli_call(ctx, method, args);
}

int cli_call_on(CliCtx *ctx, const char *dm_class, const char *key, const char *method)
{
    g_autofree char *ref = cli_ref_of_uuid(ctx, dm_class, cli_param(ctx, key));
    if (!ref)
        return -1;
    g_autoptr(Xv) r = cli_call_s(ctx, method, ref, NULL);
    return r ? 0 : -1;
}

Xv *cli_call_create(CliCtx *ctx, const char *method, Xv *rec)
{
    Xv *args = xv_new_array();
    xv_array_append(args, rec);
    return cli_call(ctx, method, args);
}

/* The task's status, result and error while it is pending no more. */
char *cli_task_wait(CliCtx *ctx, const char *task)
{
    const DmClass *cls = dm_class_by_name("task");
    for (;;) {
        uint64_t gen = db_generation();
        db_read_begin();
        DbRow *row = db_lookup(cls, task);
        char *status = row ? g_strdup(xv_str(db_get(row, "status"))) : NULL;
        char *result = NULL;
        XapiError *err = NULL;
        if (row && status && strcmp(status, "pending") != 0) {
            if (strcmp(status, "success") == 0) {
                result = g_strdup(xv_str(db_get(row, "result")));
            } else {
                const Xv *info = db_get(row, "error_info");
                guint n = xv_len(info);
                g_autoptr(GPtrArray) ps = g_ptr_array_new();
                for (guint i = 1; i < n; i++)
                    g_ptr_array_add(ps, (gpointer)xv_str(xv_at(info, i)));
                xapi_error_setv(&err, n ? xv_str(xv_at(info, 0)) : "INTERNAL_ERROR",
                                (const char *const *)ps->pdata, ps->len);
            }
        }
        db_read_end();
        if (!row) {
            g_free(status);
            xapi_error_set(&ctx->error, "HANDLE_INVALID", "task", task, NULL);
            return NULL;
        }
        bool done = strcmp(status, "pending") != 0;
        g_free(status);
        if (err) {
            if (!ctx->error)
                ctx->error = err;
            else
                xapi_error_free(err);
            return NULL;
        }
        if (done)
            return result ? result : g_strdup("");
        db_wait_for_change(gen, g_get_monotonic_time() + G_USEC_PER_SEC);
    }
}

char *cli_http_transfer(CliCtx *ctx, bool put, const char *url, const char *task,
                        const char *what)
{
    const char *filename = cli_param(ctx, "filename");
    if (put)
        cli_http_put(ctx->wire, filename, url);
    else
        cli_http_get(ctx->wire, filename, url);
    if (cli_read_response(ctx->wire) != CLI_RESPONSE_OK) {
        cli_fail(ctx, "%s failed: the client could not transfer '%s'", what, filename);
        return NULL;
    }
    return cli_task_wait(ctx, task);
}

char *cli_ref_of_uuid(CliCtx *ctx, const char *dm_class, const char *uuid)
{
    const DmClass *cls = dm_class_by_name(dm_class);
    char *ref = NULL;
    db_read_begin();
    DbRow *row = cls ? db_lookup_uuid(cls, uuid) : NULL;
    if (row)
        ref = g_strdup(row->ref);
    db_read_end();
    if (!ref)
        xapi_error_set(&ctx->error, "UUID_INVALID", dm_class, uuid, NULL);
    return ref;
}

char *cli_uuid_of_ref(const char *ref)
{
    db_read_begin();
    DbRow *row = db_lookup_any(ref);
    char *uuid = row && db_get(row, "uuid") ? g_strdup(xv_str(db_get(row, "uuid")))
                                            : g_strdup("<not in database>");
    db_read_end();
    return uuid;
}

/* ---- the printer ---------------------------------------------------------- */

CliPair *cli_pair_new(const char *key, const char *value)
{
    CliPair *p = g_new(CliPair, 1);
    p->key = g_strdup(key);
    p->value = g_strdup(value);
    return p;
}

void cli_pair_free(gpointer p)
{
    CliPair *cp = p;
    g_free(cp->key);
    g_free(cp->value);
    g_free(cp);
}

void cli_out(CliCtx *ctx, const char *text)
{
    cli_print(ctx->wire, text);
}

void cli_out_msg(CliCtx *ctx, const char *text)
{
    if (!ctx->minimal)
        cli_print(ctx->wire, text);
}

/* Cli_printer.multi_line_record: keys padded to the longest plus four,
 * the first on the right, the others on the left. */
static void format_record(GString *out, GPtrArray *rec)
{
    size_t width = 0;
    for (guint i = 0; i < rec->len; i++)
        width = MAX(width, strlen(((CliPair *)g_ptr_array_index(rec, i))->key));
    width += 4;
    for (guint i = 0; i < rec->len; i++) {
        const CliPair *p = g_ptr_array_index(rec, i);
        int pad = (int)(width - strlen(p->key));
        if (i == 0)
            g_string_append_printf(out, "%s%*s: %s\n", p->key, pad, "", p->value);
        else
            g_string_append_printf(out, "%*s%s: %s\n", pad, "", p->key, p->value);
    }
}

/* --minimal's escaping of commas (and of the backslash that escapes). */
static char *escape_commas(const char *s)
{
    GString *out = g_string_new(NULL);
    for (; *s; s++) {
        if (*s == ',' || *s == '\\')
            g_string_append_c(out, '\\');
        g_string_append_c(out, *s);
    }
    return g_string_free(out, FALSE);
}

void cli_out_records(CliCtx *ctx, GPtrArray *records)
{
    if (ctx->minimal) { /* the first field of each record */
        for (guint i = 0; i < records->len; i++)
            if (((GPtrArray *)g_ptr_array_index(records, i))->len == 0)
                return;
        g_autoptr(GString) line = g_string_new(NULL);
        for (guint i = 0; i < records->len; i++) {
            GPtrArray *rec = g_ptr_array_index(records, i);
            g_autofree char *v = escape_commas(((CliPair *)g_ptr_array_index(rec, 0))->value);
            if (i)
                g_string_append_c(line, ',');
            g_string_append(line, v);
        }
        g_ptr_array_add(ctx->minimal_out, g_string_free(g_steal_pointer(&line), FALSE));
        return;
    }
    for (guint i = 0; i < records->len; i++) {
        g_autoptr(GString) text = g_string_new(NULL);
        format_record(text, g_ptr_array_index(records, i));
        g_string_append_c(text, '\n');
        cli_print(ctx->wire, text->str);
    }
}

void cli_out_list(CliCtx *ctx, const char *const *items, unsigned n)
{
    if (ctx->minimal) {
        g_autoptr(GString) line = g_string_new(NULL);
        for (unsigned i = 0; i < n; i++) {
            g_autofree char *v = escape_commas(items[i]);
            g_string_append_printf(line, "%s%s", i ? "," : "", v);
        }
        g_ptr_array_add(ctx->minimal_out, g_string_free(g_steal_pointer(&line), FALSE));
        return;
    }
    for (unsigned i = 0; i < n; i++)
        cli_print(ctx->wire, items[i]);
}

int cli_out_uuid(CliCtx *ctx, const char *ref)
{
    g_autofree char *uuid = cli_uuid_of_ref(ref);
    const char *items[] = {uuid};
    cli_out_list(ctx, items, 1);
    return 0;
}

void cli_out_record(CliCtx *ctx, ...)
{
    g_autoptr(GPtrArray) rec = g_ptr_array_new_with_free_func(cli_pair_free);
    va_list ap;
    va_start(ap, ctx);
    for (const char *k; (k = va_arg(ap, const char *));)
        g_ptr_array_add(rec, cli_pair_new(k, va_arg(ap, const char *)));
    va_end(ap);
    g_autoptr(GPtrArray) recs = g_ptr_array_new();
    g_ptr_array_add(recs, rec);
    cli_out_records(ctx, recs);
}

void cli_task_destroy(CliCtx *ctx, const char *task)
{
    g_autoptr(XapiError) keep = g_steal_pointer(&ctx->error);
    g_autofree char *keep_failure = g_steal_pointer(&ctx->failure);
    g_autoptr(Xv) d = cli_call_s(ctx, "task.destroy", task, NULL);
    g_clear_pointer(&ctx->error, xapi_error_free);
    ctx->error = g_steal_pointer(&keep);
    ctx->failure = g_steal_pointer(&keep_failure);
}
