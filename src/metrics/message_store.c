/* message_store.c: messages in STATE_DIR/messages.db and in memory (see
 * message_store.h). */
#include "message_store.h"

#include <sqlite3.h>
#include <string.h>

#include "datamodel.h"
#include "db.h"
#include "db_text.h"
#include "fault_vfs.h"

typedef struct {
    char *ref, *uuid, *name, *cls, *obj_uuid, *body;
    int64_t priority, timestamp;
    uint64_t generation; /* of its creation */
    GList *age_link;     /* in ms.by_age */
} Msg;

typedef struct {
    char *ref;
    uint64_t created, deleted;
    Xv *snapshot;
} MsgDeletion;

static struct {
    GRWLock lock;
    sqlite3 *db;         /* NULL: not open (a member's, or before start) */
    char *dir;           /* for OUT_OF_SPACE */
    GHashTable *by_ref;  /* ref -> Msg* (owned) */
    GHashTable *by_uuid; /* uuid -> Msg* (borrowed) */
    GQueue by_age;       /* Msg* (borrowed), oldest first: the cap's order */
    uint64_t generation; /* the last one handed out */
    GQueue deletions;    /* MsgDeletion*, oldest first */
    uint64_t deletions_forgotten;
    MessageRemote remote;
} ms;

static unsigned limit = MESSAGE_STORE_LIMIT;

void message_store_set_limit(unsigned n) { limit = n ? n : MESSAGE_STORE_LIMIT; }

static void msg_free(gpointer p)
{
    Msg *m = p;
    if (!m)
        return;
    g_free(m->ref);
    g_free(m->uuid);
    g_free(m->name);
    g_free(m->cls);
    g_free(m->obj_uuid);
    g_free(m->body);
    g_free(m);
}

static void deletion_free(gpointer p)
{
    MsgDeletion *d = p;
    g_free(d->ref);
    xv_free(d->snapshot);
    g_free(d);
}

/* get_record's struct: the datamodel's fields in its order. */
static Xv *msg_record(const Msg *m)
{
    Xv *r = xv_new_struct();
    xv_struct_append(r, "uuid", xv_new_string(m->uuid));
    xv_struct_append(r, "name", xv_new_string(m->name));
    xv_struct_append(r, "priority", xv_new_int(m->priority));
    xv_struct_append(r, "cls", xv_new_string(m->cls));
    xv_struct_append(r, "obj_uuid", xv_new_string(m->obj_uuid));
    xv_struct_append(r, "timestamp", xv_new_datetime(m->timestamp));
    xv_struct_append(r, "body", xv_new_string(m->body));
    return r;
}

/* ---- SQLite -------------------------------------------------------------- */

static int sql_fail(XapiError **err, const char *what)
{
    if ((sqlite3_extended_errcode(ms.db) & 0xff) == SQLITE_FULL)
        return xapi_error_set(err, "OUT_OF_SPACE", ms.dir, NULL);
    return xapi_error_internal(err, "messages.db: %s: %s", what, sqlite3_errmsg(ms.db));
}

