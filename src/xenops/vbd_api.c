/* vbd_api.c: VBD.create, destroy, plug, unplug, unplug_force, insert,
 * eject, assert_attachable; VM.get_allowed_VBD_devices; the VBD operation
 * checks (XAPI's xapi_vbd_helpers.ml) and what storage asks of running
 * domains (live snapshots and resizes). */
#include <string.h>

#include "dm_handlers.h"
#include "ha_agility.h"
#include "implicit.h"
#include "storage.h"
#include "storage_live.h"
#include "vm_disks.h"
#include "vbd_qos.h"
#include "vm_nvram.h"
#include "xenops.h"

#define UNPLUG_TIMEOUT_MS 20000       /* the guest lets go of the device */
#define UNPLUG_FORCE_TIMEOUT_MS 5000

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

static const char *str_field(const DbRow *row, const char *field)
{
    return xv_str(db_get(row, field));
}

static const HvDriver *driver(void) { return xenops_driver(); }

/* ---- checks ----------------------------------------------------------------- */

static bool vm_has_domain(const DbRow *vm)
{
    const char *state = str_field(vm, "power_state");
    return strcmp(state, "Running") == 0 || strcmp(state, "Paused") == 0;
}

static int vbd_check(const DbRow *vbd, const char *op, XapiError **err)
{
    const Xv *current = db_get(vbd, "current_operations");
    if (xv_len(current))
        return operations_conflict_error(vbd, current, err);
    bool cd = strcmp(str_field(vbd, "type"), "CD") == 0;
    bool attached = db_get(vbd, "currently_attached")->b;
    bool plug = strcmp(op, "plug") == 0;
    bool unplug = strcmp(op, "unplug") == 0 || strcmp(op, "unplug_force") == 0;
    if (plug || unplug) {
        DbRow *vm = db_lookup(cls("VM"), str_field(vbd, "VM"));
        if (vm && !vm_has_domain(vm)) {
            g_autofree char *actual = g_ascii_strdown(str_field(vm, "power_state"), -1);
            return xapi_error_set(err, "VM_BAD_POWER_STATE", vm->ref, "running", actual, NULL);
        }
        if (plug && attached)
            return xapi_error_set(err, "DEVICE_ALREADY_ATTACHED", vbd->ref, NULL);
        if (unplug && !attached)
            return xapi_error_set(err, "DEVICE_ALREADY_DETACHED", vbd->ref, NULL);
        if (strcmp(op, "unplug") == 0 && !db_get(vbd, "unpluggable")->b)
            return xapi_error_set(err, "VBD_NOT_UNPLUGGABLE", vbd->ref, NULL);
        if (cd)
            return xapi_error_set(err, "OPERATION_NOT_ALLOWED",
                                  "CD drives are attached when the VM starts", NULL);
        if (plug && db_get(vbd, "empty")->b)
            return xapi_error_set(err, "VBD_IS_EMPTY", vbd->ref, NULL);
        return plug ? vbd_vdi_check_idle(vbd, err) : 0;
    }
    if (strcmp(op, "insert") == 0 || strcmp(op, "eject") == 0) {
        if (!cd)
            return xapi_error_set(err, "VBD_NOT_REMOVABLE_MEDIA", vbd->ref, NULL);
        bool empty = db_get(vbd, "empty")->b;
        if (strcmp(op, "insert") == 0 && !empty)
            return xapi_error_set(err, "VBD_NOT_EMPTY", vbd->ref, NULL);
        if (strcmp(op, "eject") == 0 && empty)
            return xapi_error_set(err, "VBD_IS_EMPTY", vbd->ref, NULL);
    }
    return 0;
}

static const char *const vbd_offered[] = {"plug", "unplug", "unplug_force", "insert", "eject",
                                          NULL};

const ObjectOperations vbd_operations = {"VBD", vbd_check, vbd_offered};

/* ---- create / destroy ----------------------------------------------------------- */

/* The first slot no VBD of vm uses, or -1. */
static int free_slot(const DbRow *vm, bool cdrom)
{
    unsigned used = 0;
    const Xv *vbds = db_get(vm, "VBDs");
    for (guint i = 0; i < xv_len(vbds); i++) {
        DbRow *vbd = db_lookup(cls("VBD"), xv_str(xv_at(vbds, i)));
        int slot = vbd ? vbd_slot(str_field(vbd, "userdevice"), false) : -1;
        if (slot >= 0)
            used |= 1u << slot;
    }
    for (int slot = 0; slot < (cdrom ? HV_CD_SLOTS : HV_DISK_SLOTS); slot++)
        if (!(used & (1u << slot)))
            return slot;
    return -1;
}

