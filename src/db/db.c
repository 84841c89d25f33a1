/* db.c: in-memory object tables, relations kept both ways, persisted
 * through the SQLite store. Each write transaction keeps an undo journal:
 * when its COMMIT fails (disk full, I/O error) or it is aborted, memory is
 * put back exactly as it was, and no event is published for it. */
#include "db.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "db_text.h"
#include "store.h"

/* One change to memory made by the open write transaction, so that it can
 * be undone (newest first) when the transaction does not commit. */
typedef enum {
    UNDO_INSERT,     /* row was inserted */
    UNDO_SET,        /* row->fields[field] replaced; old holds the value before */
    UNDO_DELETE,     /* row was unindexed; the journal owns it until commit */
    UNDO_TOUCH,      /* row->modified bumped */
    UNDO_SET_ADD,    /* a ref appended to the derived set row->fields[field] */
    UNDO_SET_REMOVE, /* element `position` (kept in old) removed from a derived set */
} UndoKind;

typedef struct {
    UndoKind kind;
    guint field;
    guint position;
    DbRow *row;
    uint64_t modified; /* row->modified before the change */
    uint64_t deleted;  /* UNDO_DELETE: the deletion's generation */
    Xv old;
} UndoEntry;

/* A change to publish to event watchers once the transaction commits. */
typedef struct {
    uint64_t generation;
    const DmClass *cls;
    char *ref;
} PendingChange;

static struct {
    GRWLock lock;
    Store *store;          /* NULL when memory-only */
    Store *settings;       /* a pool member's own settings (db_open_member_settings) */
    GHashTable *by_ref;    /* ref -> DbRow, every class */
    GHashTable **by_class; /* [class index]: ref -> DbRow */
    GHashTable **by_uuid;  /* [class index]: uuid -> DbRow */
    uint64_t generation;   /* the writer's counter; readers see published_generation */
    uint64_t published_generation; /* the generation of the last committed write */
    uint64_t generation_at_begin;  /* restored when the open write is undone */
    bool in_write;
    GArray *undo;          /* UndoEntry of the open write, oldest first */
    GArray *pending;       /* PendingChange of the open write */
    GQueue **deletions;    /* [class index]: DbDeletion*, oldest first */
    uint64_t *forgotten;   /* [class index]: newest deletion trimmed away */
    struct {               /* the most recent changes, for event.from */
        uint64_t generation;
        const DmClass *cls;
        char *ref;
    } changes[DB_CHANGES_KEPT];
    guint changes_next;    /* ring position of the next entry */
    uint64_t changes_oldest; /* generation the ring is complete from */
    GMutex change_lock;    /* guards nothing but the wait on `changed` */
    uint64_t wakes;        /* db_wake_waiters calls (under change_lock) */
    GCond changed;         /* broadcast after each commit */
    DbCommitHook commit_hook; /* a pool member's: ships each commit to the master */
    bool replica_apply;    /* applying the master's stream: every change at db.generation */
    bool here_only;        /* a member's write of its own rows: kept here, never shipped */
    /* The master's generation a member's replica last applied; 0 before its
     * first batch (its own generation then is its clock, unrelated). */
    uint64_t replica_generation;
} db;

/* The generation of the next change: one more than the last, except while
 * a batch of the master's stream is applied, whose changes all carry the
 * master's generation (a pool-wide one). */
static uint64_t next_generation(void)
{
    return db.replica_apply || db.here_only ? db.generation : ++db.generation;
}

/* Remembers that row changed at the current generation; published to the
 * ring of recent changes when the write commits. */
static void note_change(const DbRow *row)
{
    PendingChange c = {db.generation, row->cls, g_strdup(row->ref)};
    g_array_append_val(db.pending, c);
}

static void publish_change(PendingChange *c)
{
    guint slot = db.changes_next;
    if (db.changes[slot].ref) {
        db.changes_oldest = db.changes[slot].generation;
        g_free(db.changes[slot].ref);
    }
    db.changes[slot].generation = c->generation;
    db.changes[slot].cls = c->cls;
    db.changes[slot].ref = c->ref; /* moved */
    db.changes_next = (slot + 1) % DB_CHANGES_KEPT;
}

/* Appends an entry to the open write's journal; the caller may fill in the
 * rest (valid until the next entry). */
static UndoEntry *journal(UndoKind kind, DbRow *row, guint field, uint64_t modified)
{
    UndoEntry e = {.kind = kind, .field = field, .row = row, .modified = modified};
    g_array_append_val(db.undo, e);
    return &g_array_index(db.undo, UndoEntry, db.undo->len - 1);
}

static void deletion_free(gpointer p)
{
    DbDeletion *d = p;
    g_free(d->ref);
    xv_free(d->snapshot);
    g_free(d);
}

char *db_new_uuid(void)
{
    uuid_t u;
    char text[37];
    uuid_generate_random(u);
    uuid_unparse_lower(u, text);
    return g_strdup(text);
}

char *db_new_ref(void)
{
    g_autofree char *u = db_new_uuid();
    return g_strconcat("OpaqueRef:", u, NULL);
}

static DbRow *row_alloc(const DmClass *cls, char *ref)
{
    DbRow *row = g_malloc0(sizeof(DbRow) + cls->n_fields * sizeof(Xv));
    row->cls = cls;
    row->ref = ref;
    return row;
}

