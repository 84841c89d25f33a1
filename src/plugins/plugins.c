/* plugins.c: finding host plugins and extensions, the environment they
 * run in, and what their outcome becomes (XAPI's XENAPI_PLUGIN_FAILURE
 * and INTERNAL_ERROR parameters). */
#include "plugins.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child_run.h"
#include "jsonrpc.h"
#include "plugin_reply.h"
#include "task.h"
#include "xmlrpc.h"

#ifndef XAPID_PYTHON_INSTALL_DIR
#define XAPID_PYTHON_INSTALL_DIR "/usr/local/share/xapid/python"
#endif

static struct {
    char *plugin_dir, *extension_dir, *python_dir, *unix_socket;
    unsigned time_limit_s;
    size_t output_limit;
} cfg;

void plugins_configure(const PluginsConfig *c)
{
    cfg.plugin_dir = g_strdup(c->plugin_dir ? c->plugin_dir : PLUGINS_DEFAULT_DIR);
    cfg.extension_dir = g_strdup(c->extension_dir ? c->extension_dir : EXTENSIONS_DEFAULT_DIR);
    cfg.python_dir = c->python_dir ? g_strdup(c->python_dir) : plugins_default_python_dir();
    cfg.unix_socket = c->unix_socket ? g_canonicalize_filename(c->unix_socket, NULL) : NULL;
    cfg.time_limit_s = c->time_limit_s;
    cfg.output_limit = c->output_limit;
}

char *plugins_default_python_dir(void)
{
    g_autofree char *exe = g_file_read_link("/proc/self/exe", NULL);
    g_autofree char *bin_dir = exe ? g_path_get_dirname(exe) : NULL;
    g_autofree char *beside = bin_dir ? g_build_filename(bin_dir, "..", "python", NULL) : NULL;
    g_autofree char *probe = beside ? g_build_filename(beside, "XenAPIPlugin.py", NULL) : NULL;
    if (probe && g_file_test(probe, G_FILE_TEST_EXISTS))
        return g_canonicalize_filename(beside, NULL);
    return g_strdup(XAPID_PYTHON_INSTALL_DIR);
}