static bool slot_taken(const DbRow *vm, const char *userdevice)
{
    const Xv *vbds = db_get(vm, "VBDs");
    for (guint i = 0; i < xv_len(vbds); i++) {
        DbRow *vbd = db_lookup(cls("VBD"), xv_str(xv_at(vbds, i)));
        if (vbd && strcmp(str_field(vbd, "userdevice"), userdevice) == 0)
            return true;
    }
    return false;
}

static int check_new_vbd(Call *call, DbRow *vbd)
{
    DbRow *vm = db_lookup(cls("VM"), str_field(vbd, "VM"));
    if (!vm)
        return xapi_error_set(&call->error, "HANDLE_INVALID", "VM", str_field(vbd, "VM"), NULL);
    bool cd = strcmp(str_field(vbd, "type"), "CD") == 0;
    bool empty = db_get(vbd, "empty")->b;
    DbRow *vdi = empty ? NULL : db_lookup(cls("VDI"), str_field(vbd, "VDI"));
    if (!empty && !vdi)
        return xapi_error_set(&call->error, "HANDLE_INVALID", "VDI", str_field(vbd, "VDI"), NULL);
    if (cd && strcmp(str_field(vbd, "mode"), "RW") == 0)
        return xapi_error_set(&call->error, "VBD_CDS_MUST_BE_READONLY", NULL);
    if (empty && !cd)
        return xapi_error_set(&call->error, "VBD_NOT_REMOVABLE_MEDIA", "in constructor", NULL);
    if (vdi && strcmp(str_field(vbd, "mode"), "RW") == 0 && db_get(vdi, "read_only")->b)
        return xapi_error_set(&call->error, "VDI_READONLY", vdi->ref, NULL);
    if (empty)
        db_row_put(vbd, "VDI", xv_new_string("OpaqueRef:NULL"));
    const char *userdevice = str_field(vbd, "userdevice");
    if (strcmp(userdevice, "autodetect") == 0 || !*userdevice) {
        int slot = free_slot(vm, cd);
        if (slot < 0)
            return xapi_error_set(&call->error, "INVALID_DEVICE", "autodetect", NULL);
        db_row_put(vbd, "userdevice", xv_new_string_take(g_strdup_printf("%d", slot)));
    } else if (vbd_slot(userdevice, cd) < 0) {
        return xapi_error_set(&call->error, "INVALID_DEVICE", userdevice, NULL);
    } else if (slot_taken(vm, userdevice)) {
        return xapi_error_set(&call->error, "DEVICE_ALREADY_EXISTS", userdevice, NULL);
    }
    if (vdi && ha_check_new_vbd(vm, vdi, &call->error) < 0) /* a protected VM stays agile */
        return -1;
    db_row_put(vbd, "currently_attached", xv_new_bool(false));
    db_row_put(vbd, "device", xv_new_string(""));
    return 0;
}

int xapi_VBD_create(Call *call, const Xv *args, Xv **result)
{
    if (db_write_begin(&call->error) < 0)
        return -1;
    DbRow *vbd = implicit_row_from_record(call, args);
    if (!vbd) {
        db_write_abort();
        return -1;
    }
    if (check_new_vbd(call, vbd) < 0) {
        db_row_free(vbd);
        db_write_abort();
        return -1;
    }
    operations_refresh(vbd, NULL);
    g_autofree char *vdi_ref = g_strdup(str_field(vbd, "VDI"));
    char *ref = g_strdup(vbd->ref);
    DbRow *vdi = NULL;
    if (db_insert(vbd, &call->error) < 0 ||
        ((vdi = db_lookup(cls("VDI"), vdi_ref)) && operations_refresh(vdi, &call->error) < 0)) {
        db_write_abort();
        g_free(ref);
        return -1;
    }
    if (db_write_commit(&call->error) < 0) {
        g_free(ref);
        return -1;
    }
    *result = xv_new_string_take(ref);
    return 0;
}