static int sql_exec(const char *sql, XapiError **err)
{
    if (sqlite3_exec(ms.db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sql_fail(err, sql);
    return 0;
}

static void sql_rollback(void)
{
    if (!sqlite3_get_autocommit(ms.db))
        sqlite3_exec(ms.db, "ROLLBACK", NULL, NULL, NULL);
}

/* INSERT OR IGNORE: a row migrated twice (a crash between the store's
 * commit and the database's) is kept once. */
static int sql_insert(const Msg *m, XapiError **err)
{
    static const char sql[] =
        "INSERT OR IGNORE INTO messages (generation, ref, uuid, name, priority, cls, obj_uuid,"
        " timestamp, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(ms.db, sql, -1, &st, NULL) != SQLITE_OK)
        return sql_fail(err, "prepare insert");
    sqlite3_bind_int64(st, 1, (sqlite3_int64)m->generation);
    sqlite3_bind_text(st, 2, m->ref, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, m->uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, m->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, m->priority);
    sqlite3_bind_text(st, 6, m->cls, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, m->obj_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, m->timestamp);
    sqlite3_bind_text(st, 9, m->body, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sql_fail(err, "insert");
    sqlite3_finalize(st);
    return rc;
}

static int sql_delete(const char *ref, XapiError **err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(ms.db, "DELETE FROM messages WHERE ref = ?", -1, &st, NULL) !=
        SQLITE_OK)
        return sql_fail(err, "prepare delete");
    sqlite3_bind_text(st, 1, ref, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sql_fail(err, "delete");
    sqlite3_finalize(st);
    return rc;
}

static void add(Msg *m);

static char *column_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return g_strdup(t ? (const char *)t : "");
}

static int sql_load(XapiError **err)
{
    static const char sql[] = "SELECT generation, ref, uuid, name, priority, cls, obj_uuid,"
                              " timestamp, body FROM messages ORDER BY timestamp, generation";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(ms.db, sql, -1, &st, NULL) != SQLITE_OK)
        return sql_fail(err, "prepare load");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        Msg *m = g_new0(Msg, 1);
        m->generation = (uint64_t)sqlite3_column_int64(st, 0);
        m->ref = column_text(st, 1);
        m->uuid = column_text(st, 2);
        m->name = column_text(st, 3);
        m->priority = sqlite3_column_int64(st, 4);
        m->cls = column_text(st, 5);
        m->obj_uuid = column_text(st, 6);
        m->timestamp = sqlite3_column_int64(st, 7);
        m->body = column_text(st, 8);
        if (m->generation > ms.generation)
            ms.generation = m->generation;
        add(m);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sql_fail(err, "load");
}

/* ---- memory (write lock held) -------------------------------------------- */

static void remember_deletion(Msg *m, uint64_t generation)
{
    MsgDeletion *d = g_new0(MsgDeletion, 1);
    d->ref = g_strdup(m->ref);
    d->created = m->generation;
    d->deleted = generation;
    d->snapshot = msg_record(m);
    g_queue_push_tail(&ms.deletions, d);
    while (g_queue_get_length(&ms.deletions) > MESSAGE_DELETIONS_KEPT) {
        MsgDeletion *old = g_queue_pop_head(&ms.deletions);
        ms.deletions_forgotten = old->deleted;
        deletion_free(old);
    }
}

static void forget(Msg *m, uint64_t generation)
{
    remember_deletion(m, generation);
    g_queue_delete_link(&ms.by_age, m->age_link);
    g_hash_table_remove(ms.by_uuid, m->uuid);
    g_hash_table_remove(ms.by_ref, m->ref); /* frees m */
}

static bool older(const Msg *a, const Msg *b)
{
    return a->timestamp < b->timestamp ||
           (a->timestamp == b->timestamp && a->generation < b->generation);
}

/* Into the indexes; by age from the newest end, where a new message goes
 * unless the clock went back. */
static void add(Msg *m)
{
    g_hash_table_insert(ms.by_uuid, m->uuid, m);
    g_hash_table_insert(ms.by_ref, m->ref, m);
    GList *l = ms.by_age.tail;
    while (l && older(m, l->data))
        l = l->prev;
    if (l) {
        g_queue_insert_after(&ms.by_age, l, m);
        m->age_link = l->next;
    } else {
        g_queue_push_head(&ms.by_age, m);
        m->age_link = ms.by_age.head;
    }
}

/* The messages beyond the cap once extra more are added, oldest first. */
static GPtrArray *over_limit(guint extra)
{
    GPtrArray *victims = g_ptr_array_new();
    guint have = g_hash_table_size(ms.by_ref);
    guint reap = have + extra > limit ? MIN(have + extra - limit, have) : 0;
    for (GList *l = ms.by_age.head; l && victims->len < reap; l = l->next)
        g_ptr_array_add(victims, l->data);
    return victims;
}

/* ---- open / close -------------------------------------------------------- */

typedef struct {
    GPtrArray *msgs; /* Msg* from the database's rows */
    GPtrArray *refs; /* their refs */
} Migration;

static bool collect_row(DbRow *row, void *ctx)
{
    Migration *mg = ctx;
    Msg *m = g_new0(Msg, 1);
    m->ref = g_strdup(row->ref);
    m->uuid = g_strdup(xv_str(db_get(row, "uuid")));
    m->name = g_strdup(xv_str(db_get(row, "name")));
    m->priority = db_get(row, "priority")->i;
    m->cls = g_strdup(xv_str(db_get(row, "cls")));
    m->obj_uuid = g_strdup(xv_str(db_get(row, "obj_uuid")));
    m->timestamp = db_get(row, "timestamp")->i;
    m->body = g_strdup(xv_str(db_get(row, "body")));
    m->generation = row->created;
    g_ptr_array_add(mg->msgs, m);
    g_ptr_array_add(mg->refs, g_strdup(row->ref));
    return true;
}

static gint by_creation(gconstpointer a, gconstpointer b)
{
    const Msg *x = *(Msg *const *)a, *y = *(Msg *const *)b;
    return x->generation < y->generation ? -1 : x->generation > y->generation;
}

/* The object database's message rows (an xapid before this store kept
 * them there): into the store in one transaction, then out of the
 * database in one. Write lock of the store held. */
static int migrate_from_db(XapiError **err)
{
    const DmClass *cls = dm_class_by_name("message");
    Migration mg = {g_ptr_array_new_with_free_func(msg_free), g_ptr_array_new_with_free_func(g_free)};
    db_read_begin();
    db_foreach(cls, collect_row, &mg);
    db_read_end();
    int rc = 0;
    if (mg.msgs->len) {
        g_ptr_array_sort(mg.msgs, by_creation);
        rc = sql_exec("BEGIN IMMEDIATE", err);
        for (guint i = 0; rc == 0 && i < mg.msgs->len; i++) {
            Msg *m = mg.msgs->pdata[i];
            if (g_hash_table_contains(ms.by_ref, m->ref))
                continue; /* moved before a crash: the database kept it */
            m->generation = ++ms.generation;
            rc = sql_insert(m, err);
        }
        if (rc == 0)
            rc = sql_exec("COMMIT", err);
        if (rc < 0)
            sql_rollback();
    }
    for (guint i = 0; rc == 0 && i < mg.msgs->len; i++) {
        Msg *m = mg.msgs->pdata[i];
        if (g_hash_table_contains(ms.by_ref, m->ref))
            continue;
        mg.msgs->pdata[i] = NULL;
        add(m);
    }
    if (rc == 0 && mg.refs->len && db_write_begin(err) == 0) {
        for (guint i = 0; rc == 0 && i < mg.refs->len; i++) {
            DbRow *row = db_lookup(cls, mg.refs->pdata[i]);
            if (row)
                rc = db_delete(row, err);
        }
        rc = db_write_finish(err, rc);
    } else if (rc == 0 && mg.refs->len) {
        rc = -1;
    }
    if (rc == 0 && mg.refs->len)
        g_message("messages: %u moved from the object database to messages.db", mg.refs->len);
    g_ptr_array_unref(mg.msgs);
    g_ptr_array_unref(mg.refs);
    return rc;
}

/* Trims a store over the cap (the cap was lowered, or rows migrated) in
 * one transaction. Write lock held. */
static int trim_at_open(XapiError **err)
{
    g_autoptr(GPtrArray) victims = over_limit(0);
    if (!victims->len)
        return 0;
    int rc = sql_exec("BEGIN IMMEDIATE", err);
    for (guint i = 0; rc == 0 && i < victims->len; i++)
        rc = sql_delete(((Msg *)victims->pdata[i])->ref, err);
    if (rc == 0)
        rc = sql_exec("COMMIT", err);
    if (rc < 0) {
        sql_rollback();
        return -1;
    }
    for (guint i = 0; i < victims->len; i++)
        forget(victims->pdata[i], ++ms.generation);
    return 0;
}

int message_store_open(const char *state_dir, XapiError **err)
{
    g_rw_lock_writer_lock(&ms.lock);
    ms.by_ref = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, msg_free);
    ms.by_uuid = g_hash_table_new(g_str_hash, g_str_equal);
    g_queue_init(&ms.deletions);
    g_queue_init(&ms.by_age);
    ms.dir = g_strdup(state_dir ? state_dir : "");
    g_autofree char *path =
        state_dir ? g_build_filename(state_dir, "messages.db", NULL) : g_strdup(":memory:");
    int rc = 0;
    if (sqlite3_open_v2(path, &ms.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                        fault_vfs_name()) != SQLITE_OK) {
        rc = xapi_error_internal(err, "%s: %s", path, ms.db ? sqlite3_errmsg(ms.db) : "no memory");
        sqlite3_close(ms.db);
        ms.db = NULL;
    }
    if (rc == 0) {
        sqlite3_busy_timeout(ms.db, 5000);
        /* As xapid.db: WAL, synced at checkpoints (kill -9 loses nothing
         * committed; a power cut may lose the last commits). */
        rc = sql_exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                      "CREATE TABLE IF NOT EXISTS messages ("
                      " generation INTEGER PRIMARY KEY, ref TEXT NOT NULL UNIQUE,"
                      " uuid TEXT NOT NULL UNIQUE, name TEXT NOT NULL, priority INTEGER NOT NULL,"
                      " cls TEXT NOT NULL, obj_uuid TEXT NOT NULL, timestamp INTEGER NOT NULL,"
                      " body TEXT NOT NULL)",
                      err);
    }
    if (rc == 0)
        rc = sql_load(err);
    /* Generations go on from the newest stored or the clock's microseconds,
     * whichever is later: the deletions before a restart were counted too. */
    uint64_t now = (uint64_t)g_get_real_time();
    if (ms.generation < now)
        ms.generation = now;
    if (rc == 0)
        rc = migrate_from_db(err);
    if (rc == 0)
        rc = trim_at_open(err);
    g_rw_lock_writer_unlock(&ms.lock);
    if (rc < 0)
        message_store_close();
    return rc;
}

