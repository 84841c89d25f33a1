/* vm_images.c: a domain's state written into a file SR as a raw VDI
 * (vm_images.h): VM.suspend's and VM.checkpoint's saved states, crash
 * dumps. */
#include "vm_images.h"

#include <unistd.h>

#include "db.h"
#include "dm_handlers.h"
#include "pending_files.h"
#include "sr_driver.h"
#include "storage.h"

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

/* Records the file at location in sr (dir on this host) as a VDI, linked
 * in the same transaction. The file is read before the write lock is
 * taken. */
static char *record_image(const char *sr_ref, const char *dir, const char *location,
                          const VmImage *image, XapiError **err)
{
    VdiInfo info = {0};
    if (sr_file_driver.vdi_info(dir, location, &info, err) < 0)
        return NULL;
    SrSpace space;
    storage_sr_space_read(sr_ref, &space);
    if (db_write_begin(err) < 0) {
        vdi_info_clear(&info);
        return NULL;
    }
    DbRow *sr = db_lookup(cls("SR"), sr_ref);
    if (!sr) {
        db_write_abort();
        vdi_info_clear(&info);
        xapi_error_set(err, "HANDLE_INVALID", "SR", sr_ref, NULL);
        return NULL;
    }
    DbRow *vdi = storage_vdi_row(sr, location, &info);
    vdi_info_clear(&info);
    db_row_put(vdi, "name_label", xv_new_string(image->label));
    db_row_put(vdi, "type", xv_new_string(image->type));
    char *ref = g_strdup(vdi->ref);
    if (storage_insert_vdi(vdi, err) < 0 || storage_refresh_sr_space(sr, &space, err) < 0 ||
        (image->link && image->link(ref, image->link_arg, err) < 0)) {
        db_write_abort();
        g_free(ref);
        return NULL;
    }
    if (db_write_commit(err) < 0)
        g_clear_pointer(&ref, g_free);
    return ref;
}

char *vm_image_write(const char *sr_ref, const VmImage *image, XapiError **err)
{
    db_read_begin();
    DbRow *sr = db_lookup(cls("SR"), sr_ref);
    g_autofree char *dir = sr ? storage_sr_dir(sr, err) : NULL;
    bool file_sr = sr && storage_driver(sr) == &sr_file_driver;
    db_read_end();
    if (!sr) {
        xapi_error_set(err, "HANDLE_INVALID", "SR", sr_ref, NULL);
        return NULL;
    }
    if (!dir)
        return NULL;
    if (!file_sr) {
        xapi_error_set(err, "SR_OPERATION_NOT_SUPPORTED", sr_ref, NULL);
        return NULL;
    }
    g_autofree char *stem = db_new_uuid();
    g_autofree char *location = g_strconcat(stem, ".raw", NULL);
    g_autofree char *path = sr_path(dir, location);
    storage_lock_sr(sr_ref); /* a scan must not adopt the half-written file */
    char *ref = NULL;
    if (pending_file_note(path, err) == 0 && image->write(path, image->write_arg, err) == 0)
        ref = record_image(sr_ref, dir, location, image, err);
    if (!ref)
        unlink(path);
    storage_unlock_sr(sr_ref);
    return ref;
}
