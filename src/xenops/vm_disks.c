/* vm_disks.c: VBDs to disks, boot order, attachment state. */
#include "vm_disks.h"

#include "vbd_qos.h"

#include <stdlib.h>
#include <string.h>

#include "storage.h"

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

static const char *str_field(const DbRow *row, const char *field)
{
    return xv_str(db_get(row, field));
}

void hv_disks_free(HvDisk *disks, size_t n)
{
    for (size_t i = 0; i < n; i++)
        g_free(disks[i].path);
    g_free(disks);
}

int vbd_slot(const char *userdevice, bool cdrom)
{
    char *end = NULL;
    long slot = strtol(userdevice, &end, 10);
    if (!*userdevice || *end || slot < 0 || slot >= (cdrom ? HV_CD_SLOTS : HV_DISK_SLOTS))
        return -1;
    return (int)slot;
}

static bool is_cd(const DbRow *vbd) { return strcmp(str_field(vbd, "type"), "CD") == 0; }

int vbd_disk(const DbRow *vbd, HvDisk *out, XapiError **err)
{
    *out = (HvDisk){.bootindex = -1, .format = "raw"};
    out->cdrom = is_cd(vbd);
    out->floppy = strcmp(str_field(vbd, "type"), "Floppy") == 0; /* its unit: at the start */
    out->slot = vbd_slot(str_field(vbd, "userdevice"), out->cdrom);
    if (out->slot < 0)
        return xapi_error_set(err, "INVALID_DEVICE", str_field(vbd, "userdevice"), NULL);
    out->read_only = out->cdrom || strcmp(str_field(vbd, "mode"), "RO") == 0;
    out->ioprio = vbd_qos_ioprio(vbd, err);
    if (out->ioprio < 0 || vbd_qos_rate(vbd, out, err) < 0)
        return -1;
    if (db_get(vbd, "empty")->b)
        return 0;
    DbRow *vdi = db_lookup(cls("VDI"), str_field(vbd, "VDI"));
    if (!vdi)
        return xapi_error_set(err, "HANDLE_INVALID", "VDI", str_field(vbd, "VDI"), NULL);
    if (!out->read_only && db_get(vdi, "read_only")->b)
        return xapi_error_set(err, "VDI_READONLY", vdi->ref, NULL);
    if (storage_vdi_check_file(vdi, err) < 0) /* QEMU would follow a link there */
        return -1;
    out->path = storage_vdi_path(vdi, err);
    if (!out->path)
        return -1;
    out->format = storage_vdi_format(vdi);
    out->size = db_get(vdi, "virtual_size")->i;
    return 0;
}

int hv_disks_check_chains(const HvDisk *disks, size_t n, XapiError **err)
{
    for (size_t i = 0; i < n; i++) {
        if (!disks[i].path)
            continue;
        g_autofree char *dir = g_path_get_dirname(disks[i].path);
        g_autofree char *name = g_path_get_basename(disks[i].path);
        if (sr_chain_check(dir, name, err) < 0)
            return -1;
    }
    return 0;
}

/* Disks before CDs for 'c', CDs for 'd'; bootable VBDs first in each. */
static void assign_boot_order(HvDisk *disks, const bool *bootable, size_t n, const char *order)
{
    int next = 0;
    for (const char *c = order; *c; c++) {
        if (*c != 'c' && *c != 'd')
            continue;
        bool want_cd = *c == 'd';
        for (int pass = 0; pass < 2; pass++)
            for (size_t i = 0; i < n; i++)
                if (disks[i].cdrom == want_cd && !disks[i].floppy && disks[i].bootindex < 0 &&
                    bootable[i] == (pass == 0) && (disks[i].path || want_cd))
                    disks[i].bootindex = next++;
    }
}

int vm_disks_for_start(const DbRow *vm, HvDisk **disks, size_t *n, XapiError **err)
{
    const Xv *vbds = db_get(vm, "VBDs");
    HvDisk *out = g_new0(HvDisk, xv_len(vbds) + 1);
    g_autofree bool *bootable = g_new0(bool, xv_len(vbds) + 1);
    size_t count = 0;
    unsigned used_disk = 0, used_cd = 0;
    int floppies = 0;
    for (guint i = 0; i < xv_len(vbds); i++) {
        DbRow *vbd = db_lookup(cls("VBD"), xv_str(xv_at(vbds, i)));
        if (!vbd)
            continue;
        if (vbd_disk(vbd, &out[count], err) < 0) {
            hv_disks_free(out, count + 1);
            return -1;
        }
        if (out[count].floppy) { /* A: then B:, in the VBDs' order */
            if (floppies == HV_FLOPPY_UNITS) {
                hv_disks_free(out, count + 1);
                return xapi_error_set(err, "INVALID_DEVICE", str_field(vbd, "userdevice"), NULL);
            }
            out[count].floppy = ++floppies;
        }
        unsigned *used = out[count].cdrom ? &used_cd : &used_disk;
        if (*used & (1u << out[count].slot)) {
            xapi_error_set(err, "VM_DUPLICATE_VBD_DEVICE", vm->ref, vbd->ref,
                           str_field(vbd, "userdevice"), NULL);
            hv_disks_free(out, count + 1);
            return -1;
        }
        *used |= 1u << out[count].slot;
        bootable[count] = db_get(vbd, "bootable")->b;
        count++;
    }
    g_autofree int *ioprios = g_new0(int, count + 1);
    for (size_t i = 0; i < count; i++)
        ioprios[i] = out[i].ioprio;
    int common;
    if (vbd_qos_common(ioprios, count, vm->ref, &common, err) < 0) {
        hv_disks_free(out, count + 1);
        return -1;
    }
    if (!*str_field(vm, "PV_kernel")) {
        const Xv *order = xv_struct_get(db_get(vm, "HVM_boot_params"), "order");
        assign_boot_order(out, bootable, count, order ? xv_str(order) : "cd");
    }
    *disks = out;
    *n = count;
    return 0;
}

