/* vm_clone.c: VM.clone, VM.copy, VM.snapshot, VM.revert, VM.provision.
 *
 * A new VM is the old one's record with a fresh identity and no runtime
 * state; its disks are VDI clones (clone: shared qcow2 bases, no data
 * copied), VDI snapshots (snapshot; live for a running VM) or full copies
 * (copy). CD drives keep their disc. */
#include <string.h>
#include <time.h>

#include "dm_handlers.h"
#include "message_store.h"
#include "operations.h"
#include "storage.h"
#include "task.h"
#include "vdi_fork.h"
#include "vm_disks.h"
#include "vm_lifecycle.h"
#include "vm_nics.h"
#include "vm_vtpm.h"
#include "vm_operations.h"
#include "xenops.h"

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

static const char *str_field(const DbRow *row, const char *field)
{
    return xv_str(db_get(row, field));
}

/* VM fields a new VM does not inherit (identity, runtime state, links). */
static const char *const not_inherited[] = {
    "uuid", "name_label", "power_state", "domid", "domarch", "resident_on",
    "scheduled_to_be_resident_on", "current_operations", "allowed_operations", "metrics",
    "guest_metrics", "snapshot_of", "snapshot_time", "is_a_snapshot", "is_default_template",
    "suspend_VDI", "parent", "is_control_domain", "transportable_snapshot_id",
    "snapshot_info", "snapshot_metadata", "requires_reboot", "pending_guidances", NULL};

static bool inherited(const DmField *f)
{
    if (f->derived || f->state == DM_REMOVED)
        return false;
    for (const char *const *n = not_inherited; *n; n++)
        if (strcmp(*n, f->name) == 0)
            return false;
    return true;
}

/* The disks of a VM: VBD ref -> VDI ref for Disk VBDs with a VDI. */
typedef struct {
    char *vbd;
    char *vdi;
    char *new_vdi; /* made by the operation */
} DiskPair;

static void pairs_free(GArray *pairs)
{
    for (guint i = 0; i < pairs->len; i++) {
        DiskPair *p = &g_array_index(pairs, DiskPair, i);
        g_free(p->vbd);
        g_free(p->vdi);
        g_free(p->new_vdi);
    }
    g_array_free(pairs, TRUE);
}

static GArray *vm_disks(const char *vm_ref, const Xv *ignore_vdis)
{
    GArray *pairs = g_array_new(FALSE, TRUE, sizeof(DiskPair));
    db_read_begin();
    DbRow *vm = db_lookup(cls("VM"), vm_ref);
    const Xv *vbds = vm ? db_get(vm, "VBDs") : NULL;
    for (guint i = 0; i < xv_len(vbds); i++) {
        DbRow *vbd = db_lookup(cls("VBD"), xv_str(xv_at(vbds, i)));
        if (!vbd || strcmp(str_field(vbd, "type"), "Disk") != 0 || db_get(vbd, "empty")->b ||
            !db_lookup(cls("VDI"), str_field(vbd, "VDI")))
            continue;
        bool ignored = false;
        for (guint j = 0; ignore_vdis && j < xv_len(ignore_vdis); j++)
            ignored |= strcmp(xv_str(xv_at(ignore_vdis, j)), str_field(vbd, "VDI")) == 0;
        DiskPair p = {g_strdup(vbd->ref), g_strdup(ignored ? "" : str_field(vbd, "VDI")), NULL};
        g_array_append_val(pairs, p);
    }
    db_read_end();
    return pairs;
}

typedef enum { DISK_CLONE, DISK_SNAPSHOT, DISK_COPY } DiskAction;

/* VDI.copy as part of this call (its task, its error). */
static int copy_call(Call *call, const char *vdi, const char *sr, char **out)
{
    Call sub = {.msg = call->msg, .task_ref = call->task_ref};
    Xv *result = NULL;
    if (xapi_VDI_copy(&sub, vdi, sr, "OpaqueRef:NULL", "OpaqueRef:NULL", &result) < 0) {
        call->error = sub.error;
        return -1;
    }
    *out = g_strdup(xv_str(result));
    xv_free(result);
    return 0;
}

/* Snapshots or clones of all the disks in one operation: one write, and a
 * running guest's disks caught at one instant. */
