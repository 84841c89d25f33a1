/* ha_agility.c: XAPI's agility checks (see ha_agility.h). */
#include "ha_agility.h"

#include <string.h>

#include "ha.h"

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

static const char *ref_of(const DbRow *row, const char *field)
{
    const char *ref = row ? xv_str(db_get(row, field)) : NULL;
    return ref && *ref && strcmp(ref, "OpaqueRef:NULL") != 0 ? ref : NULL;
}

/* The row of class_name that row's field refers to (NULL: none, or a
 * dangling ref, as Db.is_valid_ref). */
static DbRow *row_at(const char *class_name, const DbRow *row, const char *field)
{
    const char *ref = ref_of(row, field);
    return ref ? db_lookup(cls(class_name), ref) : NULL;
}

typedef struct {
    GHashTable *with; /* host refs that have what is asked for */
    bool all;
} EveryEnabled;

static bool enabled_host_has(DbRow *host, void *ctx)
{
    EveryEnabled *e = ctx;
    if (db_get(host, "enabled")->b && !g_hash_table_contains(e->with, host->ref))
        e->all = false;
    return e->all;
}

/* Whether every enabled host is in with (Listext.subset enabled_hosts). */
static bool every_enabled_host_in(GHashTable *with)
{
    EveryEnabled e = {with, true};
    db_foreach(cls("host"), enabled_host_has, &e);
    return e.all;
}

bool ha_sr_properly_shared(const DbRow *sr)
{
    if (!db_get(sr, "shared")->b)
        return false;
    g_autoptr(GHashTable) plugged = g_hash_table_new(g_str_hash, g_str_equal);
    const Xv *pbds = db_get(sr, "PBDs");
    for (guint i = 0; i < xv_len(pbds); i++) {
        DbRow *pbd = db_lookup(cls("PBD"), xv_str(xv_at(pbds, i)));
        if (pbd && db_get(pbd, "currently_attached")->b && ref_of(pbd, "host"))
            g_hash_table_add(plugged, (gpointer)ref_of(pbd, "host"));
    }
    bool shared = every_enabled_host_in(plugged);
    if (!shared)
        g_debug("ha: SR %s not shared properly: not every enabled host has it attached",
                sr->ref);
    return shared;
}

bool ha_network_properly_shared(const DbRow *network)
{
    g_autoptr(GHashTable) with_pif = g_hash_table_new(g_str_hash, g_str_equal);
    const Xv *pifs = db_get(network, "PIFs");
    for (guint i = 0; i < xv_len(pifs); i++) {
        DbRow *pif = db_lookup(cls("PIF"), xv_str(xv_at(pifs, i)));
        if (pif && !row_at("Bond", pif, "bond_slave_of") && ref_of(pif, "host"))
            g_hash_table_add(with_pif, (gpointer)ref_of(pif, "host"));
    }
    return every_enabled_host_in(with_pif);
}

/* Xapi_network_sriov_helpers.is_sriov_network: a PIF of it is an SR-IOV
 * logical PIF. */
static bool is_sriov_network(const DbRow *network)
{
    const Xv *pifs = db_get(network, "PIFs");
    for (guint i = 0; i < xv_len(pifs); i++) {
        DbRow *pif = db_lookup(cls("PIF"), xv_str(xv_at(pifs, i)));
        if (pif && xv_len(db_get(pif, "sriov_logical_PIF_of")) > 0)
            return true;
    }
    return false;
}

static int check_disks(const DbRow *vm, XapiError **err)
{
    const Xv *vbds = db_get(vm, "VBDs");
    for (guint i = 0; i < xv_len(vbds); i++) {
        DbRow *vbd = db_lookup(cls("VBD"), xv_str(xv_at(vbds, i)));
        if (!vbd || db_get(vbd, "empty")->b)
            continue;
        DbRow *sr = row_at("SR", row_at("VDI", vbd, "VDI"), "SR");
        if (sr && !ha_sr_properly_shared(sr))
            return xapi_error_set(err, "HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED", sr->ref, NULL);
    }
    return 0;
}

static int check_nics(const DbRow *vm, XapiError **err)
{
    const Xv *vifs = db_get(vm, "VIFs");
    for (guint i = 0; i < xv_len(vifs); i++) {
        DbRow *vif = db_lookup(cls("VIF"), xv_str(xv_at(vifs, i)));
        DbRow *net = row_at("network", vif, "network");
        if (!net)
            continue;
        if (!ha_network_properly_shared(net))
            return xapi_error_set(err, "HA_CONSTRAINT_VIOLATION_NETWORK_NOT_SHARED", net->ref,
                                  NULL);
        if (is_sriov_network(net))
            return xapi_error_set(err, "VM_HAS_SRIOV_VIF", vm->ref, NULL);
    }
    return 0;
}

int ha_vm_check_agile(const DbRow *vm, XapiError **err)
{
    if (xv_len(db_get(vm, "VGPUs")) > 0)
        return xapi_error_set(err, "VM_HAS_VGPU", vm->ref, NULL);
    if (xv_len(db_get(vm, "VUSBs")) > 0)
        return xapi_error_set(err, "VM_HAS_VUSBS", vm->ref, NULL);
    if (check_disks(vm, err) < 0)
        return -1;
    return check_nics(vm, err);
}

int ha_vm_assert_agile(const char *vm_ref, XapiError **err)
{
    db_read_begin();
    DbRow *vm = db_lookup(cls("VM"), vm_ref);
    int rc = vm ? ha_vm_check_agile(vm, err)
                : xapi_error_set(err, "HANDLE_INVALID", "VM", vm_ref, NULL);
    db_read_end();
    return rc;
}

/* is_xha_protected (helpers.ml vm_should_always_run) while HA guards
 * the plan. */
static bool guarded(const DbRow *vm /* NULL: none */)
{
    return vm && db_get(vm, "ha_always_run")->b &&
           strcmp(xv_str(db_get(vm, "ha_restart_priority")), "restart") == 0 &&
           ha_plan_guarded();
}

int ha_check_new_vbd(const DbRow *vm, const DbRow *vdi, XapiError **err)
{
    DbRow *sr = vdi ? row_at("SR", vdi, "SR") : NULL;
    if (sr && guarded(vm) && !ha_sr_properly_shared(sr))
        return xapi_error_set(err, "HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED", sr->ref, NULL);
    return 0;
}

int ha_check_new_vif(const DbRow *vm, const DbRow *network, XapiError **err)
{
    if (guarded(vm) && !ha_network_properly_shared(network))
        return xapi_error_set(err, "HA_CONSTRAINT_VIOLATION_NETWORK_NOT_SHARED", network->ref,
                              NULL);
    return 0;
}
