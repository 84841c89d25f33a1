/* plugin_reply.h: what a host plugin's stdout means, as XAPI reads it. */
#pragma once

#include <stddef.h>

#include "xapi_error.h"

/* out is a methodResponse holding {Status: Success, Value: string}: 0 with
 * *value (caller frees). {Status: Failure, ErrorDescription: [code,
 * params...]}: that error. Anything else: XENAPI_PLUGIN_FAILURE with
 * XAPI's parameters ("failed to parse plugin output", "fault", "unexpected
 * XMLRPC result"). */
int plugin_reply_parse(const char *out, size_t len, char **value, XapiError **err);
