/* storage.c: SR directories, SM records, scans. */
#include "storage.h"

#include "pending_files.h"
#include "shared_srs.h"

#include <string.h>

#include "bootstrap.h"
#include "sr_roots.h"
#include "storage_operations.h"
#include "wire_text.h"

static struct {
    GMutex mutex;           /* guards sr_locks */
    GHashTable *sr_locks;   /* sr ref -> GMutex* */
} storage;

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

static const char *str_field(const DbRow *row, const char *field)
{
    return xv_str(db_get(row, field));
}

/* ---- lookups (lock held) ------------------------------------------------ */

const SrDriver *storage_driver(const DbRow *sr) { return sr_driver_for(str_field(sr, "type")); }

DbRow *storage_host_pbd(const DbRow *sr)
{
    g_autofree char *host = bootstrap_this_host();
    const Xv *pbds = db_get(sr, "PBDs");
    for (guint i = 0; i < xv_len(pbds); i++) {
        DbRow *pbd = db_lookup(cls("PBD"), xv_str(xv_at(pbds, i)));
        if (pbd && strcmp(str_field(pbd, "host"), host) == 0)
            return pbd;
    }
    return NULL;
}

char *storage_sr_dir(const DbRow *sr, XapiError **err)
{
    DbRow *pbd = storage_host_pbd(sr);
    if (!pbd) {
        xapi_error_set(err, "SR_HAS_NO_PBDS", sr->ref, NULL);
        return NULL;
    }
    if (!db_get(pbd, "currently_attached")->b) {
        xapi_error_set(err, "SR_NOT_ATTACHED", sr->ref, NULL);
        return NULL;
    }
    const Xv *location = xv_struct_get(db_get(pbd, "device_config"), "location");
    if (!location || !*xv_str(location)) {
        xapi_error_set(err, "SR_NOT_ATTACHED", sr->ref, NULL);
        return NULL;
    }
    return g_strdup(xv_str(location));
}

char *storage_vdi_path(const DbRow *vdi, XapiError **err)
{
    DbRow *sr = db_lookup(cls("SR"), str_field(vdi, "SR"));
    if (!sr) {
        xapi_error_set(err, "VDI_NOT_AVAILABLE", vdi->ref, NULL);
        return NULL;
    }
    g_autofree char *dir = storage_sr_dir(sr, err);
    return dir ? sr_path(dir, str_field(vdi, "location")) : NULL;
}

int storage_vdi_check_file(const DbRow *vdi, XapiError **err)
{
    DbRow *sr = db_lookup(cls("SR"), str_field(vdi, "SR"));
    if (!sr)
        return xapi_error_set(err, "VDI_NOT_AVAILABLE", vdi->ref, NULL);
    g_autofree char *dir = storage_sr_dir(sr, err);
    return dir ? sr_file_check(dir, str_field(vdi, "location"), err) : -1;
}

const char *storage_vdi_format(const DbRow *vdi)
{
    return g_str_has_suffix(str_field(vdi, "location"), ".qcow2") ? "qcow2" : "raw";
}

/* ---- per-SR driver lock -------------------------------------------------- */

static GMutex *sr_lock(const char *sr_ref)
{
    g_mutex_lock(&storage.mutex);
    GMutex *m = g_hash_table_lookup(storage.sr_locks, sr_ref);
    if (!m) {
        m = g_new0(GMutex, 1);
        g_mutex_init(m);
        g_hash_table_insert(storage.sr_locks, g_strdup(sr_ref), m);
    }
    g_mutex_unlock(&storage.mutex);
    return m;
}

void storage_lock_sr(const char *sr_ref) { g_mutex_lock(sr_lock(sr_ref)); }
void storage_unlock_sr(const char *sr_ref) { g_mutex_unlock(sr_lock(sr_ref)); }

/* ---- VDI rows -------------------------------------------------------------- */

static DbRow *vdi_at_location(const DbRow *sr, const char *location)
{
    const Xv *vdis = db_get(sr, "VDIs");
    for (guint i = 0; i < xv_len(vdis); i++) {
        DbRow *vdi = db_lookup(cls("VDI"), xv_str(xv_at(vdis, i)));
        if (vdi && strcmp(str_field(vdi, "location"), location) == 0)
            return vdi;
    }
    return NULL;
}

