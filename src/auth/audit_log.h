/* audit_log.h: XAPI's RBAC audit log (ocaml/xapi/rbac_audit.ml): one
 * line per side-effecting call or HTTP action, allowed or denied, saying
 * who (session trackid, subject identifier, user name), what, on which
 * objects, and how it ended. STATE_DIR/audit.log. */
#pragma once

#include <stdbool.h>

#include "call.h"
#include "xv.h"

/* Whether XAPI audits the action (a wire name or "http/..."): not a
 * getter (".get" in its name), nor one of its filtered-out chatty calls. */
bool audit_log_wanted(const char *action);

/* The arguments of a call as the audit's s-expression: descriptive
 * values (names, labels, a few per-message ones) and the objects its
 * references name (name, uuid, ref). Taken before the call runs, so
 * that a destroyed object is still named. Caller frees. */
char *audit_log_args(const Call *call);

/* "(('name' 'value' '' '') ...)" of NULL-terminated name, value pairs,
 * escaped. Caller frees. */
char *audit_log_named_args(const char *name, ...) G_GNUC_NULL_TERMINATED;

/* Appends the line of a call (args from audit_log_args, or NULL): denied,
 * or allowed and ended with error (NULL: OK). Writes survive a kill of
 * the process (one write(2) per line, O_APPEND). */
void audit_log_call(const Call *call, const char *args, bool allowed, const XapiError *error);

/* Appends a line for action done in session (NULL: the unix socket
 * unauthenticated) from peer: allowed with error_code (NULL: OK), or
 * denied; args an s-expression ("()" if NULL). */
void audit_log_line(const char *session, const char *peer, const char *action, bool allowed,
                    const char *error_code, const char *args);

/* The path of the log (STATE_DIR/audit.log); NULL without a state dir. */
const char *audit_log_path(void);

/* The log's lines with a timestamp at or after since (XAPI's forms:
 * 20090910T11:31:11.417Z, 2009-09-10T11:31, 2009-09-10, ""); a new string. */
GString *audit_log_read(const char *since);