static int fork_disks(Call *call, GArray *pairs, bool snapshot)
{
    g_autoptr(GPtrArray) vdis = g_ptr_array_new();
    g_autoptr(GArray) slots = g_array_new(FALSE, FALSE, sizeof(guint));
    for (guint i = 0; i < pairs->len; i++) {
        DiskPair *p = &g_array_index(pairs, DiskPair, i);
        if (*p->vdi) {
            g_ptr_array_add(vdis, p->vdi);
            g_array_append_val(slots, i);
        }
    }
    if (!vdis->len)
        return 0;
    char **made = g_new0(char *, vdis->len);
    int rc = storage_fork_vdis(call, (const char *const *)vdis->pdata, vdis->len, snapshot, made);
    for (guint i = 0; rc == 0 && i < vdis->len; i++)
        g_array_index(pairs, DiskPair, g_array_index(slots, guint, i)).new_vdi = made[i];
    g_free(made);
    task_set_progress(call->task_ref, 0.9);
    return rc;
}

/* Destroys VDIs made before a failure. */
static void undo_disks(GArray *pairs)
{
    for (guint i = 0; i < pairs->len; i++) {
        DiskPair *p = &g_array_index(pairs, DiskPair, i);
        if (!p->new_vdi)
            continue;
        Call sub = {0};
        if (xapi_VDI_destroy(&sub, p->new_vdi) < 0) {
            g_warning("VDI %s left after a failed VM copy: %s", p->new_vdi, sub.error->code);
            xapi_error_free(sub.error);
        }
    }
}

static int make_disks(Call *call, GArray *pairs, DiskAction action, const char *sr)
{
    if (action != DISK_COPY)
        return fork_disks(call, pairs, action == DISK_SNAPSHOT);
    for (guint i = 0; i < pairs->len; i++) {
        DiskPair *p = &g_array_index(pairs, DiskPair, i);
        if (!*p->vdi)
            continue;
        const char *target = sr;
        g_autofree char *own_sr = NULL;
        if (!sr || !*sr || strcmp(sr, "OpaqueRef:NULL") == 0) {
            db_read_begin();
            DbRow *vdi = db_lookup(cls("VDI"), p->vdi);
            own_sr = vdi ? g_strdup(str_field(vdi, "SR")) : g_strdup("OpaqueRef:NULL");
            db_read_end();
            target = own_sr;
        }
        if (copy_call(call, p->vdi, target, &p->new_vdi) < 0) {
            undo_disks(pairs);
            return -1;
        }
        task_set_progress(call->task_ref, 0.1 + 0.8 * (i + 1) / pairs->len);
    }
    return 0;
}

typedef struct {
    const char *name;
    bool snapshot;      /* the new VM is a snapshot of the old */
    bool keep_template; /* clone and copy keep is_a_template */
    const char *memory; /* a checkpoint's saved state (a VDI), or NULL */
} NewVm;

