/* tls_cert.c: the host certificate with GnuTLS: the self-signed one xapid
 * makes, the checks XAPI makes of one installed (gencert's lib.ml), and the
 * facts its Certificate record shows. */
#include "tls_cert.h"

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KEY_BEGIN "-----BEGIN"
#define CERT_BEGIN "-----BEGIN CERTIFICATE-----"
#define CERT_END "-----END CERTIFICATE-----"

static int gnutls_fail(XapiError **err, const char *what, int rc)
{
    return xapi_error_internal(err, "tls: %s: %s", what, gnutls_strerror(rc));
}

static char *pem_path(const char *state_dir)
{
    return g_build_filename(state_dir, "xapi-ssl.pem", NULL);
}

/* Replaced whole or not at all (fsync'd, renamed): a crash leaves the old
 * or the new one. */
static int write_pem(const char *path, const char *text, XapiError **err)
{
    g_autoptr(GError) gerr = NULL;
    if (!g_file_set_contents_full(path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &gerr))
        return xapi_error_internal(err, "tls: cannot write %s: %s", path, gerr->message);
    return 0;
}

/* XAPI makes its own an RSA 2048 one, and takes only RSA keys. */
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
        (rc = gnutls_x509_privkey_generate(key, GNUTLS_PK_RSA, 2048, 0)) < 0 ||
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
    rc = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN,
                                           &key_pem);
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
    return write_pem(path, both, err);
}

int tls_cert_load_or_create(const char *state_dir, char **key_pem, char **cert_pem,
                            XapiError **err)
{
    g_autofree char *path = pem_path(state_dir);
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

int tls_cert_create(const char *state_dir, XapiError **err)
{
    g_autofree char *path = pem_path(state_dir);
    return create_pem(path, err);
}

int tls_cert_write(const char *state_dir, const char *pem, XapiError **err)
{
    g_autofree char *path = pem_path(state_dir);
    return write_pem(path, pem, err);
}

char *tls_cert_leaf(const char *cert_pem)
{
    const char *end = strstr(cert_pem, CERT_END);
    if (!end)
        return g_strdup(cert_pem);
    return g_strdup_printf("%.*s\n", (int)(end - cert_pem + strlen(CERT_END)), cert_pem);
}

/* ---- host.install_server_certificate's checks ----------------------------
 * XAPI's order and codes: the key (RSA of 2048 to 4096 bits), the
 * certificate (valid now), the pair, the signature's hash (SHA-256 or
 * SHA-512), the chain. */

static gnutls_datum_t datum(const char *s)
{
    return (gnutls_datum_t){(unsigned char *)s, (unsigned)strlen(s)};
}

/* RFC 3339 in UTC, as XAPI's Ptime.to_rfc3339 ~tz_offset_s:0 prints it. */
static char *rfc3339(time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return g_strdup(buf);
}

static char *export_pem(int (*export)(void *, gnutls_x509_crt_fmt_t, gnutls_datum_t *),
                        void *obj)
{
    gnutls_datum_t out = {0};
    if (export(obj, GNUTLS_X509_FMT_PEM, &out) < 0)
        return NULL;
    char *s = g_strndup((const char *)out.data, out.size);
    gnutls_free(out.data);
    return s;
}

static int export_crt(void *crt, gnutls_x509_crt_fmt_t fmt, gnutls_datum_t *out)
{
    return gnutls_x509_crt_export2(crt, fmt, out);
}

static int export_key(void *key, gnutls_x509_crt_fmt_t fmt, gnutls_datum_t *out)
{
    return gnutls_x509_privkey_export2_pkcs8(key, fmt, NULL, GNUTLS_PKCS_PLAIN, out);
}

static int check_key(gnutls_x509_privkey_t key, const char *pem, XapiError **err)
{
    gnutls_datum_t d = datum(pem);
    if (gnutls_x509_privkey_import2(key, &d, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN) < 0)
        return xapi_error_set(err, "SERVER_CERTIFICATE_KEY_INVALID", NULL);
    unsigned bits = 0;
    int alg = gnutls_x509_privkey_get_pk_algorithm2(key, &bits);
    if (alg != GNUTLS_PK_RSA) {
        const char *name = gnutls_pk_get_name((gnutls_pk_algorithm_t)alg);
        return xapi_error_set(err, "SERVER_CERTIFICATE_KEY_ALGORITHM_NOT_SUPPORTED",
                              name ? name : "unknown", NULL);
    }
    if (bits < 2048 || bits > 4096) {
        g_autofree char *text = g_strdup_printf("%u", bits);
        return xapi_error_set(err, "SERVER_CERTIFICATE_KEY_RSA_LENGTH_NOT_SUPPORTED", text,
                              NULL);
    }
    return 0;
}

static bool same_key(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key)
{
    unsigned char a[64], b[64];
    size_t alen = sizeof a, blen = sizeof b;
    return gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, a, &alen) >= 0 &&
           gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, b, &blen) >= 0 &&
           alen == blen && memcmp(a, b, alen) == 0;
}