int xapi_VBD_destroy(Call *call, const char *self)
{
    if (db_write_begin(&call->error) < 0)
        return -1;
    DbRow *vbd = db_lookup(cls("VBD"), self);
    int rc = -1;
    if (!vbd) {
        xapi_error_set(&call->error, "HANDLE_INVALID", "VBD", self, NULL);
    } else if (db_get(vbd, "currently_attached")->b) {
        xapi_error_set(&call->error, "OPERATION_NOT_ALLOWED",
                       "VBD currently attached to a running VM", NULL);
    } else {
        g_autofree char *vdi_ref = g_strdup(str_field(vbd, "VDI"));
        DbRow *vdi = NULL;
        rc = db_delete(vbd, &call->error);
        if (rc == 0 && (vdi = db_lookup(cls("VDI"), vdi_ref)))
            rc = operations_refresh(vdi, &call->error);
    }
    if (rc < 0) {
        db_write_abort();
        return -1;
    }
    return db_write_commit(&call->error);
}

int xapi_VM_get_allowed_VBD_devices(Call *call, const char *vm, Xv **result)
{
    db_read_begin();
    DbRow *row = db_lookup(cls("VM"), vm);
    if (row) {
        *result = xv_new_array();
        for (int slot = 0; slot < HV_DISK_SLOTS; slot++) {
            g_autofree char *name = g_strdup_printf("%d", slot);
            if (!slot_taken(row, name))
                xv_array_append_string(*result, name);
        }
    }
    db_read_end();
    return row ? 0 : xapi_error_set(&call->error, "HANDLE_INVALID", "VM", vm, NULL);
}

/* ---- plug, unplug, insert, eject -------------------------------------------------- */

typedef struct {
    Call *call;
    const char *ref;
    char *vm_uuid;
    HvDisk disk;
    const void *arg;
} VbdOp;

typedef int (*VbdWork)(VbdOp *o);

/* Locks op on the VBD, reads its disk, runs work under the VM's lock. */
static int run_vbd_operation(Call *call, const char *vbd_ref, const char *op, VbdWork work,
                             const void *arg)
{
    g_autofree char *op_task = call->task_ref ? g_strdup(call->task_ref) : db_new_ref();
    if (operations_begin(&vbd_operations, vbd_ref, op, op_task, &call->error) < 0)
        return -1;
    VbdOp o = {call, vbd_ref, NULL, {0}, arg};
    db_read_begin();
    DbRow *vbd = db_lookup(cls("VBD"), vbd_ref);
    DbRow *vm = vbd ? db_lookup(cls("VM"), str_field(vbd, "VM")) : NULL;
    int rc = -1;
    if (!vbd)
        xapi_error_set(&call->error, "HANDLE_INVALID", "VBD", vbd_ref, NULL);
    else if (!vm)
        xapi_error_set(&call->error, "HANDLE_INVALID", "VM", str_field(vbd, "VM"), NULL);
    else if ((rc = vbd_disk(vbd, &o.disk, &call->error)) == 0 &&
             (strcmp(op, "insert") == 0 || strcmp(op, "eject") == 0 ||
              ((rc = vm_nvram_check_hotplug(vm, &call->error)) == 0 &&
               (rc = vbd_qos_check_plug(vm, vbd, o.disk.ioprio, &call->error)) == 0)))
        o.vm_uuid = g_strdup(str_field(vm, "uuid"));
    db_read_end();
    if (rc == 0)
        rc = hv_disks_check_chains(&o.disk, 1, &call->error);
    if (rc == 0) {
        xenops_lock_vm(o.vm_uuid);
        rc = work(&o);
        xenops_unlock_vm(o.vm_uuid);
    }
    operations_end(&vbd_operations, vbd_ref, op_task);
    g_free(o.disk.path);
    g_free(o.vm_uuid);
    return rc;
}

/* The VBD's attachment (and, for CDs, its VDI) in the database. */
typedef struct {
    bool attached;
    bool change_vdi;
    const char *vdi; /* NULL: empty */
} VbdUpdate;

static int update_vbd(const char *vbd_ref, const VbdUpdate *u, XapiError **err)
{
    if (db_write_begin(err) < 0)
        return -1;
    DbRow *vbd = db_lookup(cls("VBD"), vbd_ref);
    if (!vbd) {
        db_write_abort();
        return xapi_error_set(err, "HANDLE_INVALID", "VBD", vbd_ref, NULL);
    }
    g_autofree char *old_vdi = g_strdup(str_field(vbd, "VDI"));
    if (u->change_vdi &&
        (db_set_by_name(vbd, "VDI", xv_new_string(u->vdi ? u->vdi : "OpaqueRef:NULL"), err) < 0 ||
         db_set_by_name(vbd, "empty", xv_new_bool(u->vdi == NULL), err) < 0))
        goto fail;
    if (vbd_set_attached(vbd, u->attached, err) < 0)
        goto fail;
    DbRow *previous = db_lookup(cls("VDI"), old_vdi);
    if (previous && operations_refresh(previous, err) < 0)
        goto fail;
    return db_write_commit(err);
fail:
    db_write_abort();
    return -1;
}