void db_row_free(DbRow *row)
{
    if (!row)
        return;
    for (unsigned i = 0; i < row->cls->n_fields; i++)
        xv_clear(&row->fields[i]);
    g_free(row->ref);
    g_free(row);
}

static const char *row_uuid(const DbRow *row)
{
    return row->cls->uuid_field >= 0 ? xv_str(&row->fields[row->cls->uuid_field]) : NULL;
}

static void index_row(DbRow *row)
{
    g_hash_table_insert(db.by_ref, row->ref, row);
    g_hash_table_insert(db.by_class[row->cls->index], row->ref, row);
    const char *uuid = row_uuid(row);
    if (uuid && *uuid)
        g_hash_table_insert(db.by_uuid[row->cls->index], (gpointer)uuid, row);
}

static void unindex_row(DbRow *row)
{
    const char *uuid = row_uuid(row);
    if (uuid && *uuid && g_hash_table_lookup(db.by_uuid[row->cls->index], uuid) == row)
        g_hash_table_remove(db.by_uuid[row->cls->index], uuid);
    g_hash_table_remove(db.by_class[row->cls->index], row->ref);
    g_hash_table_remove(db.by_ref, row->ref);
}

/* ---- relations ---------------------------------------------------------- */

static void derived_add(const DmField *derived, const char *target_ref, const char *ref)
{
    DbRow *target = db_lookup(derived->cls, target_ref);
    if (!target)
        return;
    Xv *set = &target->fields[derived->index];
    for (guint i = 0; i < xv_len(set); i++)
        if (strcmp(xv_str(xv_at(set, i)), ref) == 0)
            return;
    journal(UNDO_SET_ADD, target, derived->index, target->modified);
    xv_array_append(set, xv_new_string(ref));
    target->modified = db.generation;
    note_change(target);
}

static void derived_remove(const DmField *derived, const char *target_ref, const char *ref)
{
    DbRow *target = db_lookup(derived->cls, target_ref);
    if (!target)
        return;
    Xv *set = &target->fields[derived->index];
    for (guint i = 0; i < xv_len(set); i++) {
        if (strcmp(xv_str(xv_at(set, i)), ref) == 0) {
            UndoEntry *e = journal(UNDO_SET_REMOVE, target, derived->index, target->modified);
            e->position = i;
            xv_array_take_at(set, i, &e->old);
            target->modified = db.generation;
            note_change(target);
            return;
        }
    }
}

/* Applies fn(derived field, target, this ref) for each ref held in a stored
 * relation field's value. */
static void relation_apply(const DbRow *row, const DmField *f, const Xv *value,
                           void (*fn)(const DmField *, const char *, const char *))
{
    if (!f->reverse || f->derived)
        return;
    if (value->kind == XV_STRING) {
        fn(f->reverse, xv_str(value), row->ref);
    } else if (value->kind == XV_ARRAY) {
        for (guint i = 0; i < xv_len(value); i++)
            fn(f->reverse, xv_str(xv_at(value, i)), row->ref);
    }
}

static void relations_link(const DbRow *row)
{
    for (unsigned i = 0; i < row->cls->n_fields; i++)
        relation_apply(row, &row->cls->fields[i], &row->fields[i], derived_add);
}

static void relations_unlink(const DbRow *row)
{
    for (unsigned i = 0; i < row->cls->n_fields; i++)
        relation_apply(row, &row->cls->fields[i], &row->fields[i], derived_remove);
}

/* ---- persistence -------------------------------------------------------- */

static bool persisted(const DmClass *cls)
{
    return db.store && cls->persist;
}

static bool stored(const DmField *f)
{
    return !f->derived && !f->runtime_only;
}

static int persist_row(const DbRow *row, XapiError **err)
{
    if (!persisted(row->cls))
        return 0;
    const DmClass *cls = row->cls;
    g_autoptr(GPtrArray) texts = g_ptr_array_new_with_free_func(g_free);
    for (unsigned i = 0; i < cls->n_fields; i++)
        g_ptr_array_add(texts, stored(&cls->fields[i])
                                   ? db_text_from_value(cls->fields[i].type, &row->fields[i])
                                   : NULL);
    return store_put_row(db.store, cls, row->ref, (const char *const *)texts->pdata, err);
}

typedef struct {
    XapiError **err;
    unsigned loaded;
} LoadContext;

static int load_row(void *ctx, const DmClass *cls, const char *ref, const char *const *texts)
{
    LoadContext *lc = ctx;
    DbRow *row = row_alloc(cls, g_strdup(ref));
    for (unsigned i = 0; i < cls->n_fields; i++) {
        const DmField *f = &cls->fields[i];
        Xv *v = (texts[i] && stored(f)) ? db_text_to_value(f->type, texts[i], lc->err)
                                          : db_field_default(f);
        if (!v) {
            db_row_free(row);
            return -1;
        }
        xv_move_into(&row->fields[i], v);
    }
    index_row(row);
    lc->loaded++;
    return 0;
}

static void journal_discard(void);

static void link_all(void)
{
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, db.by_ref);
    while (g_hash_table_iter_next(&it, &key, &value))
        relations_link(value);
}

static int db_load(const char *what, XapiError **err);

