/* vdi_operations.c: which VDI operations may run now (XAPI's
 * xapi_vdi.ml check_operation_error), first failure first: another
 * operation (copies run beside others), resize without a plugged SR,
 * attached VBDs (snapshot, clone and resize_online run live; copy beside
 * read-only attachments), VBD operations in progress, what the driver
 * cannot do, unmanaged VDIs. */
#include "storage_operations.h"

#include <string.h>

static bool in(const char *op, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(op, *list) == 0)
            return true;
    return false;
}

static const char *sr_op_of(const char *op)
{
    static const struct { const char *vdi_op, *sr_op; } map[] = {
        {"snapshot", "vdi_snapshot"}, {"clone", "vdi_clone"}, {"destroy", "vdi_destroy"},
        {"resize", "vdi_resize"},     {"resize_online", "vdi_resize"}};
    for (size_t i = 0; i < G_N_ELEMENTS(map); i++)
        if (strcmp(map[i].vdi_op, op) == 0)
            return map[i].sr_op;
    return NULL;
}

static bool attaching(const DbRow *vbd)
{
    const Xv *current = db_get(vbd, "current_operations");
    for (guint i = 0; i < xv_len(current); i++)
        if (strcmp(xv_str(&xv_member_at(current, i)->value), "attach") == 0)
            return true;
    return false;
}

static int vdi_check(const DbRow *vdi, const char *op, XapiError **err)
{
    const Xv *current = db_get(vdi, "current_operations");
    for (guint i = 0; i < xv_len(current); i++) {
        const XvMember *m = xv_member_at(current, i);
        if (strcmp(xv_str(&m->value), "copy") != 0)
            return xapi_error_set(err, "OTHER_OPERATION_IN_PROGRESS", "VDI", vdi->ref,
                                  xv_str(&m->value), m->key, NULL);
    }
    DbRow *sr = db_lookup(dm_class_by_name("SR"), xv_str(db_get(vdi, "SR")));
    if (strcmp(op, "resize") == 0 && (!sr || !storage_host_pbd(sr) ||
                                      !db_get(storage_host_pbd(sr), "currently_attached")->b))
        return xapi_error_set(err, "SR_HAS_NO_PBDS", xv_str(db_get(vdi, "SR")), NULL);
    static const char *const live[] = {"snapshot", "resize_online", "blocked", "clone",
                                       "mirror", NULL};
    bool any_active = false, rw_active = false;
    const XvMember *vbd_op = NULL;
    const Xv *vbds = db_get(vdi, "VBDs");
    for (guint i = 0; i < xv_len(vbds); i++) {
        DbRow *vbd = db_lookup(dm_class_by_name("VBD"), xv_str(xv_at(vbds, i)));
        if (!vbd)
            continue;
        /* a VBD being attached (VM.start in flight) is as good as attached */
        if (db_get(vbd, "currently_attached")->b || attaching(vbd)) {
            any_active = true;
            rw_active |= strcmp(xv_str(db_get(vbd, "mode")), "RW") == 0;
        }
        if (!vbd_op && xv_len(db_get(vbd, "current_operations")))
            vbd_op = xv_member_at(db_get(vbd, "current_operations"), 0);
    }
    bool blocked = in(op, live) ? false : strcmp(op, "copy") == 0 ? rw_active : any_active;
    if (blocked)
        return xapi_error_set(err, "VDI_IN_USE", vdi->ref, op, NULL);
    if (vbd_op)
        return xapi_error_set(err, "OTHER_OPERATION_IN_PROGRESS", "VDI", vdi->ref,
                              xv_str(&vbd_op->value), vbd_op->key, NULL);
    const char *sr_op = sr_op_of(op);
    if (sr_op && (!sr || !storage_sr_supports(sr, sr_op)))
        return xapi_error_set(err, "SR_OPERATION_NOT_SUPPORTED", xv_str(db_get(vdi, "SR")), NULL);
    if (!db_get(vdi, "managed")->b && strcmp(op, "forget") != 0)
        return xapi_error_set(err, "VDI_NOT_MANAGED", vdi->ref, NULL);
    return 0;
}

static const char *const vdi_offered[] = {"clone", "copy", "resize", "resize_online", "snapshot",
                                          "destroy", "forget", "update", NULL};

const ObjectOperations vdi_operations = {"VDI", vdi_check, vdi_offered};
