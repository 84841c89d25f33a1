/* nft_rules.h: xapid's nftables table (`table bridge xapid`, one per
 * host, owned by xapid alone): a chain per guest tap that is locked,
 * disabled or rate-limited, entered from the bridge's prerouting hook for
 * what the guest sends; guest macvtaps, which no bridge sees, have theirs
 * in `table netdev xapid` on their own devices' hooks. Taps are matched by name, so rules can be set
 * before the tap joins its bridge and outlive a restart of xapid. */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "vif_policy.h"
#include "xapi_error.h"

#define NFT_RULES_TABLE "xapid"

/* VALUE_NOT_SUPPORTED [locking_mode|qos_algorithm_type; value; why] if p
 * needs rules this host cannot enforce (probed once, with a dry run of
 * the table). */
int nft_rules_check(const VifPolicy *p, XapiError **err);

/* Guest taps whose names make chain names (letters, digits and '.'). */
bool nft_rules_tap_ok(const char *tap);

/* The nft commands that give tap exactly the rules of p (none when p
 * needs none), as one transaction; pure, for the unit tests. */
char *nft_rules_tap_commands(const char *tap, const VifPolicy *p);

/* Gives tap the rules of p (or removes them when p needs none); applied
 * atomically. A policy that needs rules on a host that cannot enforce
 * them: VALUE_NOT_SUPPORTED. */
int nft_rules_set(const char *tap, const VifPolicy *p, XapiError **err);
/* The same for a guest's macvtap (macvtap.h), which no bridge sees: the
 * chains hook its own device (`table netdev xapid`): what the guest sends
 * at its egress, and for a disabled VIF what it is sent at its ingress.
 * The device must exist. */
int nft_rules_set_macvtap(const char *tap, const VifPolicy *p, XapiError **err);
/* Removes the rules of taps that no longer exist (a QEMU that exited
 * takes its taps with it). */
void nft_rules_gc(void);
/* At start-up: the table becomes exactly these taps' rules (taps: char*,
 * policies: VifPolicy*, in the same order), in one
 * transaction, so that a crash leaves neither stale rules nor a moment
 * without them. Nothing is made when none is needed and there is no
 * table. */
int nft_rules_restore(GPtrArray *taps, GPtrArray *policies, XapiError **err);

/* Runs nft commands on another table of xapid's own (nat.c's), in one
 * transaction. */
int nft_rules_run_table(const char *commands, XapiError **err);
