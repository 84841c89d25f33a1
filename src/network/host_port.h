/* host_port.h: a guest tap leaving its bridge (VIF.move, a VIF disabled
 * while it runs). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "xapi_error.h"

/* Takes dev off bridge (not a port of it is not an error). */
int hostport_release(const char *bridge, const char *dev, XapiError **err);
