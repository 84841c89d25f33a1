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

/* Sets the three fields on one host (NULL: every host); write lock taken
 * and committed. */
static int set_hosts(const char *one, const char *type, const char *service, const Xv *config,
                     XapiError **err)
{
    if (db_write_begin(err) < 0)
        return -1;
    g_autoptr(GPtrArray) hosts = g_ptr_array_new();
    if (one) {
        DbRow *row = db_lookup(dm_class_by_name("host"), one);
        if (!row) {
            db_write_abort();
            return xapi_error_set(err, "HANDLE_INVALID", "host", one, NULL);
        }
        g_ptr_array_add(hosts, row);
    } else {
        db_foreach(dm_class_by_name("host"), collect, hosts);
    }
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
    return set_hosts(NULL, auth_type, service_name, config, err);
}

int external_auth_disable(XapiError **err)
{
    if (set_hosts(NULL, "", "", NULL, err) < 0)
        return -1;
    unsigned n = session_logout_external();
    if (n)
        g_message("external authentication off: %u sessions of subjects destroyed", n);
    return 0;
}

int external_auth_enable_host(const char *host, const Xv *config, const char *service_name,
                              const char *auth_type, XapiError **err)
{
    db_read_begin();
    const DbRow *row = db_lookup(dm_class_by_name("host"), host);
    g_autofree char *type = row ? g_strdup(xv_str(db_get(row, "external_auth_type"))) : NULL;
    g_autofree char *service =
        row ? g_strdup(xv_str(db_get(row, "external_auth_service_name"))) : NULL;
    db_read_end();
    if (!row)
        return xapi_error_set(err, "HANDLE_INVALID", "host", host, NULL);
    if (*type)
        return xapi_error_set(err, "AUTH_ALREADY_ENABLED", type, service, NULL);
    if (strcmp(auth_type, "PAM") != 0)
        return xapi_error_set(err, "AUTH_UNKNOWN_TYPE", auth_type, NULL);
    g_autofree char *why = NULL;
    if (!pam_login_available(&why))
        return xapi_error_set(err, "AUTH_ENABLE_FAILED", why, NULL);
    return set_hosts(host, auth_type, service_name, config, err);
}

int external_auth_disable_host(const char *host, XapiError **err)
{
    if (set_hosts(host, "", "", NULL, err) < 0)
        return -1;
    g_autofree char *me = bootstrap_this_host();
    if (strcmp(me, host) == 0)
        session_logout_external();
    return 0;
}
