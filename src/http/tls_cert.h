/* tls_cert.h: the host's TLS certificate: a self-signed one made on first
 * use and kept in the state directory, as XAPI keeps xapi-ssl.pem. */
#pragma once

#include <stdbool.h>
#include <time.h>

#include "xapi_error.h"

/* The GnuTLS priorities of the HTTPS listeners: XAPI's (TLS 1.2, AES-GCM,
 * ECDHE, secp384r1, the server's order), with TLS 1.3 besides, ECDSA keys
 * (xapid's own certificate was one before it made RSA ones) and the groups
 * TLS 1.3 clients offer first. */
#define TLS_PRIORITIES                                                                   \
    "NONE:+VERS-TLS1.3:+VERS-TLS1.2:+AES-256-GCM:+AES-128-GCM:+AEAD:+ECDHE-RSA:"        \
    "+ECDHE-ECDSA:+SIGN-ALL:+GROUP-SECP384R1:+GROUP-SECP256R1:+GROUP-X25519:+COMP-NULL:" \
    "+CTYPE-X509:%SERVER_PRECEDENCE"

/* Loads <state_dir>/xapi-ssl.pem (key then certificate), creating it if
 * missing. *key_pem and *cert_pem are g_malloc'd. */
int tls_cert_load_or_create(const char *state_dir, char **key_pem, char **cert_pem,
                            XapiError **err);

/* A new self-signed key and certificate in <state_dir>/xapi-ssl.pem. */
int tls_cert_create(const char *state_dir, XapiError **err);
/* pem (key, certificate, chain) as <state_dir>/xapi-ssl.pem, atomically. */
int tls_cert_write(const char *state_dir, const char *pem, XapiError **err);
/* The first certificate of cert_pem (the leaf, without its chain). */
char *tls_cert_leaf(const char *cert_pem);
/* host.install_server_certificate's checks, XAPI's codes:
 * SERVER_CERTIFICATE_KEY_INVALID, _KEY_ALGORITHM_NOT_SUPPORTED [alg],
 * _KEY_RSA_LENGTH_NOT_SUPPORTED [bits], _INVALID, _NOT_VALID_YET [now,
 * not_before], _EXPIRED [now, not_after], _KEY_MISMATCH,
 * _SIGNATURE_NOT_SUPPORTED, _CHAIN_INVALID (chain_pem "" for none). The
 * key, certificate and chain re-encoded, ready for tls_cert_write, or NULL. */
char *tls_cert_check_install(const char *cert_pem, const char *key_pem, const char *chain_pem,
                             XapiError **err);

typedef struct TlsCertFacts {
    time_t not_before, not_after;
    char fingerprint[3 * 32]; /* SHA-256, "AB:CD:...", as XAPI prints it */
    bool self_signed;
} TlsCertFacts;
/* The facts of the first certificate of cert_pem. */
int tls_cert_facts(const char *cert_pem, TlsCertFacts *facts, XapiError **err);
