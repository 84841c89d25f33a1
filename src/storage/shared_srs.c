/* shared_srs.c: see shared_srs.h. */
#include "shared_srs.h"

#include <string.h>

#include "bootstrap.h"
#include "pool_forward.h"
#include "pool_role.h"
#include "storage.h"

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

static const char *str_field(const DbRow *row, const char *field)
{
    return xv_str(db_get(row, field));
}

static bool collect_ref(DbRow *row, void *ctx)
{
    g_ptr_array_add(ctx, g_strdup(row->ref));
    return true;
}

static GPtrArray *all_refs(const char *class_name)
{
    GPtrArray *refs = g_ptr_array_new_with_free_func(g_free);
    db_foreach(cls(class_name), collect_ref, refs);
    return refs;
}

static DbRow *new_pbd(const char *sr_ref, const char *host, const Xv *device_config,
                      bool attached)
{
    DbRow *pbd = db_row_new(cls("PBD"));
    db_row_put(pbd, "host", xv_new_string(host));
    db_row_put(pbd, "SR", xv_new_string(sr_ref));
    db_row_put(pbd, "device_config", xv_dup(device_config));
    db_row_put(pbd, "currently_attached", xv_new_bool(attached));
    return pbd;
}

/* The device_config a new PBD of sr copies: the master's PBD's, else the
 * first PBD's; NULL when sr has none. */
static const Xv *model_device_config(const DbRow *sr, const char *master)
{
    const Xv *pbds = db_get(sr, "PBDs");
    const Xv *first = NULL;
    for (guint i = 0; i < xv_len(pbds); i++) {
        DbRow *pbd = db_lookup(cls("PBD"), xv_str(xv_at(pbds, i)));
        if (!pbd)
            continue;
        if (master && strcmp(str_field(pbd, "host"), master) == 0)
            return db_get(pbd, "device_config");
        first = first ? first : db_get(pbd, "device_config");
    }
    return first;
}

int shared_srs_join(XapiError **err)
{
    g_autofree char *here = bootstrap_this_host();
    g_autofree char *master = bootstrap_pool_master();
    GPtrArray *srs = all_refs("SR");
    int rc = 0;
    for (guint i = 0; i < srs->len && rc == 0; i++) {
        DbRow *sr = db_lookup(cls("SR"), srs->pdata[i]);
        if (!sr || !db_get(sr, "shared")->b || storage_host_pbd(sr))
            continue;
        const Xv *device_config = model_device_config(sr, master);
        if (!device_config)
            continue;
        g_message("SR %s: shared; a PBD for this host", str_field(sr, "name_label"));
        rc = db_insert(new_pbd(sr->ref, here, device_config, true), err);
    }
    g_ptr_array_unref(srs);
    return rc;
}

int shared_srs_add_pbds(const char *sr_ref, const char *host, const Xv *device_config,
                        GPtrArray *pbds, GPtrArray *hosts, XapiError **err)
{
    GPtrArray *all = all_refs("host");
    int rc = 0;
    for (guint i = 0; i < all->len && rc == 0; i++) {
        if (strcmp(all->pdata[i], host) == 0)
            continue;
        DbRow *pbd = new_pbd(sr_ref, all->pdata[i], device_config, false);
        g_ptr_array_add(pbds, g_strdup(pbd->ref));
        g_ptr_array_add(hosts, g_strdup(all->pdata[i]));
        rc = db_insert(pbd, err);
    }
    g_ptr_array_unref(all);
    return rc;
}

void shared_srs_plug(GPtrArray *pbds, GPtrArray *hosts)
{
    for (guint i = 0; i < pbds->len; i++) {
        g_autoptr(XapiError) why = NULL;
        if (pool_forward_internal(hosts->pdata[i], "PBD.plug", pbds->pdata[i], &why) < 0)
            g_warning("shared SR: PBD %s not plugged on host %s: %s %s",
                      (char *)pbds->pdata[i], (char *)hosts->pdata[i], why->code,
                      why->params->len ? (char *)why->params->pdata[0] : "");
    }
}

bool shared_srs_scanned_elsewhere(const DbRow *sr)
{
    return pool_is_member() && db_get(sr, "shared")->b;
}