static void db_init(void)
{
    g_rw_lock_init(&db.lock);
    db.by_ref = g_hash_table_new(g_str_hash, g_str_equal);
    db.by_class = g_new0(GHashTable *, dm_n_classes);
    db.by_uuid = g_new0(GHashTable *, dm_n_classes);
    db.deletions = g_new0(GQueue *, dm_n_classes);
    db.forgotten = g_new0(uint64_t, dm_n_classes);
    db.undo = g_array_new(FALSE, FALSE, sizeof(UndoEntry));
    db.pending = g_array_new(FALSE, FALSE, sizeof(PendingChange));
    for (unsigned c = 0; c < dm_n_classes; c++) {
        db.deletions[c] = g_queue_new();
        db.by_class[c] = g_hash_table_new(g_str_hash, g_str_equal);
        db.by_uuid[c] = g_hash_table_new(g_str_hash, g_str_equal);
    }
    /* Generations start from the clock (in microseconds), so that a token
     * from before a restart is below every generation of this run: its
     * holder then sees every object again (a resync), never misses one. */
    db.generation = db.published_generation = (uint64_t)g_get_real_time();
    db.changes_oldest = db.generation;
}

int db_open(const char *state_dir, XapiError **err)
{
    db_init();
    if (!state_dir)
        return 0;
    g_autofree char *path = g_build_filename(state_dir, "xapid.db", NULL);
    db.store = store_open(path, err);
    if (!db.store)
        return -1;
    return db_load(path, err);
}

int db_open_store(Store *store, XapiError **err)
{
    db_init();
    db.store = store;
    return db_load(store_driver_name(store), err);
}

static int db_load(const char *what, XapiError **err)
{
    LoadContext lc = {err, 0};
    for (unsigned c = 0; c < dm_n_classes; c++) {
        if (!dm_classes[c].persist)
            continue;
        if (store_load_class(db.store, &dm_classes[c], load_row, &lc, err) < 0)
            return -1;
    }
    link_all();
    journal_discard(); /* loading is no change: nothing to undo or publish */
    g_autofree char *floor = store_meta_get(db.store, "generation_floor");
    if (floor && g_ascii_strtoull(floor, NULL, 10) >= db.generation)
        db.generation = g_ascii_strtoull(floor, NULL, 10) + 1; /* the clock went back */
    g_autofree char *start = g_strdup_printf("%" G_GUINT64_FORMAT, (guint64)db.generation);
    if (store_meta_set(db.store, "generation_floor", start, err) < 0)
        return -1;
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, db.by_ref);
    while (g_hash_table_iter_next(&it, &key, &value))
        ((DbRow *)value)->created = ((DbRow *)value)->modified = db.generation;
    db.changes_oldest = db.published_generation = db.generation;
    g_message("db: loaded %u objects from %s", lc.loaded, what);
    return 0;
}

int db_move_to_store(Store *to, XapiError **err)
{
    g_rw_lock_writer_lock(&db.lock);
    int rc = -1;
    if (!db.store)
        xapi_error_internal(err, "db: no store to move from (a member's replica)");
    else if (store_copy(db.store, to, err) == 0) {
        /* A later load starts above every generation handed out so far. */
        g_autofree char *last = g_strdup_printf("%" G_GUINT64_FORMAT, (guint64)db.generation);
        if (store_meta_set(to, "generation_floor", last, err) == 0) {
            store_close(db.store);
            db.store = to;
            rc = 0;
        }
    }
    g_rw_lock_writer_unlock(&db.lock);
    if (rc == 0)
        g_message("db: the database now lives in %s", store_driver_name(to));
    return rc;
}

void db_close(void)
{
    if (db.store) {
        /* The next run starts above every generation handed out here. */
        g_autofree char *last = g_strdup_printf("%" G_GUINT64_FORMAT, (guint64)db.generation);
        store_meta_set(db.store, "generation_floor", last, NULL);
        store_close(db.store);
    }
    db.store = NULL;
    if (db.settings)
        store_close(db.settings);
    db.settings = NULL;
    if (!db.by_ref)
        return;
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, db.by_ref);
    while (g_hash_table_iter_next(&it, &key, &value))
        db_row_free(value);
    g_hash_table_destroy(db.by_ref);
    for (unsigned c = 0; c < dm_n_classes; c++) {
        g_hash_table_destroy(db.by_class[c]);
        g_hash_table_destroy(db.by_uuid[c]);
        g_queue_free_full(db.deletions[c], deletion_free);
    }
    g_free(db.by_class);
    g_free(db.by_uuid);
    g_free(db.deletions);
    g_free(db.forgotten);
    g_array_free(db.undo, TRUE);
    g_array_free(db.pending, TRUE);
    for (guint i = 0; i < DB_CHANGES_KEPT; i++)
        g_free(db.changes[i].ref);
    g_rw_lock_clear(&db.lock);
    memset(&db, 0, sizeof db);
}

/* ---- locking and the undo journal -------------------------------------- */

static __thread bool writing_here; /* this thread holds the write lock */

bool db_write_held(void) { return writing_here; }

void db_read_begin(void) { g_rw_lock_reader_lock(&db.lock); }
void db_read_end(void) { g_rw_lock_reader_unlock(&db.lock); }

