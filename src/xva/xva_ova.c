/* xva_ova.c: ova.xml written and read (see xva_ova.h). */
#include "xva_ova.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bootstrap.h"
#include "datamodel.h"
#include "db.h"
#include "xmlrpc.h"

#define NULL_REF "OpaqueRef:NULL"

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

static const char *field_str(const DbRow *row, const char *name)
{
    const Xv *v = db_get(row, name);
    return v ? xv_str(v) : "";
}

/* Ids come from one counter for the life of the process, as XAPI's. */
static gint next_id;

typedef struct {
    const DbRow *row;
    char *id;
} Object;

typedef struct {
    GArray *objects;  /* Object, in listing order */
    GHashTable *ids;  /* ref -> id (borrowed from objects) */
    const XvaOvaOptions *opt;
} Listing;

static void add(Listing *l, const DbRow *row)
{
    if (!row || g_hash_table_contains(l->ids, row->ref))
        return;
    Object o = {row, g_strdup_printf("Ref:%d", g_atomic_int_add(&next_id, 1))};
    g_array_append_val(l->objects, o);
    g_hash_table_insert(l->ids, row->ref, o.id);
}

static const DbRow *ref_row(const char *class_name, const DbRow *from, const char *field)
{
    const char *ref = field_str(from, field);
    return *ref && strcmp(ref, NULL_REF) != 0 ? db_lookup(cls(class_name), ref) : NULL;
}

static bool vdi_exported(const DbRow *vbd)
{
    if (strcmp(field_str(vbd, "type"), "CD") == 0)
        return false;
    const DbRow *vdi = ref_row("VDI", vbd, "VDI");
    const DbRow *sr = vdi ? ref_row("SR", vdi, "SR") : NULL;
    return sr && strcmp(field_str(sr, "content_type"), "iso") != 0;
}

/* Every object of the export, in XAPI's order of classes. */
static void list_objects(Listing *l, GPtrArray *vms)
{
    g_autofree char *host_ref = bootstrap_this_host();
    add(l, db_lookup(cls("host"), host_ref));
    for (guint i = 0; i < vms->len; i++)
        add(l, vms->pdata[i]);
    static const char *const by_vm[] = {"VBDs", "VIFs"};
    for (guint k = 0; k < G_N_ELEMENTS(by_vm); k++)
        for (guint i = 0; i < vms->len; i++) {
            const Xv *set = db_get(vms->pdata[i], by_vm[k]);
            for (guint j = 0; set && j < xv_len(set); j++)
                add(l, db_lookup(cls(k == 0 ? "VBD" : "VIF"), xv_str(xv_at(set, j))));
        }
    guint n = l->objects->len;
    for (guint i = 0; i < n; i++) {
        const DbRow *row = g_array_index(l->objects, Object, i).row;
        if (row->cls == cls("VIF"))
            add(l, ref_row("network", row, "network"));
    }
    for (guint i = 0; i < n; i++) {
        const DbRow *row = g_array_index(l->objects, Object, i).row;
        if (row->cls == cls("VBD") && vdi_exported(row))
            add(l, ref_row("VDI", row, "VDI"));
    }
    n = l->objects->len;
    for (guint i = 0; i < n; i++) {
        const DbRow *row = g_array_index(l->objects, Object, i).row;
        if (row->cls == cls("VDI"))
            add(l, ref_row("SR", row, "SR"));
    }
}

/* A ref becomes its object's id, or the null ref when not exported; a
 * set keeps only the exported ones. */
static Xv *remap(const DmType *t, const Xv *v, GHashTable *ids)
{
    if (t->kind == DM_REF && v && v->kind == XV_STRING) {
        const char *id = g_hash_table_lookup(ids, xv_str(v));
        return xv_new_string(id ? id : NULL_REF);
    }
    if (t->kind == DM_SET && t->elem->kind == DM_REF && v && v->kind == XV_ARRAY) {
        Xv *out = xv_new_array();
        for (guint i = 0; i < xv_len(v); i++) {
            const char *id = g_hash_table_lookup(ids, xv_str(xv_at(v, i)));
            if (id)
                xv_array_append_string(out, id);
        }
        return out;
    }
    return NULL;
}

