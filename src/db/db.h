/* db.h: the object database. In-memory rows are the read path; every
 * write is also written to the SQLite store (src/store) inside the same
 * transaction before the caller replies, so an acknowledged write survives
 * kill -9. Relations are kept both ways: the stored side of a relation
 * (VBD.VM) is authoritative, the derived side (VM.VBDs) is maintained here.
 *
 * Locking: one reader/writer lock. Readers call db_read_begin/end; writers
 * db_write_begin, then mutate, then db_write_commit (or db_write_abort if
 * nothing was mutated yet). Rows and their values are owned by the db and
 * valid only while the lock is held; callers copy what they keep. */
#pragma once

#include <stdint.h>

#include "datamodel.h"
#include "xapi_error.h"
#include "xv.h"

typedef struct DbRow {
    const DmClass *cls;
    char *ref;           /* "OpaqueRef:<uuid>" */
    uint64_t created;    /* generation at creation */
    uint64_t modified;   /* generation of the last change */
    Xv fields[];         /* cls->n_fields typed values */
} DbRow;

/* Opens <state_dir>/xapid.db (state_dir NULL: memory only) and loads it. */
int db_open(const char *state_dir, XapiError **err);
/* Opens over a store already open (a pool's store_dqlite) and loads it;
 * the db owns the store from here (db_close closes it). */
typedef struct Store Store;
int db_open_store(Store *store, XapiError **err);
void db_close(void);
/* Copies every row and setting of the open store into to (store_copy, in
 * one transaction of to) and from then on writes there; the old store is
 * closed. The write lock is held throughout, so no write falls between.
 * On failure nothing changes and the caller still owns to. A pool's
 * founder moves from its SQLite file to the pool's dqlite database. */
int db_move_to_store(Store *to, XapiError **err);

/* Test-only crash windows: with XAPID_CRASH_AT=before:K or after:K in the
 * environment, the process kills itself (SIGKILL, as kill -9 would) right
 * before or right after the K-th write commit counted from this call, so
 * that a test can stop the daemon at every step boundary of an operation.
 * Without the variable nothing is counted. */
void db_crash_points_arm(void);

void db_read_begin(void);
void db_read_end(void);
int db_write_begin(XapiError **err);
int db_write_commit(XapiError **err);
void db_write_abort(void);
/* Ends a write: commits when rc is 0, else aborts (and returns -1). */
int db_write_finish(XapiError **err, int rc);

/* Lookups (lock held). */
DbRow *db_lookup(const DmClass *cls, const char *ref);     /* NULL if absent */
DbRow *db_lookup_any(const char *ref);
DbRow *db_lookup_uuid(const DmClass *cls, const char *uuid);
guint db_count(const DmClass *cls);
/* Calls fn for every row of cls (lock held); stops when fn returns false. */
void db_foreach(const DmClass *cls, bool (*fn)(DbRow *row, void *ctx), void *ctx);
const Xv *db_get(const DbRow *row, const char *field_name); /* NULL: no field */
Xv *db_row_record(const DbRow *row); /* get_record struct, caller owns */

/* Writes (write lock held). */
DbRow *db_row_new(const DmClass *cls); /* defaults, fresh ref and uuid; not yet inserted */
DbRow *db_row_new_with_ref(const DmClass *cls, const char *ref); /* fixed ref (static objects) */
void db_row_free(DbRow *row);          /* only for rows never inserted */
/* Sets a field of a row not yet inserted (takes ownership of value). */
void db_row_put(DbRow *row, const char *field_name, Xv *value);
int db_insert(DbRow *row, XapiError **err);   /* takes ownership */
/* Inserts row and commits the open write transaction (aborting it on
 * failure); returns the new row's ref (caller frees) or NULL. */
char *db_insert_and_commit(DbRow *row, XapiError **err);
/* Replaces a field; takes ownership of value (canonical form for the type). */
int db_set(DbRow *row, const DmField *field, Xv *value, XapiError **err);
int db_set_by_name(DbRow *row, const char *field_name, Xv *value, XapiError **err);
int db_delete(DbRow *row, XapiError **err);
/* Begins a write and returns the object's row; when there is no such
 * object (or no such class), no write is left begun and err is
 * HANDLE_INVALID [class_name, ref]. */
DbRow *db_write_begin_on(const char *class_name, const char *ref, XapiError **err);
/* One field of one object in its own write transaction (HANDLE_INVALID if
 * there is no such object); takes ownership of value. No lock held. */
int db_update(const char *class_name, const char *ref, const char *field_name, Xv *value,
              XapiError **err);
/* Marks the row modified (event.inject). */
void db_touch(DbRow *row);

/* A pool member's own settings: its rows are the master's replica, but
 * its root password hash, next domid and storage crash notes are the
 * host's. Opens the store at path for the db_meta_* calls below when the
 * database has no store of its own (written at once, not with a write
 * transaction, which a member ships to the master). */
int db_open_member_settings(const char *path, XapiError **err);

/* Persistent key/value settings (root password hash, ...). */
char *db_meta_get(const char *key);
int db_meta_set(const char *key, const char *value, XapiError **err);
/* The same inside an open write transaction (committed with it). */
int db_meta_put(const char *key, const char *value, XapiError **err);
/* Removes a setting: in its own transaction, or in the open write
 * transaction when the calling thread holds one. */
