/* sr_api.c: SR.create, introduce, forget, destroy, scan, update, probe,
 * get_supported_types and setters; PBD.create, plug, unplug, destroy. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "bootstrap.h"
#include "dm_handlers.h"
#include "implicit.h"
#include "shared_srs.h"
#include "sr_roots.h"
#include "storage_operations.h"

#define SR_MARKER ".xapid-sr"

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

static const char *str_field(const DbRow *row, const char *field)
{
    return xv_str(db_get(row, field));
}

static const char *location_of(const Xv *device_config)
{
    const Xv *v = xv_struct_get(device_config, "location");
    return v && *xv_str(v) ? xv_str(v) : NULL;
}

static int location_required(Call *call)
{
    return xapi_error_set(&call->error, "SR_BACKEND_FAILURE", "22", "",
                          "device_config:location (a directory) is required", NULL);
}

/* A plain SR row (SR.introduce and SR.create). Write lock held. */
static DbRow *new_sr_row(const char *uuid, const char *name_label, const char *name_description,
                         const SrDriver *driver, const char *type, const char *content_type,
                         bool shared, const Xv *sm_config)
{
    DbRow *sr = db_row_new(cls("SR"));
    if (uuid && *uuid)
        db_row_put(sr, "uuid", xv_new_string(uuid));
    db_row_put(sr, "name_label", xv_new_string(name_label));
    db_row_put(sr, "name_description", xv_new_string(name_description));
    db_row_put(sr, "type", xv_new_string(type));
    db_row_put(sr, "content_type", xv_new_string(*content_type || !driver
                                                     ? content_type
                                                     : driver->content_type));
    db_row_put(sr, "shared", xv_new_bool(shared));
    db_row_put(sr, "sm_config", xv_dup(sm_config));
    return sr;
}

/* What SR.create and SR.probe check first: this host, a known driver, a
 * device_config:location. */
static int check_request(Call *call, const char *host, const char *type,
                         const Xv *device_config, const SrDriver **driver, const char **dir)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    *driver = sr_driver_for(type);
    if (!*driver)
        return xapi_error_set(&call->error, "SR_UNKNOWN_DRIVER", type, NULL);
    *dir = location_of(device_config);
    return *dir ? 0 : location_required(call);
}

int xapi_SR_create(Call *call, const char *host, const Xv *device_config, int64_t physical_size,
                   const char *name_label, const char *name_description, const char *type_,
                   const char *content_type, bool shared, const Xv *sm_config, Xv **result)
{
    (void)physical_size;
    const SrDriver *driver;
    const char *dir;
    if (check_request(call, host, type_, device_config, &driver, &dir) < 0)
        return -1;
    if (!g_path_is_absolute(dir)) /* not from xapid's working directory */
        return xapi_error_set(&call->error, "INVALID_VALUE", "device_config:location", dir,
                              NULL);
    if (sr_roots_check(dir, &call->error) < 0 || driver->create(dir, &call->error) < 0)
        return -1;
    if (db_write_begin(&call->error) < 0)
        return -1;
    DbRow *sr = new_sr_row(NULL, name_label, name_description, driver, type_, content_type,
                           shared, sm_config);
    g_autofree char *sr_ref = g_strdup(sr->ref);
    g_autofree char *sr_uuid = g_strdup(xv_str(db_get(sr, "uuid")));
    DbRow *pbd = db_row_new(cls("PBD"));
    db_row_put(pbd, "host", xv_new_string(host));
    db_row_put(pbd, "SR", xv_new_string(sr_ref));
    db_row_put(pbd, "device_config", xv_dup(device_config));
    db_row_put(pbd, "currently_attached", xv_new_bool(true));
    operations_refresh(sr, NULL);
    if (db_insert(sr, &call->error) < 0) {
        db_row_free(pbd);
        db_write_abort();
        return -1;
    }
    g_autoptr(GPtrArray) other_pbds = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) other_hosts = g_ptr_array_new_with_free_func(g_free);
    if (db_insert(pbd, &call->error) < 0 ||
        (shared && shared_srs_add_pbds(sr_ref, host, device_config, other_pbds, other_hosts,
                                       &call->error) < 0)) {
        db_write_abort();
        return -1;
    }
    if (db_write_commit(&call->error) < 0)
        return -1;
    if (strcmp(driver->type, "file") == 0) {
        g_autofree char *marker = g_build_filename(dir, SR_MARKER, NULL);
        g_autofree char *text = g_strdup_printf("file %s\n", sr_uuid);
        g_file_set_contents(marker, text, -1, NULL);
    }
    storage_lock_sr(sr_ref);
    int rc = storage_scan(sr_ref, &call->error);
    storage_unlock_sr(sr_ref);
    if (rc < 0)
        return -1;
    shared_srs_plug(other_pbds, other_hosts); /* the other hosts find the scan's VDIs */
    *result = xv_new_string(sr_ref);
    return 0;
}

