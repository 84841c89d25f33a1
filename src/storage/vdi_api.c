/* vdi_api.c: VDI.create, destroy, copy, resize,
 * introduce, forget, update and the explicit setters.
 *
 * Snapshot and clone are vdi_fork.c's. Destroying a VDI removes the bases
 * (vdi_fork.c makes them) nothing is built on any more. */
#include <string.h>
#include <time.h>

#include "dm_handlers.h"
#include "implicit.h"
#include "storage_operations.h"
#include "pending_files.h"
#include "qemu_img.h"
#include "storage_live.h"
#include "vdi_target.h"

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

static const char *str_field(const DbRow *row, const char *field)
{
    return xv_str(db_get(row, field));
}

static const StorageLiveHooks *live_hooks;

void storage_set_live_hooks(const StorageLiveHooks *hooks) { live_hooks = hooks; }
const StorageLiveHooks *storage_live_hooks(void) { return live_hooks; }

/* ---- helpers ---------------------------------------------------------------- */

typedef int (*VdiWork)(Call *call, VdiTarget *t, const void *arg, Xv **result);

/* Locks op on the VDI, then runs work holding the SR's driver lock. */
static int run_vdi_operation(Call *call, const char *vdi_ref, const char *op, VdiWork work,
                             const void *arg, Xv **result)
{
    g_autofree char *op_task = call->task_ref ? g_strdup(call->task_ref) : db_new_ref();
    if (operations_begin(&vdi_operations, vdi_ref, op, op_task, &call->error) < 0)
        return -1;
    VdiTarget t = {0};
    int rc = vdi_target_read(vdi_ref, &t, &call->error);
    /* every operation but dropping the VDI reads its file: never through a
     * link planted in its place (destroy unlinks the link itself) nor a
     * backing file outside the SR */
    bool drops = strcmp(op, "destroy") == 0 || strcmp(op, "forget") == 0;
    if (rc == 0 && !drops)
        rc = sr_chain_check(t.dir, t.location, &call->error);
    if (rc == 0) {
        storage_lock_sr(t.sr);
        rc = work(call, &t, arg, result);
        storage_unlock_sr(t.sr);
    }
    operations_end(&vdi_operations, vdi_ref, op_task);
    vdi_target_clear(&t);
    return rc;
}

/* The SR's space fields after its files changed: statvfs first, then a
 * short transaction. */
static int refresh_sr(const char *sr_ref)
{
    g_autoptr(XapiError) err = NULL;
    SrSpace space;
    storage_sr_space_read(sr_ref, &space);
    if (db_write_begin(&err) < 0)
        return -1;
    DbRow *sr = db_lookup(cls("SR"), sr_ref);
    if (sr && storage_refresh_sr_space(sr, &space, &err) < 0) {
        db_write_abort();
        return -1;
    }
    return db_write_commit(&err);
}

/* ---- create ------------------------------------------------------------------- */