static Xv *snapshot_of_row(const Listing *l, const DbRow *row)
{
    Xv *rec = db_row_record(row);
    for (unsigned i = 0; i < row->cls->n_fields; i++) {
        const DmField *f = &row->cls->fields[i];
        Xv *v = remap(f->type, xv_struct_get(rec, f->name), l->ids);
        if (v)
            xv_struct_set(rec, f->name, v);
    }
    if (row->cls != cls("VM"))
        return rec;
    if (!l->opt->preserve_power_state) {
        xv_struct_set_string(rec, "power_state", "Halted");
        xv_struct_set_string(rec, "suspend_VDI", NULL_REF);
    }
    bool snapshot = db_get(row, "is_a_snapshot")->b;
    if (!l->opt->include_snapshots || !snapshot) {
        /* A plain export is of a VM, never of a snapshot (export.ml). */
        xv_struct_set(rec, "is_a_snapshot", xv_new_bool(false));
        xv_struct_set_string(rec, "snapshot_of", NULL_REF);
        xv_struct_set(rec, "snapshot_time", xv_new_datetime(0));
    }
    if (!l->opt->include_snapshots)
        xv_struct_set(rec, "snapshots", xv_new_array());
    const DbRow *as = l->opt->as_vm ? db_lookup(cls("VM"), l->opt->as_vm) : NULL;
    if (as && snapshot) {
        static const char *const identity[] = {"uuid", "name_label", "name_description"};
        for (guint i = 0; i < G_N_ELEMENTS(identity); i++)
            xv_struct_set_string(rec, identity[i], field_str(as, identity[i]));
    }
    return rec;
}

static Xv *version_struct(void)
{
    g_autofree char *host_ref = bootstrap_this_host();
    const DbRow *host = db_lookup(cls("host"), host_ref);
    const Xv *sv = host ? db_get(host, "software_version") : NULL;
    Xv *ver = xv_new_struct();
    const char *hostname = host ? field_str(host, "hostname") : "";
    xv_struct_set_string(ver, "hostname", hostname);
    xv_struct_set(ver, "date", xv_new_string_take(xv_datetime_format(g_get_real_time() /
                                                                     G_USEC_PER_SEC)));
    static const char *const keys[] = {"product_version", "product_brand", "build_number"};
    for (guint i = 0; i < G_N_ELEMENTS(keys); i++) {
        const Xv *v = sv ? xv_struct_get(sv, keys[i]) : NULL;
        xv_struct_set_string(ver, keys[i], v ? xv_str(v) : "");
    }
    /* the xapi version this host speaks for (software_version:xapi, as
     * XAPI writes its own); bare ints, as rpclib writes them */
    const Xv *xapi = sv ? xv_struct_get(sv, "xapi") : NULL;
    int64_t major = 0, minor = 0;
    if (xapi && sscanf(xv_str(xapi), "%" SCNd64 ".%" SCNd64, &major, &minor) < 1)
        major = minor = 0;
    xv_struct_set(ver, "xapi_major", xv_new_int(major));
    xv_struct_set(ver, "xapi_minor", xv_new_int(minor));
    xv_struct_set(ver, "export_vsn", xv_new_int(2));
    return ver;
}

static gint compare_ids(gconstpointer a, gconstpointer b)
{
    return strcmp(((const Object *)a)->id, ((const Object *)b)->id);
}

/* With each VM, its snapshots (include_snapshots). */
static GPtrArray *vm_rows(const char *const *vms, guint n, const XvaOvaOptions *opt,
                          XapiError **err)
{
    GPtrArray *rows = g_ptr_array_new();
    for (guint i = 0; i < n; i++) {
        const DbRow *vm = db_lookup(cls("VM"), vms[i]);
        if (!vm) {
            xapi_error_set(err, "HANDLE_INVALID", "VM", vms[i], NULL);
            g_ptr_array_free(rows, TRUE);
            return NULL;
        }
        g_ptr_array_add(rows, (gpointer)vm);
        const Xv *snaps = opt->include_snapshots ? db_get(vm, "snapshots") : NULL;
        for (guint j = 0; snaps && j < xv_len(snaps); j++) {
            const DbRow *s = db_lookup(cls("VM"), xv_str(xv_at(snaps, j)));
            if (s)
                g_ptr_array_add(rows, (gpointer)s);
        }
    }
    return rows;
}

