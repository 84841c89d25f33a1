/* network.c: network.create (bridge names as XAPI chooses them) and
 * network.destroy (refused while PIFs or attached VIFs use it); the
 * bridge itself is made when a guest first needs it (src/network). */
#include <string.h>

#include "call.h"
#include "dm_handlers.h"
#include "implicit.h"
#include "nat.h"
#include "network.h"

#define DEFAULT_MTU 1500

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

int xapi_network_create(Call *call, const Xv *args, Xv **result)
{
    if (db_write_begin(&call->error) < 0)
        return -1;
    DbRow *net = implicit_row_from_record(call, args);
    g_autofree char *bridge =
        net ? network_bridge_for_create(xv_str(db_get(net, "bridge")), &call->error) : NULL;
    if (!bridge) {
        if (net)
            db_row_free(net);
        db_write_abort();
        return -1;
    }
    db_row_put(net, "bridge", xv_new_string(bridge));
    if (db_get(net, "MTU")->i <= 0)
        db_row_put(net, "MTU", xv_new_int(DEFAULT_MTU));
    if (nat_prepare_record(net, &call->error) < 0) {
        db_row_free(net);
        db_write_abort();
        return -1;
    }
    char *ref = g_strdup(net->ref);
    if (db_insert(net, &call->error) < 0 || db_write_commit(&call->error) < 0) {
        g_free(ref);
        return -1;
    }
    *result = xv_new_string_take(ref);
    return 0;
}

/* Refs of a set field as error parameters. */
static int refuse_with_refs(Call *call, const char *code, GPtrArray *refs)
{
    return xapi_error_setv(&call->error, code, (const char *const *)refs->pdata, refs->len);
}

static int check_destroyable(Call *call, DbRow *net)
{
    const Xv *other = db_get(net, "other_config");
    const Xv *internal = xv_struct_get(other, "is_host_internal_management_network");
    if (internal && strcmp(xv_str(internal), "true") == 0)
        return xapi_error_set(&call->error, "CANNOT_DESTROY_SYSTEM_NETWORK", net->ref, NULL);
    const Xv *pifs = db_get(net, "PIFs");
    if (xv_len(pifs)) {
        g_autoptr(GPtrArray) refs = g_ptr_array_new();
        for (guint i = 0; i < xv_len(pifs); i++)
            g_ptr_array_add(refs, (char *)xv_str(xv_at(pifs, i)));
        return refuse_with_refs(call, "NETWORK_CONTAINS_PIF", refs);
    }
    const Xv *vifs = db_get(net, "VIFs");
    g_autoptr(GPtrArray) busy = g_ptr_array_new();
    for (guint i = 0; i < xv_len(vifs); i++) {
        DbRow *vif = db_lookup(cls("VIF"), xv_str(xv_at(vifs, i)));
        if (vif && (db_get(vif, "currently_attached")->b))
            g_ptr_array_add(busy, (char *)vif->ref);
    }
    return busy->len ? refuse_with_refs(call, "NETWORK_CONTAINS_VIF", busy) : 0;
}

int xapi_network_destroy(Call *call, const char *self)
{
    DbRow *net = db_write_begin_on("network", self, &call->error);
    if (!net)
        return -1;
    if (check_destroyable(call, net) < 0) {
        db_write_abort();
        return -1;
    }
    /* VIFs that are not in use go with the network, as in XAPI. */
    g_autoptr(Xv) vifs = xv_dup(db_get(net, "VIFs"));
    for (guint i = 0; i < xv_len(vifs); i++) {
        DbRow *vif = db_lookup(cls("VIF"), xv_str(xv_at(vifs, i)));
        if (vif && db_delete(vif, &call->error) < 0) {
            db_write_abort();
            return -1;
        }
    }
    if (db_delete(net, &call->error) < 0) {
        db_write_abort();
        return -1;
    }
    if (db_write_commit(&call->error) < 0)
        return -1;
    network_bridges_gc();
    return 0;
}

/* XAPI refuses while a VIF on the network is attached (VIF_IN_USE): a
 * running guest's NIC keeps the mode it was plugged with. */
int xapi_network_set_default_locking_mode(Call *call, const char *network, const char *value)
{
    DbRow *net = db_write_begin_on("network", network, &call->error);
    if (!net)
        return -1;
    const Xv *vifs = db_get(net, "VIFs");
    for (guint i = 0; i < xv_len(vifs); i++) {
        DbRow *vif = db_lookup(cls("VIF"), xv_str(xv_at(vifs, i)));
        if (vif && db_get(vif, "currently_attached")->b) {
            db_write_abort();
            return xapi_error_set(&call->error, "VIF_IN_USE", network, vif->ref, NULL);
        }
    }
    if (db_set_by_name(net, "default_locking_mode", xv_new_string(value), &call->error) < 0) {
        db_write_abort();
        return -1;
    }
    return db_write_commit(&call->error);
}
