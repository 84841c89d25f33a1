/* host_net.h: the only code that changes the host's network links:
 * bridges, taps, MTU, link state, and what the host's links look like. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "xapi_error.h"

/* A link name the kernel accepts (1-15 characters of [A-Za-z0-9._-]). */
bool hostnet_valid_name(const char *name);

bool hostnet_link_exists(const char *name);
/* /sys/class/net/<name>/<leaf> as a number ("carrier", "mtu"), without
 * reading the rest of the link as hostnet_link does; 0 when unreadable
 * (carrier is so while the link is down) or name is no link name. */
int64_t hostnet_sys_int(const char *name, const char *leaf);
bool hostnet_is_bridge(const char *name);
/* True if the bridge has no port left. */
bool hostnet_bridge_empty(const char *name);

/* Creates a bridge (no ports), sets its MTU and brings it up. */
int hostnet_bridge_add(const char *name, int mtu, XapiError **err);
/* Brings a bridge down and removes it; absent is not an error. */
int hostnet_bridge_del(const char *name, XapiError **err);
int hostnet_set_mtu(const char *name, int mtu, XapiError **err);
int hostnet_set_up(const char *name, bool up, XapiError **err);
/* Makes dev a port of bridge. */
int hostnet_enslave(const char *bridge, const char *dev, XapiError **err);
/* Creates a tap named name, held by the returned fd (close-on-exec, with
 * virtio-net headers): the tap goes away when the last holder of the fd
 * closes it, so a QEMU that exits takes its taps with it. -1 on error. */
int hostnet_tap_open(const char *name, XapiError **err);

typedef struct {
    char *name;
    char *mac;       /* lower-case aa:bb:..., "" if none */
    int mtu;
    int ifindex;
    char *master;    /* the bridge it is a port of, or "" */
    bool carrier;
    int64_t speed;   /* Mbit/s, 0 when unknown */
    bool physical;   /* backed by a device (/sys/class/net/X/device) */
    bool bridge, tap, veth, loopback;
    char *vendor_id, *device_id, *pci_bus_path; /* "" when unknown */
} HostLink;
void hostnet_link_free(HostLink *link);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HostLink, hostnet_link_free)

/* The host's links, sorted by name (HostLink*, owned by the array). */
GPtrArray *hostnet_links(void);
/* One link, or NULL. */
HostLink *hostnet_link(const char *name);
/* The interface holding the IPv4 default route, or NULL. */
char *hostnet_default_route_dev(void);
/* The same from the text of /proc/net/route. */
char *hostnet_default_route_in(const char *text);
/* The first IPv4 address and netmask of dev (dotted), or false. */
bool hostnet_ipv4(const char *dev, char **address, char **netmask);