int xapi_VDI_create(Call *call, const Xv *args, Xv **result)
{
    if (db_write_begin(&call->error) < 0)
        return -1;
    DbRow *row = implicit_row_from_record(call, args);
    DbRow *sr = row ? db_lookup(cls("SR"), str_field(row, "SR")) : NULL;
    int64_t size = row ? db_get(row, "virtual_size")->i : 0;
    g_autofree char *sr_ref = sr ? g_strdup(sr->ref) : NULL;
    g_autofree char *dir = NULL;
    const SrDriver *driver = sr ? storage_driver(sr) : NULL;
    int64_t fs_size = 0, fs_used = 0;
    if (!row)
        goto fail;
    if (!sr) {
        xapi_error_set(&call->error, "HANDLE_INVALID", "SR", str_field(row, "SR"), NULL);
        goto fail;
    }
    if (sr_operations.check(sr, "vdi_create", &call->error) < 0 ||
        !(dir = storage_sr_dir(sr, &call->error)))
        goto fail;
    if (size < 0) {
        xapi_error_set(&call->error, "VDI_TOO_SMALL", "OpaqueRef:NULL", "0", NULL);
        goto fail;
    }
    db_write_abort();
    /* statvfs with no lock held: it may block */
    if (driver->stat(dir, &fs_size, &fs_used, &call->error) < 0) {
        db_row_free(row);
        return -1;
    }
    if (size > fs_size - fs_used) {
        char requested[32], maximum[32];
        g_snprintf(requested, sizeof requested, "%" G_GINT64_FORMAT, size);
        g_snprintf(maximum, sizeof maximum, "%" G_GINT64_FORMAT, fs_size - fs_used);
        db_row_free(row);
        return xapi_error_set(&call->error, "SR_FULL", requested, maximum, NULL);
    }

    storage_lock_sr(sr_ref);
    char *location = driver->vdi_create(dir, size, &call->error);
    int rc = -1;
    if (location) {
        VdiInfo info = {0};
        g_autoptr(XapiError) ignored = NULL;
        driver->vdi_info(dir, location, &info, &ignored);
        db_row_put(row, "location", xv_new_string(location));
        db_row_put(row, "physical_utilisation", xv_new_int(info.physical_utilisation));
        db_row_put(row, "managed", xv_new_bool(true));
        db_row_put(row, "missing", xv_new_bool(false));
        vdi_info_clear(&info);
        operations_refresh(row, NULL);
        if (db_write_begin(&call->error) == 0) {
            if (!db_lookup(cls("SR"), sr_ref)) {
                db_write_abort();
                xapi_error_set(&call->error, "HANDLE_INVALID", "SR", sr_ref, NULL);
            } else {
                char *ref = g_strdup(row->ref);
                if (storage_insert_vdi(g_steal_pointer(&row), &call->error) < 0) {
                    db_write_abort();
                    g_clear_pointer(&ref, g_free);
                } else if (db_write_commit(&call->error) < 0) {
                    g_clear_pointer(&ref, g_free);
                }
                if (ref) {
                    *result = xv_new_string_take(ref);
                    rc = 0;
                }
            }
        }
        if (rc < 0) {
            g_autoptr(XapiError) ignored2 = NULL;
            driver->vdi_delete(dir, location, &ignored2);
        }
        g_free(location);
    }
    storage_unlock_sr(sr_ref);
    if (row)
        db_row_free(row);
    if (rc == 0)
        refresh_sr(sr_ref);
    return rc;
fail:
    if (row)
        db_row_free(row);
    db_write_abort();
    return -1;
}

/* ---- destroy -------------------------------------------------------------------- */

static DbRow *vdi_by_uuid_in(const DbRow *sr, const char *uuid)
{
    DbRow *vdi = db_lookup_uuid(cls("VDI"), uuid);
    return vdi && strcmp(str_field(vdi, "SR"), sr->ref) == 0 ? vdi : NULL;
}

/* Deletes the VDI's record and non-attached VBDs, then the hidden bases
 * nothing is built on any more; returns their files' locations. */
/* Adds an image whose record goes to garbage, noted in the same
 * transaction so that a crash before its file is removed does not leave
 * an orphan. */
static int add_garbage(const DbRow *sr, const char *location, GPtrArray *garbage,
                       XapiError **err)
{
    g_autofree char *dir = sr ? storage_sr_dir(sr, NULL) : NULL;
    if (dir) {
        g_autofree char *path = g_build_filename(dir, location, NULL);
        if (pending_file_note(path, err) < 0)
            return -1;
    }
    g_ptr_array_add(garbage, g_strdup(location));
    return 0;
}

