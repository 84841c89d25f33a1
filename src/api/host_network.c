/* host_network.c: host.management_reconfigure and management_disable
 * (XAPI's xapi_host.ml): the management interface moves to a PIF only once
 * its address is seen up, else everything is put back; disabled, the
 * management listeners stop (http_server.c) and no PIF is management, as
 * STATE_DIR/management-disabled remembers across restarts (XAPI's
 * inventory MANAGEMENT_INTERFACE=""). */
#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

#include "bootstrap.h"
#include "call.h"
#include "dm_handlers.h"
#include "host.h"
#include "http_server.h"
#include "pool_role.h"
#include "pif_checks.h"
#include "pif_host.h"
#include "vm_nics.h"

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

static const char *str_field(const DbRow *row, const char *field)
{
    return xv_str(db_get(row, field));
}

/* XAPI's assert_usable_for_management. */
static int check_usable(Call *call, const DbRow *pif)
{
    if (!db_get(pif, "managed")->b)
        return 0;
    if (pif_checks_is_bond_slave(pif))
        return xapi_error_set(&call->error, "CANNOT_PLUG_BOND_SLAVE", pif->ref, NULL);
    if (strcmp(str_field(pif, "ip_configuration_mode"), "None") == 0)
        return xapi_error_set(&call->error, "PIF_HAS_NO_NETWORK_CONFIGURATION", pif->ref, NULL);
    return 0;
}

/* PIF.management true exactly on pif among host's PIFs (XAPI's
 * update_management_flags), and the host's address its IP. */
static int move_flags(Call *call, DbRow *host, DbRow *pif)
{
    const Xv *pifs = db_get(host, "PIFs");
    for (guint i = 0; i < xv_len(pifs); i++) {
        DbRow *p = db_lookup(cls("PIF"), xv_str(xv_at(pifs, i)));
        bool want = p == pif;
        if (p && db_get(p, "management")->b != want &&
            db_set_by_name(p, "management", xv_new_bool(want), &call->error) < 0)
            return -1;
    }
    const char *ip = str_field(pif, "IP");
    if (*ip && db_set_by_name(host, "address", xv_new_string(ip), &call->error) < 0)
        return -1;
    return 0;
}

/* ---- the management listeners, on or off ------------------------------------ */

#define MANAGEMENT_OFF_FILE "management-disabled"

static char *off_path(const char *state_dir)
{
    return g_build_filename(state_dir, MANAGEMENT_OFF_FILE, NULL);
}

bool host_management_disabled(const char *state_dir)
{
    g_autofree char *path = off_path(state_dir);
    return g_file_test(path, G_FILE_TEST_EXISTS);
}

/* The listeners follow enabled, and the state file remembers it. */
static int set_management(bool enabled, XapiError **err)
{
    g_autofree char *path = off_path(pool_state_dir());
    g_autoptr(GError) gerr = NULL;
    if (!enabled && !g_file_set_contents(path, "", 0, &gerr))
        return xapi_error_internal(err, "%s: %s", path, gerr->message);
    if (http_server_set_management(enabled, err) < 0) {
        if (!enabled)
            g_unlink(path);
        return -1;
    }
    if (enabled && g_unlink(path) < 0 && errno != ENOENT)
        return xapi_error_internal(err, "%s: %s", path, g_strerror(errno));
    return 0;
}

static int management_reconfigure(Call *call, const char *pif_ref);

int xapi_host_management_reconfigure(Call *call, const char *pif_ref)
{
    /* Running VIFs on the NIC's macvtaps move onto its bridge. */
    VmNicSwitch *sw = NULL;
    if (vm_nics_switch_begin(pif_ref, true, &sw, &call->error) < 0)
        return -1;
    int rc = management_reconfigure(call, pif_ref);
    vm_nics_switch_end(sw);
    /* XAPI's Xapi_mgmt_iface.run ~mgmt_enabled:true: listening again. */
    if (rc == 0 && !http_server_management_enabled())
        rc = set_management(true, &call->error);
    return rc;
}

static bool note_ha(DbRow *pool, void *ctx)
{
    *(bool *)ctx = db_get(pool, "ha_enabled")->b;
    return false;
}

/* XAPI's management_disable: refused under HA and on a member (which
 * reaches its master through it); then the listeners, then the flags (the
 * host's address stays, as XAPI's). */
int xapi_host_management_disable(Call *call)
{
    bool ha = false;
    db_read_begin();
    db_foreach(cls("pool"), note_ha, &ha);
    db_read_end();
    if (ha)
        return xapi_error_set(&call->error, "HA_IS_ENABLED", NULL);
    if (pool_is_member())
        return xapi_error_set(&call->error, "SLAVE_REQUIRES_MANAGEMENT_INTERFACE", NULL);
    bool was_enabled = http_server_management_enabled();
    if (set_management(false, &call->error) < 0)
        return -1;
    g_autofree char *this_host = bootstrap_this_host();
    DbRow *host = db_write_begin_on("host", this_host, &call->error);
    if (!host)
        goto undo;
    const Xv *pifs = db_get(host, "PIFs");
    for (guint i = 0; i < xv_len(pifs); i++) {
        DbRow *p = db_lookup(cls("PIF"), xv_str(xv_at(pifs, i)));
        if (p && db_get(p, "management")->b &&
            db_set_by_name(p, "management", xv_new_bool(false), &call->error) < 0) {
            db_write_abort();
            goto undo;
        }
    }
    if (db_write_commit(&call->error) == 0)
        return 0;
undo:
    if (was_enabled && set_management(true, NULL) < 0)
        g_warning("host.management_disable: the listeners could not be put back");
    return -1;
}

static int management_reconfigure(Call *call, const char *pif_ref)
{
    DbRow *pif = db_write_begin_on("PIF", pif_ref, &call->error);
    if (!pif)
        return -1;
    g_autofree char *this_host = bootstrap_this_host();
    DbRow *host = db_lookup(cls("host"), this_host);
    int rc = 0;
    if (!host || strcmp(str_field(pif, "host"), this_host) != 0)
        rc = xapi_error_set(&call->error, "OPERATION_NOT_ALLOWED",
                            "the PIF is not on this host", NULL);
    if (rc == 0)
        rc = check_usable(call, pif);
    /* Already the management PIF: XAPI takes no action. */
    if (rc == 0 && !db_get(pif, "management")->b) {
        rc = pif_host_take_management(pif, &call->error);
        if (rc == 0)
            rc = move_flags(call, host, pif);
    }
    if (rc < 0) {
        db_write_abort();
        return -1;
    }
    return db_write_commit(&call->error);
}