int vbd_set_attached(DbRow *vbd, bool attached, XapiError **err)
{
    bool cd = is_cd(vbd);
    bool now = attached && (cd || !db_get(vbd, "empty")->b);
    if (db_get(vbd, "currently_attached")->b != now &&
        db_set_by_name(vbd, "currently_attached", xv_new_bool(now), err) < 0)
        return -1;
    int slot = vbd_slot(str_field(vbd, "userdevice"), cd);
    g_autofree char *device = now && slot >= 0 ? g_strdup_printf("xvd%c", 'a' + slot)
                                               : g_strdup("");
    if (strcmp(str_field(vbd, "device"), device) != 0 &&
        db_set_by_name(vbd, "device", xv_new_string(device), err) < 0)
        return -1;
    if (operations_refresh(vbd, err) < 0)
        return -1;
    DbRow *vdi = db_lookup(cls("VDI"), str_field(vbd, "VDI"));
    return vdi ? operations_refresh(vdi, err) : 0;
}

int vm_vbds_set_attached(DbRow *vm, bool attached, XapiError **err)
{
    const Xv *vbds = db_get(vm, "VBDs");
    for (guint i = 0; i < xv_len(vbds); i++) {
        DbRow *vbd = db_lookup(cls("VBD"), xv_str(xv_at(vbds, i)));
        if (vbd && vbd_set_attached(vbd, attached, err) < 0)
            return -1;
    }
    return 0;
}

/* The VBDs of vm that bring a VDI (lock held): fn on each, stopping at the
 * first failure. */
static int foreach_disk_vbd(DbRow *vm, int (*fn)(DbRow *vbd, DbRow *vdi, const char *task_ref,
                                                 XapiError **err),
                            const char *task_ref, XapiError **err)
{
    g_autoptr(Xv) vbds = xv_dup(db_get(vm, "VBDs"));
    for (guint i = 0; i < xv_len(vbds); i++) {
        DbRow *vbd = db_lookup(cls("VBD"), xv_str(xv_at(vbds, i)));
        DbRow *vdi = vbd && !db_get(vbd, "empty")->b ? db_lookup(cls("VDI"), str_field(vbd, "VDI"))
                                                     : NULL;
        if (vdi && fn(vbd, vdi, task_ref, err) < 0)
            return -1;
    }
    return 0;
}

int vbd_vdi_check_idle(const DbRow *vbd, XapiError **err)
{
    DbRow *vdi = db_lookup(cls("VDI"), str_field(vbd, "VDI"));
    const Xv *current = vdi ? db_get(vdi, "current_operations") : NULL;
    for (guint i = 0; i < xv_len(current); i++) {
        const XvMember *m = xv_member_at(current, i);
        if (strcmp(xv_str(&m->value), "copy") != 0) /* a copy only reads */
            return xapi_error_set(err, "VDI_IN_USE", vdi->ref, xv_str(&m->value), NULL);
    }
    return 0;
}

static int check_disk(DbRow *vbd, DbRow *vdi, const char *task_ref, XapiError **err)
{
    (void)vdi, (void)task_ref;
    if (vbd_vdi_check_idle(vbd, err) < 0)
        return -1;
    return vbd_operations.check(vbd, "attach", err);
}

static int lock_disk(DbRow *vbd, DbRow *vdi, const char *task_ref, XapiError **err)
{
    if (operations_add(&vbd_operations, vbd, "attach", task_ref, err) < 0)
        return -1;
    return operations_refresh(vdi, err);
}

static int unlock_disk(DbRow *vbd, DbRow *vdi, const char *task_ref, XapiError **err)
{
    if (operations_remove(vbd, task_ref, err) < 0)
        return -1;
    return operations_refresh(vdi, err);
}

int vm_disks_check(DbRow *vm, XapiError **err)
{
    return foreach_disk_vbd(vm, check_disk, NULL, err);
}

int vm_disks_lock(DbRow *vm, const char *task_ref, XapiError **err)
{
    return foreach_disk_vbd(vm, lock_disk, task_ref, err);
}

int vm_disks_unlock(DbRow *vm, const char *task_ref, XapiError **err)
{
    return foreach_disk_vbd(vm, unlock_disk, task_ref, err);
}
