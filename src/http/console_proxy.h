/* console_proxy.h: /console, a VM's console over HTTP: CONNECT (raw
 * bytes after "200 OK") and GET with Upgrade: websocket. */
#pragma once

#include <microhttpd.h>
#include <stdbool.h>

#include "datamodel.h"

/* Whether method and url (with or without a trailing slash) are ours. */
bool console_proxy_route(const char *method, const char *url);

/* Serves the request in the connection's own thread, on the first call of
 * the access handler: a refusal is queued as a response (MHD_YES);
 * otherwise the connection is the console's until either side ends, and
 * MHD_NO tells MHD to close it. trusted: the unix socket (root). */
enum MHD_Result console_proxy_serve(struct MHD_Connection *conn, bool trusted, const char *method);

/* XAPI's RBAC permission for /console, http/connect_console (vm-operator
 * and above), as a pseudo-message for session_authorize. */
const DmMessage *console_proxy_permission(void);