static int delete_vdi_records(const char *vdi_ref, GPtrArray *garbage, XapiError **err)
{
    DbRow *vdi = db_lookup(cls("VDI"), vdi_ref);
    if (!vdi)
        return xapi_error_set(err, "HANDLE_INVALID", "VDI", vdi_ref, NULL);
    DbRow *sr = db_lookup(cls("SR"), str_field(vdi, "SR"));
    g_autoptr(Xv) vbds = xv_dup(db_get(vdi, "VBDs"));
    for (guint i = 0; i < xv_len(vbds); i++) {
        DbRow *vbd = db_lookup(cls("VBD"), xv_str(xv_at(vbds, i)));
        if (vbd && !db_get(vbd, "currently_attached")->b && db_delete(vbd, err) < 0)
            return -1;
    }
    const Xv *parent = xv_struct_get(db_get(vdi, "sm_config"), "vhd-parent");
    g_autofree char *parent_uuid = parent ? g_strdup(xv_str(parent)) : NULL;
    if (add_garbage(sr, str_field(vdi, "location"), garbage, err) < 0 || db_delete(vdi, err) < 0)
        return -1;
    while (sr && parent_uuid) {
        DbRow *base = vdi_by_uuid_in(sr, parent_uuid);
        if (!base || db_get(base, "managed")->b || storage_vdi_has_children(sr, parent_uuid))
            break;
        const Xv *up = xv_struct_get(db_get(base, "sm_config"), "vhd-parent");
        g_free(parent_uuid);
        parent_uuid = up ? g_strdup(xv_str(up)) : NULL;
        if (add_garbage(sr, str_field(base, "location"), garbage, err) < 0 ||
            db_delete(base, err) < 0)
            return -1;
    }
    SrSpace unknown = {0}; /* the files go after the commit; refresh_sr follows */
    return sr ? storage_refresh_sr_space(sr, &unknown, err) : 0;
}

static int destroy_work(Call *call, VdiTarget *t, const void *arg, Xv **result)
{
    g_autoptr(GPtrArray) garbage = g_ptr_array_new_with_free_func(g_free);
    if (!t->driver->vdi_delete)
        return xapi_error_set(&call->error, "SR_OPERATION_NOT_SUPPORTED", t->sr, NULL);
    if (db_write_begin(&call->error) < 0)
        return -1;
    if (delete_vdi_records(t->ref, garbage, &call->error) < 0) {
        db_write_abort();
        return -1;
    }
    if (db_write_commit(&call->error) < 0)
        return -1;
    for (guint i = 0; i < garbage->len; i++) {
        g_autoptr(XapiError) why = NULL;
        if (t->driver->vdi_delete(t->dir, garbage->pdata[i], &why) < 0)
            g_warning("VDI %s: %s left behind: %s", t->uuid, (char *)garbage->pdata[i],
                      why->code);
    }
    refresh_sr(t->sr);
    return 0;
}

int xapi_VDI_destroy(Call *call, const char *self)
{
    return run_vdi_operation(call, self, "destroy", destroy_work, NULL, NULL);
}

static void copy_fields(DbRow *to, const DbRow *from, const char *const *fields)
{
    for (; *fields; fields++)
        db_row_put(to, *fields, xv_dup(db_get(from, *fields)));
}

/* ---- resize ------------------------------------------------------------------------ */

/* Records the VDI's new size: its file and the SR's file system are read
 * first, then one short transaction. */
static int set_sizes(const VdiTarget *t, int64_t size, XapiError **err)
{
    int64_t bytes = vdi_target_allocated(t, t->location);
    SrSpace space;
    storage_sr_space_read(t->sr, &space);
    if (db_write_begin(err) < 0)
        return -1;
    DbRow *vdi = db_lookup(cls("VDI"), t->ref);
    DbRow *sr = db_lookup(cls("SR"), t->sr);
    if (!vdi || db_set_by_name(vdi, "virtual_size", xv_new_int(size), err) < 0 ||
        db_set_by_name(vdi, "physical_utilisation", xv_new_int(bytes), err) < 0 ||
        (sr && storage_refresh_sr_space(sr, &space, err) < 0)) {
        db_write_abort();
        return vdi ? -1 : xapi_error_set(err, "HANDLE_INVALID", "VDI", t->ref, NULL);
    }
    return db_write_commit(err);
}

typedef struct {
    bool online;
    int64_t size;
} ResizeArgs;

