/* pam_login.c: one PAM transaction per check; the password is handed to
 * the modules' prompts by the conversation function. PAM's own delay
 * after a failure is replaced by the login throttle's (login_throttle.h). */
#include "pam_login.h"

#include <glib.h>
#include <security/pam_appl.h>
#include <stdlib.h>
#include <string.h>

static char *service;

void pam_login_set_service(const char *name)
{
    g_free(service);
    service = g_strdup(name);
}

const char *pam_login_service(void) { return service ? service : "xapid"; }

static int converse(int n, const struct pam_message **msgs, struct pam_response **out,
                    void *password)
{
    if (n <= 0 || n > PAM_MAX_NUM_MSG)
        return PAM_CONV_ERR;
    struct pam_response *replies = calloc((size_t)n, sizeof *replies);
    if (!replies)
        return PAM_BUF_ERR;
    for (int i = 0; i < n; i++) {
        int style = msgs[i]->msg_style;
        if (style == PAM_PROMPT_ECHO_OFF || style == PAM_PROMPT_ECHO_ON) {
            replies[i].resp = strdup(password);
            if (!replies[i].resp) {
                for (int j = 0; j < i; j++)
                    free(replies[j].resp);
                free(replies);
                return PAM_BUF_ERR;
            }
        }
    }
    *out = replies; /* PAM frees them */
    return PAM_SUCCESS;
}

/* Any delay PAM asks for after a failure is ours to apply (the throttle). */
static void no_delay(int status, unsigned delay, void *ctx)
{
    (void)status, (void)delay, (void)ctx;
}

bool pam_login_check(const char *user, const char *password, char **why)
{
    struct pam_conv conv = {converse, (void *)password};
    pam_handle_t *pamh = NULL;
    int rc = pam_start(pam_login_service(), user, &conv, &pamh);
    if (rc == PAM_SUCCESS)
        pam_set_item(pamh, PAM_FAIL_DELAY, (const void *)no_delay);
    if (rc == PAM_SUCCESS)
        rc = pam_authenticate(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
    if (rc == PAM_SUCCESS)
        rc = pam_acct_mgmt(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
    if (rc != PAM_SUCCESS && why)
        *why = g_strdup(pam_strerror(pamh, rc));
    if (pamh)
        pam_end(pamh, rc);
    return rc == PAM_SUCCESS;
}

bool pam_login_available(char **why)
{
    struct pam_conv conv = {converse, (void *)""};
    pam_handle_t *pamh = NULL;
    int rc = pam_start(pam_login_service(), NULL, &conv, &pamh);
    if (rc != PAM_SUCCESS) {
        *why = g_strdup_printf("pam_start(%s): %s", pam_login_service(),
                               pamh ? pam_strerror(pamh, rc) : "failed");
        if (pamh)
            pam_end(pamh, rc);
        return false;
    }
    pam_end(pamh, PAM_SUCCESS);
    return true;
}
