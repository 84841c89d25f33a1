/* pam_login.h: checking a user's password through PAM (libpam), as
 * XAPI's xa_auth.c does: pam_authenticate, then pam_acct_mgmt. */
#pragma once

#include <stdbool.h>

/* The PAM service used (default "xapid"; Debian falls back to "other"
 * when /etc/pam.d has no file of that name). */
void pam_login_set_service(const char *service);
const char *pam_login_service(void);

/* Whether PAM accepts user with password; on refusal *why (caller frees)
 * says what PAM said. Blocks for as long as the PAM stack takes. */
bool pam_login_check(const char *user, const char *password, char **why);

/* Whether a PAM transaction can be started for the service (enable). */
bool pam_login_available(char **why);