int db_write_begin(XapiError **err)
{
    g_rw_lock_writer_lock(&db.lock);
    db.in_write = true;
    writing_here = true;
    db.generation_at_begin = db.generation;
    if (db.store && store_begin(db.store, err) < 0) {
        db.in_write = false;
        writing_here = false;
        g_rw_lock_writer_unlock(&db.lock);
        return -1;
    }
    return 0;
}

/* Remembers a committed deletion for event watchers (XAPI keeps at most
 * 512 per table and trims to 256: clients that fall further behind notice
 * through valid_ref_counts). */
static void remember_deletion(const DbRow *row, uint64_t deleted)
{
    /* Every class, not only those with events: a pool member's replica
     * learns of deleted sessions and tasks from them too. */
    GQueue *q = db.deletions[row->cls->index];
    DbDeletion *d = g_new(DbDeletion, 1);
    *d = (DbDeletion){g_strdup(row->ref), row->created, deleted, db_row_record(row)};
    g_queue_push_tail(q, d);
    if (q->length > DB_DELETIONS_KEPT) {
        while (q->length > DB_DELETIONS_KEPT / 2) {
            DbDeletion *old = g_queue_pop_head(q);
            db.forgotten[row->cls->index] = old->deleted;
            deletion_free(old);
        }
    }
}

/* The write committed: what the journal kept for undoing is dropped, the
 * deleted rows are freed and the changes published to event watchers. */
static void journal_settle(void)
{
    for (guint i = 0; i < db.undo->len; i++) {
        UndoEntry *e = &g_array_index(db.undo, UndoEntry, i);
        xv_clear(&e->old);
        if (e->kind == UNDO_DELETE) {
            remember_deletion(e->row, e->deleted);
            db_row_free(e->row);
        }
    }
    g_array_set_size(db.undo, 0);
    for (guint i = 0; i < db.pending->len; i++)
        publish_change(&g_array_index(db.pending, PendingChange, i));
    g_array_set_size(db.pending, 0);
    __atomic_store_n(&db.published_generation, db.generation, __ATOMIC_RELEASE);
}

static void undo_entry(UndoEntry *e)
{
    DbRow *row = e->row;
    Xv *slot = &row->fields[e->field];
    switch (e->kind) {
    case UNDO_INSERT:
        unindex_row(row);
        db_row_free(row);
        return;
    case UNDO_DELETE:
        index_row(row);
        return;
    case UNDO_SET: {
        bool is_uuid = (int)e->field == row->cls->uuid_field;
        if (is_uuid)
            unindex_row(row);
        xv_clear(slot);
        *slot = e->old;
        e->old = (Xv){0};
        if (is_uuid)
            index_row(row);
        break;
    }
    case UNDO_TOUCH:
        break;
    case UNDO_SET_ADD:
        xv_array_remove_at(slot, xv_len(slot) - 1);
        break;
    case UNDO_SET_REMOVE:
        xv_array_insert_at(slot, e->position, &e->old);
        break;
    }
    row->modified = e->modified;
}

/* Forgets what the journal holds, undoing and publishing nothing. */
static void journal_discard(void)
{
    for (guint i = 0; i < db.undo->len; i++)
        xv_clear(&g_array_index(db.undo, UndoEntry, i).old);
    g_array_set_size(db.undo, 0);
    for (guint i = 0; i < db.pending->len; i++)
        g_free(g_array_index(db.pending, PendingChange, i).ref);
    g_array_set_size(db.pending, 0);
}

/* The write did not commit: every change to memory is undone, newest
 * first, and nothing is published. */
static void journal_undo(void)
{
    for (guint i = db.undo->len; i-- > 0;)
        undo_entry(&g_array_index(db.undo, UndoEntry, i));
    journal_discard();
    db.generation = db.generation_at_begin;
}

static struct {
    int64_t at;   /* the commit to die at, 0 for none */
    bool before;  /* before it reaches the disk, or after */
    int64_t seen; /* commits since arming */
} crash;

void db_crash_points_arm(void)
{
    const char *spec = g_getenv("XAPID_CRASH_AT");
    if (!spec)
        return;
    crash.before = g_str_has_prefix(spec, "before:");
    const char *k = strchr(spec, ':');
    crash.at = k ? g_ascii_strtoll(k + 1, NULL, 10) : 0;
    crash.seen = 0;
    g_warning("db: test crash point armed: %s", spec);
}

static void crash_point(bool before)
{
    if (crash.at > 0 && crash.before == before && crash.seen == crash.at)
        kill(getpid(), SIGKILL);
}

static void write_end(bool changed)
{
    db.in_write = false;
    db.here_only = false;
    writing_here = false;
    g_rw_lock_writer_unlock(&db.lock);
    if (!changed)
        return;
    g_mutex_lock(&db.change_lock);
    g_cond_broadcast(&db.changed);
    g_mutex_unlock(&db.change_lock);
}

/* Until the member's replica has applied the master's generation: the
 * write is then visible here to the caller's next call. */
static bool wait_for_replica(uint64_t generation, int64_t deadline)
{
    g_mutex_lock(&db.change_lock);
    while (__atomic_load_n(&db.replica_generation, __ATOMIC_ACQUIRE) < generation) {
        if (!g_cond_wait_until(&db.changed, &db.change_lock, deadline))
            break;
    }
    bool reached = __atomic_load_n(&db.replica_generation, __ATOMIC_ACQUIRE) >= generation;
    g_mutex_unlock(&db.change_lock);
    return reached;
}

