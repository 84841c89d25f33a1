/* serial_hub.h: a serial console shared by several clients at once (see
 * serial_hub.c). */
#pragma once

#include "xapi_error.h"

/* Opens the guest's side of the console: a connected socket, or -1 with err. */
typedef int (*SerialHubConnect)(void *ctx, XapiError **err);

/* A socket on which the caller reads what the guest writes and writes
 * what it types, shared with every other client of the console named key;
 * the first client's join opens the guest's side with connect_guest.
 * It reads end-of-file when the guest's side closes. -1 with err. */
int serial_hub_join(const char *key, SerialHubConnect connect_guest, void *ctx, XapiError **err);
