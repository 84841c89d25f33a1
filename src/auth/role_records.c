/* role_records.c: the role class's rows, made at every start (roles are
 * not persisted): XAPI's static roles and permissions (gen_rbac.ml,
 * datamodel_roles.ml). */
#include <string.h>

#include "db.h"
#include "rbac.h"

/* Datamodel_roles.ordered: the descriptions, in DmRole order. */
static const char *const descriptions[DM_N_ROLES] = {
    "The Pool Administrator role has full access to all features and settings, including "
    "accessing Dom0 and managing subjects, roles and external authentication",
    "The Pool Operator role manages host- and pool-wide resources, including setting up "
    "storage, creating resource pools and managing patches, high availability (HA) and "
    "workload balancing (WLB)",
    "The VM Power Administrator role has full access to VM and template management and can "
    "choose where to start VMs and use the dynamic memory control and VM snapshot features",
    "The VM Administrator role can manage VMs and templates",
    "The VM Operator role can use VMs and interact with VM consoles",
    "The Client Certificate role has access to functionality granted to those who "
    "authenticate using a client certificate",
    "The Read-Only role can log in with basic read-only access",
};

/* XAPI's hash2uuid: the MD5 of the name, as a uuid. */
static char *uuid_of(const char *name)
{
    g_autofree char *md5 = g_compute_checksum_for_string(G_CHECKSUM_MD5, name, -1);
    return g_strdup_printf("%.8s-%.4s-%.4s-%.4s-%.12s", md5, md5 + 8, md5 + 12, md5 + 16,
                           md5 + 20);
}

typedef struct {
    GHashTable *seen;              /* uuids inserted */
    Xv *subroles[DM_N_ROLES];      /* each role's permission refs */
    XapiError **err;
    int rc;
} Insert;

static int insert_row(const char *uuid, const char *name, const char *description,
                      Xv *subroles, bool internal, XapiError **err)
{
    g_autofree char *ref = g_strconcat("OpaqueRef:", uuid, NULL);
    DbRow *row = db_row_new_with_ref(dm_class_by_name("role"), ref);
    db_row_put(row, "uuid", xv_new_string(uuid));
    db_row_put(row, "name_label", xv_new_string(name));
    db_row_put(row, "name_description", xv_new_string(description));
    db_row_put(row, "subroles", subroles);
    db_row_put(row, "is_internal", xv_new_bool(internal));
    return db_insert(row, err);
}

static void insert_permission(const char *name, const char *spelling, unsigned roles, void *ctx)
{
    Insert *in = ctx;
    if (in->rc < 0)
        return;
    char *uuid = uuid_of(spelling);
    if (!g_hash_table_add(in->seen, uuid))
        return; /* two spellings of one name: one record */
    in->rc = insert_row(uuid, name, "A basic permission", xv_new_array(), true, in->err);
    g_autofree char *ref = g_strconcat("OpaqueRef:", uuid, NULL);
    for (unsigned r = 0; r < DM_N_ROLES; r++)
        if (roles & (1u << r))
            xv_array_append_string(in->subroles[r], ref);
}

int rbac_insert_role_records(XapiError **err)
{
    Insert in = {g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL), {0}, err, 0};
    for (unsigned r = 0; r < DM_N_ROLES; r++)
        in.subroles[r] = xv_new_array();
    rbac_foreach_permission(insert_permission, &in);
    for (unsigned r = 0; r < DM_N_ROLES; r++) {
        const char *name = dm_role_names[r];
        g_autofree char *uuid = strcmp(name, "pool-admin") == 0
                                    ? g_strdup("0165f154-ba3e-034e-6b27-5d271af109ba")
                                    : uuid_of(name);
        if (in.rc == 0)
            in.rc = insert_row(uuid, name, descriptions[r], in.subroles[r],
                               strcmp(name, "client-cert") == 0, err);
        else
            xv_free(in.subroles[r]);
    }
    g_hash_table_destroy(in.seen);
    return in.rc;
}