int xapi_SR_introduce(Call *call, const char *uuid, const char *name_label,
                      const char *name_description, const char *type_, const char *content_type,
                      bool shared, const Xv *sm_config, Xv **result)
{
    if (db_write_begin(&call->error) < 0)
        return -1;
    if (*uuid && db_lookup_uuid(cls("SR"), uuid)) {
        db_write_abort();
        return xapi_error_set(&call->error, "SR_UUID_EXISTS", uuid, NULL);
    }
    DbRow *sr = new_sr_row(uuid, name_label, name_description, sr_driver_for(type_), type_,
                           content_type, shared, sm_config);
    operations_refresh(sr, NULL);
    char *ref = db_insert_and_commit(sr, &call->error);
    if (!ref)
        return -1;
    *result = xv_new_string_take(ref);
    return 0;
}

/* ---- SR operations ------------------------------------------------------------- */

typedef int (*SrWork)(Call *call, const char *sr_ref);

static int run_sr_operation(Call *call, const char *sr_ref, const char *op, SrWork work)
{
    g_autofree char *op_task = call->task_ref ? g_strdup(call->task_ref) : db_new_ref();
    if (operations_begin(&sr_operations, sr_ref, op, op_task, &call->error) < 0)
        return -1;
    storage_lock_sr(sr_ref);
    int rc = work(call, sr_ref);
    storage_unlock_sr(sr_ref);
    operations_end(&sr_operations, sr_ref, op_task);
    return rc;
}

/* Removes the SR's records: its PBDs, its VDIs (VBDs using them become
 * empty), the SR. */
static int forget_records(Call *call, const char *sr_ref)
{
    DbRow *sr = db_write_begin_on("SR", sr_ref, &call->error);
    if (!sr)
        return -1;
    g_autoptr(Xv) pbds = xv_dup(db_get(sr, "PBDs"));
    g_autoptr(Xv) vdis = xv_dup(db_get(sr, "VDIs"));
    for (guint i = 0; i < xv_len(pbds); i++) {
        DbRow *pbd = db_lookup(cls("PBD"), xv_str(xv_at(pbds, i)));
        if (pbd && db_delete(pbd, &call->error) < 0)
            goto fail;
    }
    for (guint i = 0; i < xv_len(vdis); i++) {
        DbRow *vdi = db_lookup(cls("VDI"), xv_str(xv_at(vdis, i)));
        if (!vdi)
            continue;
        g_autoptr(Xv) vbds = xv_dup(db_get(vdi, "VBDs"));
        for (guint j = 0; j < xv_len(vbds); j++) {
            DbRow *vbd = db_lookup(cls("VBD"), xv_str(xv_at(vbds, j)));
            if (vbd && (db_set_by_name(vbd, "VDI", xv_new_string("OpaqueRef:NULL"),
                                       &call->error) < 0 ||
                        db_set_by_name(vbd, "empty", xv_new_bool(true), &call->error) < 0))
                goto fail;
        }
        if (db_delete(vdi, &call->error) < 0)
            goto fail;
    }
    if (db_delete(sr, &call->error) < 0)
        goto fail;
    return db_write_commit(&call->error);
fail:
    db_write_abort();
    return -1;
}

