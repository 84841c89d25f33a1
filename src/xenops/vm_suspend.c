/* vm_suspend.c: VM.suspend, VM.resume, VM.resume_on.
 *
 * Suspend pauses the domain, saves its state into a new VDI of type
 * "suspend" (a raw file in the VM's suspend_SR, else the pool's
 * suspend_image_SR) and stops it; the VM is Suspended with suspend_VDI
 * set. Resume boots a domain from that state and removes the VDI. */
#include <string.h>
#include <unistd.h>

#include "bootstrap.h"
#include "dm_handlers.h"
#include "ha.h"
#include "message_store.h"
#include "storage.h"
#include "task.h"
#include "vm_images.h"
#include "vm_lifecycle.h"
#include "vm_operations.h"
#include "xenops.h"

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

static const char *str_field(const DbRow *row, const char *field)
{
    return xv_str(db_get(row, field));
}

static const HvDriver *driver(void) { return xenops_driver(); }

static bool first_row(DbRow *row, void *ctx)
{
    *(DbRow **)ctx = row;
    return false;
}

/* The SR that takes the VM's memory image (lock held). */
static DbRow *suspend_sr(const DbRow *vm)
{
    DbRow *sr = db_lookup(cls("SR"), str_field(vm, "suspend_SR"));
    if (sr)
        return sr;
    DbRow *pool = NULL;
    db_foreach(cls("pool"), first_row, &pool);
    return pool ? db_lookup(cls("SR"), str_field(pool, "suspend_image_SR")) : NULL;
}

static int save_domain(const char *path, const void *arg, XapiError **err)
{
    return driver()->save(arg, path, err);
}

/* The image becomes its VM's suspend_VDI in the transaction that records
 * it, so that a suspended image is never without its VM, even if xapid
 * dies before the domain is destroyed (the next start then finds the VM
 * Suspended). */
static int own_image(const char *vdi_ref, const void *arg, XapiError **err)
{
    const char *owner = arg;
    DbRow *vm = db_lookup(cls("VM"), owner);
    if (!vm)
        return xapi_error_set(err, "HANDLE_INVALID", "VM", owner, NULL);
    return db_set_by_name(vm, "suspend_VDI", xv_new_string(vdi_ref), err);
}

/* Saves the paused domain into a new suspend VDI (a raw file; recorded as
 * owner's suspend_VDI when owner is given); its ref. */
static char *save_to_vdi(VmOp *o, const char *owner)
{
    Call *call = o->call;
    db_read_begin();
    DbRow *vm = db_lookup(cls("VM"), o->ref);
    DbRow *sr = vm ? suspend_sr(vm) : NULL;
    g_autofree char *sr_ref = sr ? g_strdup(sr->ref) : NULL;
    db_read_end();
    if (!sr) {
        xapi_error_set(&call->error, "VM_NO_SUSPEND_SR", o->ref, NULL);
        return NULL;
    }
    g_autofree char *label = g_strdup_printf("Suspend image for %s",
                                             xv_str(xv_struct_get(o->record, "name_label")));
    VmImage image = {"suspend", label, save_domain, o->uuid, owner ? own_image : NULL, owner};
    return vm_image_write(sr_ref, &image, &call->error);
}

static int suspend_work(VmOp *o)
{
    Call *call = o->call;
    if (driver()->pause(o->uuid, &call->error) < 0)
        return -1;
    task_set_progress(call->task_ref, 0.2);
    g_autofree char *image = save_to_vdi(o, o->ref);
    if (!image) {
        g_autoptr(XapiError) ignored = NULL;
        driver()->unpause(o->uuid, &ignored);
        return -1;
    }
    task_set_progress(call->task_ref, 0.9);
    g_autoptr(XapiError) ignored = NULL;
    driver()->destroy(o->uuid, &ignored);
    return xenops_mark_suspended(o->ref, image, &call->error);
}

int xapi_VM_suspend(Call *call, const char *vm)
{
    ha_vm_stopping(vm); /* XAPI: a suspended VM is not HA's to restart */
    if (vm_run_operation(call, vm, "suspend", suspend_work, NULL) < 0)
        return -1;
    message_raise_vm("VM_SUSPENDED", vm, "suspended");
    return 0;
}

/* Removes a VM's suspend image (after a resume, a hard_shutdown or a
 * destroy of a suspended VM). Errors are logged: the VM has moved on. */