bool db_wait_for_generation(uint64_t generation, int64_t deadline)
{
    if (db.commit_hook)
        return wait_for_replica(generation, deadline);
    return db_wait_for_change(generation - 1, deadline);
}

/* A pool member's commit: the write set goes to the master, which applies
 * it in one transaction of its own; the tentative local changes are undone
 * either way, and on success the caller waits until the master's stream
 * has brought the write back (read-your-writes). */
static int ship_commit(XapiError **err)
{
    uint64_t generation = 0;
    int rc = db.undo->len ? db.commit_hook(&generation, err) : 0;
    journal_undo();
    write_end(false);
    if (rc < 0 || !generation)
        return rc;
    int64_t deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    if (!wait_for_replica(generation, deadline))
        g_warning("db: the master's stream has not reached generation %" G_GUINT64_FORMAT
                  " after 30 s", (guint64)generation);
    return 0;
}

static int commit_local(XapiError **err);

int db_write_commit(XapiError **err)
{
    g_return_val_if_fail(db.in_write, xapi_error_internal(err, "db: commit outside a write"));
    if (db.commit_hook && !db.replica_apply && !db.here_only)
        return ship_commit(err);
    return commit_local(err);
}

int db_write_begin_here(XapiError **err)
{
    if (db_write_begin(err) < 0)
        return -1;
    db.here_only = db.commit_hook != NULL;
    return 0;
}

/* The commit to this host's store (none on a member: its replica's). */
static int commit_local(XapiError **err)
{
    crash.seen += crash.at > 0;
    crash_point(true);
    if (db.store && store_commit(db.store, err) < 0) {
        /* The disk does not hold the change, so memory must not either:
         * nobody is told of a write that a restart would not show. */
        g_warning("db: commit failed; the write is undone in memory");
        store_rollback(db.store);
        journal_undo();
        write_end(false);
        return -1;
    }
    crash_point(false);
    journal_settle();
    write_end(true);
    return 0;
}

void db_write_abort(void)
{
    g_return_if_fail(db.in_write);
    if (db.store)
        store_rollback(db.store);
    journal_undo();
    write_end(false);
}

bool db_wait_for_change(uint64_t since, int64_t deadline)
{
    g_mutex_lock(&db.change_lock);
    while (__atomic_load_n(&db.published_generation, __ATOMIC_ACQUIRE) <= since) {
        if (!g_cond_wait_until(&db.changed, &db.change_lock, deadline))
            break;
    }
    bool passed = __atomic_load_n(&db.published_generation, __ATOMIC_ACQUIRE) > since;
    g_mutex_unlock(&db.change_lock);
    return passed;
}

void db_wake_waiters(void)
{
    g_mutex_lock(&db.change_lock);
    db.wakes++;
    g_cond_broadcast(&db.changed);
    g_mutex_unlock(&db.change_lock);
}

uint64_t db_wakes(void)
{
    g_mutex_lock(&db.change_lock);
    uint64_t n = db.wakes;
    g_mutex_unlock(&db.change_lock);
    return n;
}

bool db_wait_for_event(uint64_t since, uint64_t wakes, int64_t deadline)
{
    g_mutex_lock(&db.change_lock);
    while (__atomic_load_n(&db.published_generation, __ATOMIC_ACQUIRE) <= since &&
           db.wakes == wakes) {
        if (!g_cond_wait_until(&db.changed, &db.change_lock, deadline))
            break;
    }
    bool passed = __atomic_load_n(&db.published_generation, __ATOMIC_ACQUIRE) > since ||
                  db.wakes != wakes;
    g_mutex_unlock(&db.change_lock);
    return passed;
}

bool db_foreach_change(uint64_t since, void (*fn)(const DmClass *cls, const char *ref, void *ctx),
                       void *ctx)
{
    if (since < db.changes_oldest)
        return false;
    for (guint n = 0; n < DB_CHANGES_KEPT; n++) {
        guint slot = (db.changes_next + n) % DB_CHANGES_KEPT;
        if (db.changes[slot].ref && db.changes[slot].generation > since)
            fn(db.changes[slot].cls, db.changes[slot].ref, ctx);
    }
    return true;
}

uint64_t db_deletions_forgotten(const DmClass *cls)
{
    return db.forgotten[cls->index];
}

void db_foreach_deletion(const DmClass *cls, uint64_t since,
                         void (*fn)(const DbDeletion *d, void *ctx), void *ctx)
{
    for (GList *l = db.deletions[cls->index]->head; l; l = l->next) {
        const DbDeletion *d = l->data;
        if (d->deleted > since)
            fn(d, ctx);
    }
}

/* ---- reads -------------------------------------------------------------- */

DbRow *db_lookup(const DmClass *cls, const char *ref)
{
    if (!ref)
        return NULL;
    return g_hash_table_lookup(db.by_class[cls->index], ref);
}

DbRow *db_lookup_any(const char *ref)
{
    return ref ? g_hash_table_lookup(db.by_ref, ref) : NULL;
}

