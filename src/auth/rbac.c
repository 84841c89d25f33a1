/* rbac.c: permissions and the roles holding them: one per message (the
 * roles the datamodel gives it), per protected map key (XAPI's
 * map_keys_roles, after XSA-489), per HTTP action (http_actions.c), and
 * XAPI's extra task.destroy/any. */
#include "rbac.h"

#include <string.h>

#include "http_actions.h"

/* XAPI's map_keys_roles: keys of a map field that add_to_/remove_from_
 * (and set_) guard with their own permission. A key ending in '*' covers
 * every key it begins. In XAPI's order: the first match names the
 * permission. (ocaml/idl/datamodel.ml, datamodel_vm.ml, datamodel_host.ml,
 * datamodel_pool.ml) */
typedef struct {
    const char *cls, *field, *key;
    unsigned roles;
} KeyRole;

static const KeyRole key_roles[] = {
    {"task", "other_config", "applies_to", RBAC_R_VM_OP},
    {"task", "other_config", "XenCenterUUID", RBAC_R_VM_OP},
    {"task", "other_config", "XenCenterMeddlingActionTitle", RBAC_R_VM_OP},
    {"network", "other_config", "folder", RBAC_R_VM_OP},
    {"network", "other_config", "XenCenter.CustomFields.*", RBAC_R_VM_OP},
    {"network", "other_config", "XenCenterCreateInProgress", RBAC_R_VM_OP},
    {"SR", "other_config", "folder", RBAC_R_VM_OP},
    {"SR", "other_config", "XenCenter.CustomFields.*", RBAC_R_VM_OP},
    {"VDI", "other_config", "folder", RBAC_R_VM_OP},
    {"VDI", "other_config", "XenCenter.CustomFields.*", RBAC_R_VM_OP},
    {"host", "other_config", "folder", RBAC_R_VM_OP},
    {"host", "other_config", "XenCenter.CustomFields.*", RBAC_R_VM_OP},
    {"pool", "other_config", "folder", RBAC_R_VM_OP},
    {"pool", "other_config", "XenCenter.CustomFields.*", RBAC_R_VM_OP},
    {"pool", "other_config", "EMPTY_FOLDERS", RBAC_R_VM_OP},
    {"VM", "other_config", "pci", RBAC_R_POOL_ADMIN},
    {"VM", "other_config", "hvm_serial", RBAC_R_POOL_ADMIN},
    {"VM", "other_config", "folder", RBAC_R_VM_OP},
    {"VM", "other_config", "XenCenter.CustomFields.*", RBAC_R_VM_OP},
    {"VM", "platform", "hvm_serial", RBAC_R_POOL_ADMIN},
};

typedef struct {
    char *name;     /* lower case, for ever */
    char *spelling; /* as XAPI spells it where it hashes it for a uuid */
    unsigned roles;
} Permission;

static struct {
    GArray *all;                /* Permission, XAPI's order */
    GHashTable *by_name;        /* name -> Permission index + 1 */
    GHashTable *message_names;  /* DmMessage* -> its permission name */
} table;

static void add_permission(char *name, char *spelling, unsigned roles)
{
    Permission p = {name, spelling, roles};
    g_array_append_val(table.all, p);
    g_hash_table_insert(table.by_name, name, GUINT_TO_POINTER(table.all->len));
}

/* The keyed field add_to_<f>, remove_from_<f> or set_<f> (op) of cls, or NULL. */
static const char *keyed_field(const DmMessage *msg, const char **op)
{
    static const char *const ops[] = {"add_to_", "remove_from_", "set_"};
    if (!msg->cls)
        return NULL;
    for (unsigned o = 0; o < G_N_ELEMENTS(ops); o++) {
        if (!g_str_has_prefix(msg->name, ops[o]))
            continue;
        const char *field = msg->name + strlen(ops[o]);
        for (unsigned k = 0; k < G_N_ELEMENTS(key_roles); k++)
            if (strcmp(key_roles[k].cls, msg->cls->name) == 0 &&
                strcmp(key_roles[k].field, field) == 0) {
                if (op)
                    *op = ops[o];
                return key_roles[k].field;
            }
    }
    return NULL;
}

