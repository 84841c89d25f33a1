/* bond.c: Bond.create, destroy, set_mode and set_property (XAPI's
 * xapi_bond.ml): XAPI's checks, then the bond's link (the kernel's bonding,
 * or xapid's own: src/network/vlan_bond.c). */
#include <string.h>

#include "mac_address.h"
#include "call.h"
#include "dm_handlers.h"
#include "pif_checks.h"
#include "vlan_bond.h"

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

static const char *str_field(const DbRow *row, const char *field)
{
    return xv_str(db_get(row, field));
}

/* ---- properties (XAPI's requirements_of_mode, map_check.ml) ------------------------- */

static bool one_of(const char *v, const char *a, const char *b)
{
    return strcmp(v, a) == 0 || strcmp(v, b) == 0;
}

/* Whether key = value is a valid property of mode. */
static bool valid_property(const char *mode, const char *key, const char *value)
{
    if (strcmp(mode, "lacp") != 0)
        return false;
    if (strcmp(key, "hashing_algorithm") == 0)
        return one_of(value, "src_mac", "tcpudp_ports");
    if (strcmp(key, "lacp-time") == 0)
        return one_of(value, "fast", "slow");
    if (strcmp(key, "lacp-fallback-ab") == 0)
        return one_of(value, "true", "false");
    if (strcmp(key, "lacp-aggregation-key") == 0) {
        gint64 n;
        return g_ascii_string_to_signed(value, 10, G_MININT64, G_MAXINT64, &n, NULL);
    }
    return false;
}

static int property_error(Call *call, const char *key, const char *value)
{
    g_autofree char *kv = g_strdup_printf("%s = %s", key, value);
    return xapi_error_set(&call->error, "INVALID_VALUE", "properties", kv, NULL);
}

/* What XAPI accepts but Linux bonding cannot do is refused (no 802.3ad
 * fallback switch; ad_user_port_key holds 10 bits). */
static int enforceable_property(Call *call, const char *key, const char *value)
{
    if (strcmp(key, "lacp-fallback-ab") == 0 && strcmp(value, "false") == 0)
        return xapi_error_set(&call->error, "OPERATION_NOT_ALLOWED",
                              "Linux bonding always falls back to one link without an LACP "
                              "partner: lacp-fallback-ab=false cannot be honoured",
                              NULL);
    if (strcmp(key, "lacp-aggregation-key") == 0) {
        gint64 n = g_ascii_strtoll(value, NULL, 10);
        if (n < 0 || n > 1023)
            return xapi_error_set(&call->error, "OPERATION_NOT_ALLOWED",
                                  "lacp-aggregation-key must be 0-1023 (Linux's "
                                  "ad_user_port_key)",
                                  NULL);
    }
    return 0;
}

static int check_properties(Call *call, const char *mode, const Xv *properties)
{
    for (guint i = 0; i < xv_len(properties); i++) {
        const XvMember *m = xv_member_at(properties, i);
        const char *value = xv_str(&m->value);
        if (!valid_property(mode, m->key, value))
            return property_error(call, m->key, value);
        if (enforceable_property(call, m->key, value) < 0)
            return -1;
    }
    return 0;
}

/* The properties with XAPI's defaults for the mode (add_defaults). */
static Xv *with_defaults(const char *mode, const Xv *given)
{
    Xv *props = xv_new_struct();
    for (guint i = 0; i < xv_len(given); i++) {
        const XvMember *m = xv_member_at(given, i);
        if (valid_property(mode, m->key, xv_str(&m->value)))
            xv_struct_set_string(props, m->key, xv_str(&m->value));
    }
    if (strcmp(mode, "lacp") == 0) {
        static const char *const defaults[][2] = {{"hashing_algorithm", "tcpudp_ports"},
                                                  {"lacp-time", "slow"},
                                                  {"lacp-fallback-ab", "true"}};
        for (unsigned i = 0; i < G_N_ELEMENTS(defaults); i++)
            if (!xv_struct_get(props, defaults[i][0]))
                xv_struct_set_string(props, defaults[i][0], defaults[i][1]);
    }
    return props;
}