static int forget_work(Call *call, const char *sr_ref) { return forget_records(call, sr_ref); }

int xapi_SR_forget(Call *call, const char *sr)
{
    return run_sr_operation(call, sr, "forget", forget_work);
}

/* Deletes the SR's own files (those of its VDI records, the hidden bases
 * left: managed VDIs are gone already; anything else in the directory is
 * not the SR's and stays), then forgets it. */
static int destroy_work(Call *call, const char *sr_ref)
{
    g_autoptr(GPtrArray) owned = g_ptr_array_new_with_free_func(g_free);
    db_read_begin();
    DbRow *sr = db_lookup(cls("SR"), sr_ref);
    DbRow *pbd = sr ? storage_host_pbd(sr) : NULL;
    const SrDriver *driver = sr ? storage_driver(sr) : NULL;
    g_autofree char *dir = pbd ? g_strdup(location_of(db_get(pbd, "device_config"))) : NULL;
    const Xv *vdis = sr ? db_get(sr, "VDIs") : NULL;
    for (guint i = 0; i < xv_len(vdis); i++) {
        DbRow *vdi = db_lookup(cls("VDI"), xv_str(xv_at(vdis, i)));
        if (vdi)
            g_ptr_array_add(owned, g_strdup(str_field(vdi, "location")));
    }
    db_read_end();
    if (!sr)
        return xapi_error_set(&call->error, "HANDLE_INVALID", "SR", sr_ref, NULL);
    if (!pbd)
        return xapi_error_set(&call->error, "SR_HAS_NO_PBDS", sr_ref, NULL);
    if (dir && sr_roots_check(dir, &call->error) < 0)
        return -1;
    if (driver && dir && driver->vdi_delete) {
        for (guint i = 0; i < owned->len; i++)
            if (driver->vdi_delete(dir, owned->pdata[i], &call->error) < 0)
                return -1;
        g_autofree char *marker = g_build_filename(dir, SR_MARKER, NULL);
        unlink(marker);
        if (rmdir(dir) < 0 && errno != ENOENT)
            g_message("SR %s: %s kept: %s", sr_ref, dir, g_strerror(errno));
    }
    return forget_records(call, sr_ref);
}

int xapi_SR_destroy(Call *call, const char *sr)
{
    return run_sr_operation(call, sr, "destroy", destroy_work);
}

static int scan_work(Call *call, const char *sr_ref) { return storage_scan(sr_ref, &call->error); }

int xapi_SR_scan(Call *call, const char *sr) { return run_sr_operation(call, sr, "scan", scan_work); }

static int update_work(Call *call, const char *sr_ref)
{
    SrSpace space;
    storage_sr_space_read(sr_ref, &space); /* before the write lock: statvfs may block */
    DbRow *sr = db_write_begin_on("SR", sr_ref, &call->error);
    if (!sr)
        return -1;
    g_autofree char *dir = storage_sr_dir(sr, &call->error);
    if (!dir || storage_refresh_sr_space(sr, &space, &call->error) < 0) {
        db_write_abort();
        return -1;
    }
    return db_write_commit(&call->error);
}

int xapi_SR_update(Call *call, const char *sr)
{
    return run_sr_operation(call, sr, "update", update_work);
}

int xapi_SR_probe(Call *call, const char *host, const Xv *device_config, const char *type_,
                  const Xv *sm_config, Xv **result)
{
    (void)sm_config;
    const SrDriver *driver;
    const char *dir;
    if (check_request(call, host, type_, device_config, &driver, &dir) < 0 ||
        sr_roots_check(dir, &call->error) < 0)
        return -1;
    GString *xml = g_string_new("<?xml version=\"1.0\" ?>\n<SRlist>\n");
    g_autofree char *marker = g_build_filename(dir, SR_MARKER, NULL);
    g_autofree char *text = NULL;
    if (g_file_get_contents(marker, &text, NULL, NULL)) {
        g_auto(GStrv) words = g_strsplit_set(g_strstrip(text), " ", 2);
        if (words[0] && words[1] && strcmp(words[0], driver->type) == 0)
            g_string_append_printf(xml, "\t<SR>\n\t\t<UUID>%s</UUID>\n\t</SR>\n", words[1]);
    }
    g_string_append(xml, "</SRlist>\n");
    *result = xv_new_string_take(g_string_free(xml, FALSE));
    return 0;
}