static char *key_permission_name(const char *cls_lower, const char *op, const char *field,
                                 const char *key)
{
    g_autofree char *lower_key = g_ascii_strdown(key, -1);
    return g_strdup_printf("%s.%s%s/key:%s", cls_lower, op, field, lower_key);
}

static gpointer build_table(gpointer unused)
{
    (void)unused;
    table.all = g_array_new(FALSE, FALSE, sizeof(Permission));
    table.by_name = g_hash_table_new(g_str_hash, g_str_equal);
    table.message_names = g_hash_table_new(g_direct_hash, g_direct_equal);
    DM_FOREACH_MESSAGE(cls, msg)
    {
        char *name = g_ascii_strdown(msg->wire_name, -1);
        g_hash_table_insert(table.message_names, (gpointer)msg, name);
        add_permission(name, (char *)msg->wire_name, msg->roles);
    }
    DM_FOREACH_MESSAGE(cls, msg)
    {
        const char *op = NULL;
        const char *field = keyed_field(msg, &op);
        if (!field || strcmp(op, "set_") == 0)
            continue;
        for (unsigned k = 0; k < G_N_ELEMENTS(key_roles); k++)
            if (strcmp(key_roles[k].cls, cls->name) == 0 &&
                strcmp(key_roles[k].field, field) == 0)
                add_permission(key_permission_name(cls->lower, op, field, key_roles[k].key),
                               g_strdup_printf("%s.%s%s/key:%s", cls->name, op, field,
                                               key_roles[k].key),
                               key_roles[k].roles);
    }
    for (unsigned i = 0; http_action_at(i); i++)
        add_permission(g_ascii_strdown(http_action_at(i)->wire_name, -1),
                       (char *)http_action_at(i)->wire_name, http_action_at(i)->roles);
    /* XAPI's extra_permissions, of no message */
    add_permission(g_strdup("task.destroy/any"), "task.destroy/any", RBAC_R_POOL_OP);
    return NULL;
}

static void ensure_table(void)
{
    static GOnce once = G_ONCE_INIT;
    g_once(&once, build_table, NULL);
}

void rbac_foreach_permission(void (*fn)(const char *permission, const char *spelling,
                                        unsigned roles, void *ctx),
                             void *ctx)
{
    ensure_table();
    for (guint i = 0; i < table.all->len; i++) {
        const Permission *p = &g_array_index(table.all, Permission, i);
        fn(p->name, p->spelling, p->roles, ctx);
    }
}

Xv *rbac_permissions_of_roles(unsigned roles)
{
    ensure_table();
    Xv *out = xv_new_array();
    for (unsigned r = 0; r < DM_N_ROLES; r++)
        if (roles & (1u << r))
            xv_array_append(out, xv_new_static_string(dm_role_names[r]));
    for (guint i = 0; i < table.all->len; i++) {
        const Permission *p = &g_array_index(table.all, Permission, i);
        if (p->roles & roles)
            xv_array_append(out, xv_new_static_string(p->name));
    }
    return out;
}

unsigned rbac_role_of_name(const char *name)
{
    for (unsigned r = 0; r < DM_N_ROLES; r++)
        if (strcmp(name, dm_role_names[r]) == 0)
            return 1u << r;
    return 0;
}

unsigned rbac_roles_of_permissions(const Xv *permissions)
{
    unsigned roles = 0;
    for (guint i = 0; i < xv_len(permissions) && i < DM_N_ROLES; i++) {
        unsigned r = rbac_role_of_name(xv_str(xv_at(permissions, i)));
        if (!r)
            break;
        roles |= r;
    }
    return roles;
}

unsigned rbac_roles_of_permission(const char *permission)
{
    ensure_table();
    guint i = GPOINTER_TO_UINT(g_hash_table_lookup(table.by_name, permission));
    return i ? g_array_index(table.all, Permission, i - 1).roles : 0;
}

