/* host_port.h: a guest tap as a bridge port: leaving its bridge, and the
 * byte counters the kernel keeps for it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "xapi_error.h"

/* Takes dev off bridge (not a port of it is not an error). */
int hostport_release(const char *bridge, const char *dev, XapiError **err);

/* The link's counters (/sys/class/net/DEV/statistics): bytes the host
 * received from it and sent to it. False if the link is gone. */
bool hostport_bytes(const char *dev, uint64_t *rx_bytes, uint64_t *tx_bytes);