void message_store_close(void)
{
    g_rw_lock_writer_lock(&ms.lock);
    if (ms.db)
        sqlite3_close(ms.db);
    ms.db = NULL;
    g_clear_pointer(&ms.by_uuid, g_hash_table_destroy);
    g_clear_pointer(&ms.by_ref, g_hash_table_destroy);
    g_queue_clear_full(&ms.deletions, deletion_free);
    g_queue_clear(&ms.by_age);
    g_clear_pointer(&ms.dir, g_free);
    g_rw_lock_writer_unlock(&ms.lock);
}

/* ---- remote (a pool member) ---------------------------------------------- */

void message_store_set_remote(MessageRemote remote) { ms.remote = remote; }

bool message_store_is_remote(void) { return ms.remote != NULL; }

int message_store_remote(const char *method, const Xv *args, Xv **value, XapiError **err)
{
    return ms.remote(method, args, value, err);
}

static int not_open(XapiError **err)
{
    return xapi_error_internal(err, "the message store is not open");
}

/* ---- writes -------------------------------------------------------------- */

static char *create_remote(const char *name, int64_t priority, const char *cls,
                           const char *obj_uuid, const char *body, XapiError **err)
{
    g_autoptr(Xv) args = xv_new_array();
    xv_array_append_string(args, name);
    xv_array_append(args, xv_new_int(priority));
    xv_array_append_string(args, cls);
    xv_array_append_string(args, obj_uuid);
    xv_array_append_string(args, body);
    g_autoptr(Xv) value = NULL;
    if (ms.remote("message.create", args, &value, err) < 0)
        return NULL;
    return g_strdup(xv_str(value));
}