/* The protected key of cls.field that key falls under, or NULL. */
static const KeyRole *protected_key(const DmClass *cls, const char *field, const char *key)
{
    for (unsigned k = 0; k < G_N_ELEMENTS(key_roles); k++) {
        const KeyRole *kr = &key_roles[k];
        if (strcmp(kr->cls, cls->name) != 0 || strcmp(kr->field, field) != 0)
            continue;
        size_t n = strlen(kr->key);
        if (n && kr->key[n - 1] == '*' ? strncmp(kr->key, key, n - 1) == 0
                                       : strcmp(kr->key, key) == 0)
            return kr;
    }
    return NULL;
}

static int key_param(const DmMessage *msg)
{
    for (unsigned i = 0; i < msg->n_params; i++)
        if (strcmp(msg->params[i].name, "key") == 0)
            return (int)i;
    return -1;
}

char *rbac_call_permission(const Call *call, unsigned *roles)
{
    const DmMessage *msg = call->msg;
    const char *op = NULL;
    const char *field = call->args ? keyed_field(msg, &op) : NULL;
    int k = field && strcmp(op, "set_") != 0 ? key_param(msg) : -1;
    const KeyRole *kr = NULL;
    if (k >= 0 && (guint)k < xv_len(call->args)) {
        const char *key = xv_str(call_arg(call, (unsigned)k));
        kr = key ? protected_key(msg->cls, field, key) : NULL;
    }
    if (kr) {
        *roles = kr->roles;
        return key_permission_name(msg->cls->lower, op, field, kr->key);
    }
    *roles = msg->roles;
    if (!msg->cls) /* an HTTP action */
        return g_ascii_strdown(msg->wire_name, -1);
    ensure_table();
    return g_strdup(g_hash_table_lookup(table.message_names, msg));
}

bool rbac_is_keyed_map_set(const DmMessage *msg)
{
    const char *op = NULL;
    return keyed_field(msg, &op) && strcmp(op, "set_") == 0;
}

/* The permission op needs for key of msg's field, if protected and not held. */
static char *missing_for_key(const DmMessage *msg, const char *op, const char *key,
                             unsigned roles, unsigned *needed)
{
    const char *field = msg->name + strlen("set_");
    const KeyRole *kr = protected_key(msg->cls, field, key);
    if (!kr || (kr->roles & roles))
        return NULL;
    *needed = kr->roles;
    return key_permission_name(msg->cls->lower, op, field, kr->key);
}

char *rbac_map_set_missing(const DmMessage *msg, const Xv *old, const Xv *new, unsigned roles,
                           unsigned *needed)
{
    for (guint i = 0; i < xv_len(new); i++) {
        const XvMember *m = xv_member_at(new, i);
        const Xv *before = old ? xv_struct_get(old, m->key) : NULL;
        if (before && xv_equal(before, &m->value))
            continue; /* kept as it was: no right needed */
        char *missing = missing_for_key(msg, "add_to_", m->key, roles, needed);
        if (missing)
            return missing;
    }
    for (guint i = 0; i < xv_len(old); i++) {
        const XvMember *m = xv_member_at(old, i);
        if (xv_struct_get(new, m->key))
            continue;
        char *missing = missing_for_key(msg, "remove_from_", m->key, roles, needed);
        if (missing)
            return missing;
    }
    return NULL;
}

int rbac_deny(XapiError **err, const char *permission, unsigned holders)
{
    GString *names = g_string_new(NULL);
    for (unsigned r = 0; r < DM_N_ROLES; r++)
        if (holders & (1u << r))
            g_string_append_printf(names, "%s%s", names->len ? ", " : "", dm_role_names[r]);
    g_autofree char *text = g_strdup_printf(
        "No permission in user session. (Roles with this permission: %s)", names->str);
    g_string_free(names, TRUE);
    return xapi_error_set(err, "RBAC_PERMISSION_DENIED", permission, text, NULL);
}
