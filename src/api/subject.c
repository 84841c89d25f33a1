/* subject.c: the subject class: users and groups of the external
 * authentication service allowed in, and the roles each holds. */
#include <string.h>

#include "call.h"
#include "db.h"
#include "dm_handlers.h"
#include "external_auth.h"
#include "local_accounts.h"
#include "rbac.h"

static const DmClass *subject_class(void) { return dm_class_by_name("subject"); }

static bool same_sid(DbRow *subject, void *ctx)
{
    const char **sid = ctx;
    if (strcmp(xv_str(db_get(subject, "subject_identifier")), *sid) != 0)
        return true;
    *sid = NULL;
    return false;
}

/* XAPI's subject.create: one subject per identifier; the record's
 * other_config and roles are not taken: other_config is what the service
 * says of the subject, roles start empty (XAPI with the RBAC feature). */
int xapi_subject_create(Call *call, const Xv *args, Xv **result)
{
    const Xv *given = xv_struct_get(args, "subject_identifier");
    const char *sid = given ? xv_str(given) : "";
    const char *probe = sid;
    db_read_begin();
    db_foreach(subject_class(), same_sid, &probe);
    db_read_end();
    if (!probe)
        return xapi_error_set(&call->error, "SUBJECT_ALREADY_EXISTS", NULL);
    if (external_auth_require(&call->error) < 0)
        return -1;
    g_autoptr(Xv) info = local_accounts_information(sid);
    if (!info)
        return xapi_error_set(&call->error, "SUBJECT_CANNOT_BE_RESOLVED", NULL);
    if (db_write_begin(&call->error) < 0)
        return -1;
    probe = sid; /* again, under the write lock */
    db_foreach(subject_class(), same_sid, &probe);
    if (!probe) {
        db_write_abort();
        return xapi_error_set(&call->error, "SUBJECT_ALREADY_EXISTS", NULL);
    }
    DbRow *row = db_row_new(subject_class());
    db_row_put(row, "subject_identifier", xv_new_string(sid));
    db_row_put(row, "other_config", g_steal_pointer(&info));
    db_row_put(row, "roles", xv_new_array());
    char *ref = db_insert_and_commit(row, &call->error);
    if (!ref)
        return -1;
    *result = xv_new_string_take(ref);
    return 0;
}

/* The index of role in the subject's roles, or -1. */
static int role_index(const DbRow *subject, const char *role)
{
    const Xv *roles = db_get(subject, "roles");
    for (guint i = 0; i < xv_len(roles); i++)
        if (strcmp(xv_str(xv_at(roles, i)), role) == 0)
            return (int)i;
    return -1;
}

static DbRow *subject_for_write(Call *call, const char *self)
{
    if (db_write_begin(&call->error) < 0)
        return NULL;
    DbRow *row = db_lookup(subject_class(), self);
    if (!row) {
        db_write_abort();
        xapi_error_set(&call->error, "HANDLE_INVALID", "subject", self, NULL);
    }
    return row;
}

int xapi_subject_add_to_roles(Call *call, const char *self, const char *role)
{
    DbRow *row = subject_for_write(call, self);
    if (!row)
        return -1;
    /* One of the seven roles: a single permission (a role record without
     * subroles in XAPI too) is not given to subjects here. */
    const DbRow *r = db_lookup(dm_class_by_name("role"), role);
    if (!r || !rbac_role_of_name(xv_str(db_get(r, "name_label")))) {
        db_write_abort();
        return xapi_error_set(&call->error, "ROLE_NOT_FOUND", NULL);
    }
    if (role_index(row, role) >= 0) {
        db_write_abort();
        return xapi_error_set(&call->error, "ROLE_ALREADY_EXISTS", NULL);
    }
    Xv *roles = xv_dup(db_get(row, "roles"));
    xv_array_append_string(roles, role);
    if (db_set_by_name(row, "roles", roles, &call->error) < 0) {
        db_write_abort();
        return -1;
    }
    return db_write_commit(&call->error);
}

int xapi_subject_remove_from_roles(Call *call, const char *self, const char *role)
{
    DbRow *row = subject_for_write(call, self);
    if (!row)
        return -1;
    int i = role_index(row, role);
    if (i < 0) {
        db_write_abort();
        return xapi_error_set(&call->error, "ROLE_NOT_FOUND", NULL);
    }
    Xv *roles = xv_dup(db_get(row, "roles"));
    xv_array_remove_at(roles, (guint)i);
    if (db_set_by_name(row, "roles", roles, &call->error) < 0) {
        db_write_abort();
        return -1;
    }
    return db_write_commit(&call->error);
}

/* The permissions of all its roles (not the roles' own names), as XAPI. */
int xapi_subject_get_permissions_name_label(Call *call, const char *self, Xv **result)
{
    unsigned mask = 0;
    db_read_begin();
    const DbRow *row = db_lookup(subject_class(), self);
    const Xv *roles = row ? db_get(row, "roles") : NULL;
    for (guint i = 0; i < xv_len(roles); i++) {
        const DbRow *role = db_lookup(dm_class_by_name("role"), xv_str(xv_at(roles, i)));
        if (role)
            mask |= rbac_role_of_name(xv_str(db_get(role, "name_label")));
    }
    db_read_end();
    if (!row)
        return xapi_error_set(&call->error, "HANDLE_INVALID", "subject", self, NULL);
    Xv *all = rbac_permissions_of_roles(mask);
    for (unsigned r = 0; r < DM_N_ROLES; r++)
        if (mask & (1u << r))
            xv_array_remove_at(all, 0);
    *result = all;
    return 0;
}
