/* field_checks.c: per-class rules for generic writes (see field_checks.h),
 * one small table: class + field -> check. */
#include "field_checks.h"

#include <string.h>

#include "vm_disks.h"
#include "vm_operations.h"

typedef int (*FieldCheck)(DbRow *row, const DmField *field, const Xv *value, XapiError **err);

static const char *str_field(const DbRow *row, const char *name)
{
    return xv_str(db_get(row, name));
}

/* VM.set_is_a_template: true runs as XAPI's make_into_template operation
 * (a halted VM that is not a template yet: VM_BAD_POWER_STATE otherwise);
 * false is "install time" (xapi_vm_helpers.ml set_is_a_template). */
static int vm_is_a_template(DbRow *vm, const DmField *field, const Xv *value, XapiError **err)
{
    (void)field;
    bool now = db_get(vm, "is_a_template")->b;
    if (value->b == now)
        return 0;
    if (value->b) {
        if (vm_check_operation(vm, "make_into_template", err) < 0)
            return -1;
        /* HA must not start a template */
        return db_set_by_name(vm, "ha_always_run", xv_new_bool(false), err);
    }
    DbRow *metrics = db_lookup(dm_class_by_name("VM_metrics"), str_field(vm, "metrics"));
    if (!metrics)
        return 0; /* XAPI only warns */
    return db_set_by_name(metrics, "install_time",
                          xv_new_datetime(g_get_real_time() / G_USEC_PER_SEC), err);
}

/* A VBD's slot and kind are its device in the running domain: changed
 * only while it is not attached (the device would no longer match). */
static int vbd_detached(const DbRow *vbd, XapiError **err)
{
    if (db_get(vbd, "currently_attached")->b)
        return xapi_error_set(err, "DEVICE_ALREADY_ATTACHED", vbd->ref, NULL);
    return 0;
}

static int vbd_userdevice(DbRow *vbd, const DmField *field, const Xv *value, XapiError **err)
{
    (void)field;
    const char *userdevice = xv_str(value);
    if (strcmp(userdevice, str_field(vbd, "userdevice")) == 0)
        return 0;
    if (vbd_detached(vbd, err) < 0)
        return -1;
    if (vbd_slot(userdevice, strcmp(str_field(vbd, "type"), "CD") == 0) < 0)
        return xapi_error_set(err, "INVALID_DEVICE", userdevice, NULL);
    DbRow *vm = db_lookup(dm_class_by_name("VM"), str_field(vbd, "VM"));
    const Xv *vbds = vm ? db_get(vm, "VBDs") : NULL;
    for (guint i = 0; vbds && i < xv_len(vbds); i++) {
        DbRow *other = db_lookup(vbd->cls, xv_str(xv_at(vbds, i)));
        if (other && other != vbd && strcmp(str_field(other, "userdevice"), userdevice) == 0)
            return xapi_error_set(err, "DEVICE_ALREADY_EXISTS", userdevice, NULL);
    }
    return 0;
}

/* VBD.set_type: the checks of VBD.create for the new kind. */
static int vbd_type(DbRow *vbd, const DmField *field, const Xv *value, XapiError **err)
{
    (void)field;
    const char *type = xv_str(value);
    if (strcmp(type, str_field(vbd, "type")) == 0)
        return 0;
    if (vbd_detached(vbd, err) < 0)
        return -1;
    bool cd = strcmp(type, "CD") == 0;
    if (cd && strcmp(str_field(vbd, "mode"), "RW") == 0)
        return xapi_error_set(err, "VBD_CDS_MUST_BE_READONLY", NULL);
    if (!cd && db_get(vbd, "empty")->b)
        return xapi_error_set(err, "VBD_NOT_REMOVABLE_MEDIA", vbd->ref, NULL);
    if (vbd_slot(str_field(vbd, "userdevice"), cd) < 0)
        return xapi_error_set(err, "INVALID_DEVICE", str_field(vbd, "userdevice"), NULL);
    return 0;
}

static const struct {
    const char *cls, *field;
    FieldCheck check;
} checks[] = {
    {"VM", "is_a_template", vm_is_a_template},
    {"VBD", "userdevice", vbd_userdevice},
    {"VBD", "type", vbd_type},
};

int field_checks_write(DbRow *row, const DmField *field, const Xv *value, XapiError **err)
{
    for (size_t i = 0; i < G_N_ELEMENTS(checks); i++)
        if (strcmp(checks[i].cls, row->cls->name) == 0 &&
            strcmp(checks[i].field, field->name) == 0)
            return checks[i].check(row, field, value, err);
    return 0;
}

/* VM_appliance.destroy leaves its VMs in no appliance
 * (xapi_vm_appliance.ml destroy), not naming a ref that is gone. */
static int appliance_destroy(DbRow *appliance, XapiError **err)
{
    g_autoptr(Xv) vms = xv_dup(db_get(appliance, "VMs"));
    for (guint i = 0; i < xv_len(vms); i++) {
        DbRow *vm = db_lookup(dm_class_by_name("VM"), xv_str(xv_at(vms, i)));
        if (vm && db_set_by_name(vm, "appliance", xv_new_string("OpaqueRef:NULL"), err) < 0)
            return -1;
    }
    return 0;
}

int field_checks_destroy(DbRow *row, XapiError **err)
{
    if (strcmp(row->cls->name, "VM_appliance") == 0)
        return appliance_destroy(row, err);
    return 0;
}