/* A plain entry name: what readdir() could list, as XAPI requires. */
static bool entry_name(const char *name)
{
    return *name && !strchr(name, '/') && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

static char *entry_of(const char *dir, const char *name)
{
    struct stat st;
    g_autofree char *path = g_build_filename(dir, name, NULL);
    return lstat(path, &st) == 0 ? g_steal_pointer(&path) : NULL;
}

char *plugins_find(const char *name, XapiError **err)
{
    char *path = NULL;
    if (entry_name(name) && !(path = entry_of(cfg.plugin_dir, name))) {
        g_autofree char *builtin = g_build_filename(cfg.python_dir, "plugins", NULL);
        path = entry_of(builtin, name);
    }
    if (!path)
        xapi_error_set(err, "XENAPI_MISSING_PLUGIN", name, NULL);
    return path;
}

/* XAPI gives plugins only PATH; xapid adds where its modules are and where
 * it listens for them. Byte-code is not written beside the modules. */
static GStrv child_env(void)
{
    GPtrArray *env = g_ptr_array_new();
    g_ptr_array_add(env, g_strdup("PATH=/sbin:/usr/sbin:/bin:/usr/bin"));
    g_ptr_array_add(env, g_strconcat("PYTHONPATH=", cfg.python_dir, NULL));
    g_ptr_array_add(env, g_strdup("PYTHONDONTWRITEBYTECODE=1"));
    if (cfg.unix_socket)
        g_ptr_array_add(env, g_strconcat("XAPID_SOCKET=", cfg.unix_socket, NULL));
    g_ptr_array_add(env, NULL);
    return (GStrv)g_ptr_array_free(env, FALSE);
}

static bool task_cancelled(void *task_ref) { return task_cancel_requested(task_ref); }

/* Runs path with one argument, or with input on stdin; logs its stderr. */
static void run(const char *path, const char *arg, const char *input, const char *task_ref,
                ChildResult *r)
{
    g_auto(GStrv) env = child_env();
    char *argv[] = {(char *)path, (char *)arg, NULL};
    ChildSpec spec = {.argv = argv, .envp = env, .input = input,
                      .time_limit_s = cfg.time_limit_s, .output_limit = cfg.output_limit,
                      .cancel = task_ref ? task_cancelled : NULL, .cancel_ctx = (void *)task_ref};
    task_wait_begin();
    child_run(&spec, r);
    task_wait_end();
    if (r->err->len)
        g_message("%s: stderr: %s", path, r->err->str);
    if (r->end != CHILD_EXITED || r->code != 0)
        g_message("%s: %s %d", path,
                  r->end == CHILD_SIGNALED ? "signal" : r->end == CHILD_EXITED ? "exit" : "killed",
                  r->code);
}

/* XAPI's words for a run that did not end with status 0 (NULL if it
 * did); its output is not read then. */
static char *bad_end(const ChildResult *r)
{
    switch (r->end) {
    case CHILD_EXITED:
        return r->code ? g_strdup("non-zero exit") : NULL;
    case CHILD_SPAWN_FAILED:
        return g_strdup("non-zero exit");
    case CHILD_SIGNALED: {
        const char *abbrev = sigabbrev_np(r->code);
        return abbrev ? g_strconcat("signal: SIG", abbrev, NULL)
                      : g_strdup_printf("signal: %d", r->code);
    }
    case CHILD_TIMED_OUT:
        return g_strdup_printf("time limit exceeded: killed after %u s", cfg.time_limit_s);
    case CHILD_OUTPUT_CAPPED:
        return g_strdup_printf("output limit exceeded: killed after %zu bytes",
                               cfg.output_limit);
    case CHILD_CANCELLED:
        return g_strdup("task cancelled");
    case CHILD_STOPPED:
        return g_strdup("task stopped");
    }
    return g_strdup("non-zero exit");
}

char *plugins_call(const char *plugin, const char *fn, const char *session_ref,
                   const Xv *args, const char *task_ref, XapiError **err)
{
    g_autofree char *path = plugins_find(plugin, err);
    if (!path)
        return NULL;
    g_autoptr(Xv) params = xv_new_array();
    xv_array_append_string(params, session_ref);
    xv_array_append(params, xv_dup(args));
    size_t len;
    g_autofree char *xml = xmlrpc_format_call(fn, params, &len);
    ChildResult r;
    run(path, xml, NULL, task_ref, &r);
    char *value = NULL;
    g_autofree char *status = bad_end(&r);
    if (r.end == CHILD_CANCELLED)
        xapi_error_set(err, "TASK_CANCELLED", task_ref, NULL);
    else if (status)
        xapi_error_set(err, "XENAPI_PLUGIN_FAILURE", status, r.out->str,
                       r.spawn_error ? r.spawn_error : r.err->str, NULL);
    else
        plugin_reply_parse(r.out->str, r.out->len, &value, err);
    child_result_clear(&r);
    return value;
}

static char *extension_path(const char *name)
{
    return entry_name(name) ? entry_of(cfg.extension_dir, name) : NULL;
}

bool plugins_has_extension(const char *name)
{
    g_autofree char *path = extension_path(name);
    return path != NULL;
}

/* An extension's error list: strings only, else XAPI's protocol failure. */
static int extension_error(const Xv *description, XapiError **err)
{
    guint n = description->kind == XV_ARRAY ? xv_len(description) : 0;
    bool strings = description->kind == XV_STRING || n > 0;
    for (guint i = 0; i < n; i++)
        strings = strings && xv_at(description, i)->kind == XV_STRING;
    if (!strings) {
        g_autofree char *json = jsonrpc_value_to_json(description);
        return xapi_error_set(err, "EXTENSION_PROTOCOL_FAILURE", json, NULL);
    }
    if (description->kind == XV_STRING)
        return xapi_error_set(err, xv_str(description), NULL);
    g_autoptr(GPtrArray) params = g_ptr_array_new();
    for (guint i = 1; i < n; i++)
        g_ptr_array_add(params, (char *)xv_str(xv_at(description, i)));
    return xapi_error_setv(err, xv_str(xv_at(description, 0)),
                           (const char *const *)params->pdata, params->len);
}

/* The extension's reply, as rpclib reads a XenAPI response. */
static char *extension_reply(const char *path, const GString *out, XapiError **err)
{
    g_autoptr(Xv) v = NULL;
    g_autofree char *why = NULL;
    XmlrpcResponseKind kind = xmlrpc_parse_any_response(out->str, out->len, &v, &why);
    const Xv *envelope = kind == XMLRPC_RESPONSE_PARAMS && xv_len(v) == 1 ? xv_at(v, 0) : NULL;
    const Xv *status = envelope && envelope->kind == XV_STRUCT
                           ? xv_struct_get(envelope, "Status") : NULL;
    const char *s = status ? xv_str(status) : NULL;
    if (s && strcmp(s, "Success") == 0) {
        const Xv *value = xv_struct_get(envelope, "Value");
        if (value && value->kind == XV_STRING)
            return g_strdup(xv_str(value));
        why = g_strdup("the Value is not a string");
    } else if (s && strcmp(s, "Failure") == 0) {
        const Xv *description = xv_struct_get(envelope, "ErrorDescription");
        if (description) {
            extension_error(description, err);
            return NULL;
        }
    }
    if (!why)
        why = g_strdup("not a XenAPI response");
    xapi_error_set(err, "INTERNAL_ERROR", path, "failed to parse extension output", out->str,
                   why, NULL);
    return NULL;
}

char *plugins_call_extension(const char *call, const char *task_ref, XapiError **err)
{
    JsonRpcRequest req = {0};
    g_autofree char *why = NULL;
    if (jsonrpc_parse_request(call, strlen(call), &req, &why) < 0) {
        xapi_error_internal(err, "the call is not a JSON-RPC call: %s", why);
        return NULL;
    }
    g_autofree char *path = extension_path(req.method);
    if (!path) {
        xapi_error_set(err, "MESSAGE_METHOD_UNKNOWN", req.method, NULL);
        jsonrpc_request_clear(&req);
        return NULL;
    }
    size_t len;
    g_autofree char *xml = xmlrpc_format_call(req.method, req.params, &len);
    jsonrpc_request_clear(&req);
    ChildResult r;
    run(path, "--xmlrpc", xml, task_ref, &r);
    char *value = NULL;
    g_autofree char *status = bad_end(&r);
    if (r.end == CHILD_CANCELLED)
        xapi_error_set(err, "TASK_CANCELLED", task_ref, NULL);
    else if (status)
        xapi_error_set(err, "INTERNAL_ERROR", path, status, r.out->str,
                       r.spawn_error ? r.spawn_error : r.err->str, NULL);
    else
        value = extension_reply(path, r.out, err);
    child_result_clear(&r);
    return value;
}