/* The new VM and its VBDs (write lock held). */
static char *record_new_vm(const DbRow *vm, GArray *pairs, const NewVm *how, XapiError **err)
{
    DbRow *copy = db_row_new(cls("VM"));
    for (unsigned i = 0; i < vm->cls->n_fields; i++) {
        const DmField *f = &vm->cls->fields[i];
        if (inherited(f))
            db_row_put(copy, f->name, xv_dup(&vm->fields[i]));
    }
    db_row_put(copy, "name_label", xv_new_string(how->name));
    if (how->snapshot) {
        db_row_put(copy, "is_a_snapshot", xv_new_bool(true));
        db_row_put(copy, "snapshot_of", xv_new_string(vm->ref));
        db_row_put(copy, "snapshot_time", xv_new_datetime(time(NULL)));
        db_row_put(copy, "is_a_template", xv_new_bool(true));
        if (how->memory) { /* in the same write: never a checkpoint without it */
            db_row_put(copy, "suspend_VDI", xv_new_string(how->memory));
            db_row_put(copy, "power_state", xv_new_static_string("Suspended"));
        }
    } else {
        db_row_put(copy, "parent", xv_new_string(vm->ref));
    }
    Xv *other = xv_dup(db_get(vm, "other_config"));
    xv_struct_remove(other, "default_template");
    if (!how->snapshot) { /* XAPI: a clone or copy has MACs of its own */
        g_autofree char *seed = db_new_uuid();
        xv_struct_set_string(other, "mac_seed", seed);
    }
    db_row_put(copy, "other_config", other);
    operations_refresh(copy, NULL);
    char *ref = g_strdup(copy->ref);
    if (db_insert(copy, err) < 0)
        goto fail;
    const Xv *vbds = db_get(vm, "VBDs");
    for (guint i = 0; i < xv_len(vbds); i++) {
        DbRow *vbd = db_lookup(cls("VBD"), xv_str(xv_at(vbds, i)));
        if (!vbd)
            continue;
        const DiskPair *pair = NULL;
        for (guint j = 0; j < pairs->len; j++)
            if (strcmp(g_array_index(pairs, DiskPair, j).vbd, vbd->ref) == 0)
                pair = &g_array_index(pairs, DiskPair, j);
        if (pair && !pair->new_vdi)
            continue; /* ignored */
        DbRow *nv = db_row_new(cls("VBD"));
        static const char *const vbd_fields[] = {"userdevice", "bootable", "mode", "type",
                                                 "unpluggable", "empty", "VDI", "other_config",
                                                 "qos_algorithm_type", "qos_algorithm_params",
                                                 NULL};
        for (const char *const *f = vbd_fields; *f; f++)
            db_row_put(nv, *f, xv_dup(db_get(vbd, *f)));
        if (pair)
            db_row_put(nv, "VDI", xv_new_string(pair->new_vdi));
        db_row_put(nv, "VM", xv_new_string(ref));
        operations_refresh(nv, NULL);
        if (db_insert(nv, err) < 0)
            goto fail;
    }
    if (vm_vifs_copy(vm, ref, how->snapshot, err) < 0 || vm_vtpm_copy(vm, ref, err) < 0)
        goto fail;
    return ref;
fail:
    g_free(ref);
    return NULL;
}

static int new_vm_work(VmOp *o, DiskAction action, const char *sr, const NewVm *how,
                       const Xv *ignore_vdis)
{
    Call *call = o->call;
    GArray *pairs = vm_disks(o->ref, ignore_vdis);
    int rc = make_disks(call, pairs, action, sr);
    if (rc == 0 && (rc = db_write_begin(&call->error)) == 0) {
        DbRow *vm = db_lookup(cls("VM"), o->ref);
        char *ref = vm ? record_new_vm(vm, pairs, how, &call->error) : NULL;
        if (!vm)
            xapi_error_set(&call->error, "HANDLE_INVALID", "VM", o->ref, NULL);
        if (!ref || db_write_commit(&call->error) < 0) {
            if (ref)
                g_clear_pointer(&ref, g_free);
            else
                db_write_abort();
            rc = -1;
        } else {
            *(Xv **)o->arg = xv_new_string_take(ref);
        }
        if (rc < 0)
            undo_disks(pairs);
    }
    pairs_free(pairs);
    return rc;
}

/* ---- clone, copy, snapshot --------------------------------------------------------- */

typedef struct {
    Xv *result;
    const char *name;
    const char *sr;
    const Xv *ignore_vdis;
} NewVmArgs;

static int clone_work(VmOp *o)
{
    NewVmArgs *a = (NewVmArgs *)o->arg;
    NewVm how = {a->name, false, true};
    VmOp inner = *o;
    inner.arg = &a->result;
    return new_vm_work(&inner, DISK_CLONE, NULL, &how, NULL);
}

int xapi_VM_clone(Call *call, const char *vm, const char *new_name, Xv **result)
{
    NewVmArgs a = {NULL, new_name, NULL, NULL};
    int rc = vm_run_operation(call, vm, "clone", clone_work, &a);
    *result = a.result;
    if (rc == 0) {
        g_autofree char *new_uuid = message_uuid_of(xv_str(a.result));
        message_raise_vm("VM_CLONED", vm, "cloned (new uuid: %s)", new_uuid);
    }
    return rc;
}

static int copy_work(VmOp *o)
{
    NewVmArgs *a = (NewVmArgs *)o->arg;
    NewVm how = {a->name, false, true};
    VmOp inner = *o;
    inner.arg = &a->result;
    return new_vm_work(&inner, DISK_COPY, a->sr, &how, NULL);
}

int xapi_VM_copy(Call *call, const char *vm, const char *new_name, const char *sr, Xv **result)
{
    NewVmArgs a = {NULL, new_name, sr, NULL};
    int rc = vm_run_operation(call, vm, "copy", copy_work, &a);
    *result = a.result;
    return rc;
}