DbRow *storage_vdi_row(const DbRow *sr, const char *location, const VdiInfo *info)
{
    DbRow *vdi = db_row_new(cls("VDI"));
    db_row_put(vdi, "SR", xv_new_string(sr->ref));
    db_row_put(vdi, "location", xv_new_string(location));
    db_row_put(vdi, "virtual_size", xv_new_int(info->virtual_size));
    db_row_put(vdi, "physical_utilisation", xv_new_int(info->physical_utilisation));
    db_row_put(vdi, "type", xv_new_static_string("user"));
    db_row_put(vdi, "managed", xv_new_bool(true));
    db_row_put(vdi, "read_only", xv_new_bool(info->read_only));
    return vdi;
}

int storage_insert_vdi(DbRow *vdi, XapiError **err)
{
    operations_refresh(vdi, NULL);
    /* The file is recorded from now on: its creation note goes with this
     * transaction (the note only matters for files no VDI names). */
    g_autofree char *path = storage_vdi_path(vdi, NULL);
    if (path)
        pending_file_done(path);
    return db_insert(vdi, err);
}

void storage_set_vdi_parent(DbRow *vdi, const DbRow *sr, const char *parent_location)
{
    const DbRow *parent = parent_location ? vdi_at_location(sr, parent_location) : NULL;
    const Xv *current = xv_struct_get(db_get(vdi, "sm_config"), "vhd-parent");
    const char *want = parent ? str_field(parent, "uuid") : NULL;
    if ((!current && !want) || (current && want && strcmp(xv_str(current), want) == 0))
        return;
    Xv *sm_config = xv_dup(db_get(vdi, "sm_config"));
    if (want)
        xv_struct_set_string(sm_config, "vhd-parent", want);
    else
        xv_struct_remove(sm_config, "vhd-parent");
    if (db_lookup(vdi->cls, vdi->ref) == vdi)
        db_set_by_name(vdi, "sm_config", sm_config, NULL);
    else
        db_row_put(vdi, "sm_config", sm_config);
}

bool storage_vdi_has_children(const DbRow *sr, const char *uuid)
{
    const Xv *vdis = db_get(sr, "VDIs");
    for (guint i = 0; i < xv_len(vdis); i++) {
        DbRow *vdi = db_lookup(cls("VDI"), xv_str(xv_at(vdis, i)));
        const Xv *parent = vdi ? xv_struct_get(db_get(vdi, "sm_config"), "vhd-parent") : NULL;
        if (parent && strcmp(xv_str(parent), uuid) == 0)
            return true;
    }
    return false;
}

/* ---- SR space ---------------------------------------------------------------- */

static void read_space(const SrDriver *driver, const char *dir, SrSpace *out)
{
    g_autoptr(XapiError) ignored = NULL;
    *out = (SrSpace){0};
    out->known = driver && dir && driver->stat(dir, &out->size, &out->used, &ignored) == 0;
}

void storage_sr_space_read(const char *sr_ref, SrSpace *out)
{
    db_read_begin();
    DbRow *sr = db_lookup(cls("SR"), sr_ref);
    const SrDriver *driver = sr ? storage_driver(sr) : NULL;
    g_autofree char *dir = sr ? storage_sr_dir(sr, NULL) : NULL;
    db_read_end();
    read_space(driver, dir, out);
}

int storage_refresh_sr_space(DbRow *sr, const SrSpace *space, XapiError **err)
{
    int64_t allocated = 0;
    const Xv *vdis = db_get(sr, "VDIs");
    for (guint i = 0; i < xv_len(vdis); i++) {
        DbRow *vdi = db_lookup(cls("VDI"), xv_str(xv_at(vdis, i)));
        if (vdi && db_get(vdi, "managed")->b)
            allocated += db_get(vdi, "virtual_size")->i;
    }
    struct { const char *field; int64_t value; bool known; } updates[] = {
        {"physical_size", space->size, space->known},
        {"physical_utilisation", space->used, space->known},
        {"virtual_allocation", allocated, true}};
    for (size_t i = 0; i < G_N_ELEMENTS(updates); i++)
        if (updates[i].known && db_get(sr, updates[i].field)->i != updates[i].value &&
            db_set_by_name(sr, updates[i].field, xv_new_int(updates[i].value), err) < 0)
            return -1;
    return 0;
}

