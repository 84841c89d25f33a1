/* log_ring.h: xapid's log as host.get_log reads it (the newest lines kept
 * in memory, besides stderr), and its copy to a remote syslog
 * (host.logging:syslog_destination, host.syslog_reconfigure). */
#pragma once

#include <stddef.h>

#include "xapi_error.h"

/* Routes GLib's log through the ring (capacity bytes); lines still go to
 * stderr as before. */
void log_ring_install(size_t capacity);
/* The lines kept, oldest first (caller frees). */
char *log_ring_contents(void);
/* Sends each later line to destination ("host" or "host:port", UDP, port
 * 514 by default) as a syslog message; "" stops. INTERNAL_ERROR if the
 * address does not resolve (nothing changes then). */
int log_ring_forward_to(const char *destination, XapiError **err);