static int resize_work(Call *call, VdiTarget *t, const void *arg, Xv **result)
{
    (void)result;
    const ResizeArgs *a = arg;
    int64_t size = a->size;
    if (size < t->virtual_size) {
        char minimum[32];
        g_snprintf(minimum, sizeof minimum, "%" G_GINT64_FORMAT, t->virtual_size);
        return xapi_error_set(&call->error, "VDI_TOO_SMALL", t->ref, minimum, NULL);
    }
    if (!t->driver->vdi_resize)
        return xapi_error_set(&call->error, "SR_OPERATION_NOT_SUPPORTED", t->sr, NULL);
    int live = 0;
    if (a->online && live_hooks &&
        (live = live_hooks->resize_attached(t->ref, size, &call->error)) < 0)
        return -1;
    if (!live && t->driver->vdi_resize(t->dir, t->location, size, &call->error) < 0)
        return -1;
    return set_sizes(t, size, &call->error);
}

int xapi_VDI_resize(Call *call, const char *vdi, int64_t size)
{
    ResizeArgs a = {false, size};
    return run_vdi_operation(call, vdi, "resize", resize_work, &a, NULL);
}

int xapi_VDI_resize_online(Call *call, const char *vdi, int64_t size)
{
    ResizeArgs a = {true, size};
    return run_vdi_operation(call, vdi, "resize_online", resize_work, &a, NULL);
}

/* ---- copy --------------------------------------------------------------------------- */

typedef struct {
    const char *sr;
    const char *into;
} CopyArgs;

/* Into an existing VDI (its size kept). */
static int copy_into(Call *call, VdiTarget *t, const char *src, const char *src_format,
                     const char *into, Xv **result)
{
    VdiTarget dst = {0};
    int rc = -1;
    if (vdi_target_read(into, &dst, &call->error) == 0) {
        g_autofree char *dst_path = sr_path(dst.dir, dst.location);
        const char *dst_format = g_str_has_suffix(dst.location, ".qcow2") ? "qcow2" : "raw";
        if (dst.virtual_size < t->virtual_size) {
            char minimum[32];
            g_snprintf(minimum, sizeof minimum, "%" G_GINT64_FORMAT, t->virtual_size);
            xapi_error_set(&call->error, "VDI_TOO_SMALL", dst.ref, minimum, NULL);
        } else if (qemu_img_convert_into(src, src_format, dst_path, dst_format,
                                         &call->error) == 0 &&
                   set_sizes(&dst, dst.virtual_size, &call->error) == 0) {
            *result = xv_new_string(dst.ref);
            rc = 0;
        }
    }
    vdi_target_clear(&dst);
    return rc;
}

/* Records a copy of t's VDI at location in sr_ref. */
static char *record_copy(Call *call, const VdiTarget *t, const char *sr_ref,
                         const char *location, const VdiInfo *info)
{
    SrSpace space;
    storage_sr_space_read(sr_ref, &space); /* before the write lock */
    if (db_write_begin(&call->error) < 0)
        return NULL;
    DbRow *vdi = db_lookup(cls("VDI"), t->ref);
    DbRow *sr = db_lookup(cls("SR"), sr_ref);
    if (!vdi || !sr) {
        db_write_abort();
        xapi_error_set(&call->error, "HANDLE_INVALID", vdi ? "SR" : "VDI", vdi ? sr_ref : t->ref,
                       NULL);
        return NULL;
    }
    DbRow *copy = storage_vdi_row(sr, location, info);
    static const char *const inherited[] = {"name_label", "name_description", "type", "sharable",
                                            "other_config", "xenstore_data", "tags", "on_boot",
                                            "allow_caching", NULL};
    copy_fields(copy, vdi, inherited);
    char *ref = g_strdup(copy->ref);
    if (storage_insert_vdi(copy, &call->error) < 0 ||
        storage_refresh_sr_space(sr, &space, &call->error) < 0) {
        db_write_abort();
        g_free(ref);
        return NULL;
    }
    if (db_write_commit(&call->error) < 0)
        g_clear_pointer(&ref, g_free);
    return ref;
}