static int snapshot_work(VmOp *o)
{
    NewVmArgs *a = (NewVmArgs *)o->arg;
    NewVm how = {a->name, true, false};
    VmOp inner = *o;
    inner.arg = &a->result;
    return new_vm_work(&inner, DISK_SNAPSHOT, NULL, &how, a->ignore_vdis);
}

int vm_make_snapshot(VmOp *o, const char *name, const Xv *ignore_vdis, const char *memory,
                     Xv **result)
{
    NewVm how = {name, true, false, memory};
    VmOp inner = *o;
    inner.arg = result;
    return new_vm_work(&inner, DISK_SNAPSHOT, NULL, &how, ignore_vdis);
}

int xapi_VM_snapshot(Call *call, const char *vm, const char *new_name, const Xv *ignore_vdis,
                     Xv **result)
{
    NewVmArgs a = {NULL, new_name, NULL, ignore_vdis};
    int rc = vm_run_operation(call, vm, "snapshot", snapshot_work, &a);
    *result = a.result;
    if (rc == 0)
        message_raise_vm("VM_SNAPSHOTTED", vm, "snapshotted, snapshot name: %s", new_name);
    return rc;
}

/* ---- revert ---------------------------------------------------------------------- */

/* Fields a revert brings back from the snapshot (the VM's configuration;
 * its identity, name and links stay). */
static const char *const reverted[] = {
    "memory_static_max", "memory_static_min", "memory_dynamic_max", "memory_dynamic_min",
    "memory_target", "VCPUs_max", "VCPUs_at_startup", "VCPUs_params", "platform",
    "HVM_boot_policy", "HVM_boot_params", "PV_kernel", "PV_ramdisk", "PV_args",
    "PV_bootloader", "PV_bootloader_args", "actions_after_shutdown", "actions_after_reboot",
    "actions_after_crash", "other_config", NULL};

/* Points the VM's VBDs at clones of the snapshot's disks (matched by
 * userdevice) and copies the configuration back; returns the VDIs the VM
 * used before (write lock held). */
static int apply_revert(DbRow *vm, const DbRow *snapshot, GArray *pairs, GPtrArray *old_vdis,
                        XapiError **err)
{
    for (guint i = 0; i < pairs->len; i++) {
        const DiskPair *p = &g_array_index(pairs, DiskPair, i);
        DbRow *snap_vbd = db_lookup(cls("VBD"), p->vbd);
        if (!snap_vbd || !p->new_vdi)
            continue;
        const Xv *vbds = db_get(vm, "VBDs");
        DbRow *target = NULL;
        for (guint j = 0; j < xv_len(vbds) && !target; j++) {
            DbRow *vbd = db_lookup(cls("VBD"), xv_str(xv_at(vbds, j)));
            if (vbd && strcmp(str_field(vbd, "userdevice"), str_field(snap_vbd, "userdevice")) == 0)
                target = vbd;
        }
        if (target) {
            if (!db_get(target, "empty")->b)
                g_ptr_array_add(old_vdis, g_strdup(str_field(target, "VDI")));
            if (db_set_by_name(target, "VDI", xv_new_string(p->new_vdi), err) < 0 ||
                db_set_by_name(target, "empty", xv_new_bool(false), err) < 0)
                return -1;
            continue;
        }
        DbRow *nv = db_row_new(cls("VBD"));
        static const char *const vbd_fields[] = {"userdevice", "bootable", "mode", "type",
                                                 "unpluggable", "other_config", NULL};
        for (const char *const *f = vbd_fields; *f; f++)
            db_row_put(nv, *f, xv_dup(db_get(snap_vbd, *f)));
        db_row_put(nv, "VDI", xv_new_string(p->new_vdi));
        db_row_put(nv, "VM", xv_new_string(vm->ref));
        operations_refresh(nv, NULL);
        if (db_insert(nv, err) < 0)
            return -1;
    }
    for (const char *const *f = reverted; *f; f++)
        if (db_set_by_name(vm, *f, xv_dup(db_get(snapshot, *f)), err) < 0)
            return -1;
    /* XAPI's revert: the VM's VIFs are replaced by the snapshot's, MACs
     * kept (the VM is stopped, so none is attached). */
    g_autoptr(Xv) vifs = xv_dup(db_get(vm, "VIFs"));
    for (guint i = 0; i < xv_len(vifs); i++) {
        DbRow *vif = db_lookup(cls("VIF"), xv_str(xv_at(vifs, i)));
        if (vif && db_delete(vif, err) < 0)
            return -1;
    }
    return vm_vifs_copy(snapshot, vm->ref, true, err);
}