char *message_store_create(const char *name, int64_t priority, const char *cls,
                           const char *obj_uuid, const char *body, XapiError **err)
{
    if (ms.remote)
        return create_remote(name, priority, cls, obj_uuid, body, err);
    Msg *m = g_new0(Msg, 1);
    m->ref = db_new_ref();
    m->uuid = db_new_uuid();
    m->name = g_strdup(name);
    m->priority = priority;
    m->cls = g_strdup(cls);
    m->obj_uuid = g_strdup(obj_uuid);
    m->body = g_strdup(body);
    m->timestamp = g_get_real_time() / G_USEC_PER_SEC;
    g_rw_lock_writer_lock(&ms.lock);
    if (!ms.db) {
        g_rw_lock_writer_unlock(&ms.lock);
        msg_free(m);
        not_open(err);
        return NULL;
    }
    m->generation = ms.generation + 1;
    g_autoptr(GPtrArray) victims = over_limit(1);
    int rc = sql_exec("BEGIN IMMEDIATE", err);
    if (rc == 0)
        rc = sql_insert(m, err);
    for (guint i = 0; rc == 0 && i < victims->len; i++)
        rc = sql_delete(((Msg *)victims->pdata[i])->ref, err);
    if (rc == 0)
        rc = sql_exec("COMMIT", err);
    char *ref = NULL;
    if (rc < 0) {
        sql_rollback();
        msg_free(m);
    } else {
        ms.generation++;
        ref = g_strdup(m->ref);
        add(m);
        for (guint i = 0; i < victims->len; i++)
            forget(victims->pdata[i], ++ms.generation);
    }
    g_rw_lock_writer_unlock(&ms.lock);
    if (ref)
        db_wake_waiters();
    return ref;
}

int message_store_destroy(const char *const *refs, guint n, XapiError **err)
{
    g_rw_lock_writer_lock(&ms.lock);
    if (!ms.db) {
        g_rw_lock_writer_unlock(&ms.lock);
        return not_open(err);
    }
    for (guint i = 0; i < n; i++)
        if (!g_hash_table_contains(ms.by_ref, refs[i])) {
            g_rw_lock_writer_unlock(&ms.lock);
            return xapi_error_set(err, "HANDLE_INVALID", "message", refs[i], NULL);
        }
    int rc = sql_exec("BEGIN IMMEDIATE", err);
    for (guint i = 0; rc == 0 && i < n; i++)
        rc = sql_delete(refs[i], err); /* a repeated ref deletes nothing more */
    if (rc == 0)
        rc = sql_exec("COMMIT", err);
    if (rc < 0) {
        sql_rollback();
    } else {
        for (guint i = 0; i < n; i++) {
            Msg *m = g_hash_table_lookup(ms.by_ref, refs[i]);
            if (m)
                forget(m, ++ms.generation);
        }
    }
    g_rw_lock_writer_unlock(&ms.lock);
    if (rc == 0)
        db_wake_waiters();
    return rc;
}