/* ---- scan ------------------------------------------------------------------- */

typedef struct {
    char *location;
    VdiInfo info;
    bool is_parent; /* another image is built on it */
} ScannedImage;

static void scanned_free(gpointer p)
{
    ScannedImage *s = p;
    g_free(s->location);
    vdi_info_clear(&s->info);
    g_free(s);
}

/* The images in dir with their headers (no lock held: qemu-img runs);
 * the names of those whose header does not read go to unreadable. */
static GHashTable *read_images(const SrDriver *driver, const char *dir, GHashTable *unreadable,
                               XapiError **err)
{
    g_autoptr(GPtrArray) names = driver->list(dir, err);
    if (!names)
        return NULL;
    GHashTable *images = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, scanned_free);
    for (guint i = 0; i < names->len; i++) {
        ScannedImage *s = g_new0(ScannedImage, 1);
        s->location = g_strdup(names->pdata[i]);
        g_autoptr(XapiError) why = NULL;
        if (driver->vdi_info(dir, s->location, &s->info, &why) < 0) {
            /* An image being written or damaged is not a new VDI (yet),
             * nor a reason to forget a known one. */
            g_message("scan %s: %s unreadable: %s %s", dir, s->location, why->code,
                      why->params->len > 2 ? (char *)why->params->pdata[2] : "");
            g_hash_table_add(unreadable, g_strdup(s->location));
            scanned_free(s);
            continue;
        }
        g_hash_table_insert(images, s->location, s);
    }
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, images);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        ScannedImage *s = value;
        ScannedImage *parent = s->info.parent ? g_hash_table_lookup(images, s->info.parent) : NULL;
        if (parent)
            parent->is_parent = true;
    }
    return images;
}

static bool any_vbd_in_use(const DbRow *vdi)
{
    const Xv *vbds = db_get(vdi, "VBDs");
    for (guint i = 0; i < xv_len(vbds); i++) {
        DbRow *vbd = db_lookup(cls("VBD"), xv_str(xv_at(vbds, i)));
        /* one being attached (VM.start in flight) counts */
        if (vbd && (db_get(vbd, "currently_attached")->b ||
                    xv_len(db_get(vbd, "current_operations"))))
            return true;
    }
    return false;
}

static int set_missing(DbRow *vdi, bool missing, XapiError **err)
{
    if (db_get(vdi, "missing")->b == missing)
        return 0;
    return db_set_by_name(vdi, "missing", xv_new_bool(missing), err);
}

/* A VDI record whose file is gone (and no guest has it open): VBDs using
 * it become empty. */
static int forget_vdi(DbRow *vdi, XapiError **err)
{
    g_autoptr(Xv) vbds = xv_dup(db_get(vdi, "VBDs"));
    for (guint i = 0; i < xv_len(vbds); i++) {
        DbRow *vbd = db_lookup(cls("VBD"), xv_str(xv_at(vbds, i)));
        if (vbd && (db_set_by_name(vbd, "VDI", xv_new_string("OpaqueRef:NULL"), err) < 0 ||
                    db_set_by_name(vbd, "empty", xv_new_bool(true), err) < 0))
            return -1;
    }
    return db_delete(vdi, err);
}

/* A VDI whose header did not read, or whose file is gone while a guest
 * has it open, is kept with missing=true (its VBDs untouched); a later
 * scan that reads it clears missing. */
