/* vdi_target.c: one VDI's image and SR, read under the database lock
 * (vdi_target.h). */
#include "vdi_target.h"

#include "db.h"
#include "storage.h"

int vdi_target_read(const char *vdi_ref, VdiTarget *t, XapiError **err)
{
    db_read_begin();
    DbRow *vdi = db_lookup(dm_class_by_name("VDI"), vdi_ref);
    DbRow *sr = vdi ? db_lookup(dm_class_by_name("SR"), xv_str(db_get(vdi, "SR"))) : NULL;
    int rc = -1;
    if (!vdi) {
        xapi_error_set(err, "HANDLE_INVALID", "VDI", vdi_ref, NULL);
    } else if (!sr) {
        xapi_error_set(err, "VDI_NOT_AVAILABLE", vdi_ref, NULL);
    } else if ((t->dir = storage_sr_dir(sr, err))) {
        t->ref = g_strdup(vdi_ref);
        t->uuid = g_strdup(xv_str(db_get(vdi, "uuid")));
        t->sr = g_strdup(sr->ref);
        t->location = g_strdup(xv_str(db_get(vdi, "location")));
        t->path = sr_path(t->dir, t->location);
        t->format = storage_vdi_format(vdi);
        t->virtual_size = db_get(vdi, "virtual_size")->i;
        t->read_only = db_get(vdi, "read_only")->b;
        t->driver = storage_driver(sr);
        rc = 0;
    }
    db_read_end();
    return rc;
}

void vdi_target_clear(VdiTarget *t)
{
    g_free(t->ref);
    g_free(t->uuid);
    g_free(t->sr);
    g_free(t->dir);
    g_free(t->location);
    g_free(t->path);
    *t = (VdiTarget){0};
}

int64_t vdi_target_allocated(const VdiTarget *t, const char *location)
{
    VdiInfo info = {0};
    g_autoptr(XapiError) ignored = NULL;
    if (t->driver->vdi_info(t->dir, location, &info, &ignored) < 0)
        return 0;
    int64_t bytes = info.physical_utilisation;
    vdi_info_clear(&info);
    return bytes;
}
