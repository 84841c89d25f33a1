/* role.c: the role class's permission questions. xapid's roles are the
 * seven of XAPI, as records; their permissions (rbac.h) are names, not
 * role records as in XAPI, so the messages that answer with permission
 * refs (get_permissions, get_by_permission) are not served. */
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
