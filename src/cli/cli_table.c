/* cli_table.c: xe's command table (XAPI's cli_frontend.ml cmdtable), made
 * once: the hand-written commands and the generic ones of each class;
 * and `help`, which prints from it. */
#include <string.h>

#include "cli.h"

static GHashTable *table_by_name; /* name -> CliCommand* */
static GPtrArray *table;          /* CliCommand*, owned */

static const char *const *strv_dup(const char *const *v)
{
    return (const char *const *)g_strdupv((char **)v);
}

void cli_table_add(GPtrArray *t, const char *name, const char *const *reqd,
                   const char *const *optn, const char *help, unsigned flags, CliFn fn)
{
    CliCommand *c = g_new0(CliCommand, 1);
    c->name = g_strdup(name);
    c->reqd = strv_dup(reqd);
    c->optn = strv_dup(optn);
    c->help = g_strdup(help);
    c->flags = flags;
    c->fn = fn;
    g_ptr_array_add(t, c);
}

static gpointer build(gpointer unused)
{
    table = g_ptr_array_new();
    cli_records_register(table);
    cli_vm_register(table);
    cli_storage_register(table);
    cli_xva_register(table);
    cli_misc_register(table);
    cli_devices_register(table);
    table_by_name = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < table->len; i++) {
        CliCommand *c = g_ptr_array_index(table, i);
        g_hash_table_insert(table_by_name, c->name, c); /* a hand-written one wins */
    }
    return NULL;
}

static void ensure(void)
{
    static GOnce once = G_ONCE_INIT;
    g_once(&once, build, NULL);
}

const CliCommand *cli_command_find(const char *name)
{
    ensure();
    return g_hash_table_lookup(table_by_name, name);
}

static gint by_name(gconstpointer a, gconstpointer b)
{
    return strcmp((*(const CliCommand *const *)a)->name, (*(const CliCommand *const *)b)->name);
}

GPtrArray *cli_commands_sorted(void)
{
    ensure();
    GPtrArray *out = g_ptr_array_new();
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, table_by_name);
    while (g_hash_table_iter_next(&it, NULL, &v))
        g_ptr_array_add(out, v);
    g_ptr_array_sort(out, by_name);
    return out;
}

#define VM_SELECTORS_INFO                                                                  \
    " The simple syntax is vm=<name or uuid>; alternatively, the VMs may be selected by "  \
    "filtering on their parameters (as in vm-list), and with --multiple every match is "   \
    "acted on."

static void help_one(CliCtx *ctx, const char *name)
{
    const CliCommand *c = cli_command_find(name);
    if (!c) {
        g_autofree char *text = g_strdup_printf("Unknown command '%s'", name);
        const char *items[] = {text};
        cli_out_list(ctx, items, 1);
        return;
    }
    g_autofree char *reqd = g_strjoinv(", ", (char **)c->reqd);
    g_autoptr(GStrvBuilder) optn = g_strv_builder_new();
    g_strv_builder_addv(optn, (const char **)c->optn);
    if (c->flags & CLI_VM_SELECTORS)
        g_strv_builder_addv(optn, (const char *[]){"vm", "<vm-selectors>", NULL});
    g_auto(GStrv) optv = g_strv_builder_end(optn);
    g_autofree char *optional = g_strjoinv(", ", optv);
    g_autofree char *desc = g_strconcat(c->help, c->flags & CLI_VM_SELECTORS ? VM_SELECTORS_INFO : "", NULL);
    cli_out_record(ctx, "command name        ", c->name, "reqd params     ", reqd,
                   "optional params ", optional, "description     ", desc, NULL);
}

