/* ha_agility.h: XAPI's agility (agility.ml): whether a VM can be
 * restarted on any host of the pool. HA's plan treats a protected VM that
 * is not agile as pinned to one host (ha_plan.h). */
#pragma once

#include <stdbool.h>

#include "db.h"
#include "xapi_error.h"

/* shared, and every enabled host has a PBD of it currently attached
 * (is_sr_properly_shared). Read lock held. */
bool ha_sr_properly_shared(const DbRow *sr);
/* Every enabled host has a PIF on it that is no bond's slave
 * (is_network_properly_shared); a network without PIFs is not shared.
 * Read lock held. */
bool ha_network_properly_shared(const DbRow *network);

/* VM.assert_agile (caching_vm_t_assert_agile), read lock held: 0, or -1
 * with XAPI's error: VM_HAS_VGPU [vm], VM_HAS_VUSBS [vm],
 * HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED [sr] for a disk's SR,
 * HA_CONSTRAINT_VIOLATION_NETWORK_NOT_SHARED [network] for a VIF's,
 * VM_HAS_SRIOV_VIF [vm]. err may be NULL. */
int ha_vm_check_agile(const DbRow *vm, XapiError **err);

/* The same, taking the read lock (HANDLE_INVALID for no VM). */
int ha_vm_assert_agile(const char *vm_ref, XapiError **err);

/* xapi_vbd_helpers.ml assert_doesnt_make_vm_non_agile and its VIF
 * counterpart (xapi_vif_helpers.ml): while HA is on without overcommit,
 * a protected VM gets no disk on an SR that is not properly shared
 * (HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED [sr]) and no VIF on a network
 * that is not (HA_CONSTRAINT_VIOLATION_NETWORK_NOT_SHARED [network]):
 * VBD.create and VBD.insert, VIF.create. vm may be NULL (nothing
 * refused). Read lock held. */
int ha_check_new_vbd(const DbRow *vm, const DbRow *vdi, XapiError **err);
int ha_check_new_vif(const DbRow *vm, const DbRow *network, XapiError **err);
