/* sr_operations.c: which SR operations may run now (XAPI's
 * xapi_sr_operations.ml), first failure first: what the driver cannot do,
 * attached PBDs for destroy/forget, no PBDs or managed VDIs left for
 * destroy, then other operations in progress (only plugs run together). */
#include "storage_operations.h"

#include <string.h>

static const struct {
    const char *op, *capability;
} op_capabilities[] = {
    {"vdi_create", "VDI_CREATE"},   {"vdi_destroy", "VDI_DELETE"},
    {"vdi_resize", "VDI_RESIZE"},   {"vdi_introduce", "VDI_INTRODUCE"},
    {"vdi_clone", "VDI_CLONE"},     {"vdi_snapshot", "VDI_SNAPSHOT"},
    {"update", "SR_UPDATE"},        {"vdi_mirror", "VDI_MIRROR"},
    {"vdi_enable_cbt", "VDI_CONFIG_CBT"}, {"vdi_disable_cbt", "VDI_CONFIG_CBT"},
    {"vdi_data_destroy", "VDI_CONFIG_CBT"}, {"vdi_list_changed_blocks", "VDI_CONFIG_CBT"},
    {"vdi_set_on_boot", "VDI_RESET_ON_BOOT"},
};

bool storage_has_capability(const SrDriver *driver, const char *capability)
{
    for (const char *const *c = driver ? driver->capabilities : NULL; c && *c; c++)
        if (strcmp(*c, capability) == 0)
            return true;
    return false;
}

bool storage_sr_supports(const DbRow *sr, const char *op)
{
    const SrDriver *driver = storage_driver(sr);
    for (size_t i = 0; i < G_N_ELEMENTS(op_capabilities); i++)
        if (strcmp(op_capabilities[i].op, op) == 0)
            return storage_has_capability(driver, op_capabilities[i].capability);
    return driver != NULL;
}

static bool any_attached_pbd(const DbRow *sr)
{
    const Xv *pbds = db_get(sr, "PBDs");
    for (guint i = 0; i < xv_len(pbds); i++) {
        DbRow *pbd = db_lookup(dm_class_by_name("PBD"), xv_str(xv_at(pbds, i)));
        if (pbd && db_get(pbd, "currently_attached")->b)
            return true;
    }
    return false;
}

static bool any_managed_vdi(const DbRow *sr)
{
    const Xv *vdis = db_get(sr, "VDIs");
    for (guint i = 0; i < xv_len(vdis); i++) {
        DbRow *vdi = db_lookup(dm_class_by_name("VDI"), xv_str(xv_at(vdis, i)));
        if (vdi && db_get(vdi, "managed")->b && strcmp(xv_str(db_get(vdi, "type")), "rrd") != 0)
            return true;
    }
    return false;
}

static int sr_check(const DbRow *sr, const char *op, XapiError **err)
{
    if (!storage_sr_supports(sr, op))
        return xapi_error_set(err, "SR_OPERATION_NOT_SUPPORTED", sr->ref, NULL);
    bool destroy = strcmp(op, "destroy") == 0;
    if ((destroy || strcmp(op, "forget") == 0) && any_attached_pbd(sr))
        return xapi_error_set(err, "SR_HAS_PBD", sr->ref, NULL);
    if (destroy && xv_len(db_get(sr, "PBDs")) == 0)
        return xapi_error_set(err, "SR_HAS_NO_PBDS", sr->ref, NULL);
    if (destroy && any_managed_vdi(sr))
        return xapi_error_set(err, "SR_NOT_EMPTY", NULL);
    const Xv *current = db_get(sr, "current_operations");
    for (guint i = 0; i < xv_len(current); i++) {
        /* plugs run together; anything else runs alone */
        const XvMember *m = xv_member_at(current, i);
        if (strcmp(op, "plug") != 0 || strcmp(xv_str(&m->value), "plug") != 0)
            return xapi_error_set(err, "OTHER_OPERATION_IN_PROGRESS", "SR", sr->ref,
                                  xv_str(&m->value), m->key, NULL);
    }
    return 0;
}

static const char *const sr_offered[] = {
    "scan", "destroy", "forget", "plug", "unplug", "update", "vdi_create", "vdi_introduce",
    "vdi_destroy", "vdi_resize", "vdi_clone", "vdi_snapshot", "pbd_create", "pbd_destroy", NULL};

const ObjectOperations sr_operations = {"SR", sr_check, sr_offered};
