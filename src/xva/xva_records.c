/* xva_records.c: the rows an XVA import records (see xva_records.h). */
#include "xva_records.h"

#include <string.h>

#include "db.h"
#include "implicit.h"
#include "operations.h"
#include "xmlrpc.h"
#include "xva_ova.h"

#define NULL_REF "OpaqueRef:NULL"

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

typedef struct {
    const XvaRecords *r;
    GHashTable *made;   /* id -> new ref, as the rows are made */
    GPtrArray *new_vms; /* the result's refs */
} Rows;

static const char *made_ref(Rows *im, const char *id)
{
    const char *ref = g_hash_table_lookup(im->made, id);
    if (ref)
        return ref;
    return g_hash_table_lookup(im->r->disks, id);
}

/* Each ref of rec (a snapshot of class c): an object made here becomes
 * its new ref, any other the null ref (and is dropped from a set). */
static void map_refs(Rows *im, const DmClass *c, Xv *rec)
{
    for (unsigned i = 0; i < c->n_fields; i++) {
        const DmField *f = &c->fields[i];
        const Xv *v = xv_struct_get(rec, f->name);
        if (!v || f->derived)
            continue;
        if (f->type->kind == DM_REF) {
            const char *ref = v->kind == XV_STRING ? made_ref(im, xv_str(v)) : NULL;
            xv_struct_set_string(rec, f->name, ref ? ref : NULL_REF);
        } else if (f->type->kind == DM_SET && f->type->elem->kind == DM_REF) {
            Xv *set = xv_new_array();
            for (guint j = 0; v->kind == XV_ARRAY && j < xv_len(v); j++) {
                const char *ref = made_ref(im, xv_str(xv_at(v, j)));
                if (ref)
                    xv_array_append_string(set, ref);
            }
            xv_struct_set(rec, f->name, set);
        }
    }
}

static bool uuid_free(const DmClass *c, const char *uuid)
{
    return *uuid && !db_lookup_uuid(c, uuid);
}

/* A row of class_name from rec (refs mapped), inserted: its ref. */
static const char *insert_row(Rows *im, const char *class_name, const char *id, Xv *rec,
                              XapiError **err)
{
    const DmClass *c = cls(class_name);
    map_refs(im, c, rec);
    g_autofree char *wire = g_strconcat(class_name, ".create", NULL);
    Call call = {.msg = dm_message_by_wire_name(wire), .trusted = true};
    DbRow *row = implicit_row_from_record(&call, rec);
    if (!row) {
        *err = call.error;
        return NULL;
    }
    const char *uuid = xva_snap_str(rec, "uuid");
    g_autofree char *fresh = db_new_uuid();
    db_row_put(row, "uuid",
               xv_new_string(im->r->restore && uuid_free(c, uuid) ? uuid : fresh));
    if (c == cls("VM")) {
        db_row_put(row, "power_state", xv_new_static_string("Halted"));
        bool snapshot = xva_snap_bool(rec, "is_a_snapshot");
        db_row_put(row, "is_a_snapshot", xv_new_bool(snapshot));
        db_row_put(row, "is_a_template", xv_new_bool(xva_snap_bool(rec, "is_a_template")));
        if (snapshot) {
            db_row_put(row, "snapshot_of", xv_new_string(xva_snap_str(rec, "snapshot_of")));
            int64_t when = 0;
            const Xv *t = xv_struct_get(rec, "snapshot_time");
            if (t && t->kind == XV_DATETIME)
                when = t->i;
            else if (t && t->kind == XV_STRING)
                xv_datetime_parse(xv_str(t), &when);
            db_row_put(row, "snapshot_time", xv_new_datetime(when));
        }
    }
    const char *ref = row->ref;
    g_hash_table_insert(im->made, g_strdup(id), g_strdup(ref));
    if (db_insert(row, err) < 0)
        return NULL;
    return g_hash_table_lookup(im->made, id);
}

static bool is_management_pif(DbRow *pif, void *ctx)
{
    const Xv *m = db_get(pif, "management");
    if (m && m->b) {
        *(const char **)ctx = xv_str(db_get(pif, "network"));
        return false;
    }
    return true;
}

static bool first_network(DbRow *net, void *ctx)
{
    *(const char **)ctx = net->ref;
    return false;
}

typedef struct {
    const char *name;
    const char *ref;
} NamedNetwork;

static bool network_named(DbRow *net, void *ctx)
{
    NamedNetwork *n = ctx;
    if (strcmp(xv_str(db_get(net, "name_label")), n->name) != 0)
        return true;
    n->ref = net->ref;
    return false;
}

/* The network of the same name here, else the management network's. */
static const char *map_network(Rows *im, const char *id)
{
    const Xv *snap = g_hash_table_lookup(im->r->objects, id);
    NamedNetwork n = {xva_snap_str(snap, "name_label"), NULL};
    if (*n.name)
        db_foreach(cls("network"), network_named, &n);
    if (!n.ref)
        db_foreach(cls("PIF"), is_management_pif, &n.ref);
    if (!n.ref || !db_lookup(cls("network"), n.ref))
        db_foreach(cls("network"), first_network, &n.ref);
    return n.ref;
}

