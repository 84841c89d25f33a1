/* host_links.h: 802.1Q and bonding links, ports, IPv4 addresses and the
 * default route, over rtnetlink (host_net.h does bridges and taps). */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "xapi_error.h"

/* The kernel link of a VLAN: <parent>.<tag>, or NULL when longer than
 * the kernel's 15 characters. Caller frees. */
char *hostlinks_vlan_name(const char *parent, int tag);
/* Creates name as an 802.1Q link with tag on parent (MTU set when > 0):
 * the kernel's, or where the kernel lacks 802.1Q (CONFIG_VLAN_8021Q),
 * xapid's own (vlan_bpf.h). */
int hostlinks_vlan_add(const char *name, const char *parent, int tag, int mtu, XapiError **err);
/* Removes a VLAN link made by hostlinks_vlan_add; absent is fine. */
int hostlinks_vlan_del(const char *name, const char *parent, int tag, XapiError **err);
/* True if parent has a VLAN with tag (/proc/net/vlan, or xapid's own). */
bool hostlinks_has_vlan(const char *parent, int tag);
/* The same from the text of /proc/net/vlan/config. */
bool hostlinks_vlan_config_has(const char *text, const char *parent, int tag);

typedef struct {
    const char *mode;      /* Linux's: active-backup, balance-alb, 802.3ad */
    const char *mac;       /* aa:bb:cc:dd:ee:ff, or NULL for the kernel's */
    int mtu;               /* > 0 to set */
    int xmit_hash_policy;  /* 802.3ad: 0 layer2, 1 layer3+4 */
    bool lacp_fast;        /* 802.3ad: LACPDUs every second */
    int user_port_key;     /* 802.3ad: 0-1023, -1 for none */
} HostBond;
/* Creates a bonding link (miimon 100 ms). A kernel without bonding sets
 * *unsupported (and no error): bond_bpf.h does bonds there. */
int hostlinks_bond_add(const char *name, const HostBond *bond, bool *unsupported,
                       XapiError **err);
/* The mode a bonding link reports (/sys/class/net/X/bonding/mode's first
 * word), "" when not a bond. Caller frees. */
char *hostlinks_bond_mode(const char *name);

/* Creates name as a macvtap link in bridge mode on parent with the
 * guest's MAC (and MTU when > 0): the guest's frames go out of parent and
 * it reaches the other macvtaps of parent, but not parent's own stack. */
int hostlinks_macvtap_add(const char *name, const char *parent, const char *mac, int mtu,
                          XapiError **err);

/* Makes dev a port of master (a bridge or a bond); master NULL frees it. */
int hostlinks_set_master(const char *dev, const char *master, XapiError **err);
/* Removes a link; absent is not an error. */
int hostlinks_del(const char *name, XapiError **err);

/* Replaces dev's IPv4 addresses with address/prefix (none if address is
 * NULL). */
int hostlinks_set_ipv4(const char *dev, const char *address, int prefix, XapiError **err);
/* A dotted netmask's prefix length, -1 if it is not a contiguous mask. */
int hostlinks_prefix_of(const char *netmask);

typedef struct {
    char *dev;     /* NULL: no default route */
    char *gateway; /* dotted, "" for a device route */
} HostRoute;
void hostlinks_route_clear(HostRoute *r);
/* The IPv4 default route now (from /proc/net/route). */
void hostlinks_default_route(HostRoute *out);
/* The same from the text of /proc/net/route. */
void hostlinks_default_route_in(const char *text, HostRoute *out);
/* Sets the default route (replacing any); dev NULL removes it. */
int hostlinks_set_default_route(const char *dev, const char *gateway, XapiError **err);

/* Waits up to timeout_ms until dev is up with carrier. */
bool hostlinks_wait_carrier(const char *dev, int timeout_ms);
