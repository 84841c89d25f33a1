/* auth.c: the auth class: questions to the external authentication
 * service (for PAM, Linux's users and groups: local_accounts.h). */
#include <string.h>

#include "call.h"
#include "db.h"
#include "dm_handlers.h"
#include "external_auth.h"
#include "local_accounts.h"

static int unresolved(Call *call)
{
    return xapi_error_set(&call->error, "SUBJECT_CANNOT_BE_RESOLVED", NULL);
}

int xapi_auth_get_subject_identifier(Call *call, const char *subject_name, Xv **result)
{
    if (external_auth_require(&call->error) < 0)
        return -1;
    char *sid = local_accounts_identifier(subject_name);
    if (!sid)
        return unresolved(call);
    *result = xv_new_string_take(sid);
    return 0;
}

typedef struct {
    const char *sid;
    Xv *info;
} InfoSearch;

static bool find_subject_info(DbRow *subject, void *ctx)
{
    InfoSearch *search = ctx;
    if (strcmp(xv_str(db_get(subject, "subject_identifier")), search->sid) != 0)
        return true;
    search->info = xv_dup(db_get(subject, "other_config"));
    return false;
}

/* XAPI's: a subject's record first, else the service. */
int xapi_auth_get_subject_information_from_identifier(Call *call, const char *subject_identifier,
                                                      Xv **result)
{
    InfoSearch search = {subject_identifier, NULL};
    db_read_begin();
    db_foreach(dm_class_by_name("subject"), find_subject_info, &search);
    db_read_end();
    if (search.info) {
        *result = search.info;
        return 0;
    }
    if (external_auth_require(&call->error) < 0)
        return -1;
    Xv *info = local_accounts_information(subject_identifier);
    if (!info)
        return unresolved(call);
    *result = info;
    return 0;
}

int xapi_auth_get_group_membership(Call *call, const char *subject_identifier, Xv **result)
{
    if (external_auth_require(&call->error) < 0)
        return -1;
    Xv *groups = local_accounts_group_membership(subject_identifier);
    if (!groups)
        return unresolved(call);
    *result = groups;
    return 0;
}