int db_meta_delete(const char *key, XapiError **err);
/* The setting keys that start with prefix (caller frees). */
GPtrArray *db_meta_keys(const char *prefix);
/* True when the calling thread holds the write transaction. */
bool db_write_held(void);

/* Generations, for events: the counter is bumped by every write; each row
 * keeps the generation of its creation and last change, and each class
 * the recent deletions (at most DB_DELETIONS_KEPT). */
uint64_t db_generation(void);
#define DB_DELETIONS_KEPT 512
typedef struct DbDeletion {
    char *ref;
    uint64_t created;
    uint64_t deleted;
    Xv *snapshot;   /* the record as it was last */
} DbDeletion;
/* Calls fn for every object changed (created, set, touched, or its
 * derived set updated) after since, oldest first, possibly several times
 * per object; false, calling nothing, when since is older than the
 * remembered window (then scan the tables). Lock held. */
#define DB_CHANGES_KEPT 16384
bool db_foreach_change(uint64_t since, void (*fn)(const DmClass *cls, const char *ref, void *ctx),
                       void *ctx);
/* The newest deletion of cls that was forgotten (0 if none): a watcher
 * whose generation is older has lost events. */
uint64_t db_deletions_forgotten(const DmClass *cls);
/* Calls fn for each remembered deletion of cls newer than since (lock held). */
void db_foreach_deletion(const DmClass *cls, uint64_t since,
                         void (*fn)(const DbDeletion *d, void *ctx), void *ctx);
/* Blocks until the generation passes since or the monotonic deadline
 * (g_get_monotonic_time) passes; no lock held. True if it passed. */
bool db_wait_for_change(uint64_t since, int64_t deadline);
/* Wakes the event watchers for a change outside the database (the
 * message store's writes, src/metrics/message_store.c): db_wait_for_event
 * returns once db_wakes() has passed the count its caller read. */
void db_wake_waiters(void);
uint64_t db_wakes(void);
/* db_wait_for_change, or until such a wake after wakes. */
bool db_wait_for_event(uint64_t since, uint64_t wakes, int64_t deadline);
/* Blocks until this host holds the pool's generation (at least 1): on a
 * member, until its replica has applied the master's batch of it (its own
 * generations before the first batch are its clock's, not the pool's); on
 * the master or a standalone host, as db_wait_for_change(generation - 1). */
bool db_wait_for_generation(uint64_t generation, int64_t deadline);

char *db_new_uuid(void);
char *db_new_ref(void);

/* ---- pool replication (used by src/pool) ---------------------------------
 * A pool member keeps no store: its tables are a replica of the master's,
 * fed by the master's change stream, and its own writes are shipped to the
 * master by a commit hook. */

/* Called by db_write_commit on a member (write lock held) instead of a
 * local commit: ships the transaction's write set (db_foreach_write) and
 * sets *generation to the master's generation of it. The tentative local
 * changes are then undone and the commit waits until the replica has
 * reached that generation. NULL: a master or standalone host. */
typedef int (*DbCommitHook)(uint64_t *generation, XapiError **err);
void db_set_commit_hook(DbCommitHook hook);

/* The open write transaction's changes, coalesced: each row inserted (and
 * not deleted again) once with its current values, each field set on an
 * existing row once, each row touched, each existing row deleted. Derived
 * sides of relations are left out (the master keeps its own). */
typedef enum { DB_WRITE_INSERT, DB_WRITE_SET, DB_WRITE_TOUCH, DB_WRITE_DELETE } DbWriteKind;
typedef void (*DbWriteFn)(DbWriteKind kind, const DbRow *row, const DmField *field, void *ctx);
void db_foreach_write(DbWriteFn fn, void *ctx);

/* Links a row's stored relations to their derived sides again
 * (idempotent): rows inserted in one batch, in any order. */
void db_link_relations(DbRow *row);

/* A write transaction whose rows are this host's own, not the pool's (a
 * member's local session, XAPI's Xapi_local_session, made while its
 * master cannot be reached): on a member its commit keeps them in memory
 * here, never shipped, its changes at the replica's generation; the
 * master's next full batch (a resync, after a change of master) drops
 * them. Elsewhere a write as db_write_begin's. */
int db_write_begin_here(XapiError **err);

/* Applying one batch of the master's stream on a member: begin takes the
 * write lock; the usual insert/set/delete calls then mark every change at
 * the master's generation; commit publishes it locally (nothing shipped).
 * A resync's first batch may move the generation below the clock start. */
int db_replica_begin(uint64_t generation, XapiError **err);
void db_replica_row_generations(DbRow *row, uint64_t created, uint64_t modified);
int db_replica_commit(bool resync, XapiError **err);
void db_replica_abort(void);
/* A member turning master (a pool failover): under the write lock, the
 * replica takes every row of store (the pool's database, now led by this
 * host), as changes at one new generation above every one handed out
 * before (inserted, set, deleted: event.from tokens stay valid), and from
 * then on writes there with no commit hook. The db owns store on success;
 * on failure nothing changed and the caller still owns it. */
int db_adopt_store(Store *store, XapiError **err);
/* The generation from which the ring of recent changes is complete. */
uint64_t db_changes_oldest(void);
