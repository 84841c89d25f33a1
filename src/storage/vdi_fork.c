/* vdi_fork.c: VDI.snapshot and VDI.clone, of one VDI or of a VM's disks
 * at once, and the end of a live fork that a crash interrupted.
 *
 * A fork freezes the VDI's image as a hidden base ("base copy",
 * managed=false) and puts two empty overlays on it, both naming the base
 * by its relative file name: one continues the VDI, the other is the new
 * VDI. sm_config:vhd-parent names the base's uuid, as XAPI's file SRs do,
 * so that clients (nova) can walk the chain.
 *
 * A running guest writing to a forked VDI must move onto the VDI's new
 * leaf. The records go first, in one write for all the VDIs together with
 * a `live-fork:<vdi>` note naming the guest; then each guest's disks move
 * in one QMP transaction (a VM's disks are caught at the same instant);
 * then the notes go. A crash in between is finished at the next start,
 * since the records already say where the guest writes: until the move,
 * the guest's writes reach the base, and the fork is taken when the move
 * happens. */
#include "vdi_fork.h"

#include <string.h>
#include <time.h>

#include "db.h"
#include "dm_handlers.h"
#include "storage_live.h"
#include "storage_operations.h"
#include "vdi_target.h"

#define LIVE_FORK_NOTE "live-fork:"

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

typedef struct {
    VdiTarget t;
    bool locked;        /* the VDI's operation is ours */
    char *other_leaf;   /* the new VDI's image (a location in t.dir) */
    char *new_leaf;     /* where the VDI goes on */
    char *domain;       /* the running VM that writes to it, or NULL */
    int64_t base_bytes; /* physical_utilisation of the base and the new leaf */
    int64_t leaf_bytes;
    SrSpace space;
    /* once recorded: the new rows, and what the VDI held before */
    char *new_ref;
    char *base_ref;
    Xv *old_sm_config;
    int64_t old_bytes;
    bool kept; /* the images are named by records: never deleted here */
} Fork;

static void fork_clear(Fork *f, const char *op_task)
{
    if (f->locked)
        operations_end(&vdi_operations, f->t.ref, op_task);
    vdi_target_clear(&f->t);
    g_free(f->other_leaf);
    g_free(f->new_leaf);
    g_free(f->domain);
    g_free(f->new_ref);
    g_free(f->base_ref);
    xv_free(f->old_sm_config);
}

/* ---- before the write: locks, checks, images --------------------------------------- */

static int lock_target(Call *call, Fork *f, const char *vdi, const char *op, const char *op_task)
{
    if (operations_begin(&vdi_operations, vdi, op, op_task, &call->error) < 0)
        return -1;
    f->locked = true;
    if (vdi_target_read(vdi, &f->t, &call->error) < 0 ||
        sr_chain_check(f->t.dir, f->t.location, &call->error) < 0)
        return -1;
    if (!f->t.driver->vdi_overlay)
        return xapi_error_set(&call->error, "SR_OPERATION_NOT_SUPPORTED", f->t.sr, NULL);
    return 0;
}

