/* plugins.h: host plugins (/etc/xapi.d/plugins) and extensions
 * (/etc/xapi.d/extensions), run as XAPI runs them: no shell, an XML-RPC
 * call in, a methodResponse out; beyond XAPI, a time limit and an output
 * cap. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "xapi_error.h"
#include "xv.h"

#define PLUGINS_DEFAULT_DIR "/etc/xapi.d/plugins"
#define EXTENSIONS_DEFAULT_DIR "/etc/xapi.d/extensions"
#define PLUGINS_DEFAULT_TIME_LIMIT 300
#define PLUGINS_DEFAULT_OUTPUT_LIMIT (16u << 20)

typedef struct {
    const char *plugin_dir;
    const char *extension_dir;
    const char *python_dir;   /* xapid's XenAPI.py and XenAPIPlugin.py, and plugins/ */
    const char *unix_socket;  /* where plugins call back (xapi_local()); NULL: nowhere */
    unsigned time_limit_s;    /* 0: none */
    size_t output_limit;      /* bytes; 0: none */
} PluginsConfig;

/* Copies the settings (at start-up). */
void plugins_configure(const PluginsConfig *config);
/* The directory of xapid's Python modules: "python" beside the binary's
 * directory (a build tree) when it holds them, else the installed one. */
char *plugins_default_python_dir(void);

/* The plugin's path: an entry of the plugin dir, else one of xapid's
 * built-in plugins (echo); XENAPI_MISSING_PLUGIN [name] otherwise. */
char *plugins_find(const char *name, XapiError **err);
/* Runs fn of plugin with (session_ref, args) and returns its string
 * (caller frees), or NULL with the plugin's error or XENAPI_PLUGIN_FAILURE.
 * task_ref (NULL for a synchronous call): a cancel of the task kills it. */
char *plugins_call(const char *plugin, const char *fn, const char *session_ref,
                   const Xv *args, const char *task_ref, XapiError **err);

bool plugins_has_extension(const char *name);
/* call: a JSON-RPC call naming an extension (MESSAGE_METHOD_UNKNOWN
 * [name] if there is none), given to it as XML-RPC on stdin. */
char *plugins_call_extension(const char *call, const char *task_ref, XapiError **err);