static int insert_vm_rows(Rows *im, bool snapshots, GPtrArray *vms, XapiError **err)
{
    const Xv *objects = xv_struct_get(im->r->ova, "objects");
    for (guint i = 0; i < xv_len(objects); i++) {
        const Xv *o = xv_at(objects, i);
        const Xv *snap = xv_struct_get(o, "snapshot");
        if (strcmp(xva_snap_str(o, "class"), "VM") != 0 || xva_snap_bool(snap, "is_a_snapshot") != snapshots)
            continue;
        if (xva_snap_bool(snap, "is_control_domain"))
            continue; /* dom0 of an all=true metadata export */
        g_autoptr(Xv) rec = xv_dup(snap);
        Xv *oc = xv_struct_get(rec, "other_config");
        if (!im->r->restore && oc && oc->kind == XV_STRUCT)
            xv_struct_remove(oc, "mac_seed");
        const char *ref = insert_row(im, "VM", xva_snap_str(o, "id"), rec, err);
        if (!ref)
            return -1;
        g_ptr_array_add(vms, (gpointer)ref);
    }
    return 0;
}

static int insert_device_rows(Rows *im, const char *class_name, XapiError **err)
{
    const Xv *objects = xv_struct_get(im->r->ova, "objects");
    for (guint i = 0; i < xv_len(objects); i++) {
        const Xv *o = xv_at(objects, i);
        const Xv *snap = xv_struct_get(o, "snapshot");
        if (strcmp(xva_snap_str(o, "class"), class_name) != 0 ||
            !g_hash_table_contains(im->made, xva_snap_str(snap, "VM")))
            continue;
        g_autoptr(Xv) rec = xv_dup(snap);
        if (strcmp(class_name, "VIF") == 0) {
            const char *net = map_network(im, xva_snap_str(snap, "network"));
            if (!net)
                continue; /* a host without networks: the VM goes without NICs */
            g_hash_table_insert(im->made, g_strdup(xva_snap_str(snap, "network")), g_strdup(net));
        } else {
            const char *vdi = made_ref(im, xva_snap_str(snap, "VDI"));
            xv_struct_set(rec, "empty", xv_new_bool(!vdi));
        }
        if (!insert_row(im, class_name, xva_snap_str(o, "id"), rec, err))
            return -1;
        if (strcmp(class_name, "VIF") == 0)
            g_hash_table_remove(im->made, xva_snap_str(snap, "network"));
    }
    return 0;
}

/* The new disks are the import's now, no longer pending. */
static int settle_disks(Rows *im, XapiError **err)
{
    for (guint i = 0; i < im->r->made_disks->len; i++) {
        DbRow *vdi = db_lookup(cls("VDI"), im->r->made_disks->pdata[i]);
        if (!vdi)
            continue;
        Xv *oc = xv_dup(db_get(vdi, "other_config"));
        xv_struct_remove(oc, XVA_PENDING_KEY);
        if (db_set_by_name(vdi, "other_config", oc, err) < 0)
            return -1;
    }
    return 0;
}

static char *result_text(Rows *im, GPtrArray *vms, GPtrArray *snapshots)
{
    GPtrArray *shown = vms->len ? vms : snapshots; /* as import.ml */
    g_autoptr(Xv) set = xv_new_array();
    for (guint i = 0; i < shown->len; i++) {
        xv_array_append_string(set, shown->pdata[i]);
        g_ptr_array_add(im->new_vms, g_strdup(shown->pdata[i]));
    }
    GString *out = g_string_new(NULL);
    xmlrpc_append_value(out, set);
    return g_string_free(out, FALSE);
}

int xva_records_write(const XvaRecords *r, GPtrArray *new_vms, char **result, XapiError **err)
{
    g_autoptr(GHashTable) made = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    Rows rows = {r, made, new_vms};
    Rows *im = &rows;
    g_autoptr(GPtrArray) vms = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) snaps = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) got = g_ptr_array_new();
    g_autoptr(GPtrArray) got_snaps = g_ptr_array_new();
    if (db_write_begin(err) < 0)
        return -1;
    if (insert_vm_rows(im, false, got, err) < 0 || insert_vm_rows(im, true, got_snaps, err) < 0)
        goto abort;
    for (guint i = 0; i < got->len; i++)
        g_ptr_array_add(vms, g_strdup(got->pdata[i]));
    for (guint i = 0; i < got_snaps->len; i++)
        g_ptr_array_add(snaps, g_strdup(got_snaps->pdata[i]));
    if (insert_device_rows(im, "VBD", err) < 0 || insert_device_rows(im, "VIF", err) < 0 ||
        settle_disks(im, err) < 0)
        goto abort;
    for (guint i = 0; i < vms->len + snaps->len; i++) {
        const char *ref = i < vms->len ? vms->pdata[i] : snaps->pdata[i - vms->len];
        DbRow *vm = db_lookup(cls("VM"), ref);
        if (vm && operations_refresh(vm, err) < 0)
            goto abort;
    }
    if (im->r->dry_run) {
        db_write_abort();
        g_ptr_array_set_size(vms, 0);
        g_ptr_array_set_size(snaps, 0);
    } else if (db_write_commit(err) < 0) {
        return -1;
    }
    *result = result_text(im, vms, snaps);
    return 0;
abort:
    db_write_abort();
    return -1;
}