/* The VDIs a reverted VM no longer uses go unless something else uses
 * them (another VBD, or a snapshot's chain keeps their bases anyway). */
static void destroy_unused(Call *call, GPtrArray *old_vdis)
{
    for (guint i = 0; i < old_vdis->len; i++) {
        db_read_begin();
        DbRow *vdi = db_lookup(cls("VDI"), old_vdis->pdata[i]);
        bool unused = vdi && xv_len(db_get(vdi, "VBDs")) == 0;
        db_read_end();
        Call sub = {.task_ref = call->task_ref};
        if (unused && xapi_VDI_destroy(&sub, old_vdis->pdata[i]) < 0) {
            g_message("revert: VDI %s kept: %s", (char *)old_vdis->pdata[i], sub.error->code);
            xapi_error_free(sub.error);
        }
    }
}

static int revert_work(VmOp *o)
{
    Call *call = o->call;
    const char *vm_ref = xv_str(xv_struct_get(o->record, "snapshot_of"));
    db_read_begin();
    DbRow *vm = db_lookup(cls("VM"), vm_ref);
    g_autofree char *vm_uuid = vm ? g_strdup(str_field(vm, "uuid")) : NULL;
    g_autofree char *vm_state = vm ? g_strdup(str_field(vm, "power_state")) : NULL;
    db_read_end();
    if (!vm)
        return xapi_error_set(&call->error, "VM_REVERT_FAILED", vm_ref, o->ref, NULL);
    /* The VM stops first, as XAPI's revert does (its memory is not kept);
     * the revert is recorded on the snapshot, so the VM must be idle. */
    db_read_begin();
    vm = db_lookup(cls("VM"), vm_ref);
    int busy = vm && xv_len(db_get(vm, "current_operations"))
                   ? operations_conflict_error(vm, db_get(vm, "current_operations"),
                                               &call->error)
                   : 0;
    db_read_end();
    if (busy < 0)
        return -1;
    xenops_lock_vm(vm_uuid);
    int rc = 0;
    if (strcmp(vm_state, "Halted") != 0) {
        VmOp stop = {call, vm_ref, vm_uuid, NULL, NULL};
        rc = vm_hard_stop(&stop);
    }
    GArray *pairs = rc == 0 ? vm_disks(o->ref, NULL) : NULL;
    g_autoptr(GPtrArray) old_vdis = g_ptr_array_new_with_free_func(g_free);
    if (rc == 0 && (rc = make_disks(call, pairs, DISK_CLONE, NULL)) == 0 &&
        (rc = db_write_begin(&call->error)) == 0) {
        DbRow *live = db_lookup(cls("VM"), vm_ref);
        DbRow *snapshot = db_lookup(cls("VM"), o->ref);
        if (!live || !snapshot ||
            apply_revert(live, snapshot, pairs, old_vdis, &call->error) < 0) {
            if (!live || !snapshot)
                xapi_error_set(&call->error, "VM_REVERT_FAILED", vm_ref, o->ref, NULL);
            db_write_abort();
            undo_disks(pairs);
            rc = -1;
        } else {
            rc = db_write_commit(&call->error);
        }
    }
    if (rc == 0)
        destroy_unused(call, old_vdis);
    /* A checkpoint's memory comes back too: the VM is then Suspended. */
    const char *memory = xv_str(xv_struct_get(o->record, "suspend_VDI"));
    if (rc == 0 && *memory && strcmp(memory, "OpaqueRef:NULL") != 0) {
        g_autofree char *image = NULL;
        db_read_begin();
        DbRow *memory_vdi = db_lookup(cls("VDI"), memory);
        g_autofree char *memory_sr = g_strdup(memory_vdi ? str_field(memory_vdi, "SR") : "");
        db_read_end();
        rc = copy_call(call, memory, memory_sr, &image);
        if (rc == 0)
            rc = xenops_mark_suspended(vm_ref, image, &call->error);
    }
    if (pairs)
        pairs_free(pairs);
    xenops_unlock_vm(vm_uuid);
    return rc;
}

