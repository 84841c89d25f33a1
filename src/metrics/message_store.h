/* message_store.h: XAPI's messages (alerts): rows of class "message" in
 * the object database, so that a create the API acknowledged survives
 * kill -9 and event.from sees them, with XAPI's cap on how many are kept. */
#pragma once

#include <stdint.h>

#include "xapi_error.h"

/* XAPI keeps this many (xapi_globs.ml message_limit); the oldest go first. */
#define MESSAGE_STORE_LIMIT 10000
/* Another cap (xapid --message-limit); 0 keeps XAPI's. */
void message_store_set_limit(unsigned limit);

/* Stores a message stamped now; returns its ref (caller frees) or NULL.
 * The caller has checked the arguments. No lock held. */
char *message_store_create(const char *name, int64_t priority, const char *cls,
                           const char *obj_uuid, const char *body, XapiError **err);

/* What the daemon raises by itself after an operation succeeded (XAPI's
 * message_forwarding.ml): failures are logged, never reported to the
 * caller of the operation. body is a printf format. */
void message_raise(const char *name, int64_t priority, const char *cls, const char *obj_uuid,
                   const char *body_format, ...) G_GNUC_PRINTF(5, 6);
/* The same for a VM (by ref), with XAPI's "VM 'N' (uuid: U) " before what;
 * "%H" is not printf: use message_this_host() for "host: H (uuid: HU)". */
void message_raise_vm(const char *name, const char *vm_ref, const char *what_format, ...)
    G_GNUC_PRINTF(3, 4);
/* "H (uuid: HU)": this host's name_label and uuid (caller frees). */
char *message_this_host(void);
/* The uuid of the object ref names (caller frees; "" if none). */
char *message_uuid_of(const char *ref);