XvaOva *xva_ova_build(const char *const *vms, guint n, const XvaOvaOptions *opt, XapiError **err)
{
    db_read_begin();
    GPtrArray *rows = vm_rows(vms, n, opt, err);
    if (!rows) {
        db_read_end();
        return NULL;
    }
    Listing l = {g_array_new(FALSE, FALSE, sizeof(Object)), g_hash_table_new(g_str_hash,
                                                                             g_str_equal), opt};
    list_objects(&l, rows);
    g_ptr_array_free(rows, TRUE);

    XvaOva *ova = g_new0(XvaOva, 1);
    ova->disks = g_ptr_array_new_with_free_func(g_free);
    ova->ids = g_ptr_array_new_with_free_func(g_free);
    Xv *objects = xv_new_array();
    g_autoptr(GArray) vdis = g_array_new(FALSE, FALSE, sizeof(Object));
    for (guint i = 0; i < l.objects->len; i++) {
        const Object *o = &g_array_index(l.objects, Object, i);
        Xv *obj = xv_new_struct();
        xv_struct_set_string(obj, "class", o->row->cls->name);
        xv_struct_set_string(obj, "id", o->id);
        xv_struct_set(obj, "snapshot", snapshot_of_row(&l, o->row));
        xv_array_append(objects, obj);
        if (opt->with_disks && o->row->cls == cls("VDI"))
            g_array_append_val(vdis, *o);
    }
    g_array_sort(vdis, compare_ids); /* as strings: Ref:10 before Ref:9 */
    for (guint i = 0; i < vdis->len; i++) {
        const Object *o = &g_array_index(vdis, Object, i);
        g_ptr_array_add(ova->disks, g_strdup(o->row->ref));
        g_ptr_array_add(ova->ids, g_strdup(o->id));
        ova->disk_bytes += db_get(o->row, "virtual_size")->i;
    }
    g_autoptr(Xv) top = xv_new_struct();
    xv_struct_set(top, "version", version_struct());
    xv_struct_set(top, "objects", objects);
    db_read_end();

    GString *xml = g_string_new(NULL);
    xmlrpc_append_value(xml, top);
    ova->xml = g_string_free(xml, FALSE);
    for (guint i = 0; i < l.objects->len; i++)
        g_free(g_array_index(l.objects, Object, i).id);
    g_array_free(l.objects, TRUE);
    g_hash_table_destroy(l.ids);
    return ova;
}

void xva_ova_free(XvaOva *ova)
{
    if (!ova)
        return;
    g_free(ova->xml);
    g_ptr_array_free(ova->disks, TRUE);
    g_ptr_array_free(ova->ids, TRUE);
    g_free(ova);
}

Xv *xva_ova_parse(const char *xml, size_t len, XapiError **err)
{
    /* The value alone is no document: parse it as a response's one param. */
    GString *doc = g_string_new("<methodResponse><params><param>");
    g_string_append_len(doc, xml, (gssize)len);
    g_string_append(doc, "</param></params></methodResponse>");
    Xv *value = NULL;
    g_autofree char *why = NULL;
    int rc = xmlrpc_parse_response(doc->str, doc->len, &value, &why);
    g_string_free(doc, TRUE);
    if (rc < 0 || value->kind != XV_STRUCT || !xv_struct_get(value, "objects") ||
        xv_struct_get(value, "objects")->kind != XV_ARRAY) {
        g_autofree char *msg = g_strdup_printf("ova.xml: %s", why ? why : "not an XVA header");
        xv_free(value);
        xapi_error_set(err, "IMPORT_ERROR_GENERIC", msg, NULL);
        return NULL;
    }
    return value;
}

const char *xva_snap_str(const Xv *snap, const char *key)
{
    const Xv *v = snap ? xv_struct_get(snap, key) : NULL;
    return v && v->kind == XV_STRING ? xv_str(v) : "";
}

int64_t xva_snap_int(const Xv *snap, const char *key)
{
    const Xv *v = snap ? xv_struct_get(snap, key) : NULL;
    if (v && v->kind == XV_INT)
        return v->i;
    return v && v->kind == XV_STRING ? g_ascii_strtoll(xv_str(v), NULL, 10) : 0;
}

bool xva_snap_bool(const Xv *snap, const char *key)
{
    const Xv *v = snap ? xv_struct_get(snap, key) : NULL;
    if (v && v->kind == XV_BOOL)
        return v->b;
    return v && v->kind == XV_STRING && g_ascii_strcasecmp(xv_str(v), "true") == 0;
}