int xapi_VM_revert(Call *call, const char *snapshot)
{
    int rc = vm_run_operation(call, snapshot, "revert", revert_work, NULL);
    if (rc < 0)
        return rc;
    /* XAPI's VM_SNAPSHOT_REVERTED, on the VM (no colon after "uuid") */
    db_read_begin();
    DbRow *row = db_lookup(dm_class_by_name("VM"), snapshot);
    g_autofree char *vm = row ? g_strdup(xv_str(db_get(row, "snapshot_of"))) : NULL;
    g_autofree char *name = row ? g_strdup(xv_str(db_get(row, "name_label"))) : NULL;
    g_autofree char *uuid = row ? g_strdup(xv_str(db_get(row, "uuid"))) : NULL;
    db_read_end();
    if (vm)
        message_raise_vm("VM_SNAPSHOT_REVERTED", vm, "reverted to snapshot: %s (uuid %s)", name,
                         uuid);
    return rc;
}

/* ---- provision -------------------------------------------------------------------- */

typedef struct {
    char *device;
    int64_t size;
    char *sr;
    bool bootable;
    char *type;
} ProvisionDisk;

static void provision_disk_free(gpointer p)
{
    ProvisionDisk *d = p;
    g_free(d->device);
    g_free(d->sr);
    g_free(d->type);
    g_free(d);
}

/* <provision><disk device="0" size="N" sr="uuid" bootable="true" type="system"/>... */
static void on_element(GMarkupParseContext *context, const char *element, const char **names,
                       const char **values, gpointer user_data, GError **error)
{
    (void)context, (void)error;
    if (strcmp(element, "disk") != 0)
        return;
    ProvisionDisk *d = g_new0(ProvisionDisk, 1);
    d->type = g_strdup("system");
    for (int i = 0; names[i]; i++) {
        if (strcmp(names[i], "device") == 0)
            d->device = g_strdup(values[i]);
        else if (strcmp(names[i], "size") == 0)
            d->size = g_ascii_strtoll(values[i], NULL, 10);
        else if (strcmp(names[i], "sr") == 0)
            d->sr = g_strdup(values[i]);
        else if (strcmp(names[i], "bootable") == 0)
            d->bootable = strcmp(values[i], "true") == 0;
        else if (strcmp(names[i], "type") == 0)
            g_free(d->type), d->type = g_strdup(values[i]);
    }
    g_ptr_array_add(user_data, d);
}

static GPtrArray *parse_disks(const char *xml, XapiError **err)
{
    GPtrArray *disks = g_ptr_array_new_with_free_func(provision_disk_free);
    GMarkupParser parser = {.start_element = on_element};
    GMarkupParseContext *ctx = g_markup_parse_context_new(&parser, 0, disks, NULL);
    g_autoptr(GError) error = NULL;
    if (!g_markup_parse_context_parse(ctx, xml, -1, &error) ||
        !g_markup_parse_context_end_parse(ctx, &error)) {
        xapi_error_set(err, "INVALID_VALUE", "other_config:disks", xml, NULL);
        g_ptr_array_unref(disks);
        disks = NULL;
    }
    g_markup_parse_context_free(ctx);
    return disks;
}

static bool first_row(DbRow *row, void *ctx)
{
    *(DbRow **)ctx = row;
    return false;
}

/* The SR for a provisioned disk: the one named, else the pool's default. */
static char *provision_sr(const ProvisionDisk *d)
{
    db_read_begin();
    DbRow *sr = d->sr && *d->sr ? db_lookup_uuid(cls("SR"), d->sr) : NULL;
    if (!sr) {
        DbRow *pool = NULL;
        db_foreach(cls("pool"), first_row, &pool);
        sr = pool ? db_lookup(cls("SR"), str_field(pool, "default_SR")) : NULL;
    }
    char *ref = g_strdup(sr ? sr->ref : "OpaqueRef:NULL");
    db_read_end();
    return ref;
}

/* VDI.create and VBD.create as part of this call. */
static int create_call(Call *call, const char *wire_name, Xv *record, char **ref)
{
    Call sub = {.msg = dm_message_by_wire_name(wire_name), .task_ref = call->task_ref};
    Xv *result = NULL;
    int rc = strcmp(wire_name, "VDI.create") == 0 ? xapi_VDI_create(&sub, record, &result)
                                                  : xapi_VBD_create(&sub, record, &result);
    xv_free(record);
    if (rc < 0) {
        call->error = sub.error;
        return -1;
    }
    *ref = g_strdup(xv_str(result));
    xv_free(result);
    return 0;
}

