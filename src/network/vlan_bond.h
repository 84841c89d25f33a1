/* vlan_bond.h: VLAN and Bond records as XAPI makes them (xapi_vlan.ml
 * create_internal, xapi_bond.ml create/destroy) with their links on the
 * host. The callers (src/api/vlan.c, bond.c) have checked the request;
 * the write lock is held, and a failure leaves the host as it was (the
 * caller aborts the write). */
#pragma once

#include "db.h"
#include "xapi_error.h"

/* XAPI's dummy MAC of a VLAN's untagged PIF. */
#define VLAN_PIF_MAC "fe:ff:ff:ff:ff:ff"

/* A VLAN with tag on tagged, its untagged PIF on network, plugged.
 * Returns the VLAN's ref (caller frees) or NULL. */
char *vlan_bond_vlan_create(DbRow *tagged, int64_t tag, DbRow *network, XapiError **err);
/* Commits a write that made vlan; if the commit fails, the VLAN's link
 * and bridge are removed again, so that the host matches the records. */
int vlan_bond_vlan_commit(const char *vlan, XapiError **err);
/* Unplugs and removes the VLAN and its untagged PIF. */
int vlan_bond_vlan_destroy(DbRow *vlan, XapiError **err);

/* Linux's bonding mode for XAPI's (balance-slb -> balance-alb, both
 * balance by source MAC without help from the switch; lacp -> 802.3ad),
 * NULL if unknown. */
const char *vlan_bond_linux_mode(const char *mode);

/* A bond of members (distinct, checked) on network: master PIF bondN with
 * mac ("" for the primary slave's), the primary slave's IP configuration,
 * members enslaved, plugged. properties are the Bond's (defaults added).
 * Returns the Bond's ref (caller frees) or NULL. */
char *vlan_bond_bond_create(DbRow *network, GPtrArray *members, DbRow *primary, const char *mac,
                            const char *mode, const Xv *properties, XapiError **err);
/* Removes the bond: the members get back the master's IP configuration
 * (the primary slave) and are plugged again if the master was. */
int vlan_bond_bond_destroy(DbRow *bond, XapiError **err);
/* Applies a new mode and properties to a bond's link (recreated with the
 * same members). */
int vlan_bond_bond_reconfigure(DbRow *bond, XapiError **err);
/* After a restart: a bond of host made by xapid itself (bond_bpf.h) whose
 * link is still there is watched again, its programs put right for its
 * members' carrier now. Other bonds are left alone. */
int vlan_bond_bond_resume(DbRow *bond, const char *host, XapiError **err);
/* After a restart: what xapid's own bonds left on host without a Bond
 * record (a crash before the record was committed) is removed. */
void vlan_bond_sweep(const char *host);