/* A new stand-alone image in sr_ref with t's contents. */
static int copy_new(Call *call, VdiTarget *t, const char *src, const char *src_format,
                    const char *sr_ref, Xv **result)
{
    db_read_begin();
    DbRow *sr = db_lookup(cls("SR"), sr_ref);
    const SrDriver *driver = sr ? storage_driver(sr) : NULL;
    int ok = sr ? sr_operations.check(sr, "vdi_create", &call->error) : -1;
    g_autofree char *dir = ok == 0 ? storage_sr_dir(sr, &call->error) : NULL;
    db_read_end();
    if (!sr)
        return xapi_error_set(&call->error, "HANDLE_INVALID", "SR", sr_ref, NULL);
    if (!dir)
        return -1;
    if (!driver->vdi_import)
        return xapi_error_set(&call->error, "SR_OPERATION_NOT_SUPPORTED", sr_ref, NULL);
    bool same_sr = strcmp(sr_ref, t->sr) == 0;
    if (!same_sr)
        storage_lock_sr(sr_ref);
    int rc = -1;
    g_autofree char *location = driver->vdi_import(dir, src, src_format, &call->error);
    if (location) {
        VdiInfo info = {0};
        char *ref = NULL;
        if (driver->vdi_info(dir, location, &info, &call->error) == 0)
            ref = record_copy(call, t, sr_ref, location, &info);
        vdi_info_clear(&info);
        if (ref) {
            *result = xv_new_string_take(ref);
            rc = 0;
        } else {
            g_autoptr(XapiError) ignored = NULL;
            driver->vdi_delete(dir, location, &ignored);
        }
    }
    if (!same_sr)
        storage_unlock_sr(sr_ref);
    return rc;
}

static int copy_work(Call *call, VdiTarget *t, const void *arg, Xv **result)
{
    const CopyArgs *a = arg;
    g_autofree char *src = sr_path(t->dir, t->location);
    const char *src_format = g_str_has_suffix(t->location, ".qcow2") ? "qcow2" : "raw";
    if (a->into && *a->into && strcmp(a->into, "OpaqueRef:NULL") != 0)
        return copy_into(call, t, src, src_format, a->into, result);
    return copy_new(call, t, src, src_format, a->sr, result);
}

int xapi_VDI_copy(Call *call, const char *vdi, const char *sr, const char *base_vdi,
                  const char *into_vdi, Xv **result)
{
    (void)base_vdi; /* a full copy gives what a differential one onto base would */
    CopyArgs a = {sr, into_vdi};
    return run_vdi_operation(call, vdi, "copy", copy_work, &a, result);
}

/* ---- introduce, forget, update ----------------------------------------------------------- */

