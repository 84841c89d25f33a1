/* tls_cert.h: the host's TLS certificate: a self-signed one made on first
 * use and kept in the state directory, as XAPI keeps xapi-ssl.pem. */
#pragma once

#include "xapi_error.h"

/* Loads <state_dir>/xapi-ssl.pem (key then certificate), creating it if
 * missing. *key_pem and *cert_pem are g_malloc'd. */
int tls_cert_load_or_create(const char *state_dir, char **key_pem, char **cert_pem,
                            XapiError **err);