/* make_list: names joined with ", ", wrapped before 74 columns. */
static void out_wrapped(CliCtx *ctx, GPtrArray *names)
{
    if (!names->len)
        return;
    g_autoptr(GString) cur = g_string_new("    ");
    g_string_append(cur, g_ptr_array_index(names, 0));
    for (guint i = 1; i < names->len; i++) {
        const char *n = g_ptr_array_index(names, i);
        if (cur->len + strlen(n) > 74) {
            cli_out(ctx, cur->str);
            g_string_assign(cur, "    ");
            g_string_append(cur, n);
        } else {
            g_string_append_printf(cur, ", %s", n);
        }
    }
    cli_out(ctx, cur->str);
}

#define USAGE                                                                               \
    "Usage:\n  xe <command>\n"                                                              \
    "    [ -s <server> ]            XenServer host\n"                                       \
    "    [ -p <port> ]              XenServer port number\n"                                \
    "    [ -u <username> -pw <password> | -pwf <password file> ]\n"                        \
    "                               User authentication (password or file)\n"              \
    "    [ --nossl ]                Disable SSL/TLS\n"                                      \
    "    [ --debug ]                Enable debug output\n"                                  \
    "    [ --debug-on-fail ]        Enable debug output only on failure\n"                  \
    "    [ --traceparent <value> ]  Distributed tracing context\n"                          \
    "    [ <other arguments> ... ]  Command-specific options\n\n"                          \
    "To get help on a specific command:\n  xe help <command>\n\n"

static void help_full(CliCtx *ctx);

int cli_help(CliCtx *ctx)
{
    bool named = false;
    for (guint i = 0; i < ctx->params->len; i++) {
        const CliParam *p = g_ptr_array_index(ctx->params, i);
        if (cli_param_is_standard(p->key))
            continue;
        help_one(ctx, p->key);
        named = true;
    }
    if (ctx->minimal || named) {
        if (ctx->minimal && !named) {
            g_autoptr(GPtrArray) all = cli_commands_sorted();
            g_autoptr(GPtrArray) names = g_ptr_array_new();
            for (guint i = 0; i < all->len; i++) {
                const CliCommand *c = g_ptr_array_index(all, i);
                if (cli_param_bool(ctx, "all") || (c->flags & CLI_STANDARD))
                    g_ptr_array_add(names, c->name);
            }
            cli_out_list(ctx, (const char *const *)names->pdata, names->len);
        }
    } else {
        help_full(ctx);
    }
    if (ctx->minimal) {
        g_ptr_array_add(ctx->minimal_out, NULL);
        g_autofree char *joined = g_strjoinv(",", (char **)ctx->minimal_out->pdata);
        cli_print(ctx->wire, joined);
    }
    return 0;
}

static void help_full(CliCtx *ctx)
{
    g_autoptr(GPtrArray) all = cli_commands_sorted();
    if (cli_param_bool(ctx, "all")) {
        cli_out(ctx, USAGE "Full command list\n-----------------\n");
        const char *prefixes[] = {"host-", "vm-", NULL};
        for (int k = 0; k < 3; k++) {
            g_autoptr(GPtrArray) names = g_ptr_array_new();
            for (guint i = 0; i < all->len; i++) {
                const CliCommand *c = g_ptr_array_index(all, i);
                bool host = g_str_has_prefix(c->name, "host-"), vm = g_str_has_prefix(c->name, "vm-");
                if (c->flags & CLI_HIDDEN)
                    continue;
                if ((k < 2 && g_str_has_prefix(c->name, prefixes[k])) || (k == 2 && !host && !vm))
                    g_ptr_array_add(names, c->name);
            }
            out_wrapped(ctx, names);
            if (k < 2)
                cli_out(ctx, "    ");
        }
    } else {
        cli_out(ctx, USAGE "To get a full listing of commands:\n  xe help --all\n\n"
                           "Common command list\n-------------------\n");
        g_autoptr(GPtrArray) names = g_ptr_array_new();
        for (guint i = 0; i < all->len; i++) {
            const CliCommand *c = g_ptr_array_index(all, i);
            if (c->flags & CLI_STANDARD)
                g_ptr_array_add(names, c->name);
        }
        out_wrapped(ctx, names);
    }
}