int xapi_VDI_introduce(Call *call, const char *uuid, const char *name_label,
                       const char *name_description, const char *SR, const char *type_,
                       bool sharable, bool read_only, const Xv *other_config,
                       const char *location, const Xv *xenstore_data, const Xv *sm_config,
                       bool managed, int64_t virtual_size, int64_t physical_utilisation,
                       const char *metadata_of_pool, bool is_a_snapshot, int64_t snapshot_time,
                       const char *snapshot_of, Xv **result)
{
    (void)virtual_size, (void)physical_utilisation, (void)metadata_of_pool;
    db_read_begin();
    DbRow *sr = db_lookup(cls("SR"), SR);
    const SrDriver *driver = sr ? storage_driver(sr) : NULL;
    int ok = sr ? sr_operations.check(sr, "vdi_introduce", &call->error) : -1;
    g_autofree char *dir = ok == 0 ? storage_sr_dir(sr, &call->error) : NULL;
    bool taken = *uuid && db_lookup_uuid(cls("VDI"), uuid) != NULL;
    db_read_end();
    if (!sr)
        return xapi_error_set(&call->error, "HANDLE_INVALID", "SR", SR, NULL);
    if (!dir)
        return -1;
    if (taken)
        return xapi_error_set(&call->error, "DB_UNIQUENESS_CONSTRAINT_VIOLATION", "VDI", "uuid",
                              uuid, NULL);
    if (!*location || strchr(location, '/') || location[0] == '.')
        return xapi_error_set(&call->error, "VDI_LOCATION_MISSING", SR, location, NULL);
    VdiInfo info = {0};
    g_autoptr(XapiError) missing = NULL;
    if (driver->vdi_info(dir, location, &info, &missing) < 0)
        return xapi_error_set(&call->error, "VDI_LOCATION_MISSING", SR, location, NULL);
    int rc = -1;
    if (db_write_begin(&call->error) == 0) {
        sr = db_lookup(cls("SR"), SR);
        DbRow *vdi = sr ? storage_vdi_row(sr, location, &info) : NULL;
        if (!vdi) {
            db_write_abort();
            xapi_error_set(&call->error, "HANDLE_INVALID", "SR", SR, NULL);
        } else {
            if (*uuid)
                db_row_put(vdi, "uuid", xv_new_string(uuid));
            db_row_put(vdi, "name_label", xv_new_string(name_label));
            db_row_put(vdi, "name_description", xv_new_string(name_description));
            db_row_put(vdi, "type", xv_new_static_string(
                                        dm_enum_value(dm_field_by_name(cls("VDI"), "type")
                                                          ->type->enumeration, type_)
                                            ?: "user"));
            db_row_put(vdi, "sharable", xv_new_bool(sharable));
            db_row_put(vdi, "read_only", xv_new_bool(read_only || info.read_only));
            db_row_put(vdi, "other_config", xv_dup(other_config));
            db_row_put(vdi, "xenstore_data", xv_dup(xenstore_data));
            db_row_put(vdi, "sm_config", xv_dup(sm_config));
            db_row_put(vdi, "managed", xv_new_bool(managed));
            db_row_put(vdi, "is_a_snapshot", xv_new_bool(is_a_snapshot));
            if (is_a_snapshot) {
                db_row_put(vdi, "snapshot_time", xv_new_datetime(snapshot_time));
                db_row_put(vdi, "snapshot_of", xv_new_string(snapshot_of));
            }
            storage_set_vdi_parent(vdi, sr, info.parent);
            operations_refresh(vdi, NULL);
            char *ref = db_insert_and_commit(vdi, &call->error);
            if (ref) {
                *result = xv_new_string_take(ref);
                rc = 0;
            }
        }
    }
    vdi_info_clear(&info);
    return rc;
}

static int forget_work(Call *call, VdiTarget *t, const void *arg, Xv **result)
{
    (void)arg, (void)result;
    if (db_write_begin(&call->error) < 0)
        return -1;
    DbRow *vdi = db_lookup(cls("VDI"), t->ref);
    if (!vdi || db_delete(vdi, &call->error) < 0) {
        db_write_abort();
        return vdi ? -1 : xapi_error_set(&call->error, "HANDLE_INVALID", "VDI", t->ref, NULL);
    }
    return db_write_commit(&call->error);
}

int xapi_VDI_forget(Call *call, const char *vdi)
{
    return run_vdi_operation(call, vdi, "forget", forget_work, NULL, NULL);
}

static int update_work(Call *call, VdiTarget *t, const void *arg, Xv **result)
{
    (void)arg, (void)result;
    VdiInfo info = {0};
    if (t->driver->vdi_info(t->dir, t->location, &info, &call->error) < 0)
        return -1;
    int rc = set_sizes(t, info.virtual_size, &call->error);
    vdi_info_clear(&info);
    return rc;
}

int xapi_VDI_update(Call *call, const char *vdi)
{
    return run_vdi_operation(call, vdi, "update", update_work, NULL, NULL);
}

/* ---- explicit setters (XAPI tells the SM; the file driver keeps nothing) ---------------- */

int xapi_VDI_set_name_label(Call *call, const char *self, const char *value)
{
    return db_update("VDI", self, "name_label", xv_new_string(value), &call->error);
}

int xapi_VDI_set_name_description(Call *call, const char *self, const char *value)
{
    return db_update("VDI", self, "name_description", xv_new_string(value), &call->error);
}

int xapi_VDI_set_read_only(Call *call, const char *self, bool value)
{
    return db_update("VDI", self, "read_only", xv_new_bool(value), &call->error);
}

int xapi_VDI_set_sharable(Call *call, const char *self, bool value)
{
    return db_update("VDI", self, "sharable", xv_new_bool(value), &call->error);
}

int xapi_VDI_set_allow_caching(Call *call, const char *self, bool value)
{
    return db_update("VDI", self, "allow_caching", xv_new_bool(value), &call->error);
}
