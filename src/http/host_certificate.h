/* host_certificate.h: the host's TLS certificate as the API sees it: the
 * file the HTTPS listeners serve (tls_cert.c), the listeners themselves,
 * and its Certificate record (type host), kept in step. */
#pragma once

#include <stdbool.h>

#include "xapi_error.h"

/* At start, once the database is open and the listeners listen: the
 * Certificate record follows the file (when there is one) and the plain
 * listeners follow host.https_only. */
int host_certificate_start(const char *state_dir, XapiError **err);
/* The leaf certificate served (PEM); made first if there is none yet. */
char *host_certificate_get(XapiError **err);
/* host.install_server_certificate after its checks (tls_cert.h). */
int host_certificate_install(const char *certificate, const char *private_key,
                             const char *chain, XapiError **err);
/* A new self-signed certificate. only_self_signed: refused with
 * OPERATION_NOT_ALLOWED when an installed one is served (refresh). */
int host_certificate_renew(bool only_self_signed, XapiError **err);
/* host.https_only of this host, written and applied to the listeners. */
int host_certificate_set_https_only(bool on, XapiError **err);
