/* cli_server.c: one xe command on a connection taken over from MHD, as
 * XAPI's Xapi_cli.handler: greeting, the body's arguments, the command
 * table, a session logged in for the command (and out after it), then
 * the output and Exit with xe's codes (0, or 1 after any error). */
#include "cli_server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#include "cli.h"
#include "db.h"
#include "http_server.h"

bool cli_route(const char *method, const char *url)
{
    return strcmp(method, MHD_HTTP_METHOD_POST) == 0 &&
           (strcmp(url, "/cli") == 0 || strcmp(url, "/cli/") == 0);
}

static void param_free(gpointer p)
{
    CliParam *cp = p;
    g_free(cp->key);
    g_free(cp->value);
    g_free(cp);
}

/* XAPI's parse_params_2: --x is x=true, -x VALUE a switch, k=v. */
static const char *switch_key(const char *sw)
{
    static const char *const map[][2] = {{"-u", "username"}, {"-pw", "password"}, {"-s", "server"},
                                         {"-h", "server"},   {"-p", "port"}};
    for (unsigned i = 0; i < G_N_ELEMENTS(map); i++)
        if (strcmp(sw, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

/* The arguments, one a line; the first may be session_id=. NULL on a
 * syntax error (*why set). */
static GPtrArray *parse_args(const char *body, size_t len, char **cmd, char **session,
                             char **why)
{
    g_autofree char *text = g_strndup(body, len);
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    g_autoptr(GPtrArray) params = g_ptr_array_new_with_free_func(param_free);
    guint i = 0;
    for (guint j = 0; lines[j]; j++) {
        size_t n = strlen(lines[j]);
        if (n && lines[j][n - 1] == '\r')
            lines[j][n - 1] = '\0';
    }
    if (lines[0] && g_str_has_prefix(lines[0], "session_id=")) {
        *session = g_strdup(lines[0] + strlen("session_id="));
        i = 1;
    }
    if (!lines[i] || strchr(lines[i], '=')) {
        *why = g_strdup(lines[i] ? "command name is missing" : "");
        return NULL;
    }
    *cmd = g_strdup(lines[i++]);
    for (; lines[i]; i++) {
        const char *a = lines[i];
        CliParam *p = g_new0(CliParam, 1);
        if (g_str_has_prefix(a, "--")) {
            p->key = g_strdup(a + 2);
            p->value = g_strdup("true");
        } else if (a[0] == '-') {
            const char *key = switch_key(a);
            if (!key || !lines[i + 1]) {
                *why = key ? g_strdup_printf("Switch %s requires a parameter", a)
                           : g_strdup_printf("Unknown switch: %s", a);
                param_free(p);
                return NULL;
            }
            p->key = g_strdup(key);
            p->value = g_strdup(lines[++i]);
        } else {
            const char *eq = strchr(a, '=');
            p->key = eq ? g_strndup(a, (gsize)(eq - a)) : g_strdup(a);
            p->value = g_strdup(eq ? eq + 1 : "");
        }
        g_ptr_array_add(params, p);
    }
    return g_steal_pointer(&params);
}

/* xe's usage errors: the message, then where to find help. */
static void param_error(CliWire *w, const char *what, const char *detail)
{
    g_autofree char *text =
        *what ? g_strdup_printf("%s: %s\n", what, detail) : g_strdup_printf("%s\n", detail);
    cli_print_stderr(w, text);
    cli_print_stderr(w, "For usage run: 'xe help'\n");
}

static const char *error_doc(const char *code)
{
    unsigned lo = 0, hi = cli_n_error_docs;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        int c = strcmp(code, cli_error_docs[mid].code);
        if (c == 0)
            return cli_error_docs[mid].doc;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* A ref as XAPI's ref_convert shows it: "uuid (name)". */
static char *ref_convert(const char *s)
{
    if (!g_str_has_prefix(s, "OpaqueRef:"))
        return g_strdup(s);
    char *out = NULL;
    db_read_begin();
    DbRow *row = db_lookup_any(s);
    if (row) {
        const Xv *uuid = db_get(row, "uuid");
        const Xv *name = db_get(row, "name_label");
        out = name ? g_strdup_printf("%s (%s)", xv_str(uuid), xv_str(name))
                   : g_strdup(xv_str(uuid));
    }
    db_read_end();
    return out ? out : g_strdup(s);
}

/* Cli_util.server_error: the error's description and its parameters by
 * name, else the bare code and parameters. */
static void server_error(CliWire *w, const XapiError *e)
{
    const char *doc = error_doc(e->code);
    if (!doc) {
        cli_error(w, e->code, (const char *const *)e->params->pdata, e->params->len);
        return;
    }
    g_autofree char *first = g_strdup_printf("%s\n", doc);
    cli_print_stderr(w, first);
    const char *const *names = dm_error_param_names(e->code);
    unsigned n_names = 0;
    while (names && names[n_names])
        n_names++;
    unsigned n = MAX(n_names, e->params->len);
    for (unsigned i = 0; i < n; i++) {
        g_autofree char *value =
            i < e->params->len ? ref_convert(g_ptr_array_index(e->params, i)) : g_strdup("<unknown>");
        g_autofree char *line =
            g_strdup_printf("%s: %s\n", i < n_names ? names[i] : "<extra>", value);
        cli_print_stderr(w, line);
    }
}

static void report(CliCtx *ctx)
{
    if (ctx->silent)
        return;
    if (ctx->error) {
        if (strcmp(ctx->error->code, "SESSION_AUTHENTICATION_FAILED") == 0)
            param_error(ctx->wire, "", "Authentication failed");
        else
            server_error(ctx->wire, ctx->error);
    } else {
        g_autofree char *text = g_strdup_printf("Error: %s\n", ctx->failure ? ctx->failure : "");
        cli_print_stderr(ctx->wire, text);
    }
}

static int login(CliCtx *ctx)
{
    const char *user = cli_param(ctx, "username");
    const char *pw = cli_param(ctx, "password");
    if ((!user || !*user) && !ctx->origin.trusted) {
        param_error(ctx->wire, "", "Username/password must be specified");
        return -1;
    }
    g_autoptr(Xv) args = xv_new_array();
    xv_array_append_string(args, user ? user : "");
    xv_array_append_string(args, pw ? pw : "");
    xv_array_append_string(args, "1.0");
    xv_array_append_string(args, "cli");
    bool bare = false;
    Xv *session = dispatch_call("session.login_with_password", args, &ctx->origin, &bare,
                                &ctx->error);
    if (!session) {
        report(ctx);
        return -1;
    }
    ctx->session = g_strdup(xv_str(session));
    xv_free(session);
    return 0;
}

static void logout(CliCtx *ctx)
{
    g_autoptr(Xv) args = xv_new_array();
    xv_array_append_string(args, ctx->session);
    bool bare = false;
    g_autoptr(XapiError) err = NULL;
    g_autoptr(Xv) r = dispatch_call("session.logout", args, &ctx->origin, &bare, &err);
}

/* Runs the command; returns the exit code. */
static int run(CliCtx *ctx, const char *name, const char *given_session)
{
    const CliCommand *cmd = cli_command_find(name);
    ctx->cmd = cmd;
    if (strcmp(name, "help") == 0)
        return cli_help(ctx) < 0 ? 1 : 0;
    if (!cmd) {
        param_error(ctx->wire, "Unknown command", name);
        return 1;
    }
    for (const char *const *r = cmd->reqd; *r; r++)
        if (!cli_param(ctx, *r)) {
            param_error(ctx->wire, "Required parameter not found", *r);
            return 1;
        }
    if (given_session)
        ctx->session = g_strdup(given_session);
    else if (login(ctx) < 0)
        return 1;
    int rc = cmd->fn(ctx);
    if (rc == 0 && ctx->minimal) {
        g_ptr_array_add(ctx->minimal_out, NULL);
        g_autofree char *joined = g_strjoinv(",", (char **)ctx->minimal_out->pdata);
        cli_print(ctx->wire, joined);
    }
    if (rc < 0)
        report(ctx);
    if (!given_session)
        logout(ctx);
    return rc < 0 ? 1 : 0;
}

/* The URL prefix of the HttpGet/HttpPut commands: the path alone, which
 * both XenServer's xe and ours send to the server they called /cli on. */
#define CLI_HTTP_BASE ""

static void serve(CliWire *w, bool trusted, const char *peer, const char *body, size_t len)
{
    if (cli_wire_handshake(w) < 0)
        return;
    g_autofree char *name = NULL, *session = NULL, *why = NULL;
    g_autoptr(GPtrArray) params = parse_args(body, len, &name, &session, &why);
    if (!params) {
        param_error(w, "Syntax error", why);
        cli_exit(w, 1);
        return;
    }
    CliCtx ctx = {.wire = w,
                  .params = params,
                  .origin = {.trusted = trusted, .peer = peer},
                  .http_base = CLI_HTTP_BASE,
                  .minimal_out = g_ptr_array_new_with_free_func(g_free)};
    ctx.minimal = cli_param_bool(&ctx, "minimal");
    int code = run(&ctx, name, session);
    cli_exit(w, code);
    g_ptr_array_free(ctx.minimal_out, TRUE);
    g_free(ctx.session);
    g_free(ctx.failure);
    xapi_error_free(ctx.error);
}

enum MHD_Result cli_serve(struct MHD_Connection *conn, bool trusted, const char *body,
                          size_t len)
{
    gnutls_session_t tls;
    int fd = http_connection_socket(conn, &tls);
    if (fd < 0)
        return MHD_NO;
    /* The client sends a heartbeat (Response Wait) every 300 s of a
     * transfer; an hour's silence, even at a prompt, ends the command. */
    CliWire w = {.fd = fd, .tls = tls, .idle_ms = 3600 * 1000};
    /* Many small frames, each the whole of what the client waits for. */
    int on = 1, off = 0;
    setsockopt(w.fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    setsockopt(w.fd, IPPROTO_TCP, TCP_CORK, &off, sizeof off);
    char peer[HTTP_PEER_BUF];
    serve(&w, trusted, http_peer_address(conn, peer), body, len);
    return MHD_NO; /* MHD closes the connection */
}
