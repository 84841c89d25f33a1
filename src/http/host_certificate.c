/* host_certificate.c: the host certificate's file, listeners and record,
 * changed together under one lock: a new certificate is written (whole,
 * atomically), then served from the next connection on, then recorded. */
#include "host_certificate.h"

#include <string.h>

#include "bootstrap.h"
#include "db.h"
#include "http_server.h"
#include "pool_role.h"
#include "tls_cert.h"

static struct {
    GMutex lock;
    char *state_dir;
} hc;

static const DmClass *certificate_class(void) { return dm_class_by_name("Certificate"); }

typedef struct {
    const char *host;
    GPtrArray *rows; /* DbRow*: this host's type-host records */
} HostRows;

static bool take_host_rows(DbRow *row, void *ctx)
{
    HostRows *h = ctx;
    if (strcmp(xv_str(db_get(row, "type")), "host") == 0 &&
        strcmp(xv_str(db_get(row, "host")), h->host) == 0)
        g_ptr_array_add(h->rows, row);
    return true;
}

/* The record of the certificate in cert_pem replaces the host's others,
 * as XAPI's replace_host_certificate does. A member's records are the
 * master's to write: left alone there. */
static int record(const char *cert_pem, XapiError **err)
{
    if (pool_is_member())
        return 0;
    TlsCertFacts facts;
    if (tls_cert_facts(cert_pem, &facts, err) < 0)
        return -1;
    if (db_write_begin(err) < 0)
        return -1;
    g_autofree char *host = bootstrap_this_host();
    g_autoptr(GPtrArray) rows = g_ptr_array_new();
    HostRows h = {host, rows};
    db_foreach(certificate_class(), take_host_rows, &h);
    bool current = false;
    for (guint i = 0; i < rows->len; i++) {
        DbRow *row = rows->pdata[i];
        if (!current && strcmp(xv_str(db_get(row, "fingerprint")), facts.fingerprint) == 0) {
            current = true;
            continue;
        }
        if (db_delete(row, err) < 0) {
            db_write_abort();
            return -1;
        }
    }
    if (!current) {
        DbRow *row = db_row_new(certificate_class());
        db_row_put(row, "name", xv_new_string(""));
        db_row_put(row, "type", xv_new_static_string("host"));
        db_row_put(row, "host", xv_new_string(host));
        db_row_put(row, "not_before", xv_new_datetime((int64_t)facts.not_before));
        db_row_put(row, "not_after", xv_new_datetime((int64_t)facts.not_after));
        db_row_put(row, "fingerprint", xv_new_string(facts.fingerprint));
        if (db_insert(row, err) < 0) {
            db_write_abort();
            return -1;
        }
    }
    return db_write_commit(err);
}

/* The file's key and certificate to the listeners and the record. */
static int serve_and_record(XapiError **err)
{
    g_autofree char *key_pem = NULL, *cert_pem = NULL;
    if (tls_cert_load_or_create(hc.state_dir, &key_pem, &cert_pem, err) < 0 ||
        http_server_set_tls_certificate(key_pem, cert_pem, err) < 0)
        return -1;
    return record(cert_pem, err);
}

static bool this_host_https_only(void)
{
    db_read_begin();
    g_autofree char *host = bootstrap_this_host();
    DbRow *row = host ? db_lookup(dm_class_by_name("host"), host) : NULL;
    const Xv *v = row ? db_get(row, "https_only") : NULL;
    bool on = v && v->b;
    db_read_end();
    return on;
}

int host_certificate_start(const char *state_dir, XapiError **err)
{
    g_free(hc.state_dir);
    hc.state_dir = g_strdup(state_dir);
    http_server_set_https_only(this_host_https_only());
    g_autofree char *path = g_build_filename(state_dir, "xapi-ssl.pem", NULL);
    if (!g_file_test(path, G_FILE_TEST_EXISTS))
        return 0; /* no HTTPS listener yet: made at the first need */
    g_autofree char *key_pem = NULL, *cert_pem = NULL;
    if (tls_cert_load_or_create(state_dir, &key_pem, &cert_pem, err) < 0)
        return -1;
    return record(cert_pem, err);
}

char *host_certificate_get(XapiError **err)
{
    g_mutex_lock(&hc.lock);
    g_autofree char *path = g_build_filename(hc.state_dir, "xapi-ssl.pem", NULL);
    bool made = !g_file_test(path, G_FILE_TEST_EXISTS);
    g_autofree char *key_pem = NULL, *cert_pem = NULL;
    int rc = tls_cert_load_or_create(hc.state_dir, &key_pem, &cert_pem, err);
    if (rc == 0 && made)
        rc = record(cert_pem, err);
    g_mutex_unlock(&hc.lock);
    return rc < 0 ? NULL : tls_cert_leaf(cert_pem);
}

int host_certificate_install(const char *certificate, const char *private_key,
                             const char *chain, XapiError **err)
{
    g_autofree char *pem = tls_cert_check_install(certificate, private_key, chain, err);
    if (!pem)
        return -1;
    g_mutex_lock(&hc.lock);
    int rc = tls_cert_write(hc.state_dir, pem, err);
    if (rc == 0)
        rc = serve_and_record(err);
    g_mutex_unlock(&hc.lock);
    if (rc == 0)
        g_message("host certificate: an installed one is served now");
    return rc;
}

int host_certificate_renew(bool only_self_signed, XapiError **err)
{
    g_mutex_lock(&hc.lock);
    int rc = 0;
    if (only_self_signed) {
        g_autofree char *key_pem = NULL, *cert_pem = NULL;
        TlsCertFacts facts;
        rc = tls_cert_load_or_create(hc.state_dir, &key_pem, &cert_pem, err);
        if (rc == 0)
            rc = tls_cert_facts(cert_pem, &facts, err);
        if (rc == 0 && !facts.self_signed)
            rc = xapi_error_set(err, "OPERATION_NOT_ALLOWED",
                                "the host serves an installed certificate, which "
                                "host.refresh_server_certificate leaves alone "
                                "(host.reset_server_certificate replaces it)",
                                NULL);
    }
    if (rc == 0)
        rc = tls_cert_create(hc.state_dir, err);
    if (rc == 0)
        rc = serve_and_record(err);
    g_mutex_unlock(&hc.lock);
    if (rc == 0)
        g_message("host certificate: a new self-signed one is served now");
    return rc;
}

int host_certificate_set_https_only(bool on, XapiError **err)
{
    if (db_write_begin(err) < 0)
        return -1;
    g_autofree char *host = bootstrap_this_host();
    DbRow *row = db_lookup(dm_class_by_name("host"), host);
    if (!row) {
        db_write_abort();
        return xapi_error_set(err, "HANDLE_INVALID", "host", host, NULL);
    }
    if (db_set_by_name(row, "https_only", xv_new_bool(on), err) < 0) {
        db_write_abort();
        return -1;
    }
    if (db_write_commit(err) < 0)
        return -1;
    http_server_set_https_only(on);
    g_message("https_only %s: plain HTTP on TCP %s", on ? "on" : "off",
              on ? "refused" : "served again");
    return 0;
}