static int plug_work(VbdOp *o)
{
    if (driver()->disk_plug(o->vm_uuid, &o->disk, &o->call->error) < 0)
        return -1;
    VbdUpdate u = {.attached = true};
    return update_vbd(o->ref, &u, &o->call->error);
}

int xapi_VBD_plug(Call *call, const char *self)
{
    return run_vbd_operation(call, self, "plug", plug_work, NULL);
}

static int unplug_work(VbdOp *o)
{
    bool force = *(const bool *)o->arg;
    int rc = driver()->disk_unplug(o->vm_uuid, &o->disk,
                                   force ? UNPLUG_FORCE_TIMEOUT_MS : UNPLUG_TIMEOUT_MS,
                                   &o->call->error);
    if (rc < 0)
        return -1;
    if (rc > 0 && force)
        return xapi_error_set(&o->call->error, "DEVICE_DETACH_REJECTED", "VBD", o->ref,
                              "the guest did not release the device", NULL);
    if (rc > 0)
        return xapi_error_set(&o->call->error, "DEVICE_DETACH_TIMEOUT", "VBD", o->ref, NULL);
    VbdUpdate u = {.attached = false};
    return update_vbd(o->ref, &u, &o->call->error);
}

int xapi_VBD_unplug(Call *call, const char *self)
{
    bool force = false;
    return run_vbd_operation(call, self, "unplug", unplug_work, &force);
}

int xapi_VBD_unplug_force(Call *call, const char *self)
{
    bool force = true;
    return run_vbd_operation(call, self, "unplug_force", unplug_work, &force);
}

static int insert_work(VbdOp *o)
{
    const char *vdi_ref = o->arg;
    bool attached = false;
    db_read_begin();
    DbRow *vbd = db_lookup(cls("VBD"), o->ref);
    DbRow *vdi = db_lookup(cls("VDI"), vdi_ref);
    int rc = 0;
    if (!vdi)
        rc = xapi_error_set(&o->call->error, "HANDLE_INVALID", "VDI", vdi_ref, NULL);
    else if (vbd && ha_check_new_vbd(db_lookup(cls("VM"), str_field(vbd, "VM")), vdi,
                                      &o->call->error) < 0)
        rc = -1;
    else if (!(o->disk.path = storage_vdi_path(vdi, &o->call->error)))
        rc = -1;
    o->disk.format = vdi ? storage_vdi_format(vdi) : "raw";
    attached = vbd && db_get(vbd, "currently_attached")->b;
    db_read_end();
    if (rc < 0)
        return -1;
    if (attached && driver()->disk_change_medium(o->vm_uuid, &o->disk, &o->call->error) < 0)
        return -1;
    VbdUpdate u = {.attached = attached, .change_vdi = true, .vdi = vdi_ref};
    return update_vbd(o->ref, &u, &o->call->error);
}

int xapi_VBD_insert(Call *call, const char *vbd, const char *vdi)
{
    return run_vbd_operation(call, vbd, "insert", insert_work, vdi);
}

static int eject_work(VbdOp *o)
{
    db_read_begin();
    DbRow *vbd = db_lookup(cls("VBD"), o->ref);
    bool attached = vbd && db_get(vbd, "currently_attached")->b;
    db_read_end();
    g_clear_pointer(&o->disk.path, g_free);
    if (attached && driver()->disk_change_medium(o->vm_uuid, &o->disk, &o->call->error) < 0)
        return -1;
    VbdUpdate u = {.attached = attached, .change_vdi = true, .vdi = NULL};
    return update_vbd(o->ref, &u, &o->call->error);
}

int xapi_VBD_eject(Call *call, const char *vbd)
{
    return run_vbd_operation(call, vbd, "eject", eject_work, NULL);
}

int xapi_VBD_assert_attachable(Call *call, const char *self)
{
    db_read_begin();
    DbRow *vbd = db_lookup(cls("VBD"), self);
    HvDisk disk = {0};
    int rc = vbd ? vbd_disk(vbd, &disk, &call->error)
                 : xapi_error_set(&call->error, "HANDLE_INVALID", "VBD", self, NULL);
    db_read_end();
    g_free(disk.path);
    return rc;
}