int xapi_SR_get_supported_types(Call *call, Xv **result)
{
    (void)call;
    *result = xv_new_array();
    xv_array_append_string(*result, sr_file_driver.type);
    xv_array_append_string(*result, sr_iso_driver.type);
    return 0;
}

int xapi_SR_set_name_label(Call *call, const char *sr, const char *value)
{
    return db_update("SR", sr, "name_label", xv_new_string(value), &call->error);
}

int xapi_SR_set_name_description(Call *call, const char *sr, const char *value)
{
    return db_update("SR", sr, "name_description", xv_new_string(value), &call->error);
}

int xapi_SR_set_shared(Call *call, const char *sr, bool value)
{
    return db_update("SR", sr, "shared", xv_new_bool(value), &call->error);
}

int xapi_SR_set_physical_size(Call *call, const char *self, int64_t value)
{
    return db_update("SR", self, "physical_size", xv_new_int(value), &call->error);
}

/* ---- PBDs --------------------------------------------------------------------------- */

int xapi_PBD_create(Call *call, const Xv *args, Xv **result)
{
    if (db_write_begin(&call->error) < 0)
        return -1;
    DbRow *pbd = implicit_row_from_record(call, args);
    if (!pbd) {
        db_write_abort();
        return -1;
    }
    DbRow *sr = db_lookup(cls("SR"), str_field(pbd, "SR"));
    if (!sr) {
        xapi_error_set(&call->error, "HANDLE_INVALID", "SR", str_field(pbd, "SR"), NULL);
        goto fail;
    }
    if (!db_lookup(cls("host"), str_field(pbd, "host"))) {
        xapi_error_set(&call->error, "HANDLE_INVALID", "host", str_field(pbd, "host"), NULL);
        goto fail;
    }
    const Xv *pbds = db_get(sr, "PBDs");
    for (guint i = 0; i < xv_len(pbds); i++) {
        DbRow *other = db_lookup(cls("PBD"), xv_str(xv_at(pbds, i)));
        if (other && strcmp(str_field(other, "host"), str_field(pbd, "host")) == 0) {
            xapi_error_set(&call->error, "PBD_EXISTS", sr->ref, str_field(pbd, "host"),
                           other->ref, NULL);
            goto fail;
        }
    }
    db_row_put(pbd, "currently_attached", xv_new_bool(false));
    char *ref = db_insert_and_commit(pbd, &call->error);
    if (!ref)
        return -1;
    *result = xv_new_string_take(ref);
    return 0;
fail:
    db_row_free(pbd);
    db_write_abort();
    return -1;
}

/* The PBD's SR, checked to be of this host. */
static char *pbd_sr(Call *call, const char *pbd_ref, char **dir, bool *attached)
{
    db_read_begin();
    DbRow *pbd = db_lookup(cls("PBD"), pbd_ref);
    g_autofree char *this_host = bootstrap_this_host();
    char *sr = NULL;
    if (!pbd) {
        xapi_error_set(&call->error, "HANDLE_INVALID", "PBD", pbd_ref, NULL);
    } else if (strcmp(str_field(pbd, "host"), this_host) != 0) {
        xapi_error_set(&call->error, "HOST_OFFLINE", str_field(pbd, "host"), NULL);
    } else {
        sr = g_strdup(str_field(pbd, "SR"));
        *dir = g_strdup(location_of(db_get(pbd, "device_config")));
        *attached = db_get(pbd, "currently_attached")->b;
    }
    db_read_end();
    return sr;
}

