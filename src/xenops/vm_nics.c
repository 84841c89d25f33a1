/* vm_nics.c: from VIF records to the NICs a domain boots with: which
 * bridge, which MAC, which model, where in the boot order. */
#include "vm_nics.h"

#include <string.h>

#include "bootstrap.h"
#include "implicit.h"
#include "nat.h"
#include "network.h"
#include "nft_rules.h"
#include "operations.h"
#include "vm_nvram.h"
#include "xenops.h"

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

static const char *str_field(const DbRow *row, const char *field)
{
    return xv_str(db_get(row, field));
}

void hv_nics_free(HvNic *nics, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        g_free(nics[i].mac);
        g_free(nics[i].bridge);
        g_free(nics[i].tap);
        g_free(nics[i].macvtap_parent);
        vif_policy_free(nics[i].policy);
    }
    g_free(nics);
}

static const char *nic_model(const DbRow *vm, XapiError **err)
{
    const Xv *platform = db_get(vm, "platform");
    const Xv *v = platform ? xv_struct_get(platform, VM_NIC_MODEL_KEY) : NULL;
    const char *name = v ? xv_str(v) : "";
    if (!*name || strcmp(name, "virtio-net") == 0)
        return "virtio-net-pci";
    if (strcmp(name, "e1000") == 0)
        return "e1000";
    if (strcmp(name, "rtl8139") == 0)
        return "rtl8139";
    xapi_error_set(err, "INVALID_VALUE", "platform:" VM_NIC_MODEL_KEY, name, NULL);
    return NULL;
}

/* The network's PIF on this host, or NULL. */
static DbRow *local_pif(const DbRow *net, const char *host)
{
    const Xv *pifs = db_get(net, "PIFs");
    for (guint i = 0; i < xv_len(pifs); i++) {
        DbRow *pif = db_lookup(cls("PIF"), xv_str(xv_at(pifs, i)));
        if (pif && strcmp(str_field(pif, "host"), host) == 0)
            return pif;
    }
    return NULL;
}

static int nic_for_vif(const DbRow *vm, const DbRow *vif, const char *model, HvNic *nic,
                       XapiError **err)
{
    DbRow *net = db_lookup(cls("network"), str_field(vif, "network"));
    if (!net)
        return xapi_error_set(err, "HANDLE_INVALID", "network", str_field(vif, "network"),
                              NULL);
    g_autofree char *host = bootstrap_this_host();
    bool has_pifs = xv_len(db_get(net, "PIFs")) > 0;
    DbRow *pif = local_pif(net, host);
    if (has_pifs && !pif)
        return xapi_error_set(err, "VM_REQUIRES_NETWORK", vm->ref, net->ref, NULL);
    /* An unplugged PIF's bridge does not exist, and making it would move
     * the host's address (PIF.plug's work): a NIC that is no bridge's port
     * takes the guest through macvtap instead. */
    bool nic_pif = pif && db_get(pif, "physical")->b && db_get(pif, "VLAN")->i < 0;
    bool unplugged = pif && !db_get(pif, "currently_attached")->b;
    if (unplugged && !(nic_pif && network_nic_unbridged(str_field(pif, "device"))))
        return xapi_error_set(err, "REQUIRED_PIF_IS_UNPLUGGED", pif->ref, NULL);
    nic->switchable = nic_pif;
    if (unplugged)
        nic->macvtap_parent = g_strdup(str_field(pif, "device"));
    guint64 device = g_ascii_strtoull(str_field(vif, "device"), NULL, 10);
    int64_t mtu = db_get(net, "MTU")->i; /* the bridge's, so the taps' too */
    const char *uuid = str_field(vm, "uuid");
    nic->device = (int)device;
    nic->mac = g_strdup(str_field(vif, "MAC"));
    nic->bridge = g_strdup(str_field(net, "bridge"));
    nic->mtu = mtu > 0 ? (int)mtu : 1500;
    nic->internal = !has_pifs;
    g_autofree char *nat = nic->internal ? nat_subnet_of(net) : NULL;
    if (nat)
        network_bridge_nat(nic->bridge, nat);
    nic->policy = vif_policy_from_record(vif, net, err);
    if (!nic->policy)
        return -1;
    nic->model = model;
    nic->tap = network_guest_tap_name(uuid, nic->device);
    nic->bootindex = -1;
    if (strlen(nic->tap) > 15)
        return xapi_error_set(err, "INVALID_DEVICE", str_field(vif, "device"), NULL);
    return 0;
}

static gint by_device(gconstpointer a, gconstpointer b)
{
    return ((const HvNic *)a)->device - ((const HvNic *)b)->device;
}