/* ---- what storage asks of running domains ------------------------------------------ */

/* The running domain with vdi attached (read-write if rw), its disk. */
static char *attached_domain(const char *vdi_ref, bool rw, HvDisk *disk, XapiError **err)
{
    db_read_begin();
    DbRow *vdi = db_lookup(cls("VDI"), vdi_ref);
    const Xv *vbds = vdi ? db_get(vdi, "VBDs") : NULL;
    char *uuid = NULL;
    for (guint i = 0; i < xv_len(vbds) && !uuid; i++) {
        DbRow *vbd = db_lookup(cls("VBD"), xv_str(xv_at(vbds, i)));
        DbRow *vm = vbd ? db_lookup(cls("VM"), str_field(vbd, "VM")) : NULL;
        if (!vm || !db_get(vbd, "currently_attached")->b || !vm_has_domain(vm) ||
            (rw && strcmp(str_field(vbd, "mode"), "RW") != 0))
            continue;
        if (vbd_disk(vbd, disk, err) == 0)
            uuid = g_strdup(str_field(vm, "uuid"));
        else
            uuid = g_strdup(""); /* error */
    }
    db_read_end();
    return uuid;
}

static int writer_of(const char *vdi_ref, char **domain, XapiError **err)
{
    HvDisk disk = {0};
    char *uuid = attached_domain(vdi_ref, true, &disk, err);
    g_free(disk.path);
    if (uuid && !*uuid) {
        g_free(uuid);
        return -1;
    }
    *domain = uuid;
    return uuid ? 1 : 0;
}

/* The disk of the domain's VM that has vdi attached (1), or 0 if none. */
static int domain_disk(const char *domain, const char *vdi_ref, HvDisk *disk, XapiError **err)
{
    db_read_begin();
    DbRow *vdi = db_lookup(cls("VDI"), vdi_ref);
    const Xv *vbds = vdi ? db_get(vdi, "VBDs") : NULL;
    int rc = 0;
    for (guint i = 0; i < xv_len(vbds) && rc == 0; i++) {
        DbRow *vbd = db_lookup(cls("VBD"), xv_str(xv_at(vbds, i)));
        DbRow *vm = vbd ? db_lookup(cls("VM"), str_field(vbd, "VM")) : NULL;
        if (vm && db_get(vbd, "currently_attached")->b &&
            strcmp(str_field(vm, "uuid"), domain) == 0)
            rc = vbd_disk(vbd, disk, err) < 0 ? -1 : 1;
    }
    db_read_end();
    return rc;
}

static int switch_leaves(const char *domain, const char *const *vdis, const char *const *paths,
                         guint n, XapiError **err)
{
    g_autoptr(GArray) disks = g_array_new(FALSE, TRUE, sizeof(HvDisk));
    g_autoptr(GPtrArray) moved_to = g_ptr_array_new();
    int rc = 0;
    for (guint i = 0; i < n && rc == 0; i++) {
        HvDisk disk = {0};
        rc = domain_disk(domain, vdis[i], &disk, err);
        if (rc > 0) {
            g_array_append_val(disks, disk);
            g_ptr_array_add(moved_to, (char *)paths[i]);
            rc = 0;
        }
    }
    if (rc == 0 && disks->len)
        rc = driver()->disks_switch(domain, (const HvDisk *)disks->data,
                                    (const char *const *)moved_to->pdata, disks->len, err);
    for (guint i = 0; i < disks->len; i++)
        g_free(g_array_index(disks, HvDisk, i).path);
    return rc;
}

static void stop_writer(const char *domain)
{
    g_autoptr(XapiError) err = NULL;
    if (driver()->destroy(domain, &err) < 0)
        g_warning("VM %s: cannot stop its domain: %s", domain, err->code);
    xenops_queue_reconcile(domain);
}

static int resize_attached(const char *vdi_ref, int64_t size, XapiError **err)
{
    HvDisk disk = {0};
    g_autofree char *uuid = attached_domain(vdi_ref, false, &disk, err);
    int rc = !uuid ? 0 : !*uuid ? -1
                               : driver()->disk_resize(uuid, &disk, size, err) < 0 ? -1 : 1;
    g_free(disk.path);
    return rc;
}

static const StorageLiveHooks live_hooks = {writer_of, switch_leaves, stop_writer,
                                            resize_attached};

void vbd_init(void)
{
    operations_register(&vbd_operations);
    storage_set_live_hooks(&live_hooks);
}
