/* tls_cert.c: self-signed host certificate with GnuTLS. */
#include "tls_cert.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KEY_BEGIN "-----BEGIN"
#define CERT_BEGIN "-----BEGIN CERTIFICATE-----"

static int gnutls_fail(XapiError **err, const char *what, int rc)
{
    return xapi_error_internal(err, "tls: %s: %s", what, gnutls_strerror(rc));
}

static int create_pem(const char *path, XapiError **err)
{
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    int rc;
    char hostname[256] = "localhost";
    gethostname(hostname, sizeof hostname - 1);
    time_t now = time(NULL);
    /* A serial must be unpredictable (CA/B Forum: 64 bits from a CSPRNG)
     * and positive: the top bit clear, the next set so no byte is lost. */
    unsigned char serial[9];
    if ((rc = gnutls_rnd(GNUTLS_RND_RANDOM, serial, sizeof serial)) < 0)
        return gnutls_fail(err, "random serial", rc);
    serial[0] = (serial[0] & 0x7f) | 0x40;
    if ((rc = gnutls_x509_privkey_init(&key)) < 0 ||
        (rc = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                           GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
                                           0)) < 0 ||
        (rc = gnutls_x509_crt_init(&crt)) < 0 || (rc = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
        (rc = gnutls_x509_crt_set_serial(crt, serial, sizeof serial)) < 0 ||
        (rc = gnutls_x509_crt_set_activation_time(crt, now - 3600)) < 0 ||
        (rc = gnutls_x509_crt_set_expiration_time(crt, now + 10L * 365 * 86400)) < 0 ||
        (rc = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, hostname,
                                            (unsigned)strlen(hostname))) < 0 ||
        (rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, hostname,
                                                   (unsigned)strlen(hostname),
                                                   GNUTLS_FSAN_SET)) < 0 ||
        (rc = gnutls_x509_crt_set_key(crt, key)) < 0 ||
        (rc = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0)) < 0) {
        gnutls_x509_crt_deinit(crt);
        gnutls_x509_privkey_deinit(key);
        return gnutls_fail(err, "making a self-signed certificate", rc);
    }
    gnutls_datum_t key_pem = {0}, cert_pem = {0};
    rc = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &key_pem);
    if (rc >= 0)
        rc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &cert_pem);
    gnutls_x509_crt_deinit(crt);
    gnutls_x509_privkey_deinit(key);
    if (rc < 0) {
        gnutls_free(key_pem.data);
        return gnutls_fail(err, "exporting the certificate", rc);
    }
    g_autofree char *both = g_strdup_printf("%.*s%.*s", (int)key_pem.size,
                                            (const char *)key_pem.data, (int)cert_pem.size,
                                            (const char *)cert_pem.data);
    gnutls_free(key_pem.data);
    gnutls_free(cert_pem.data);
    g_autoptr(GError) gerr = NULL;
    if (!g_file_set_contents_full(path, both, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &gerr))
        return xapi_error_internal(err, "tls: cannot write %s: %s", path, gerr->message);
    return 0;
}

int tls_cert_load_or_create(const char *state_dir, char **key_pem, char **cert_pem,
                            XapiError **err)
{
    g_autofree char *path = g_build_filename(state_dir, "xapi-ssl.pem", NULL);
    if (!g_file_test(path, G_FILE_TEST_EXISTS) && create_pem(path, err) < 0)
        return -1;
    g_autofree char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return xapi_error_internal(err, "tls: cannot read %s", path);
    const char *cert = strstr(text, CERT_BEGIN);
    if (!cert || !g_str_has_prefix(text, KEY_BEGIN))
        return xapi_error_internal(err, "tls: %s must hold a key, then a certificate", path);
    *key_pem = g_strndup(text, (gsize)(cert - text));
    *cert_pem = g_strdup(cert);
    return 0;
}