int vm_nics_for_start(const DbRow *vm, HvNic **nics, size_t *n, XapiError **err)
{
    const Xv *vifs = db_get(vm, "VIFs");
    *nics = g_new0(HvNic, xv_len(vifs) + 1);
    *n = 0;
    if (!xv_len(vifs))
        return 0;
    const char *model = nic_model(vm, err);
    if (!model)
        return -1;
    for (guint i = 0; i < xv_len(vifs); i++) {
        DbRow *vif = db_lookup(cls("VIF"), xv_str(xv_at(vifs, i)));
        if (!vif)
            continue;
        if (nic_for_vif(vm, vif, model, &(*nics)[*n], err) < 0) {
            (*n)++;
            return -1;
        }
        (*n)++;
    }
    qsort(*nics, *n, sizeof **nics, (int (*)(const void *, const void *))by_device);
    return 0;
}

int vm_vifs_set_attached(DbRow *vm, bool attached, XapiError **err)
{
    const Xv *vifs = db_get(vm, "VIFs");
    for (guint i = 0; i < xv_len(vifs); i++) {
        DbRow *vif = db_lookup(cls("VIF"), xv_str(xv_at(vifs, i)));
        if (vif && db_get(vif, "currently_attached")->b != attached &&
            db_set_by_name(vif, "currently_attached", xv_new_bool(attached), err) < 0)
            return -1;
    }
    return 0;
}

void vm_nics_boot_order(const DbRow *vm, HvNic *nics, size_t n, HvDisk *disks, size_t n_disks)
{
    if (!n || *str_field(vm, "PV_kernel"))
        return;
    const Xv *o = xv_struct_get(db_get(vm, "HVM_boot_params"), "order");
    const char *order = o ? xv_str(o) : "cd";
    const char *net = strchr(order, 'n');
    if (!net)
        return;
    /* Disks took positions letter by letter; the NICs go where 'n' is. */
    int before = 0;
    size_t prefix = (size_t)(net - order);
    for (size_t i = 0; i < n_disks; i++)
        if (disks[i].bootindex >= 0 && memchr(order, disks[i].cdrom ? 'd' : 'c', prefix))
            before++;
    for (size_t i = 0; i < n_disks; i++)
        if (disks[i].bootindex >= before)
            disks[i].bootindex += (int)n;
    for (size_t i = 0; i < n; i++)
        nics[i].bootindex = before + (int)i;
}

/* ---- hot-plug ---------------------------------------------------------------- */

#define UNPLUG_TIMEOUT_MS 20000 /* the guest lets go of the device */
#define UNPLUG_FORCE_TIMEOUT_MS 5000

/* The VIF's NIC if the VIF may change state now (lock held). */
static int hotplug_check(const char *vif_ref, bool plug, HvNic *nic, XapiError **err)
{
    DbRow *vif = db_lookup(cls("VIF"), vif_ref);
    if (!vif)
        return xapi_error_set(err, "HANDLE_INVALID", "VIF", vif_ref, NULL);
    DbRow *vm = db_lookup(cls("VM"), str_field(vif, "VM"));
    if (!vm)
        return xapi_error_set(err, "HANDLE_INVALID", "VM", str_field(vif, "VM"), NULL);
    const char *state = str_field(vm, "power_state");
    if (strcmp(state, "Running") != 0) {
        g_autofree char *actual = g_ascii_strdown(state, -1);
        return xapi_error_set(err, "VM_BAD_POWER_STATE", vm->ref, "running", actual, NULL);
    }
    if (vm_nvram_check_hotplug(vm, err) < 0)
        return -1;
    bool attached = db_get(vif, "currently_attached")->b;
    if (plug && attached)
        return xapi_error_set(err, "DEVICE_ALREADY_ATTACHED", vif_ref, NULL);
    if (!plug && !attached)
        return xapi_error_set(err, "DEVICE_ALREADY_DETACHED", vif_ref, NULL);
    const char *model = nic_model(vm, err);
    if (!model)
        return -1;
    return nic_for_vif(vm, vif, model, nic, err);
}

static char *vm_uuid_of(const char *vif_ref, XapiError **err)
{
    db_read_begin();
    DbRow *vif = db_lookup(cls("VIF"), vif_ref);
    DbRow *vm = vif ? db_lookup(cls("VM"), str_field(vif, "VM")) : NULL;
    char *uuid = vm ? g_strdup(str_field(vm, "uuid")) : NULL;
    db_read_end();
    if (!uuid)
        xapi_error_set(err, "HANDLE_INVALID", "VIF", vif_ref, NULL);
    return uuid;
}

