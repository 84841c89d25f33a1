/* role.c: the role class's permission questions. As in XAPI, the role
 * records are the seven roles and one per permission (a role without
 * subroles); a role's permissions are its subroles (rbac.h). */
#include <string.h>

#include "call.h"
#include "db.h"
#include "dm_handlers.h"
#include "rbac.h"

int xapi_role_get_permissions_name_label(Call *call, const char *self, Xv **result)
{
    db_read_begin();
    const DbRow *row = db_lookup(dm_class_by_name("role"), self);
    unsigned mask = row ? rbac_role_of_name(xv_str(db_get(row, "name_label"))) : 0;
    db_read_end();
    if (!row)
        return xapi_error_set(&call->error, "HANDLE_INVALID", "role", self, NULL);
    Xv *all = rbac_permissions_of_roles(mask);
    if (mask)
        xv_array_remove_at(all, 0); /* the role's own name */
    *result = all;
    return 0;
}

typedef struct {
    unsigned holders;
    Xv *refs;
} Holders;

static bool add_holder(DbRow *role, void *ctx)
{
    Holders *h = ctx;
    if (rbac_role_of_name(xv_str(db_get(role, "name_label"))) & h->holders)
        xv_array_append_string(h->refs, role->ref);
    return true;
}

int xapi_role_get_by_permission_name_label(Call *call, const char *label, Xv **result)
{
    Holders h = {rbac_roles_of_permission(label), xv_new_array()};
    db_read_begin();
    db_foreach(dm_class_by_name("role"), add_holder, &h);
    db_read_end();
    *result = h.refs;
    return 0;
}

int xapi_role_get_permissions(Call *call, const char *self, Xv **result)
{
    db_read_begin();
    const DbRow *row = db_lookup(dm_class_by_name("role"), self);
    Xv *subroles = row ? xv_dup(db_get(row, "subroles")) : NULL;
    db_read_end();
    if (!row)
        return xapi_error_set(&call->error, "HANDLE_INVALID", "role", self, NULL);
    *result = subroles;
    return 0;
}

int xapi_role_get_by_permission(Call *call, const char *permission, Xv **result)
{
    db_read_begin();
    const DbRow *row = db_lookup(dm_class_by_name("role"), permission);
    Holders h = {row ? rbac_roles_of_permission(xv_str(db_get(row, "name_label"))) : 0,
                 xv_new_array()};
    db_foreach(dm_class_by_name("role"), add_holder, &h);
    db_read_end();
    if (!row) {
        xv_free(h.refs);
        return xapi_error_set(&call->error, "HANDLE_INVALID", "role", permission, NULL);
    }
    *result = h.refs;
    return 0;
}
