/* message_store.h: XAPI's messages (alerts), kept as XAPI keeps them:
 * outside the object database, in a store of their own with a cap.
 *
 * STATE_DIR/messages.db is a SQLite file (WAL) with one table, one row a
 * message; every change is committed there before the caller is answered
 * (an acknowledged create survives kill -9; a failed write answers the
 * error and changes nothing). All messages are also held in memory, which
 * serves the reads. Each write takes the next message generation, the
 * second half of event.from's token ("DB generation,message generation",
 * XAPI's format): see docs/messages.md.
 *
 * A pool member keeps no store: its messages live on the master, and
 * message_store_create (and the API's handlers, message_store_remote)
 * send the call there. Thread-safe; the store never takes the database's
 * lock while holding its own, so callers must not hold the database's. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "xapi_error.h"
#include "xv.h"

/* XAPI keeps this many (xapi_globs.ml message_limit); the oldest (by
 * timestamp, then by creation) go first. */
#define MESSAGE_STORE_LIMIT 10000
/* Deletions remembered for event.from (XAPI keeps the last 1024). */
#define MESSAGE_DELETIONS_KEPT 1024
/* Another cap (xapid --message-limit); 0 keeps XAPI's. */
void message_store_set_limit(unsigned limit);

/* Opens <state_dir>/messages.db (NULL: memory only) and loads it, then
 * moves the message rows an older xapid kept in the object database into
 * it: one transaction of the store, then one of the database. The database
 * is open. */
int message_store_open(const char *state_dir, XapiError **err);
void message_store_close(void);

/* On a pool member: where the store's calls go instead (the master). It
 * makes method(args...) there and sets *value, as pool_rpc does. */
typedef int (*MessageRemote)(const char *method, const Xv *args, Xv **value, XapiError **err);
void message_store_set_remote(MessageRemote remote);
/* Whether this host's messages are elsewhere: then method(args) (the
 * session left out) goes there. */
bool message_store_is_remote(void);
int message_store_remote(const char *method, const Xv *args, Xv **value, XapiError **err);

/* Stores a message stamped now; returns its ref (caller frees) or NULL.
 * The caller has checked the arguments. */
char *message_store_create(const char *name, int64_t priority, const char *cls,
                           const char *obj_uuid, const char *body, XapiError **err);
/* Destroys the messages refs names, all or none: HANDLE_INVALID
 * [message, ref] for the first that is not one (a ref may be repeated). */
int message_store_destroy(const char *const *refs, guint n, XapiError **err);

/* Reads (records as get_record has them: uuid, name, priority, cls,
 * obj_uuid, timestamp, body). */
Xv *message_store_get_all(void);                /* array of refs */
Xv *message_store_get_record(const char *ref);  /* NULL: no such message */
char *message_store_ref_of_uuid(const char *uuid); /* NULL: none */
guint message_store_count(void);
/* ref -> record for each message match accepts (match NULL: all). */
typedef bool (*MessageMatch)(const Xv *record, void *ctx);
Xv *message_store_records(MessageMatch match, void *ctx);

/* Events: calls fn for each message created (op "add", with its record)
 * or destroyed ("del", the record as it was) after generation since,
 * oldest first, and returns the generation this is complete up to. A
 * message created and destroyed since is left out. */
typedef void (*MessageEventFn)(uint64_t generation, const char *op, const char *ref,
                               Xv *snapshot, void *ctx);
uint64_t message_store_events(uint64_t since, MessageEventFn fn, void *ctx);
/* The current message generation. */
uint64_t message_store_generation(void);
/* The newest forgotten deletion (0: none): a watcher older has lost events. */
uint64_t message_store_deletions_forgotten(void);

/* What the daemon raises by itself after an operation succeeded (XAPI's
 * message_forwarding.ml, message_raise.c): failures are logged, never
 * reported to the caller of the operation. body is a printf format. */
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