static int vif_hotplug(const char *vif_ref, bool plug, bool force, XapiError **err)
{
    g_autofree char *uuid = vm_uuid_of(vif_ref, err);
    if (!uuid)
        return -1;
    const HvDriver *driver = xenops_driver();
    xenops_lock_vm(uuid);
    HvNic *nic = g_new0(HvNic, 1);
    db_read_begin();
    int rc = hotplug_check(vif_ref, plug, nic, err);
    db_read_end();
    if (rc == 0 && plug)
        rc = driver->nic_plug(uuid, nic, err);
    else if (rc == 0)
        rc = driver->nic_unplug(uuid, nic, force ? UNPLUG_FORCE_TIMEOUT_MS : UNPLUG_TIMEOUT_MS,
                                err);
    if (rc == 1)
        rc = xapi_error_set(err, "DEVICE_DETACH_REJECTED", "VIF", vif_ref,
                            "the guest did not release the device", NULL);
    if (rc == 0)
        rc = db_update("VIF", vif_ref, "currently_attached", xv_new_bool(plug), err);
    xenops_unlock_vm(uuid);
    hv_nics_free(nic, 1);
    return rc;
}

int vm_vif_plug(const char *vif_ref, XapiError **err)
{
    return vif_hotplug(vif_ref, true, false, err);
}

int vm_vif_unplug(const char *vif_ref, bool force, XapiError **err)
{
    return vif_hotplug(vif_ref, false, force, err);
}

/* ---- live changes ---------------------------------------------------------- */

/* The VIF's VM's uuid if its NIC is plugged into a running domain now
 * (lock held), else NULL. */
static char *plugged_vm_uuid(const char *vif_ref)
{
    DbRow *vif = db_lookup(cls("VIF"), vif_ref);
    DbRow *vm = vif ? db_lookup(cls("VM"), str_field(vif, "VM")) : NULL;
    if (!vm || !db_get(vif, "currently_attached")->b)
        return NULL;
    const char *state = str_field(vm, "power_state");
    if (strcmp(state, "Running") != 0 && strcmp(state, "Paused") != 0)
        return NULL;
    return g_strdup(str_field(vm, "uuid"));
}

int vm_vif_refresh(const char *vif_ref, XapiError **err)
{
    db_read_begin();
    g_autofree char *uuid = plugged_vm_uuid(vif_ref);
    db_read_end();
    if (!uuid)
        return 0; /* the record is all there is: the next plug reads it */
    xenops_lock_vm(uuid);
    HvNic *nic = g_new0(HvNic, 1);
    db_read_begin();
    g_autofree char *again = plugged_vm_uuid(vif_ref);
    DbRow *vif = again ? db_lookup(cls("VIF"), vif_ref) : NULL;
    DbRow *vm = vif ? db_lookup(cls("VM"), str_field(vif, "VM")) : NULL;
    int rc = vm ? nic_for_vif(vm, vif, "", nic, err) : 0;
    db_read_end();
    if (rc == 0 && vm)
        rc = xenops_driver()->nic_update(uuid, nic, err);
    xenops_unlock_vm(uuid);
    hv_nics_free(nic, 1);
    return rc;
}

int vm_vif_check_policy(const DbRow *vif, XapiError **err)
{
    DbRow *net = db_lookup(cls("network"), str_field(vif, "network"));
    if (!net)
        return xapi_error_set(err, "HANDLE_INVALID", "network", str_field(vif, "network"),
                              NULL);
    g_autoptr(VifPolicy) p = vif_policy_from_record(vif, net, err);
    if (!p)
        return -1;
    return nft_rules_check(p, err);
}

typedef struct {
    const char *host;
    GPtrArray *taps, *policies;
} PluggedNics;

static bool collect_plugged(DbRow *vm, void *ctx)
{
    PluggedNics *p = ctx;
    const char *state = str_field(vm, "power_state");
    if ((strcmp(state, "Running") != 0 && strcmp(state, "Paused") != 0) ||
        strcmp(str_field(vm, "resident_on"), p->host) != 0)
        return true;
    const Xv *vifs = db_get(vm, "VIFs");
    for (guint i = 0; i < xv_len(vifs); i++) {
        DbRow *vif = db_lookup(cls("VIF"), xv_str(xv_at(vifs, i)));
        DbRow *net = vif ? db_lookup(cls("network"), str_field(vif, "network")) : NULL;
        if (!net || !db_get(vif, "currently_attached")->b)
            continue;
        guint64 device = g_ascii_strtoull(str_field(vif, "device"), NULL, 10);
        g_autofree char *tap = network_guest_tap_name(str_field(vm, "uuid"), (int)device);
        g_autoptr(XapiError) err = NULL;
        VifPolicy *policy = vif_policy_from_record(vif, net, &err);
        if (!policy) {
            /* Not what it was started with: keep it shut rather than open. */
            policy = vif_policy_new();
            policy->mode = VIF_LOCK_DISABLED;
        }
        g_ptr_array_add(p->taps, g_steal_pointer(&tap));
        g_ptr_array_add(p->policies, policy);
    }
    return true;
}

