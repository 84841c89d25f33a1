/* vlan.h: VLAN.create's checks and work, shared with PIF.create_VLAN and
 * pool.create_VLAN(_from_PIF). */
#pragma once

#include "call.h"

/* With the write lock held: XAPI's checks in its order, then the VLAN.
 * Returns the VLAN's ref (caller frees) or NULL with call->error set. */
char *vlan_create_locked(Call *call, const char *tagged_PIF, int64_t tag, const char *network);

/* PIF.create_VLAN's: the VLAN on host's PIF of device without a tag
 * (INVALID_VALUE ["device"; device] if none). Returns the untagged PIF's
 * ref (caller frees) or NULL; the VLAN's in *out_vlan. Write lock held. */
char *vlan_create_on_device_locked(Call *call, const char *device, const char *network,
                                   const char *host, int64_t tag, char **out_vlan);