void vm_drop_suspend_image(const char *vdi_ref)
{
    if (!vdi_ref || !*vdi_ref || strcmp(vdi_ref, "OpaqueRef:NULL") == 0)
        return;
    Call sub = {0};
    if (xapi_VDI_destroy(&sub, vdi_ref) < 0) {
        g_message("suspend image %s kept: %s", vdi_ref, sub.error->code);
        xapi_error_free(sub.error);
    }
}

static bool add_suspend_image(DbRow *vdi, void *ctx)
{
    if (strcmp(str_field(vdi, "type"), "suspend") == 0)
        g_hash_table_add(ctx, g_strdup(vdi->ref));
    return true;
}

static bool forget_owned_image(DbRow *vm, void *ctx)
{
    g_hash_table_remove(ctx, str_field(vm, "suspend_VDI"));
    return true;
}

void vm_drop_unowned_suspend_images(void)
{
    g_autoptr(GHashTable) unowned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    db_read_begin();
    db_foreach(cls("VDI"), add_suspend_image, unowned);
    db_foreach(cls("VM"), forget_owned_image, unowned);
    db_read_end();
    GHashTableIter it;
    gpointer ref;
    g_hash_table_iter_init(&it, unowned);
    while (g_hash_table_iter_next(&it, &ref, NULL)) {
        g_message("suspend image %s belongs to no VM: removed", (char *)ref);
        vm_drop_suspend_image(ref);
    }
}

static int resume_work(VmOp *o)
{
    Call *call = o->call;
    bool paused = *(const bool *)o->arg;
    const char *image = xv_str(xv_struct_get(o->record, "suspend_VDI"));
    db_read_begin();
    DbRow *vdi = db_lookup(cls("VDI"), image);
    g_autofree char *path = vdi ? storage_vdi_path(vdi, &call->error) : NULL;
    db_read_end();
    if (!vdi)
        return xapi_error_set(&call->error, "VM_HAS_NO_SUSPEND_VDI", o->ref, NULL);
    if (!path)
        return -1;
    if (vm_boot(o, path, paused) < 0)
        return -1;
    vm_drop_suspend_image(image);
    return 0;
}

/* XAPI's message after a resume succeeded (message_forwarding.ml). */
static int resumed(const char *vm, int rc)
{
    if (rc == 0) {
        g_autofree char *host = message_this_host();
        message_raise_vm("VM_RESUMED", vm, "resumed on host: %s", host);
    }
    return rc;
}

int xapi_VM_resume(Call *call, const char *vm, bool start_paused, bool force)
{
    (void)force;
    return resumed(vm, vm_run_operation(call, vm, "resume", resume_work, &start_paused));
}

int xapi_VM_resume_on(Call *call, const char *vm, const char *host, bool start_paused,
                      bool force)
{
    (void)force;
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    return resumed(vm, vm_run_operation(call, vm, "resume_on", resume_work, &start_paused));
}

/* ---- checkpoint: a snapshot with the memory ---------------------------------------- */

typedef struct {
    const char *name;
    Xv *result;
} CheckpointArgs;

/* Pauses the guest, saves its state, snapshots its disks at the same
 * instant, and lets it run on; the snapshot is Suspended with the state.
 * The snapshot is recorded with its memory in one write: a crash before
 * it leaves an image of no VM, which the next start removes
 * (vm_drop_unowned_suspend_images). */
static int checkpoint_work(VmOp *o)
{
    Call *call = o->call;
    CheckpointArgs *a = (CheckpointArgs *)o->arg;
    bool was_running = strcmp(xv_str(xv_struct_get(o->record, "power_state")), "Running") == 0;
    if (was_running && driver()->pause(o->uuid, &call->error) < 0)
        return -1;
    g_autofree char *image = save_to_vdi(o, NULL);
    int rc = image ? vm_make_snapshot(o, a->name, NULL, image, &a->result) : -1;
    if (rc < 0 && image)
        vm_drop_suspend_image(image);
    g_autoptr(XapiError) ignored = NULL;
    if (was_running && driver()->unpause(o->uuid, rc == 0 ? &call->error : &ignored) < 0)
        rc = -1;
    return rc;
}

int xapi_VM_checkpoint(Call *call, const char *vm, const char *new_name, Xv **result)
{
    CheckpointArgs a = {new_name, NULL};
    int rc = vm_run_operation(call, vm, "checkpoint", checkpoint_work, &a);
    *result = a.result;
    if (rc == 0)
        message_raise_vm("VM_CHECKPOINTED", vm, "checkpointed, snapshot name: %s", new_name);
    return rc;
}