/* ---- reads --------------------------------------------------------------- */

Xv *message_store_get_all(void)
{
    Xv *refs = xv_new_array();
    g_rw_lock_reader_lock(&ms.lock);
    if (ms.by_ref) {
        GHashTableIter it;
        gpointer ref;
        g_hash_table_iter_init(&it, ms.by_ref);
        while (g_hash_table_iter_next(&it, &ref, NULL))
            xv_array_append_string(refs, ref);
    }
    g_rw_lock_reader_unlock(&ms.lock);
    return refs;
}

Xv *message_store_get_record(const char *ref)
{
    g_rw_lock_reader_lock(&ms.lock);
    Msg *m = ms.by_ref ? g_hash_table_lookup(ms.by_ref, ref) : NULL;
    Xv *r = m ? msg_record(m) : NULL;
    g_rw_lock_reader_unlock(&ms.lock);
    return r;
}

char *message_store_ref_of_uuid(const char *uuid)
{
    g_rw_lock_reader_lock(&ms.lock);
    Msg *m = ms.by_uuid ? g_hash_table_lookup(ms.by_uuid, uuid) : NULL;
    char *ref = m ? g_strdup(m->ref) : NULL;
    g_rw_lock_reader_unlock(&ms.lock);
    return ref;
}

guint message_store_count(void)
{
    g_rw_lock_reader_lock(&ms.lock);
    guint n = ms.by_ref ? g_hash_table_size(ms.by_ref) : 0;
    g_rw_lock_reader_unlock(&ms.lock);
    return n;
}

Xv *message_store_records(MessageMatch match, void *ctx)
{
    Xv *out = xv_new_struct();
    g_rw_lock_reader_lock(&ms.lock);
    if (ms.by_ref) {
        GHashTableIter it;
        gpointer ref, m;
        g_hash_table_iter_init(&it, ms.by_ref);
        while (g_hash_table_iter_next(&it, &ref, &m)) {
            Xv *r = msg_record(m);
            if (!match || match(r, ctx))
                xv_struct_append(out, ref, r);
            else
                xv_free(r);
        }
    }
    g_rw_lock_reader_unlock(&ms.lock);
    return out;
}

/* ---- events -------------------------------------------------------------- */

static gint by_generation(gconstpointer a, gconstpointer b)
{
    const Msg *x = *(Msg *const *)a, *y = *(Msg *const *)b;
    return x->generation < y->generation ? -1 : x->generation > y->generation;
}

uint64_t message_store_events(uint64_t since, MessageEventFn fn, void *ctx)
{
    g_rw_lock_reader_lock(&ms.lock);
    uint64_t upto = ms.generation;
    if (ms.by_ref) {
        g_autoptr(GPtrArray) added = g_ptr_array_new();
        GHashTableIter it;
        gpointer m;
        g_hash_table_iter_init(&it, ms.by_ref);
        while (g_hash_table_iter_next(&it, NULL, &m))
            if (((Msg *)m)->generation > since)
                g_ptr_array_add(added, m);
        g_ptr_array_sort(added, by_generation);
        for (guint i = 0; i < added->len; i++) {
            Msg *a = added->pdata[i];
            fn(a->generation, "add", a->ref, msg_record(a), ctx);
        }
        for (GList *l = ms.deletions.head; l; l = l->next) {
            MsgDeletion *d = l->data;
            if (d->deleted > since && d->created <= since)
                fn(d->deleted, "del", d->ref, xv_dup(d->snapshot), ctx);
        }
    }
    g_rw_lock_reader_unlock(&ms.lock);
    return upto;
}

uint64_t message_store_generation(void)
{
    g_rw_lock_reader_lock(&ms.lock);
    uint64_t g = ms.generation;
    g_rw_lock_reader_unlock(&ms.lock);
    return g;
}

uint64_t message_store_deletions_forgotten(void)
{
    g_rw_lock_reader_lock(&ms.lock);
    uint64_t g = ms.deletions_forgotten;
    g_rw_lock_reader_unlock(&ms.lock);
    return g;
}