static int set_attached(Call *call, const char *pbd_ref, bool attached)
{
    if (db_write_begin(&call->error) < 0)
        return -1;
    DbRow *pbd = db_lookup(cls("PBD"), pbd_ref);
    if (!pbd || db_set_by_name(pbd, "currently_attached", xv_new_bool(attached),
                               &call->error) < 0) {
        db_write_abort();
        return pbd ? -1 : xapi_error_set(&call->error, "HANDLE_INVALID", "PBD", pbd_ref, NULL);
    }
    DbRow *sr = db_lookup(cls("SR"), str_field(pbd, "SR"));
    if (sr)
        operations_refresh(sr, NULL);
    return db_write_commit(&call->error);
}

int xapi_PBD_plug(Call *call, const char *self)
{
    g_autofree char *dir = NULL;
    bool attached = false;
    g_autofree char *sr_ref = pbd_sr(call, self, &dir, &attached);
    if (!sr_ref)
        return -1;
    if (attached)
        return 0;
    g_autofree char *op_task = call->task_ref ? g_strdup(call->task_ref) : db_new_ref();
    if (operations_begin(&sr_operations, sr_ref, "plug", op_task, &call->error) < 0)
        return -1;
    db_read_begin();
    DbRow *sr = db_lookup(cls("SR"), sr_ref);
    const SrDriver *driver = sr ? storage_driver(sr) : NULL;
    bool scan = sr && !shared_srs_scanned_elsewhere(sr);
    db_read_end();
    int rc = -1;
    if (!driver)
        xapi_error_set(&call->error, "SR_UNKNOWN_DRIVER", "", NULL);
    else if (!dir)
        location_required(call);
    else if (sr_roots_check(dir, &call->error) == 0 && driver->attach(dir, &call->error) == 0 &&
             set_attached(call, self, true) == 0) {
        rc = 0;
        if (scan) {
            storage_lock_sr(sr_ref);
            rc = storage_scan(sr_ref, &call->error);
            storage_unlock_sr(sr_ref);
        }
    }
    operations_end(&sr_operations, sr_ref, op_task);
    return rc;
}

/* A VDI of the SR in use by a running VM, or NULL. Lock held. */
static const char *vdi_in_use(const DbRow *sr)
{
    const Xv *vdis = db_get(sr, "VDIs");
    for (guint i = 0; i < xv_len(vdis); i++) {
        DbRow *vdi = db_lookup(cls("VDI"), xv_str(xv_at(vdis, i)));
        const Xv *vbds = vdi ? db_get(vdi, "VBDs") : NULL;
        for (guint j = 0; j < xv_len(vbds); j++) {
            DbRow *vbd = db_lookup(cls("VBD"), xv_str(xv_at(vbds, j)));
            if (vbd && db_get(vbd, "currently_attached")->b)
                return vdi->ref;
        }
    }
    return NULL;
}

int xapi_PBD_unplug(Call *call, const char *self)
{
    g_autofree char *dir = NULL;
    bool attached = false;
    g_autofree char *sr_ref = pbd_sr(call, self, &dir, &attached);
    if (!sr_ref)
        return -1;
    if (!attached)
        return 0;
    g_autofree char *op_task = call->task_ref ? g_strdup(call->task_ref) : db_new_ref();
    if (operations_begin(&sr_operations, sr_ref, "unplug", op_task, &call->error) < 0)
        return -1;
    db_read_begin();
    DbRow *sr = db_lookup(cls("SR"), sr_ref);
    g_autofree char *busy = sr && vdi_in_use(sr) ? g_strdup(vdi_in_use(sr)) : NULL;
    db_read_end();
    int rc = busy ? xapi_error_set(&call->error, "VDI_IN_USE", busy, "unplug", NULL)
                  : set_attached(call, self, false);
    operations_end(&sr_operations, sr_ref, op_task);
    return rc;
}

int xapi_PBD_destroy(Call *call, const char *self)
{
    DbRow *pbd = db_write_begin_on("PBD", self, &call->error);
    if (!pbd)
        return -1;
    if (db_get(pbd, "currently_attached")->b) {
        db_write_abort();
        return xapi_error_set(&call->error, "OPERATION_NOT_ALLOWED",
                              "PBD is currently attached", NULL);
    }
    if (db_delete(pbd, &call->error) < 0) {
        db_write_abort();
        return -1;
    }
    return db_write_commit(&call->error);
}
