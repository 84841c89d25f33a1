/* network.h: networks, PIFs and bridges: the host's NICs as PIFs, bridge
 * names, and the bridges guests' NICs go on. */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "db.h"
#include "vif_policy.h"
#include "xapi_error.h"

/* Records a PIF (with PIF_metrics and a network) for each NIC of the host
 * that has none yet: devices backed by hardware, and the one holding the
 * default route. With first_start, that one becomes the management PIF:
 * if it is a port of a bridge, its network is that bridge, unmanaged and
 * attached; otherwise a xenbrN network whose PIF stays unplugged (the
 * host's address is never moved). Write lock held. */
int network_discover_pifs(const char *host, bool first_start, XapiError **err);

/* PIF.introduce's record (with PIF_metrics and a network: xenbrN when
 * managed, no bridge otherwise) for the host's link device. Returns the
 * PIF's ref (caller frees) or NULL. Write lock held. */
char *network_introduce_pif(const char *host, const char *device, bool managed, XapiError **err);

/* network.create's bridge: "" takes the next free xapiN; a caller's name
 * is checked as XAPI does (INVALID_VALUE, BRIDGE_NAME_EXISTS). Returns the
 * name (caller frees) or NULL. Lock held. */
char *network_bridge_for_create(const char *requested, XapiError **err);

/* The bridge a guest's NIC goes on, made if it is an internal network's
 * and absent (MTU set); a bridge that should exist and does not gives
 * BRIDGE_NOT_AVAILABLE. */
int network_bridge_acquire(const char *bridge, int mtu, bool internal, XapiError **err);
/* The internal bridge is a NAT network's (nat.h): when it is made, it
 * becomes the gateway of subnet; when removed, that goes with it. */
void network_bridge_nat(const char *bridge, const char *subnet);
/* Removes the internal bridges xapid made that no port uses any more. */
void network_bridges_gc(void);

/* The tap of a VM's NIC: xv<8 hex of the VM's uuid>.<device> (caller
 * frees), within the kernel's 15 characters for devices below 100000. */
char *network_guest_tap_name(const char *vm_uuid, int device);
/* Waits (up to a second or two) until the taps of a VM whose QEMU has
 * exited are gone: the kernel removes a tap a little after the last fd
 * closes, and an internal bridge is removed only once it has no port. */
void network_guest_taps_wait_gone(const char *vm_uuid);
/* The same for one tap whose netdev QEMU deleted. */
void network_guest_tap_wait_gone(const char *tap);

/* A guest NIC's tap, held by the returned fd (close-on-exec; the tap goes
 * when the last holder closes it): made with the MTU, given the rules of
 * policy (NULL: none), then made a port of its bridge (acquired as above)
 * unless policy disables it, and up. -1 on error, nothing left behind. */
int network_guest_tap_open(const char *tap, const char *bridge, int mtu, bool internal,
                           const VifPolicy *policy, XapiError **err);
/* An existing guest tap follows policy and bridge: its rules are replaced,
 * then it moves to bridge (acquired as above), or off any bridge when
 * policy disables it. */
int network_guest_tap_update(const char *tap, const char *bridge, int mtu, bool internal,
                             const VifPolicy *policy, XapiError **err);

/* ---- guest NICs on a NIC that is no bridge's port (macvtap) -------------------- */

/* network.other_config keys saying how the network's guests reach it on
 * this host: "bridge" (taps on its bridge) or "macvtap" (a macvtap link per
 * VIF on the PIF's NIC, its PIF unplugged), and what that means. */
#define NETWORK_ATTACH_KEY "xapid-attach"
#define NETWORK_ATTACH_NOTE_KEY "xapid-attach-note"

/* True if device is a link of this host that is no port of a bridge (nor
 * of a bond) and no bridge itself: a NIC guests can reach through macvtap. */
bool network_nic_unbridged(const char *device);
/* Writes NETWORK_ATTACH_KEY (and the note) of the network of pif, a NIC's
 * PIF, after its currently_attached (write lock held). */
int network_mark_attachment(const DbRow *pif, XapiError **err);

/* A guest NIC's macvtap link named tap on the NIC parent, with the VIF's
 * MAC and the MTU, given the rules of policy (NULL: none) on its own
 * device, then up; held by the returned fd (close-on-exec). The link stays
 * when the fd closes: network_guest_macvtap_remove. -1 on error. */
int network_guest_macvtap_open(const char *tap, const char *parent, const char *mac, int mtu,
                               const VifPolicy *policy, XapiError **err);
/* A guest macvtap's rules follow policy. */
int network_guest_macvtap_update(const char *tap, const VifPolicy *policy, XapiError **err);
/* Removes tap, with its rules, if it is a macvtap link (absent is fine). */
int network_guest_macvtap_remove(const char *tap, XapiError **err);
/* Removes the macvtap links of a VM (after its QEMU exited). */
void network_guest_macvtaps_remove(const char *vm_uuid);
/* At start-up: removes guest macvtap links (xv...) whose names are not in
 * keep (the NICs plugged into domains running here). */
void network_guest_macvtaps_gc(GHashTable *keep);
/* True if tap is a macvtap link (on parent, unless parent is NULL). */
bool network_guest_macvtap_on(const char *tap, const char *parent);
/* True if tap exists and is no macvtap (a tap). */
bool network_guest_tap_exists(const char *tap);
/* docs/compat.md's section on the keys above. */
void network_markdown(GString *out);