DbRow *db_lookup_uuid(const DmClass *cls, const char *uuid)
{
    return uuid ? g_hash_table_lookup(db.by_uuid[cls->index], uuid) : NULL;
}

guint db_count(const DmClass *cls)
{
    return g_hash_table_size(db.by_class[cls->index]);
}

void db_foreach(const DmClass *cls, bool (*fn)(DbRow *row, void *ctx), void *ctx)
{
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, db.by_class[cls->index]);
    while (g_hash_table_iter_next(&it, &key, &value))
        if (!fn(value, ctx))
            return;
}

const Xv *db_get(const DbRow *row, const char *field_name)
{
    const DmField *f = dm_field_by_name(row->cls, field_name);
    return f ? &row->fields[f->index] : NULL;
}

Xv *db_row_record(const DbRow *row)
{
    Xv *rec = xv_new_struct();
    for (unsigned i = 0; i < row->cls->n_fields; i++)
        xv_struct_append_static_copy(rec, row->cls->fields[i].name, &row->fields[i]);
    return rec;
}

uint64_t db_generation(void) { return db.generation; }

/* ---- writes ------------------------------------------------------------- */

DbRow *db_row_new(const DmClass *cls)
{
    return db_row_new_with_ref(cls, NULL);
}

DbRow *db_row_new_with_ref(const DmClass *cls, const char *ref)
{
    DbRow *row = row_alloc(cls, ref ? g_strdup(ref) : db_new_ref());
    for (unsigned i = 0; i < cls->n_fields; i++)
        xv_move_into(&row->fields[i], db_field_default(&cls->fields[i]));
    if (cls->uuid_field >= 0) {
        xv_clear(&row->fields[cls->uuid_field]);
        xv_move_into(&row->fields[cls->uuid_field], xv_new_string_take(db_new_uuid()));
    }
    return row;
}

void db_row_put(DbRow *row, const char *field_name, Xv *value)
{
    const DmField *f = dm_field_by_name(row->cls, field_name);
    g_return_if_fail(f != NULL);
    xv_clear(&row->fields[f->index]);
    xv_move_into(&row->fields[f->index], value);
}

int db_insert(DbRow *row, XapiError **err)
{
    if (!db.in_write || persist_row(row, err) < 0) {
        if (!db.in_write)
            xapi_error_internal(err, "db: write outside a write transaction");
        db_row_free(row);
        return -1;
    }
    row->created = row->modified = next_generation();
    journal(UNDO_INSERT, row, 0, 0);
    note_change(row);
    index_row(row);
    relations_link(row);
    return 0;
}

char *db_insert_and_commit(DbRow *row, XapiError **err)
{
    char *ref = g_strdup(row->ref);
    if (db_insert(row, err) < 0) {
        db_write_abort();
        g_free(ref);
        return NULL;
    }
    if (db_write_commit(err) < 0) {
        g_free(ref);
        return NULL;
    }
    return ref;
}

int db_set(DbRow *row, const DmField *field, Xv *value, XapiError **err)
{
    if (!db.in_write) {
        xv_free(value);
        return xapi_error_internal(err, "db: write outside a write transaction");
    }
    Xv *slot = &row->fields[field->index];
    if (persisted(row->cls) && stored(field)) {
        g_autofree char *text = db_text_from_value(field->type, value);
        if (store_set_field(db.store, row->cls, row->ref, field, text, err) < 0) {
            xv_free(value);
            return -1;
        }
    }
    uint64_t modified = row->modified;
    row->modified = next_generation();
    note_change(row);
    bool is_uuid = (int)field->index == row->cls->uuid_field;
    if (is_uuid)
        unindex_row(row);
    relation_apply(row, field, slot, derived_remove);
    journal(UNDO_SET, row, field->index, modified)->old = *slot;
    *slot = (Xv){0};
    xv_move_into(slot, value);
    relation_apply(row, field, slot, derived_add);
    if (is_uuid)
        index_row(row);
    return 0;
}

int db_set_by_name(DbRow *row, const char *field_name, Xv *value, XapiError **err)
{
    const DmField *f = dm_field_by_name(row->cls, field_name);
    if (!f) {
        xv_free(value);
        return xapi_error_internal(err, "no field %s in class %s", field_name, row->cls->name);
    }
    return db_set(row, f, value, err);
}

DbRow *db_write_begin_on(const char *class_name, const char *ref, XapiError **err)
{
    if (db_write_begin(err) < 0)
        return NULL;
    const DmClass *cls = dm_class_by_name(class_name);
    DbRow *row = cls ? db_lookup(cls, ref) : NULL;
    if (!row) {
        db_write_abort();
        xapi_error_set(err, "HANDLE_INVALID", class_name, ref, NULL);
    }
    return row;
}

int db_update(const char *class_name, const char *ref, const char *field_name, Xv *value,
              XapiError **err)
{
    DbRow *row = db_write_begin_on(class_name, ref, err);
    if (!row) {
        xv_free(value);
        return -1;
    }
    if (db_set_by_name(row, field_name, value, err) < 0) {
        db_write_abort();
        return -1;
    }
    return db_write_commit(err);
}

