/* vm_nics.h: a VM's VIFs as the hypervisor's NICs, and the VIF records
 * following what the domain has attached. */
#pragma once

#include "db.h"
#include "hv_driver.h"

/* VM.platform key choosing the NIC model (XAPI keeps such choices in
 * platform): virtio-net (default), e1000 or rtl8139. */
#define VM_NIC_MODEL_KEY "nic_type"

/* The NICs of every VIF of vm for booting it (lock held; caller frees
 * with hv_nics_free). A VIF whose network has a PIF on this host that is
 * not plugged gives REQUIRED_PIF_IS_UNPLUGGED: the guest never starts
 * without its NIC. */
int vm_nics_for_start(const DbRow *vm, HvNic **nics, size_t *n, XapiError **err);

/* After the domain started or stopped: every VIF's currently_attached
 * (write lock held). */
int vm_vifs_set_attached(DbRow *vm, bool attached, XapiError **err);

/* Boot positions for the NICs where HVM_boot_params:order has 'n' (the
 * disks' positions after it move up). */
void vm_nics_boot_order(const DbRow *vm, HvNic *nics, size_t n, HvDisk *disks, size_t n_disks);

/* VIF.plug / unplug / unplug_force on a running VM: checks, the driver's
 * hot-plug under the VM's lock, then currently_attached. */
int vm_vif_plug(const char *vif_ref, XapiError **err);
int vm_vif_unplug(const char *vif_ref, bool force, XapiError **err);

/* After a change of the VIF's network, locking or QoS: a NIC plugged into
 * a running domain follows it at once (VM lock taken); otherwise nothing
 * to do until it is plugged. */
int vm_vif_refresh(const char *vif_ref, XapiError **err);
/* Whether the host can enforce the VIF record's locking mode, addresses
 * and QoS (values checked, and nftables usable if they need it): the
 * errors XAPI gives, and VALUE_NOT_SUPPORTED when the host cannot (lock
 * held). */
int vm_vif_check_policy(const DbRow *vif, XapiError **err);
/* At start-up: the host's nftables rules become exactly those of the NICs
 * plugged into domains running here. */
int vm_nics_restore_rules(XapiError **err);

/* PIF.plug, PIF.unplug and host.management_reconfigure of a NIC's PIF
 * move the running VIFs of its network between macvtap on the NIC and
 * taps on its bridge, the guests' devices untouched: begin (no database
 * lock held) locks their VMs and takes their backends away (a NIC with
 * macvtaps cannot join a bridge); the PIF is then changed; end gives each
 * the backend its records ask for now and unlocks. Nothing to do (*out
 * NULL is fine for end) unless pif is a NIC's PIF whose currently_attached
 * differs from to_bridge. A NIC's locking and QoS go with it (a bridge's
 * rules, or its macvtap's). */
typedef struct VmNicSwitch VmNicSwitch;
int vm_nics_switch_begin(const char *pif_ref, bool to_bridge, VmNicSwitch **out,
                         XapiError **err);
void vm_nics_switch_end(VmNicSwitch *sw);

/* The VIFs of from, copied to the VM to_ref as XAPI's clone does: same
 * devices, networks, locking and QoS; with keep_macs (a snapshot) the
 * same MACs, otherwise MACs generated from to's mac_seed (write lock
 * held). */
int vm_vifs_copy(const DbRow *from, const char *to_ref, bool keep_macs, XapiError **err);
/* Registers VM.create's mac_seed. */
void vm_nics_init(void);
