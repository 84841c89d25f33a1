/* host_plugin.c: host.call_plugin, call_extension and has_extension:
 * checks, then one call into src/plugins. A plugin runs with a session of
 * its own (the caller's user, the caller's session as its parent), which
 * ends with it; no database lock is held while it runs. */
#include "bootstrap.h"
#include "call.h"
#include "dm_handlers.h"
#include "plugins.h"
#include "session.h"

int xapi_host_call_plugin(Call *call, const char *host, const char *plugin, const char *fn,
                          const Xv *args, Xv **result)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    g_autofree char *path = plugins_find(plugin, &call->error);
    if (!path)
        return -1;
    g_autofree char *originator = g_strconcat("xapid plugin ", plugin, NULL);
    g_autofree char *session = session_create_child(call->session_ref, originator, &call->error);
    if (!session)
        return -1;
    char *value = plugins_call(plugin, fn, session, args, call->task_ref, &call->error);
    session_destroy(session);
    if (!value)
        return -1;
    *result = xv_new_string_take(value);
    return 0;
}

int xapi_host_has_extension(Call *call, const char *host, const char *name, Xv **result)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    *result = xv_new_bool(plugins_has_extension(name));
    return 0;
}

int xapi_host_call_extension(Call *call, const char *host, const char *call_, Xv **result)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    char *value = plugins_call_extension(call_, call->task_ref, &call->error);
    if (!value)
        return -1;
    *result = xv_new_string_take(value);
    return 0;
}