int db_delete(DbRow *row, XapiError **err)
{
    if (!db.in_write)
        return xapi_error_internal(err, "db: write outside a write transaction");
    if (persisted(row->cls) && store_delete_row(db.store, row->cls, row->ref, err) < 0)
        return -1;
    journal(UNDO_DELETE, row, 0, row->modified)->deleted = next_generation();
    relations_unlink(row);
    unindex_row(row); /* freed when the write commits */
    return 0;
}

void db_touch(DbRow *row)
{
    g_return_if_fail(db.in_write);
    journal(UNDO_TOUCH, row, 0, row->modified);
    row->modified = next_generation();
    note_change(row);
}

int db_open_member_settings(const char *path, XapiError **err)
{
    db.settings = store_open(path, err);
    return db.settings ? 0 : -1;
}

char *db_meta_get(const char *key)
{
    if (!db.store)
        return db.settings ? store_meta_get(db.settings, key) : NULL;
    return store_meta_get(db.store, key);
}

int db_meta_put(const char *key, const char *value, XapiError **err)
{
    if (!db.in_write)
        return xapi_error_internal(err, "db: write outside a write transaction");
    if (!db.store) /* a member's: written at once, not with the shipped write */
        return db.settings ? store_meta_set(db.settings, key, value, err) : 0;
    return store_meta_set(db.store, key, value, err);
}

int db_meta_set(const char *key, const char *value, XapiError **err)
{
    if (!db.store)
        return db.settings ? store_meta_set(db.settings, key, value, err) : 0;
    if (db_write_begin(err) < 0)
        return -1;
    if (store_meta_set(db.store, key, value, err) < 0) {
        db_write_abort();
        return -1;
    }
    return db_write_commit(err);
}

int db_meta_delete(const char *key, XapiError **err)
{
    if (!db.store)
        return db.settings ? store_meta_delete(db.settings, key, err) : 0;
    if (writing_here)
        return store_meta_delete(db.store, key, err);
    if (db_write_begin(err) < 0)
        return -1;
    if (store_meta_delete(db.store, key, err) < 0) {
        db_write_abort();
        return -1;
    }
    return db_write_commit(err);
}

GPtrArray *db_meta_keys(const char *prefix)
{
    Store *s = db.store ? db.store : db.settings;
    return s ? store_meta_keys(s, prefix) : g_ptr_array_new_with_free_func(g_free);
}

int db_write_finish(XapiError **err, int rc)
{
    if (rc < 0) {
        db_write_abort();
        return -1;
    }
    return db_write_commit(err);
}

/* ---- pool replication (src/pool) ---------------------------------------- */

void db_set_commit_hook(DbCommitHook hook)
{
    db.commit_hook = hook;
}

void db_foreach_write(DbWriteFn fn, void *ctx)
{
    g_autoptr(GHashTable) inserted = g_hash_table_new(NULL, NULL);
    g_autoptr(GHashTable) deleted = g_hash_table_new(NULL, NULL);
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (guint i = 0; i < db.undo->len; i++) {
        UndoEntry *e = &g_array_index(db.undo, UndoEntry, i);
        if (e->kind == UNDO_INSERT)
            g_hash_table_add(inserted, e->row);
        else if (e->kind == UNDO_DELETE)
            g_hash_table_add(deleted, e->row);
    }
    for (guint i = 0; i < db.undo->len; i++) {
        UndoEntry *e = &g_array_index(db.undo, UndoEntry, i);
        bool was_inserted = g_hash_table_contains(inserted, e->row);
        bool was_deleted = g_hash_table_contains(deleted, e->row);
        switch (e->kind) {
        case UNDO_INSERT:
            if (!was_deleted)
                fn(DB_WRITE_INSERT, e->row, NULL, ctx);
            break;
        case UNDO_DELETE:
            if (!was_inserted)
                fn(DB_WRITE_DELETE, e->row, NULL, ctx);
            break;
        case UNDO_SET:
        case UNDO_TOUCH: {
            if (was_inserted || was_deleted)
                break;
            const DmField *f = e->kind == UNDO_SET ? &e->row->cls->fields[e->field] : NULL;
            char *key = g_strdup_printf("%p/%s", (void *)e->row, f ? f->name : "");
            if (g_hash_table_add(seen, key))
                fn(f ? DB_WRITE_SET : DB_WRITE_TOUCH, e->row, f, ctx);
            break;
        }
        case UNDO_SET_ADD:
        case UNDO_SET_REMOVE:
            break; /* derived sides: the master keeps its own */
        }
    }
}

void db_link_relations(DbRow *row)
{
    relations_link(row);
}

int db_replica_begin(uint64_t generation, XapiError **err)
{
    if (db_write_begin(err) < 0)
        return -1;
    db.replica_apply = true;
    db.generation = generation;
    return 0;
}

void db_replica_row_generations(DbRow *row, uint64_t created, uint64_t modified)
{
    row->created = created;
    row->modified = modified;
}

int db_replica_commit(bool resync, XapiError **err)
{
    g_return_val_if_fail(db.replica_apply, xapi_error_internal(err, "db: not applying"));
    if (resync && db.changes_oldest > db.generation)
        db.changes_oldest = db.generation; /* a replica's first batch: below the clock */
    db.replica_apply = false; /* before the lock is released */
    uint64_t before = db.replica_generation;
    __atomic_store_n(&db.replica_generation, db.generation, __ATOMIC_RELEASE);
    if (commit_local(err) < 0) {
        __atomic_store_n(&db.replica_generation, before, __ATOMIC_RELEASE);
        return -1;
    }
    g_mutex_lock(&db.change_lock); /* a batch that changed no row wakes the waiters too */
    g_cond_broadcast(&db.changed);
    g_mutex_unlock(&db.change_lock);
    return 0;
}