/* ---- Bond.create ----------------------------------------------------------------- */

static bool has_ip_configuration(const DbRow *pif)
{
    return strcmp(str_field(pif, "ip_configuration_mode"), "None") != 0;
}

/* Each member as XAPI checks it (managed, bond_is_allowed_on_pif); the
 * management PIF is refused since xapid does not move the management
 * address onto a bond; VLANs and running guests on a member's network
 * would be moved by XAPI and are refused here. */
static int check_member(Call *call, DbRow *pif)
{
    if (pif_checks_managed(call, pif) < 0 || pif_checks_not_in_bond(call, pif) < 0)
        return -1;
    if (db_get(pif, "VLAN")->i >= 0)
        return xapi_error_set(&call->error, "PIF_VLAN_EXISTS", str_field(pif, "device"), NULL);
    if (pif_checks_not_management(call, pif) < 0)
        return -1;
    if (xv_len(db_get(pif, "VLAN_slave_of")))
        return xapi_error_set(&call->error, "PIF_VLAN_STILL_EXISTS", pif->ref, NULL);
    DbRow *net = db_lookup(cls("network"), str_field(pif, "network"));
    return net ? pif_checks_no_vif_in_use(call, net) : 0;
}

/* The members, each once, checked; NULL with the error set. */
static GPtrArray *checked_members(Call *call, const Xv *members)
{
    g_autoptr(GPtrArray) rows = g_ptr_array_new();
    for (guint i = 0; i < xv_len(members); i++) {
        DbRow *p = pif_checks_row(call, "PIF", xv_str(xv_at(members, i)));
        if (!p)
            return NULL;
        if (!g_ptr_array_find(rows, p, NULL))
            g_ptr_array_add(rows, p);
    }
    for (guint i = 0; i < rows->len; i++)
        if (check_member(call, rows->pdata[i]) < 0)
            return NULL;
    int with_ip = 0;
    for (guint i = 0; i < rows->len; i++) {
        DbRow *p = rows->pdata[i];
        if (strcmp(str_field(p, "host"), str_field(rows->pdata[0], "host")) != 0) {
            xapi_error_set(&call->error, "PIF_CANNOT_BOND_CROSS_HOST", NULL);
            return NULL;
        }
        if (!xv_equal(db_get(p, "properties"), db_get(rows->pdata[0], "properties"))) {
            xapi_error_set(&call->error, "INCOMPATIBLE_PIF_PROPERTIES", NULL);
            return NULL;
        }
        if (strcmp(str_field(p, "primary_address_type"),
                   str_field(rows->pdata[0], "primary_address_type")) != 0) {
            xapi_error_set(&call->error, "PIF_INCOMPATIBLE_PRIMARY_ADDRESS_TYPE", p->ref, NULL);
            return NULL;
        }
        with_ip += has_ip_configuration(p);
    }
    if (with_ip > 1) {
        xapi_error_set(&call->error, "PIF_BOND_MORE_THAN_ONE_IP", NULL);
        return NULL;
    }
    return g_steal_pointer(&rows);
}

/* XAPI's primary slave: the first member with IP configuration, else the
 * first member (the management PIF is never a member here). */
static DbRow *primary_slave(GPtrArray *members)
{
    for (guint i = 0; i < members->len; i++)
        if (has_ip_configuration(members->pdata[i]))
            return members->pdata[i];
    return members->pdata[0];
}