static int apply_scan(DbRow *sr, GHashTable *images, GHashTable *unreadable,
                      const SrSpace *space, XapiError **err)
{
    g_autoptr(Xv) vdis = xv_dup(db_get(sr, "VDIs"));
    for (guint i = 0; i < xv_len(vdis); i++) {
        DbRow *vdi = db_lookup(cls("VDI"), xv_str(xv_at(vdis, i)));
        if (!vdi)
            continue;
        const char *location = str_field(vdi, "location");
        ScannedImage *s = g_hash_table_lookup(images, location);
        if (!s) {
            bool keep = g_hash_table_contains(unreadable, location) || any_vbd_in_use(vdi);
            if ((keep ? set_missing(vdi, true, err) : forget_vdi(vdi, err)) < 0)
                return -1;
            continue;
        }
        if (set_missing(vdi, false, err) < 0)
            return -1;
        if ((db_get(vdi, "virtual_size")->i != s->info.virtual_size &&
             db_set_by_name(vdi, "virtual_size", xv_new_int(s->info.virtual_size), err) < 0) ||
            (db_get(vdi, "physical_utilisation")->i != s->info.physical_utilisation &&
             db_set_by_name(vdi, "physical_utilisation",
                            xv_new_int(s->info.physical_utilisation), err) < 0))
            return -1;
    }
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, images);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        ScannedImage *s = value;
        if (vdi_at_location(sr, s->location))
            continue;
        DbRow *vdi = storage_vdi_row(sr, s->location, &s->info);
        if (s->is_parent) {
            db_row_put(vdi, "name_label", xv_new_string("base copy"));
            db_row_put(vdi, "managed", xv_new_bool(false));
            db_row_put(vdi, "read_only", xv_new_bool(true));
        } else {
            /* The file name may be in any encoding and hold any byte but
             * '/': its display form, then without C0 controls, is a name
             * every client can read (the location keeps the bytes). */
            g_autofree char *base = g_path_get_basename(s->location);
            g_autofree char *display = g_filename_display_name(base);
            db_row_put(vdi, "name_label", xv_new_string_take(wire_text_repair(display)));
        }
        if (storage_insert_vdi(vdi, err) < 0)
            return -1;
    }
    g_hash_table_iter_init(&it, images);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        ScannedImage *s = value;
        storage_set_vdi_parent(vdi_at_location(sr, s->location), sr, s->info.parent);
    }
    return storage_refresh_sr_space(sr, space, err);
}

int storage_scan(const char *sr_ref, XapiError **err)
{
    db_read_begin();
    DbRow *sr = db_lookup(cls("SR"), sr_ref);
    const SrDriver *driver = sr ? storage_driver(sr) : NULL;
    g_autofree char *dir = sr ? storage_sr_dir(sr, err) : NULL;
    db_read_end();
    if (!sr)
        return xapi_error_set(err, "HANDLE_INVALID", "SR", sr_ref, NULL);
    if (!dir)
        return -1;
    if (!driver)
        return xapi_error_set(err, "SR_UNKNOWN_DRIVER", "", NULL);
    g_autoptr(GHashTable) unreadable = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                             NULL);
    GHashTable *images = read_images(driver, dir, unreadable, err);
    if (!images)
        return -1;
    SrSpace space;
    read_space(driver, dir, &space);
    int rc = -1;
    if (db_write_begin(err) == 0) {
        sr = db_lookup(cls("SR"), sr_ref);
        if (!sr) {
            db_write_abort();
            xapi_error_set(err, "HANDLE_INVALID", "SR", sr_ref, NULL);
        } else if (apply_scan(sr, images, unreadable, &space, err) < 0) {
            db_write_abort();
        } else {
            rc = db_write_commit(err);
        }
    }
    g_hash_table_unref(images);
    return rc;
}

/* ---- start-up ------------------------------------------------------------------ */

static bool find_sm(DbRow *row, void *ctx)
{
    DbRow **found = ctx;
    if (strcmp(str_field(row, "type"), str_field(found[1], "type")) == 0) {
        found[0] = row;
        return false;
    }
    return true;
}

