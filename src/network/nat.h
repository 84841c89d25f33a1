/* nat.h: routed/NAT internal networks (other_config:xapid-nat=true): the
 * bridge holds the subnet's first address as the guests' gateway, dnsmasq
 * leases addresses on it, and what the guests send out of the host is
 * masqueraded (nftables table `ip xapid-nat-<bridge>`). Off unless asked. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "xapi_error.h"

#define NAT_KEY "xapid-nat"
#define NAT_SUBNET_KEY "xapid-nat-subnet"

typedef struct {
    uint32_t network; /* host order, host bits clear */
    int prefix;       /* 8-29 */
} NatSubnet;

/* "a.b.c.d/len" (8 <= len <= 29); host bits are cleared. */
bool nat_parse_subnet(const char *text, NatSubnet *out);
char *nat_subnet_text(const NatSubnet *s);

/* network.create's new row: with other_config:xapid-nat=true, the subnet
 * (other_config:xapid-nat-subnet, checked, or the first free
 * 10.213.N.0/24) is written into other_config; INVALID_VALUE for a bad
 * value, OPERATION_NOT_ALLOWED without dnsmasq. Write lock held. */
int nat_prepare_record(DbRow *net, XapiError **err);
/* The NAT subnet of a network, or NULL when it is no NAT network (caller
 * frees; lock held). */
char *nat_subnet_of(const DbRow *net);

/* A new bridge becomes the NAT network's gateway: address, forwarding,
 * masquerade, dnsmasq. On failure nothing of it is left. */
int nat_up(const char *bridge, const char *subnet, XapiError **err);
/* Before its bridge goes: dnsmasq stopped, the table removed. */
void nat_down(const char *bridge);