int vm_nics_restore_rules(XapiError **err)
{
    g_autofree char *host = bootstrap_this_host();
    PluggedNics p = {host, g_ptr_array_new_with_free_func(g_free),
                     g_ptr_array_new_with_free_func((GDestroyNotify)vif_policy_free)};
    db_read_begin();
    db_foreach(cls("VM"), collect_plugged, &p);
    db_read_end();
    g_autoptr(GHashTable) keep = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < p.taps->len; i++)
        g_hash_table_add(keep, p.taps->pdata[i]);
    /* Those of domains gone while xapid was not (sim domains make none). */
    if (strcmp(xenops_driver()->name, "qemu") == 0)
        network_guest_macvtaps_gc(keep);
    int rc = nft_rules_restore(p.taps, p.policies, err);
    g_ptr_array_unref(p.taps);
    g_ptr_array_unref(p.policies);
    return rc;
}

/* ---- switching between macvtap and the bridge ------------------------------- */

typedef struct {
    char *uuid, *vif;
} SwitchedNic;

struct VmNicSwitch {
    GPtrArray *nics;   /* SwitchedNic, detached */
    GPtrArray *locked; /* uuids of the VMs locked, sorted */
};

static void switched_nic_free(gpointer p)
{
    SwitchedNic *n = p;
    g_free(n->uuid);
    g_free(n->vif);
    g_free(n);
}

/* The VIFs plugged into domains here on the network of pif, when pif is a
 * NIC whose attachment is about to change (lock held). */
static void collect_switching(const char *pif_ref, bool to_bridge, GPtrArray *out)
{
    DbRow *pif = db_lookup(cls("PIF"), pif_ref);
    if (!pif || !db_get(pif, "physical")->b || db_get(pif, "VLAN")->i >= 0 ||
        db_get(pif, "currently_attached")->b == to_bridge)
        return;
    g_autofree char *host = bootstrap_this_host();
    DbRow *net = db_lookup(cls("network"), str_field(pif, "network"));
    if (!net || strcmp(str_field(pif, "host"), host) != 0)
        return;
    const Xv *vifs = db_get(net, "VIFs");
    for (guint i = 0; i < xv_len(vifs); i++) {
        const char *ref = xv_str(xv_at(vifs, i));
        g_autofree char *uuid = plugged_vm_uuid(ref);
        DbRow *vif = db_lookup(cls("VIF"), ref);
        DbRow *vm = vif ? db_lookup(cls("VM"), str_field(vif, "VM")) : NULL;
        if (!uuid || !vm || strcmp(str_field(vm, "resident_on"), host) != 0)
            continue;
        SwitchedNic *n = g_new0(SwitchedNic, 1);
        n->uuid = g_steal_pointer(&uuid);
        n->vif = g_strdup(ref);
        g_ptr_array_add(out, n);
    }
}