static int sync_sm(const SrDriver *driver, XapiError **err)
{
    Xv *capabilities = xv_new_array();
    Xv *features = xv_new_struct();
    for (const char *const *c = driver->capabilities; *c; c++) {
        xv_array_append_string(capabilities, *c);
        xv_struct_set(features, *c, xv_new_int(1));
    }
    DbRow *sm = db_row_new(cls("SM"));
    db_row_put(sm, "type", xv_new_string(driver->type));
    DbRow *found[2] = {NULL, sm};
    db_foreach(cls("SM"), find_sm, found);
    if (found[0]) {
        db_row_free(sm);
        sm = found[0];
        if (db_set_by_name(sm, "capabilities", capabilities, err) < 0 ||
            db_set_by_name(sm, "features", features, err) < 0)
            return -1;
        return 0;
    }
    db_row_put(sm, "name_label", xv_new_string(driver->name_label));
    db_row_put(sm, "name_description", xv_new_string(driver->description));
    db_row_put(sm, "vendor", xv_new_string("xapid"));
    db_row_put(sm, "copyright", xv_new_string("xapid developers"));
    db_row_put(sm, "version", xv_new_string("1.0"));
    db_row_put(sm, "required_api_version", xv_new_string("1.0"));
    db_row_put(sm, "capabilities", capabilities);
    db_row_put(sm, "features", features);
    Xv *configuration = xv_new_struct();
    xv_struct_set_string(configuration, "location", "the directory that holds the images");
    db_row_put(sm, "configuration", configuration);
    return db_insert(sm, err);
}

static bool collect_ref(DbRow *row, void *ctx)
{
    g_ptr_array_add(ctx, g_strdup(row->ref));
    return true;
}

/* Plugs this host's PBDs that were plugged; returns the SRs to scan. */
static int replug(GPtrArray *to_scan, XapiError **err)
{
    g_autoptr(GPtrArray) srs = g_ptr_array_new_with_free_func(g_free);
    db_foreach(cls("SR"), collect_ref, srs);
    for (guint i = 0; i < srs->len; i++) {
        DbRow *sr = db_lookup(cls("SR"), srs->pdata[i]);
        DbRow *pbd = storage_host_pbd(sr);
        const SrDriver *driver = storage_driver(sr);
        if (!pbd || !db_get(pbd, "currently_attached")->b)
            continue;
        const Xv *location = xv_struct_get(db_get(pbd, "device_config"), "location");
        g_autoptr(XapiError) why = NULL;
        if (!driver || !location || sr_roots_check(xv_str(location), &why) < 0 ||
            driver->attach(xv_str(location), &why) < 0) {
            g_warning("SR %s: cannot plug again: %s", str_field(sr, "name_label"),
                      why ? why->code : "unknown driver");
            if (db_set_by_name(pbd, "currently_attached", xv_new_bool(false), err) < 0)
                return -1;
            continue;
        }
        if (!shared_srs_scanned_elsewhere(sr))
            g_ptr_array_add(to_scan, g_strdup(sr->ref));
    }
    return 0;
}

int storage_init(const char *state_dir, const char *const *sr_roots, XapiError **err)
{
    if (sr_roots_init(state_dir, sr_roots, err) < 0)
        return -1;
    g_mutex_init(&storage.mutex);
    operations_register(&sr_operations);
    operations_register(&vdi_operations);
    storage.sr_locks = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    pending_files_sweep(); /* before the scan takes an orphan for a new VDI */
    g_autoptr(GPtrArray) to_scan = g_ptr_array_new_with_free_func(g_free);
    if (db_write_begin(err) < 0)
        return -1;
    if (sync_sm(&sr_file_driver, err) < 0 || sync_sm(&sr_iso_driver, err) < 0 ||
        shared_srs_join(err) < 0 || replug(to_scan, err) < 0) {
        db_write_abort();
        return -1;
    }
    if (db_write_commit(err) < 0)
        return -1;
    for (guint i = 0; i < to_scan->len; i++) {
        g_autoptr(XapiError) why = NULL;
        storage_lock_sr(to_scan->pdata[i]);
        if (storage_scan(to_scan->pdata[i], &why) < 0)
            g_warning("SR %s: scan failed: %s", (char *)to_scan->pdata[i], why->code);
        storage_unlock_sr(to_scan->pdata[i]);
    }
    return 0;
}
