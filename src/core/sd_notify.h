/* sd_notify.h: telling systemd about the service's state (Type=notify):
 * a datagram to $NOTIFY_SOCKET, as sd_notify(3) sends it. */
#pragma once

#include <stdbool.h>

/* Sends state ("READY=1", "STOPPING=1", "STATUS=...") to $NOTIFY_SOCKET
 * (a path, or an abstract name when it starts with '@'). Without the
 * variable it does nothing and returns true; false if it could not be sent
 * (logged once here). */
bool sd_notify_send(const char *state);