void db_replica_abort(void)
{
    db.replica_apply = false;
    db_write_abort();
}

/* ---- a member becoming the master --------------------------------------- */

typedef struct {
    XapiError **err;
    GHashTable *in_store; /* refs the store holds */
    GPtrArray *inserted;
    unsigned changed;
} AdoptContext;

static int adopt_row(void *ctx, const DmClass *cls, const char *ref, const char *const *texts)
{
    AdoptContext *ac = ctx;
    g_hash_table_add(ac->in_store, g_strdup(ref));
    DbRow *row = db_lookup(cls, ref);
    if (!row) {
        DbRow *fresh = row_alloc(cls, g_strdup(ref));
        for (unsigned i = 0; i < cls->n_fields; i++) {
            const DmField *f = &cls->fields[i];
            Xv *v = (texts[i] && stored(f)) ? db_text_to_value(f->type, texts[i], ac->err)
                                              : db_field_default(f);
            if (!v) {
                db_row_free(fresh);
                return -1;
            }
            xv_move_into(&fresh->fields[i], v);
        }
        if (db_insert(fresh, ac->err) < 0)
            return -1;
        g_ptr_array_add(ac->inserted, fresh);
        ac->changed++;
        return 0;
    }
    bool differs = false;
    for (unsigned i = 0; i < cls->n_fields; i++) {
        const DmField *f = &cls->fields[i];
        if (!stored(f))
            continue; /* runtime state: the replica's, as the master streamed it */
        Xv *v = texts[i] ? db_text_to_value(f->type, texts[i], ac->err) : db_field_default(f);
        if (!v)
            return -1;
        if (xv_equal(v, &row->fields[i])) {
            xv_free(v);
            continue;
        }
        if (db_set(row, f, v, ac->err) < 0)
            return -1;
        differs = true;
    }
    ac->changed += differs;
    return 0;
}

static bool note_not_stored(DbRow *row, void *ctx)
{
    AdoptContext *ac = ctx;
    if (!g_hash_table_contains(ac->in_store, row->ref))
        g_ptr_array_add(ac->inserted, row); /* reused: the rows to delete */
    return true;
}

int db_adopt_store(Store *store, XapiError **err)
{
    if (db_write_begin(err) < 0)
        return -1;
    if (db.store || !db.commit_hook) {
        db_write_abort();
        return xapi_error_internal(err, "db: only a pool member's replica adopts a store");
    }
    /* Above every generation handed out by any master before: the old
     * master's started from its clock and counted one per write. */
    uint64_t generation = MAX(db.generation + 1, (uint64_t)g_get_real_time());
    g_autofree char *floor = store_meta_get(store, "generation_floor");
    if (floor && g_ascii_strtoull(floor, NULL, 10) >= generation)
        generation = g_ascii_strtoull(floor, NULL, 10) + 1;
    db.replica_apply = true;
    db.generation = generation;
    AdoptContext ac = {err, g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL),
                       g_ptr_array_new(), 0};
    int rc = 0;
    for (unsigned c = 0; c < dm_n_classes && rc == 0; c++)
        if (dm_classes[c].persist)
            rc = store_load_class(store, &dm_classes[c], adopt_row, &ac, err);
    for (guint i = 0; i < ac.inserted->len; i++)
        relations_link(ac.inserted->pdata[i]); /* targets inserted after their sources */
    unsigned inserted = ac.inserted->len;
    g_ptr_array_set_size(ac.inserted, 0);
    for (unsigned c = 0; c < dm_n_classes && rc == 0; c++)
        if (dm_classes[c].persist)
            db_foreach(&dm_classes[c], note_not_stored, &ac);
    unsigned deleted = ac.inserted->len;
    for (guint i = 0; i < ac.inserted->len && rc == 0; i++)
        rc = db_delete(ac.inserted->pdata[i], err);
    g_hash_table_destroy(ac.in_store);
    g_ptr_array_unref(ac.inserted);
    g_autofree char *start = g_strdup_printf("%" G_GUINT64_FORMAT, (guint64)generation);
    if (rc == 0)
        rc = store_meta_set(store, "generation_floor", start, err);
    db.replica_apply = false;
    if (rc < 0) {
        db_write_abort();
        return -1;
    }
    /* From here on the host writes there, as a master does. */
    db.commit_hook = NULL;
    /* A write shipped to the old master and waiting for its stream is in
     * memory now (it was in the store): release its wait. */
    __atomic_store_n(&db.replica_generation, UINT64_MAX, __ATOMIC_RELEASE);
    db.store = store;
    journal_settle();
    write_end(true);
    g_message("db: the pool's database adopted from %s at generation %" G_GUINT64_FORMAT
              ": %u objects changed, %u new, %u gone since the replica's last batch",
              store_driver_name(store), (guint64)generation, ac.changed - inserted, inserted,
              deleted);
    return 0;
}

uint64_t db_changes_oldest(void)
{
    return db.changes_oldest;
}
