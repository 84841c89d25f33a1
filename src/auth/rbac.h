/* rbac.h: XAPI's permissions (ocaml/xapi/rbac.ml, datamodel_roles.ml): a
 * message's is its lower-case wire name ("vm.start"), a protected map
 * key's is the add_to/remove_from message's with "/key:<key>"
 * ("vm.add_to_other_config/key:folder"), an HTTP action's "http/<name>";
 * which roles (DmRole masks) hold each, and what a session holds. */
#pragma once

#include <stdbool.h>

#include "call.h"
#include "datamodel.h"
#include "xv.h"

/* The roles at or above a role, as XAPI's _R_* shortcuts. */
#define RBAC_R_POOL_ADMIN (DM_ROLE_POOL_ADMIN)
#define RBAC_R_POOL_OP (RBAC_R_POOL_ADMIN | DM_ROLE_POOL_OPERATOR)
#define RBAC_R_VM_POWER_ADMIN (RBAC_R_POOL_OP | DM_ROLE_VM_POWER_ADMIN)
#define RBAC_R_VM_ADMIN (RBAC_R_VM_POWER_ADMIN | DM_ROLE_VM_ADMIN)
#define RBAC_R_VM_OP (RBAC_R_VM_ADMIN | DM_ROLE_VM_OPERATOR)
#define RBAC_R_READ_ONLY (RBAC_R_VM_OP | DM_ROLE_READ_ONLY)
#define RBAC_R_ALL_ROLES (RBAC_R_READ_ONLY | DM_ROLE_CLIENT_CERT)

/* Every permission the roles hold, the roles' own names first (XAPI's
 * session.rbac_permissions); a new array of shared static strings. */
Xv *rbac_permissions_of_roles(unsigned roles);

/* The roles named at the head of a session's rbac_permissions. */
unsigned rbac_roles_of_permissions(const Xv *permissions);

/* The roles holding a permission; 0 if there is no such permission. */
unsigned rbac_roles_of_permission(const char *permission);

/* The role mask of a role's name_label; 0 if none. */
unsigned rbac_role_of_name(const char *name);

/* The permission the call needs (its message's, or the protected key's
 * its "key" argument names) and the roles holding it. Caller frees. */
char *rbac_call_permission(const Call *call, unsigned *roles);

/* Whether msg is set_<map> of a field with protected keys. */
bool rbac_is_keyed_map_set(const DmMessage *msg);

/* For such a set_<map>: the first permission that replacing old by new
 * needs (adding or changing a protected key needs add_to's key
 * permission, removing one remove_from's) and that roles lack; NULL if
 * none (XAPI's Helpers.set_map_with_rbac). Caller frees. */
char *rbac_map_set_missing(const DmMessage *msg, const Xv *old, const Xv *new, unsigned roles,
                           unsigned *needed);

/* "No permission in user session. (Roles with this permission: ...)" and
 * RBAC_PERMISSION_DENIED [permission, that text] in *err. -1. */
int rbac_deny(XapiError **err, const char *permission, unsigned holders);

/* Calls each permission name (with XAPI's spelling of it, whose MD5 is
 * its uuid, and the roles holding it) in XAPI's order: messages,
 * protected keys, HTTP actions, extra ones. */
void rbac_foreach_permission(void (*fn)(const char *permission, const char *spelling,
                                        unsigned roles, void *ctx),
                             void *ctx);

/* XAPI's static roles as role records (gen_rbac.ml): a record per
 * permission (name_label its name, no subroles, internal), then the seven
 * roles, whose subroles are their permissions' refs. Refs are
 * OpaqueRef:<uuid>, uuids the MD5 of the name (pool-admin's fixed).
 * Write lock held. */
int rbac_insert_role_records(XapiError **err);
