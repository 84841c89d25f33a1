/* external_auth.h: the pool's external authentication (XAPI's
 * host.external_auth_type/_service_name/_configuration on every host):
 * "PAM" authenticates Linux users through pam_login.h. */
#pragma once

#include "xapi_error.h"
#include "xv.h"

/* This host's external_auth_type ("" when off); caller frees. */
char *external_auth_type(void);

/* pool.enable_external_auth: POOL_AUTH_ALREADY_ENABLED [host] if a host
 * has it on, AUTH_UNKNOWN_TYPE [type] for a type other than "PAM",
 * POOL_AUTH_ENABLE_FAILED [host, why] if PAM cannot start; else every
 * host gets the type, service name and configuration. */
int external_auth_enable(const Xv *config, const char *service_name, const char *auth_type,
                         XapiError **err);

/* pool.disable_external_auth: every host's cleared (no error when off
 * already). Sessions of subjects are then destroyed (XAPI revalidates
 * them all: none is valid any more). */
int external_auth_disable(XapiError **err);

/* host.enable_external_auth, host.disable_external_auth: the same for one
 * host (AUTH_ALREADY_ENABLED [type, service], AUTH_UNKNOWN_TYPE [type],
 * AUTH_ENABLE_FAILED [why]); this host's subjects' sessions end when it
 * is disabled here. */
int external_auth_enable_host(const char *host, const Xv *config, const char *service_name,
                              const char *auth_type, XapiError **err);
int external_auth_disable_host(const char *host, XapiError **err);

/* AUTH_IS_DISABLED unless this host has external authentication on. */
int external_auth_require(XapiError **err);