static gint compare_strings(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The SRs of the forks, each once, in one order for every caller (so that
 * two forks never wait for each other's SR lock). */
static GPtrArray *sorted_srs(const Fork *f, guint n)
{
    GPtrArray *srs = g_ptr_array_new();
    for (guint i = 0; i < n; i++) {
        bool seen = false;
        for (guint j = 0; j < srs->len && !seen; j++)
            seen = strcmp(srs->pdata[j], f[i].t.sr) == 0;
        if (!seen)
            g_ptr_array_add(srs, f[i].t.sr);
    }
    g_ptr_array_sort(srs, compare_strings);
    return srs;
}

/* Both overlays on the current image, and who writes to it. */
static int make_images(Call *call, Fork *f)
{
    const VdiTarget *t = &f->t;
    f->other_leaf = t->driver->vdi_overlay(t->dir, t->location, t->virtual_size, &call->error);
    if (!f->other_leaf)
        return -1;
    f->new_leaf = t->driver->vdi_overlay(t->dir, t->location, t->virtual_size, &call->error);
    if (!f->new_leaf)
        return -1;
    const StorageLiveHooks *live = storage_live_hooks();
    if (live && live->writer(t->ref, &f->domain, &call->error) < 0)
        return -1;
    f->base_bytes = vdi_target_allocated(t, t->location);
    f->leaf_bytes = vdi_target_allocated(t, f->new_leaf);
    storage_sr_space_read(t->sr, &f->space);
    return 0;
}

static void delete_images(Fork *f)
{
    g_autoptr(XapiError) ignored = NULL;
    if (f->other_leaf)
        f->t.driver->vdi_delete(f->t.dir, f->other_leaf, &ignored);
    g_clear_pointer(&ignored, xapi_error_free);
    if (f->new_leaf)
        f->t.driver->vdi_delete(f->t.dir, f->new_leaf, &ignored);
}

/* ---- the records ------------------------------------------------------------------- */

static void copy_fields(DbRow *to, const DbRow *from, const char *const *fields)
{
    for (; *fields; fields++)
        db_row_put(to, *fields, xv_dup(db_get(from, *fields)));
}

/* The base (old location) under the VDI (now at new_leaf) and the new VDI
 * (other_leaf). Write lock held. */
static int record_fork(Fork *f, bool snapshot, XapiError **err)
{
    const VdiTarget *t = &f->t;
    DbRow *vdi = db_lookup(cls("VDI"), t->ref);
    DbRow *sr = db_lookup(cls("SR"), t->sr);
    if (!vdi || !sr)
        return xapi_error_set(err, "HANDLE_INVALID", "VDI", t->ref, NULL);
    VdiInfo size = {.virtual_size = t->virtual_size};
    DbRow *base = storage_vdi_row(sr, t->location, &size);
    db_row_put(base, "name_label", xv_new_string("base copy"));
    db_row_put(base, "managed", xv_new_bool(false));
    db_row_put(base, "read_only", xv_new_bool(true));
    db_row_put(base, "physical_utilisation", xv_new_int(f->base_bytes));
    const Xv *old_parent = xv_struct_get(db_get(vdi, "sm_config"), "vhd-parent");
    if (old_parent) {
        Xv *sm = xv_new_struct();
        xv_struct_set_string(sm, "vhd-parent", xv_str(old_parent));
        db_row_put(base, "sm_config", sm);
    }
    g_autofree char *base_uuid = g_strdup(xv_str(db_get(base, "uuid")));
    f->base_ref = g_strdup(base->ref);
    if (storage_insert_vdi(base, err) < 0)
        return -1;

    DbRow *copy = storage_vdi_row(sr, f->other_leaf, &size);
    static const char *const inherited[] = {"name_label", "name_description", "type", "sharable",
                                            "other_config", "xenstore_data", "tags",
                                            "sm_config", "on_boot", "allow_caching", NULL};
    copy_fields(copy, vdi, inherited);
    db_row_put(copy, "read_only", xv_new_bool(snapshot ? false : db_get(vdi, "read_only")->b));
    if (snapshot) {
        db_row_put(copy, "is_a_snapshot", xv_new_bool(true));
        db_row_put(copy, "snapshot_of", xv_new_string(vdi->ref));
        db_row_put(copy, "snapshot_time", xv_new_datetime(time(NULL)));
    }
    Xv *sm = xv_dup(db_get(vdi, "sm_config"));
    xv_struct_set_string(sm, "vhd-parent", base_uuid);
    db_row_put(copy, "sm_config", xv_dup(sm));
    f->new_ref = g_strdup(copy->ref);
    f->old_sm_config = xv_dup(db_get(vdi, "sm_config"));
    f->old_bytes = db_get(vdi, "physical_utilisation")->i;
    if (storage_insert_vdi(copy, err) < 0) {
        xv_free(sm);
        return -1;
    }
    if (db_set_by_name(vdi, "location", xv_new_string(f->new_leaf), err) < 0 ||
        db_set_by_name(vdi, "sm_config", sm, err) < 0 ||
        db_set_by_name(vdi, "physical_utilisation", xv_new_int(f->leaf_bytes), err) < 0 ||
        storage_refresh_sr_space(sr, &f->space, err) < 0)
        return -1;
    if (f->domain) {
        g_autofree char *key = g_strconcat(LIVE_FORK_NOTE, t->ref, NULL);
        return db_meta_put(key, f->domain, err);
    }
    return 0;
}

static void forget_records(Fork *f, guint n)
{
    for (guint i = 0; i < n; i++) {
        g_clear_pointer(&f[i].new_ref, g_free);
        g_clear_pointer(&f[i].base_ref, g_free);
        g_clear_pointer(&f[i].old_sm_config, xv_free);
    }
}

static int record_forks(Call *call, Fork *f, guint n, bool snapshot)
{
    if (db_write_begin(&call->error) < 0)
        return -1;
    for (guint i = 0; i < n; i++)
        if (record_fork(&f[i], snapshot, &call->error) < 0) {
            db_write_abort();
            forget_records(f, n);
            return -1;
        }
    if (db_write_commit(&call->error) < 0) {
        forget_records(f, n);
        return -1;
    }
    for (guint i = 0; i < n; i++)
        f[i].kept = true;
    return 0;
}

/* Puts the VDIs back where they were, in one write (a move failed). */
static int unrecord_forks(Fork *f, guint n, XapiError **err)
{
    if (db_write_begin(err) < 0)
        return -1;
    for (guint i = 0; i < n; i++) {
        DbRow *vdi = db_lookup(cls("VDI"), f[i].t.ref);
        DbRow *copy = db_lookup(cls("VDI"), f[i].new_ref);
        DbRow *base = db_lookup(cls("VDI"), f[i].base_ref);
        g_autofree char *key = g_strconcat(LIVE_FORK_NOTE, f[i].t.ref, NULL);
        if ((vdi && (db_set_by_name(vdi, "location", xv_new_string(f[i].t.location), err) < 0 ||
                     db_set_by_name(vdi, "sm_config", xv_dup(f[i].old_sm_config), err) < 0 ||
                     db_set_by_name(vdi, "physical_utilisation", xv_new_int(f[i].old_bytes),
                                    err) < 0)) ||
            (copy && db_delete(copy, err) < 0) || (base && db_delete(base, err) < 0) ||
            (f[i].domain && db_meta_delete(key, err) < 0)) {
            db_write_abort();
            return -1;
        }
    }
    if (db_write_commit(err) < 0)
        return -1;
    forget_records(f, n);
    for (guint i = 0; i < n; i++)
        f[i].kept = false;
    return 0;
}

/* ---- the move of running guests ----------------------------------------------------- */

/* Each domain's disks among the forks, moved together. */
static int switch_domains(Fork *f, guint n, XapiError **err)
{
    const StorageLiveHooks *live = storage_live_hooks();
    for (guint i = 0; i < n; i++) {
        if (!f[i].domain)
            continue;
        bool first = true;
        for (guint j = 0; j < i && first; j++)
            first = !f[j].domain || strcmp(f[j].domain, f[i].domain) != 0;
        if (!first)
            continue;
        g_autoptr(GPtrArray) vdis = g_ptr_array_new();
        g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
        for (guint j = i; j < n; j++)
            if (f[j].domain && strcmp(f[j].domain, f[i].domain) == 0) {
                g_ptr_array_add(vdis, f[j].t.ref);
                g_ptr_array_add(paths, sr_path(f[j].t.dir, f[j].new_leaf));
            }
        if (live->switch_leaves(f[i].domain, (const char *const *)vdis->pdata,
                                (const char *const *)paths->pdata, vdis->len, err) < 0)
            return -1;
    }
    return 0;
}

static void drop_notes(Fork *f, guint n)
{
    for (guint i = 0; i < n; i++) {
        if (!f[i].domain)
            continue;
        g_autofree char *key = g_strconcat(LIVE_FORK_NOTE, f[i].t.ref, NULL);
        g_autoptr(XapiError) err = NULL;
        if (db_meta_delete(key, &err) < 0) /* the next start finds the move done */
            g_warning("storage: cannot forget the live fork note of %s: %s", f[i].t.ref,
                      err->code);
    }
}

/* The move failed with the records written: they go again, or, if even
 * that fails, the guests stop (the records then hold what they wrote). */
static void move_failed(Fork *f, guint n)
{
    g_autoptr(XapiError) err = NULL;
    if (unrecord_forks(f, n, &err) == 0)
        return;
    g_warning("storage: a live fork could not be undone (%s): its guests are stopped", err->code);
    for (guint i = 0; i < n; i++)
        if (f[i].domain)
            storage_live_hooks()->stop_writer(f[i].domain);
    drop_notes(f, n);
}

/* ---- the operation ------------------------------------------------------------------ */

int storage_fork_vdis(Call *call, const char *const *vdis, guint n, bool snapshot, char **out)
{
    const char *op = snapshot ? "snapshot" : "clone";
    g_autofree char *op_task = call->task_ref ? g_strdup(call->task_ref) : db_new_ref();
    Fork *f = g_new0(Fork, n);
    int rc = 0;
    for (guint i = 0; i < n && rc == 0; i++)
        rc = lock_target(call, &f[i], vdis[i], op, op_task);
    g_autoptr(GPtrArray) srs = rc == 0 ? sorted_srs(f, n) : g_ptr_array_new();
    for (guint i = 0; i < srs->len; i++)
        storage_lock_sr(srs->pdata[i]);
    for (guint i = 0; i < n && rc == 0; i++)
        rc = make_images(call, &f[i]);
    if (rc == 0)
        rc = record_forks(call, f, n, snapshot);
    if (rc == 0 && switch_domains(f, n, &call->error) < 0) {
        move_failed(f, n);
        rc = -1;
    }
    if (rc == 0)
        drop_notes(f, n);
    for (guint i = 0; i < n; i++) {
        if (rc < 0 && !f[i].kept)
            delete_images(&f[i]);
        if (rc == 0)
            out[i] = g_steal_pointer(&f[i].new_ref);
    }
    for (guint i = srs->len; i-- > 0;)
        storage_unlock_sr(srs->pdata[i]);
    for (guint i = 0; i < n; i++)
        fork_clear(&f[i], op_task);
    g_free(f);
    return rc;
}

int xapi_VDI_snapshot(Call *call, const char *vdi, const Xv *driver_params, Xv **result)
{
    (void)driver_params; /* for XAPI's SM plugins; the file driver takes none */
    char *ref = NULL;
    if (storage_fork_vdis(call, &vdi, 1, true, &ref) < 0)
        return -1;
    *result = xv_new_string_take(ref);
    return 0;
}

int xapi_VDI_clone(Call *call, const char *vdi, const Xv *driver_params, Xv **result)
{
    (void)driver_params;
    char *ref = NULL;
    if (storage_fork_vdis(call, &vdi, 1, false, &ref) < 0)
        return -1;
    *result = xv_new_string_take(ref);
    return 0;
}

/* ---- after a crash ------------------------------------------------------------------ */

/* The notes of one domain: its VDIs and where they move. */
typedef struct {
    GPtrArray *vdis;
    GPtrArray *paths;
} DomainMoves;

static void domain_moves_free(gpointer p)
{
    DomainMoves *m = p;
    g_ptr_array_unref(m->vdis);
    g_ptr_array_unref(m->paths);
    g_free(m);
}

static GHashTable *read_notes(GPtrArray *keys)
{
    GHashTable *by_domain =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, domain_moves_free);
    for (guint i = 0; i < keys->len; i++) {
        const char *vdi = (const char *)keys->pdata[i] + strlen(LIVE_FORK_NOTE);
        char *domain = db_meta_get(keys->pdata[i]);
        VdiTarget t = {0};
        g_autoptr(XapiError) err = NULL;
        if (!domain || vdi_target_read(vdi, &t, &err) < 0) {
            g_free(domain); /* the VDI is gone: nothing to move */
            continue;
        }
        DomainMoves *m = g_hash_table_lookup(by_domain, domain);
        if (!m) {
            m = g_new0(DomainMoves, 1);
            m->vdis = g_ptr_array_new_with_free_func(g_free);
            m->paths = g_ptr_array_new_with_free_func(g_free);
            g_hash_table_insert(by_domain, g_strdup(domain), m);
        }
        g_ptr_array_add(m->vdis, g_strdup(vdi));
        g_ptr_array_add(m->paths, g_steal_pointer(&t.path));
        vdi_target_clear(&t);
        g_free(domain);
    }
    return by_domain;
}

void storage_finish_live_forks(void)
{
    const StorageLiveHooks *live = storage_live_hooks();
    g_autoptr(GPtrArray) keys = db_meta_keys(LIVE_FORK_NOTE);
    if (!keys->len || !live)
        return;
    g_autoptr(GHashTable) by_domain = read_notes(keys);
    GHashTableIter it;
    gpointer domain, value;
    g_hash_table_iter_init(&it, by_domain);
    while (g_hash_table_iter_next(&it, &domain, &value)) {
        DomainMoves *m = value;
        g_autoptr(XapiError) err = NULL;
        if (live->switch_leaves(domain, (const char *const *)m->vdis->pdata,
                                (const char *const *)m->paths->pdata, m->vdis->len, &err) < 0) {
            g_warning("storage: VM %s cannot move onto the new leaves of its disks (%s): "
                      "stopped, as its records say it writes there", (char *)domain, err->code);
            live->stop_writer(domain);
        } else {
            g_message("storage: finished the live fork of %u disk(s) of VM %s", m->vdis->len,
                      (char *)domain);
        }
    }
    for (guint i = 0; i < keys->len; i++) {
        g_autoptr(XapiError) err = NULL;
        if (db_meta_delete(keys->pdata[i], &err) < 0)
            g_warning("storage: cannot forget the note %s: %s", (char *)keys->pdata[i],
                      err->code);
    }
}