static gint by_string(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The NIC as its record says now, or with detached, without a backend. */
static int switch_one(const SwitchedNic *n, bool detached, XapiError **err)
{
    HvNic *nic = g_new0(HvNic, 1);
    db_read_begin();
    DbRow *vif = db_lookup(cls("VIF"), n->vif);
    DbRow *vm = vif ? db_lookup(cls("VM"), str_field(vif, "VM")) : NULL;
    int rc = 0;
    if (detached && vif && vm) {
        nic->device = (int)g_ascii_strtoull(str_field(vif, "device"), NULL, 10);
        nic->tap = network_guest_tap_name(n->uuid, nic->device);
        nic->mac = g_strdup(str_field(vif, "MAC"));
        nic->switchable = nic->detached = true;
    } else if (vif && vm) {
        rc = nic_for_vif(vm, vif, "", nic, err);
    }
    db_read_end();
    if (rc == 0 && vif && vm)
        rc = xenops_driver()->nic_update(n->uuid, nic, err);
    hv_nics_free(nic, 1);
    return rc;
}

static void switch_unlock(VmNicSwitch *sw)
{
    for (guint i = 0; i < sw->locked->len; i++)
        xenops_unlock_vm(sw->locked->pdata[i]);
    g_ptr_array_unref(sw->locked);
    g_ptr_array_unref(sw->nics);
    g_free(sw);
}

int vm_nics_switch_begin(const char *pif_ref, bool to_bridge, VmNicSwitch **out,
                         XapiError **err)
{
    VmNicSwitch *sw = g_new0(VmNicSwitch, 1);
    sw->nics = g_ptr_array_new_with_free_func(switched_nic_free);
    sw->locked = g_ptr_array_new_with_free_func(g_free);
    *out = NULL;
    db_read_begin();
    collect_switching(pif_ref, to_bridge, sw->nics);
    db_read_end();
    /* In one order, so that two switches cannot wait for each other. */
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < sw->nics->len; i++) {
        SwitchedNic *n = sw->nics->pdata[i];
        if (g_hash_table_add(seen, n->uuid))
            g_ptr_array_add(sw->locked, g_strdup(n->uuid));
    }
    g_ptr_array_sort(sw->locked, by_string);
    for (guint i = 0; i < sw->locked->len; i++)
        xenops_lock_vm(sw->locked->pdata[i]);
    /* The backends leave first: a NIC cannot be a bridge's port while it
     * has macvtaps, nor the reverse. */
    for (guint i = 0; i < sw->nics->len; i++) {
        if (switch_one(sw->nics->pdata[i], true, err) < 0) {
            for (guint j = 0; j <= i; j++)
                switch_one(sw->nics->pdata[j], false, NULL);
            switch_unlock(sw);
            return -1;
        }
    }
    *out = sw;
    return 0;
}

void vm_nics_switch_end(VmNicSwitch *sw)
{
    if (!sw)
        return;
    for (guint i = 0; i < sw->nics->len; i++) {
        SwitchedNic *n = sw->nics->pdata[i];
        g_autoptr(XapiError) e = NULL;
        if (switch_one(n, false, &e) < 0)
            g_warning("VIF %s of VM %s has no backend after the switch: %s", n->vif, n->uuid,
                      e ? e->code : "");
    }
    switch_unlock(sw);
}

/* ---- copies and seeds ------------------------------------------------------- */

static const char *const copied_vif_fields[] = {
    "device", "network", "MTU", "other_config", "qos_algorithm_type", "qos_algorithm_params",
    "locking_mode", "ipv4_allowed", "ipv6_allowed", NULL};

int vm_vifs_copy(const DbRow *from, const char *to_ref, bool keep_macs, XapiError **err)
{
    DbRow *to = db_lookup(cls("VM"), to_ref);
    const Xv *seed = to ? xv_struct_get(db_get(to, "other_config"), "mac_seed") : NULL;
    const Xv *vifs = db_get(from, "VIFs");
    g_autoptr(Xv) refs = xv_dup(vifs);
    for (guint i = 0; to && i < xv_len(refs); i++) {
        DbRow *vif = db_lookup(cls("VIF"), xv_str(xv_at(refs, i)));
        if (!vif)
            continue;
        DbRow *nv = db_row_new(cls("VIF"));
        for (const char *const *f = copied_vif_fields; *f; f++)
            db_row_put(nv, *f, xv_dup(db_get(vif, *f)));
        db_row_put(nv, "VM", xv_new_string(to_ref));
        /* XAPI's copy: a snapshot keeps the MACs; a clone or copy has a
         * new seed, and its MACs are generated from it. */
        guint64 device = g_ascii_strtoull(str_field(vif, "device"), NULL, 10);
        bool generate = !keep_macs && seed && *xv_str(seed);
        db_row_put(nv, "MAC", generate ? xv_new_string_take(vif_generated_mac(xv_str(seed), device))
                                       : xv_dup(db_get(vif, "MAC")));
        db_row_put(nv, "MAC_autogenerated", xv_new_bool(generate));
        operations_refresh(nv, NULL);
        if (db_insert(nv, err) < 0)
            return -1;
    }
    return 0;
}

/* XAPI's VM.create: every VM gets a mac_seed, so that its MACs are stable. */
static void add_mac_seed(DbRow *vm)
{
    const Xv *other = db_get(vm, "other_config");
    const Xv *seed = xv_struct_get(other, "mac_seed");
    if (seed && *xv_str(seed))
        return;
    Xv *updated = xv_dup(other);
    g_autofree char *fresh = db_new_uuid();
    xv_struct_set_string(updated, "mac_seed", fresh);
    db_row_put(vm, "other_config", updated);
}

void vm_nics_init(void)
{
    implicit_on_create(cls("VM"), add_mac_seed);
}
