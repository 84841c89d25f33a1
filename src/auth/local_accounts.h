/* local_accounts.h: Linux users and groups as subjects, the way XAPI's
 * PAM plugin (ocaml/xapi/authx.ml) names them: "u<uid>" for a user,
 * "g<gid>" for a group, looked up through NSS. */
#pragma once

#include "xv.h"

/* The identifier of a user of that name, else of a group; NULL if none. */
char *local_accounts_identifier(const char *name);

/* subject-name, subject-uid, subject-gid, subject-is-group and, for a
 * user, subject-gecos, subject-displayname, subject-account-*, as
 * authx.ml; NULL if the identifier names no user or group. */
Xv *local_accounts_information(const char *identifier);

/* The groups of a user ("g<gid>" of each, its primary group included),
 * or the group itself for a group; NULL if it names neither. */
Xv *local_accounts_group_membership(const char *identifier);
