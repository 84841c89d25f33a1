/* macvtap.h: guest NICs on a NIC that is no bridge's port, through a
 * macvtap link in bridge mode: the guests reach the NIC's LAN and each
 * other, the host keeps its address on the NIC (and, as macvtap is made,
 * cannot reach its guests through it). */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "xapi_error.h"

/* Creates name as a macvtap link on parent with the guest's MAC and MTU,
 * still down (for its rules to be set first), and returns its character
 * device opened (close-on-exec, with
 * virtio-net headers, as a tap's). Unlike a tap, the link stays when the
 * fd closes: macvtap_remove it. -1 on error, nothing left behind. */
int macvtap_open(const char *name, const char *parent, const char *mac, int mtu,
                 XapiError **err);
/* True if name is a macvtap link. */
bool macvtap_is(const char *name);
/* Removes name if it is a macvtap link. */
int macvtap_remove(const char *name, XapiError **err);
/* Removes every macvtap link whose name starts with prefix, but those in
 * keep (a set of names; NULL: none). */
void macvtap_remove_prefixed(const char *prefix, GHashTable *keep);