static int provision_one(Call *call, const char *vm_ref, const char *vm_name,
                         const ProvisionDisk *d, GPtrArray *made)
{
    g_autofree char *sr = provision_sr(d);
    Xv *vdi = xv_new_struct();
    g_autofree char *label = g_strdup_printf("%s %s", vm_name, d->device ? d->device : "");
    xv_struct_set_string(vdi, "name_label", g_strstrip(label));
    xv_struct_set_string(vdi, "name_description", "Created by template provisioner");
    xv_struct_set_string(vdi, "SR", sr);
    xv_struct_set(vdi, "virtual_size", xv_new_int(d->size));
    xv_struct_set_string(vdi, "type", strcmp(d->type, "system") == 0 ? "system" : "user");
    xv_struct_set(vdi, "sharable", xv_new_bool(false));
    xv_struct_set(vdi, "read_only", xv_new_bool(false));
    xv_struct_set(vdi, "other_config", xv_new_struct());
    g_autofree char *vdi_ref = NULL;
    if (create_call(call, "VDI.create", vdi, &vdi_ref) < 0)
        return -1;
    g_ptr_array_add(made, g_strdup(vdi_ref));
    Xv *vbd = xv_new_struct();
    xv_struct_set_string(vbd, "VM", vm_ref);
    xv_struct_set_string(vbd, "VDI", vdi_ref);
    xv_struct_set_string(vbd, "userdevice", d->device && *d->device ? d->device : "autodetect");
    xv_struct_set(vbd, "bootable", xv_new_bool(d->bootable));
    xv_struct_set_string(vbd, "mode", "RW");
    xv_struct_set_string(vbd, "type", "Disk");
    xv_struct_set(vbd, "unpluggable", xv_new_bool(true));
    xv_struct_set(vbd, "empty", xv_new_bool(false));
    xv_struct_set(vbd, "other_config", xv_new_struct());
    xv_struct_set_string(vbd, "qos_algorithm_type", "");
    xv_struct_set(vbd, "qos_algorithm_params", xv_new_struct());
    g_autofree char *vbd_ref = NULL;
    return create_call(call, "VBD.create", vbd, &vbd_ref);
}

static int drop_disks_key(DbRow *vm, const void *arg, XapiError **err)
{
    (void)arg;
    Xv *other = xv_dup(db_get(vm, "other_config"));
    xv_struct_remove(other, "disks");
    return db_set_by_name(vm, "other_config", other, err);
}

/* XAPI's first step (xapi_vm.ml provision): the template becomes a VM,
 * installed now, whatever the disks do next. */
static int make_into_vm(DbRow *vm, const void *arg, XapiError **err)
{
    (void)arg;
    if (db_set_by_name(vm, "is_a_template", xv_new_bool(false), err) < 0)
        return -1;
    DbRow *metrics = db_lookup(cls("VM_metrics"), str_field(vm, "metrics"));
    return metrics ? db_set_by_name(metrics, "install_time",
                                    xv_new_datetime(g_get_real_time() / G_USEC_PER_SEC), err)
                   : 0;
}

static int provision_work(VmOp *o)
{
    Call *call = o->call;
    if (operations_write(&vm_operations, o->ref, make_into_vm, NULL, &call->error) < 0)
        return -1;
    const Xv *disks_xml = xv_struct_get(xv_struct_get(o->record, "other_config"), "disks");
    if (!disks_xml)
        return 0; /* nothing to provision */
    g_autoptr(GPtrArray) disks = parse_disks(xv_str(disks_xml), &call->error);
    if (!disks)
        return -1;
    g_autoptr(GPtrArray) made = g_ptr_array_new_with_free_func(g_free);
    const char *name = xv_str(xv_struct_get(o->record, "name_label"));
    for (guint i = 0; i < disks->len; i++) {
        if (provision_one(call, o->ref, name, disks->pdata[i], made) < 0) {
            for (guint j = 0; j < made->len; j++) {
                Call sub = {0};
                if (xapi_VDI_destroy(&sub, made->pdata[j]) < 0)
                    xapi_error_free(sub.error);
            }
            return -1;
        }
    }
    return operations_write(&vm_operations, o->ref, drop_disks_key, NULL, &call->error);
}

int xapi_VM_provision(Call *call, const char *vm)
{
    return vm_run_operation(call, vm, "provision", provision_work, NULL);
}
