/* external_auth.c: turning external authentication on and off, pool-wide
 * (the hosts' records are the pool's: one write covers them all). */
#include "external_auth.h"

#include <string.h>

#include "bootstrap.h"
#include "db.h"
#include "pam_login.h"
#include "session.h"

char *external_auth_type(void)
{
    g_autofree char *ref = bootstrap_this_host();
    db_read_begin();
    const DbRow *host = db_lookup(dm_class_by_name("host"), ref);
    char *type = g_strdup(host ? xv_str(db_get(host, "external_auth_type")) : "");
    db_read_end();
    return type;
}

int external_auth_require(XapiError **err)
{
    g_autofree char *type = external_auth_type();
    return *type ? 0 : xapi_error_set(err, "AUTH_IS_DISABLED", NULL);
}

static bool first_enabled(DbRow *host, void *ctx)
{
    if (!*xv_str(db_get(host, "external_auth_type")))
        return true;
    *(char **)ctx = g_strdup(host->ref);
    return false;
}

static bool collect(DbRow *row, void *ctx)
{
    g_ptr_array_add(ctx, row);
    return true;
}

/* Sets the three fields on every host; write lock taken and committed. */
static int set_all_hosts(const char *type, const char *service, const Xv *config,
                         XapiError **err)
{
    if (db_write_begin(err) < 0)
        return -1;
    g_autoptr(GPtrArray) hosts = g_ptr_array_new();
    db_foreach(dm_class_by_name("host"), collect, hosts);
    for (guint i = 0; i < hosts->len; i++) {
        DbRow *h = hosts->pdata[i];
        if (db_set_by_name(h, "external_auth_type", xv_new_string(type), err) < 0 ||
            db_set_by_name(h, "external_auth_service_name", xv_new_string(service), err) < 0 ||
            db_set_by_name(h, "external_auth_configuration",
                           config ? xv_dup(config) : xv_new_struct(), err) < 0) {
            db_write_abort();
            return -1;
        }
    }
    return db_write_commit(err);
}

int external_auth_enable(const Xv *config, const char *service_name, const char *auth_type,
                         XapiError **err)
{
    g_autofree char *enabled = NULL;
    db_read_begin();
    db_foreach(dm_class_by_name("host"), first_enabled, &enabled);
    db_read_end();
    if (enabled)
        return xapi_error_set(err, "POOL_AUTH_ALREADY_ENABLED", enabled, NULL);
    if (strcmp(auth_type, "PAM") != 0)
        return xapi_error_set(err, "AUTH_UNKNOWN_TYPE", auth_type, NULL);
    g_autofree char *why = NULL;
    if (!pam_login_available(&why)) {
        g_autofree char *host = bootstrap_this_host();
        return xapi_error_set(err, "POOL_AUTH_ENABLE_FAILED", host, why, NULL);
    }
    return set_all_hosts(auth_type, service_name, config, err);
}

int external_auth_disable(XapiError **err)
{
    if (set_all_hosts("", "", NULL, err) < 0)
        return -1;
    unsigned n = session_logout_external();
    if (n)
        g_message("external authentication off: %u sessions of subjects destroyed", n);
    return 0;
}