static int check_cert(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, const char *pem,
                      time_t now, XapiError **err)
{
    gnutls_datum_t d = datum(pem);
    if (!strstr(pem, CERT_BEGIN) || gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM) < 0)
        return xapi_error_set(err, "SERVER_CERTIFICATE_INVALID", NULL);
    time_t not_before = gnutls_x509_crt_get_activation_time(crt);
    time_t not_after = gnutls_x509_crt_get_expiration_time(crt);
    g_autofree char *now_text = rfc3339(now);
    if (now < not_before) {
        g_autofree char *t = rfc3339(not_before);
        return xapi_error_set(err, "SERVER_CERTIFICATE_NOT_VALID_YET", now_text, t, NULL);
    }
    if (now > not_after) {
        g_autofree char *t = rfc3339(not_after);
        return xapi_error_set(err, "SERVER_CERTIFICATE_EXPIRED", now_text, t, NULL);
    }
    if (!same_key(crt, key))
        return xapi_error_set(err, "SERVER_CERTIFICATE_KEY_MISMATCH", NULL);
    int sign = gnutls_x509_crt_get_signature_algorithm(crt);
    gnutls_digest_algorithm_t hash =
        sign < 0 ? GNUTLS_DIG_UNKNOWN : gnutls_sign_get_hash_algorithm((gnutls_sign_algorithm_t)sign);
    if (hash != GNUTLS_DIG_SHA256 && hash != GNUTLS_DIG_SHA512)
        return xapi_error_set(err, "SERVER_CERTIFICATE_SIGNATURE_NOT_SUPPORTED", NULL);
    return 0;
}

/* The chain's certificates, re-encoded, appended to out. */
static int check_chain(const char *pem, GString *out, XapiError **err)
{
    gnutls_x509_crt_t *list = NULL;
    unsigned n = 0;
    gnutls_datum_t d = datum(pem);
    if (!strstr(pem, CERT_BEGIN) ||
        gnutls_x509_crt_list_import2(&list, &n, &d, GNUTLS_X509_FMT_PEM, 0) < 0 || n == 0)
        return xapi_error_set(err, "SERVER_CERTIFICATE_CHAIN_INVALID", NULL);
    int rc = 0;
    for (unsigned i = 0; i < n; i++) {
        g_autofree char *one = export_pem(export_crt, list[i]);
        if (!one && rc == 0)
            rc = xapi_error_set(err, "SERVER_CERTIFICATE_CHAIN_INVALID", NULL);
        if (one)
            g_string_append(out, one);
        gnutls_x509_crt_deinit(list[i]);
    }
    gnutls_free(list);
    return rc;
}

char *tls_cert_check_install(const char *cert_pem, const char *key_pem, const char *chain_pem,
                             XapiError **err)
{
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    GString *out = NULL;
    g_autofree char *key_text = NULL, *cert_text = NULL;
    if (gnutls_x509_privkey_init(&key) < 0 || gnutls_x509_crt_init(&crt) < 0) {
        xapi_error_internal(err, "tls: out of memory");
        goto done;
    }
    if (check_key(key, key_pem, err) < 0 ||
        check_cert(crt, key, cert_pem, time(NULL), err) < 0)
        goto done;
    key_text = export_pem(export_key, key);
    cert_text = export_pem(export_crt, crt);
    if (!key_text || !cert_text) {
        xapi_error_internal(err, "tls: cannot encode the certificate");
        goto done;
    }
    out = g_string_new(key_text);
    g_string_append(out, cert_text);
    if (*chain_pem && check_chain(chain_pem, out, err) < 0) {
        g_string_free(out, TRUE);
        out = NULL;
    }
done:
    gnutls_x509_crt_deinit(crt);
    gnutls_x509_privkey_deinit(key);
    return out ? g_string_free(out, FALSE) : NULL;
}

/* ---- the Certificate record's facts ------------------------------------- */

int tls_cert_facts(const char *cert_pem, TlsCertFacts *facts, XapiError **err)
{
    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t d = datum(cert_pem);
    int rc = gnutls_x509_crt_init(&crt);
    if (rc >= 0)
        rc = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM);
    unsigned char sha[32];
    size_t len = sizeof sha;
    if (rc >= 0)
        rc = gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, sha, &len);
    if (rc < 0) {
        gnutls_x509_crt_deinit(crt);
        return gnutls_fail(err, "reading the host certificate", rc);
    }
    facts->not_before = gnutls_x509_crt_get_activation_time(crt);
    facts->not_after = gnutls_x509_crt_get_expiration_time(crt);
    /* Made by xapid (or any self-signed one): issued by itself. */
    facts->self_signed = gnutls_x509_crt_check_issuer(crt, crt) != 0;
    GString *fp = g_string_sized_new(3 * len);
    for (size_t i = 0; i < len; i++)
        g_string_append_printf(fp, "%s%02X", i ? ":" : "", sha[i]);
    g_strlcpy(facts->fingerprint, fp->str, sizeof facts->fingerprint);
    g_string_free(fp, TRUE);
    gnutls_x509_crt_deinit(crt);
    return 0;
}
