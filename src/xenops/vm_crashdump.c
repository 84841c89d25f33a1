/* vm_crashdump.c: a crashed guest's memory kept, as actions_after_crash
 * coredump_and_* ask. XAPI writes such dumps for PV domains only; here
 * every domain is a QEMU machine whose memory QEMU can write out
 * (dump-guest-memory, an ELF core the crash utility reads), so the dump
 * is kept as XAPI's crashdump class describes it: a VDI (type crashdump,
 * a raw file) in the crash dump SR with a crashdump record naming the VM
 * and the VDI (crashdump.destroy removes both). */
#include "vm_crashdump.h"

#include <string.h>

#include "bootstrap.h"
#include "db.h"
#include "dm_handlers.h"
#include "vm_images.h"
#include "xenops.h"

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

bool vm_crashdump_wanted(const char *action)
{
    return g_str_has_prefix(action, "coredump_");
}

static bool first_row(DbRow *row, void *ctx)
{
    *(DbRow **)ctx = row;
    return false;
}

/* This host's crash_dump_sr, else the pool's crash_dump_SR (lock held). */
static DbRow *crash_dump_sr(void)
{
    g_autofree char *host_ref = bootstrap_this_host();
    DbRow *host = host_ref ? db_lookup(cls("host"), host_ref) : NULL;
    DbRow *sr = host ? db_lookup(cls("SR"), xv_str(db_get(host, "crash_dump_sr"))) : NULL;
    if (sr)
        return sr;
    DbRow *pool = NULL;
    db_foreach(cls("pool"), first_row, &pool);
    return pool ? db_lookup(cls("SR"), xv_str(db_get(pool, "crash_dump_SR"))) : NULL;
}

int vm_crashdump_check(const char *vm_ref, const Xv *record, XapiError **err)
{
    const Xv *action = xv_struct_get(record, "actions_after_crash");
    if (!action || !vm_crashdump_wanted(xv_str(action)))
        return 0;
    const HvDriver *driver = xenops_driver();
    if (!driver || !driver->dump_memory)
        return xapi_error_set(err, "VALUE_NOT_SUPPORTED", "VM.actions_after_crash",
                              xv_str(action), "this host's driver cannot dump a domain's memory",
                              NULL);
    db_read_begin();
    bool have_sr = crash_dump_sr() != NULL;
    db_read_end();
    if (!have_sr)
        return xapi_error_set(err, "VM_NO_CRASHDUMP_SR", vm_ref, NULL);
    return 0;
}

static int dump_domain(const char *path, const void *uuid, XapiError **err)
{
    return xenops_driver()->dump_memory(uuid, path, err);
}

/* The crashdump record, in the transaction that records its VDI. */
static int add_crashdump(const char *vdi_ref, const void *vm_ref, XapiError **err)
{
    if (!db_lookup(cls("VM"), vm_ref))
        return xapi_error_set(err, "HANDLE_INVALID", "VM", (const char *)vm_ref, NULL);
    DbRow *dump = db_row_new(cls("crashdump"));
    db_row_put(dump, "VM", xv_new_string(vm_ref));
    db_row_put(dump, "VDI", xv_new_string(vdi_ref));
    return db_insert(dump, err);
}

void vm_crashdump_take(const char *uuid, const char *vm_ref)
{
    db_read_begin();
    DbRow *vm = db_lookup(cls("VM"), vm_ref);
    DbRow *sr = vm ? crash_dump_sr() : NULL;
    g_autofree char *sr_ref = sr ? g_strdup(sr->ref) : NULL;
    g_autofree char *label = vm ? g_strdup_printf("Crash dump of %s",
                                                  xv_str(db_get(vm, "name_label"))) : NULL;
    db_read_end();
    g_autoptr(XapiError) err = NULL;
    if (!sr_ref) {
        g_warning("VM %s crashed: no crash dump SR, no dump kept", uuid);
        return;
    }
    VmImage image = {"crashdump", label, dump_domain, uuid, add_crashdump, vm_ref};
    g_autofree char *vdi = vm_image_write(sr_ref, &image, &err);
    if (vdi)
        g_message("VM %s crashed: its memory is in VDI %s", uuid, vdi);
    else
        g_warning("VM %s crashed: no dump kept: %s %s", uuid, err->code,
                  err->params->len ? (char *)err->params->pdata[0] : "");
}
