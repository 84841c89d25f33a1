/* session.h: login, logout, the per-call session check and RBAC. */
#pragma once

#include "call.h"
#include "db.h"

/* Validates call->session_ref (SESSION_INVALID [ref]) and the caller's
 * right to call call->msg (RBAC_PERMISSION_DENIED [permission, text]);
 * refreshes last_active. 0 or -1. */
int session_authorize(Call *call);

/* Whether the session is the local superuser's or holds one of the roles
 * (a DmRole mask, as its rbac_permissions name them); read lock held. */
bool session_has_any_role(const DbRow *session, unsigned roles);

/* Sets the root password hash if none is stored yet: from the file at
 * path, or, if the file does not exist, a random password written there. */
int session_init_root_password(const char *password_file, XapiError **err);

/* Whether a generated password is also printed on stdout (the file always
 * has it); off by default, stdout being often shared or logged. */
void session_print_generated_password(bool print);

/* Destroys sessions idle for more than 24 hours and, in each group (pool
 * sessions; root with no originator; root per originator; each external
 * user), the least recently active beyond the group's limit, as XAPI's
 * session GC does. Sessions owning a pending task are kept. Returns how
 * many were destroyed. */
unsigned session_gc(int64_t now);

/* A new session for the same user as parent_ref (its parent), for a
 * helper acting on the caller's behalf (a host plugin); caller frees the
 * ref. session_destroy ends it as logout does. */
char *session_create_child(const char *parent_ref, const char *originator, XapiError **err);
void session_destroy(const char *ref);

/* Destroys every session that is not the local superuser's (those of
 * subjects, when external authentication is turned off); how many. */
unsigned session_logout_external(void);