static char *create_locked(Call *call, const char *network, const Xv *members, const char *MAC,
                           const char *mode, const Xv *properties)
{
    DbRow *net = pif_checks_row(call, "network", network);
    if (!net || pif_checks_network_managed(call, net) < 0)
        return NULL;
    if (!xv_len(members)) {
        xapi_error_set(&call->error, "PIF_BOND_NEEDS_MORE_MEMBERS", NULL);
        return NULL;
    }
    DbRow *first = pif_checks_row(call, "PIF", xv_str(xv_at(members, 0)));
    if (!first || pif_checks_no_local_pif(call, net, str_field(first, "host")) < 0)
        return NULL;
    if (*MAC && !mac_address_valid(MAC)) {
        xapi_error_set(&call->error, "MAC_INVALID", MAC, NULL);
        return NULL;
    }
    if (!vlan_bond_linux_mode(mode)) {
        xapi_error_set(&call->error, "INVALID_VALUE", "mode", mode, NULL);
        return NULL;
    }
    if (check_properties(call, mode, properties) < 0)
        return NULL;
    g_autoptr(GPtrArray) rows = checked_members(call, members);
    if (!rows)
        return NULL;
    g_autoptr(Xv) props = with_defaults(mode, properties);
    return vlan_bond_bond_create(net, rows, primary_slave(rows), MAC, mode, props, &call->error);
}

int xapi_Bond_create(Call *call, const char *network, const Xv *members, const char *MAC,
                     const char *mode, const Xv *properties, Xv **result)
{
    if (db_write_begin(&call->error) < 0)
        return -1;
    char *bond = create_locked(call, network, members, MAC, mode, properties);
    if (db_write_finish(&call->error, bond ? 0 : -1) < 0) {
        g_free(bond);
        return -1;
    }
    *result = xv_new_string_take(bond);
    return 0;
}

int xapi_Bond_destroy(Call *call, const char *self)
{
    DbRow *bond = db_write_begin_on("Bond", self, &call->error);
    if (!bond)
        return -1;
    DbRow *master = db_lookup(cls("PIF"), str_field(bond, "master"));
    int rc = 0;
    if (master) {
        DbRow *net = db_lookup(cls("network"), str_field(master, "network"));
        if (pif_checks_not_management(call, master) < 0 ||
            (net && pif_checks_no_vif_in_use(call, net) < 0))
            rc = -1;
        else if (xv_len(db_get(master, "VLAN_slave_of")))
            rc = xapi_error_set(&call->error, "PIF_VLAN_STILL_EXISTS", master->ref, NULL);
    }
    if (rc == 0)
        rc = vlan_bond_bond_destroy(bond, &call->error);
    return db_write_finish(&call->error, rc);
}

int xapi_Bond_set_mode(Call *call, const char *self, const char *value)
{
    DbRow *bond = db_write_begin_on("Bond", self, &call->error);
    if (!bond)
        return -1;
    if (!vlan_bond_linux_mode(value)) {
        xapi_error_set(&call->error, "INVALID_VALUE", "mode", value, NULL);
        return db_write_finish(&call->error, -1);
    }
    /* Properties that do not fit the new mode go; its defaults come. */
    g_autoptr(Xv) props = with_defaults(value, db_get(bond, "properties"));
    int rc = db_set_by_name(bond, "mode", xv_new_string(value), &call->error);
    if (rc == 0)
        rc = db_set_by_name(bond, "properties", g_steal_pointer(&props), &call->error);
    if (rc == 0)
        rc = vlan_bond_bond_reconfigure(bond, &call->error);
    return db_write_finish(&call->error, rc);
}

int xapi_Bond_set_property(Call *call, const char *self, const char *name, const char *value)
{
    DbRow *bond = db_write_begin_on("Bond", self, &call->error);
    if (!bond)
        return -1;
    const char *mode = str_field(bond, "mode");
    if (!valid_property(mode, name, value)) {
        property_error(call, name, value);
        return db_write_finish(&call->error, -1);
    }
    if (enforceable_property(call, name, value) < 0)
        return db_write_finish(&call->error, -1);
    g_autoptr(Xv) props = xv_dup(db_get(bond, "properties"));
    xv_struct_set_string(props, name, value);
    int rc = db_set_by_name(bond, "properties", g_steal_pointer(&props), &call->error);
    if (rc == 0)
        rc = vlan_bond_bond_reconfigure(bond, &call->error);
    return db_write_finish(&call->error, rc);
}
