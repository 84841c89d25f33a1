/* pif_host.h: what a PIF record means on the host: its kernel link (a
 * NIC, an 802.1Q link, a bond) on its network's bridge with its IPv4
 * configuration (XAPI's nm.ml bring_pif_up / bring_pif_down). */
#pragma once

#include <stdbool.h>

#include "db.h"
#include "xapi_error.h"

/* How long a moved management address may take to come back (bridge up
 * with carrier) before the move is undone. */
#define PIF_HOST_CARRIER_TIMEOUT_MS 5000

/* The kernel link of a PIF (caller frees): its device, or <device>.<tag>
 * for a VLAN's untagged PIF; NULL (with an error) if that name is too
 * long for the kernel. Lock held. */
char *pif_host_link(const DbRow *pif, XapiError **err);

/* Puts the PIF's link on its network's bridge (made with the network's
 * MTU if absent), up, with the PIF's IPv4 configuration on the bridge;
 * a VLAN's link is made on its tagged PIF's link. An address the link
 * itself holds (a management NIC the host configured) moves to the
 * bridge with the default route, and comes back if the bridge does not
 * get carrier in time. On failure the host is as it was. Sets
 * currently_attached and MTU. Write lock held. */
int pif_host_plug(DbRow *pif, XapiError **err);
/* The reverse: bridge removed, link freed (a VLAN's link removed);
 * currently_attached false. Write lock held. */
int pif_host_unplug(DbRow *pif, XapiError **err);

/* Applies a plugged PIF's IPv4 configuration to its bridge (None removes
 * the addresses; DHCP runs Debian's dhclient and records the address it
 * got in IP and netmask); with_gateway also sets the default route
 * through its gateway. Write lock held. */
int pif_host_apply_ip(DbRow *pif, bool with_gateway, XapiError **err);

/* True if this host can run a DHCP client for a PIF. */
bool pif_host_dhcp_available(void);

/* The bridge of the PIF's network ("" if none). Lock held. */
const char *pif_host_bridge(const DbRow *pif);

/* host.management_reconfigure's host side: the PIF plugged (if it was
 * not) with its IPv4 configuration and the default route through its
 * gateway (if it has one); if its bridge has no carrier or not the
 * PIF's address within PIF_HOST_CARRIER_TIMEOUT_MS, the default route
 * and the PIF are put back as they were and PIF_CONFIGURATION_ERROR is
 * the answer. Write lock held. */
int pif_host_take_management(DbRow *pif, XapiError **err);

/* At start: each attached, managed PIF of this host whose link is not on
 * its bridge (the host rebooted, or someone removed it) is plugged again,
 * bond masters first and VLANs last, as XAPI brings PIFs up at start of
 * day; one that cannot be is recorded as unplugged. */
void pif_host_start_of_day(void);
