/* bond_bpf.h: bonds for kernels without CONFIG_BONDING. The bond's link
 * is one end of a veth pair; tc BPF programs join its hidden end to the
 * members: active-backup sends and receives through one member with
 * carrier (the primary when it has carrier), balance-slb sends each
 * source MAC through one member chosen by a hash and receives on all.
 * A thread told of carrier changes by rtnetlink moves the traffic. */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "xapi_error.h"

/* Creates the link name (up, no members yet) for a bond of XAPI's mode
 * with mac (aa:bb:.., or NULL) and mtu. lacp needs the 802.3ad protocol,
 * which xapid does not speak: OPERATION_NOT_ALLOWED. */
int bondbpf_add(const char *name, const char *mode, const char *mac, int mtu, XapiError **err);
/* Whether such a bond does XAPI's mode: lacp needs the 802.3ad protocol
 * (OPERATION_NOT_ALLOWED). */
int bondbpf_check_mode(const char *mode, XapiError **err);
/* Gives the bond name of mode its members (links, in the Bond's order; primary
 * is one of them): each is kept up, promiscuous, at the bond's MTU, and
 * the programs are put in place; again after a restart, the bond is
 * watched once more. */
int bondbpf_set_members(const char *name, const char *mode, GPtrArray *member_links,
                        const char *primary, XapiError **err);
/* Removes the bond name: the programs from its members, which are left
 * up and no longer promiscuous, and its veth pair. Absent is fine. */
int bondbpf_del(const char *name, XapiError **err);
/* True if name is a bond made here. */
bool bondbpf_exists(const char *name);
/* After a restart: removes what a bond made here left behind when no Bond
 * recorded it (xapid stopped between the two): bond links not named in
 * bonds, and the members' programs on free_links (links of PIFs in no
 * bond). The members' MTU, promiscuity and IPv6 stay as they were. */
void bondbpf_sweep(GPtrArray *bonds, GPtrArray *free_links);
