/* vbd.c: hand-written VBD messages that change its record (the device
 * operations are in src/xenops/vbd_api.c). */
#include <string.h>

#include "call.h"
#include "dm_handlers.h"
#include "operations.h"
#include "vm_disks.h"

static const char *str_field(const DbRow *row, const char *name)
{
    return xv_str(db_get(row, name));
}

/* XAPI's set_mode: the VM must be halted; the checks VBD.create makes on
 * the mode (a CD is read-only, a read-only VDI stays so). */
static int change_mode(DbRow *vbd, const void *arg, XapiError **err)
{
    const char *mode = arg;
    DbRow *vm = db_lookup(dm_class_by_name("VM"), str_field(vbd, "VM"));
    const char *state = vm ? str_field(vm, "power_state") : "Halted";
    if (strcmp(state, "Halted") != 0) {
        g_autofree char *actual = g_ascii_strdown(state, -1);
        return xapi_error_set(err, "VM_BAD_POWER_STATE", vm->ref, "halted", actual, NULL);
    }
    bool rw = strcmp(mode, "RW") == 0;
    if (rw && strcmp(str_field(vbd, "type"), "CD") == 0)
        return xapi_error_set(err, "VBD_CDS_MUST_BE_READONLY", NULL);
    DbRow *vdi = db_lookup(dm_class_by_name("VDI"), str_field(vbd, "VDI"));
    if (rw && vdi && db_get(vdi, "read_only")->b)
        return xapi_error_set(err, "VDI_READONLY", vdi->ref, NULL);
    return db_set_by_name(vbd, "mode", xv_new_static_string(mode), err);
}

int xapi_VBD_set_mode(Call *call, const char *self, const char *value)
{
    return operations_write(&vbd_operations, self, change_mode, value, &call->error);
}
