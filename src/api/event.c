/* event.c: event.from, event.inject and event.get_current_id over the
 * database's generation counters. A blocked event.from sleeps on the
 * commit condition variable; it never polls. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "db.h"
#include "dm_handlers.h"
#include "event.h"
#include "implicit.h"
#include "message_store.h"

/* Where a watcher is: the database's generation and the message
 * store's, which counts on its own (messages are not in the database). */
typedef struct {
    uint64_t db;
    uint64_t msg;
} Position;

/* XAPI's token: "%020Ld,%020Ld" = (database generation, message
 * generation). */
static char *token_format(Position at)
{
    return g_strdup_printf("%020" PRIu64 ",%020" PRIu64, at.db, at.msg);
}

/* "" and a token without its message part start the messages from 0. */
static bool token_parse(const char *token, Position *at)
{
    *at = (Position){0, 0};
    if (!*token)
        return true;
    char *end;
    at->db = g_ascii_strtoull(token, &end, 10);
    if (end == token || (*end && *end != ','))
        return false;
    if (*end == ',') {
        char *end2;
        at->msg = g_ascii_strtoull(end + 1, &end2, 10);
        if (end2 == end + 1 || *end2)
            return false;
    }
    return true;
}

/* What a caller watches: whole classes, or single objects. */
typedef struct {
    bool all;
    GHashTable *classes; /* lower-case class name -> itself */
    GHashTable *objects; /* ref -> lower-case class name */
} Subscription;

static void subscription_clear(Subscription *s)
{
    g_hash_table_destroy(s->classes);
    g_hash_table_destroy(s->objects);
}

static void subscription_parse(Subscription *s, const Xv *classes)
{
    s->all = false;
    s->classes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    s->objects = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (guint i = 0; i < xv_len(classes); i++) {
        const char *c = xv_str(xv_at(classes, i));
        const char *slash = strchr(c, '/');
        if (strcmp(c, "*") == 0)
            s->all = true;
        else if (slash)
            g_hash_table_insert(s->objects, g_strdup(slash + 1),
                                g_ascii_strdown(c, slash - c));
        else
            g_hash_table_add(s->classes, g_ascii_strdown(c, -1));
    }
}

static const DmClass *message_class(void) { return dm_class_by_name("message"); }

/* Whether the subscription names cls (or one object of it). */
static bool names_class(const Subscription *s, const DmClass *cls)
{
    if (s->all || g_hash_table_contains(s->classes, cls->lower))
        return true;
    GHashTableIter it;
    gpointer ref, lower;
    g_hash_table_iter_init(&it, s->objects);
    while (g_hash_table_iter_next(&it, &ref, &lower))
        if (strcmp(lower, cls->lower) == 0)
            return true;
    return false;
}

/* The database's classes with events; messages are the store's. */
static bool watches_class(const Subscription *s, const DmClass *cls)
{
    return cls->stored && cls->gen_events && cls != message_class() && names_class(s, cls);
}

static bool watches_object(const Subscription *s, const DmClass *cls, const char *ref)
{
    if (s->all || g_hash_table_contains(s->classes, cls->lower))
        return true;
    const char *lower = g_hash_table_lookup(s->objects, ref);
    return lower && strcmp(lower, cls->lower) == 0;
}

typedef struct {
    const Subscription *sub;
    uint64_t since;
    Xv *events;
} Scan;

static Xv *event_new(uint64_t id, const DmClass *cls, const char *op, const char *ref,
                     Xv *snapshot)
{
    Xv *e = xv_new_struct();
    xv_struct_append(e, "id", xv_new_string_take(g_strdup_printf("%" PRIu64, id)));
    xv_struct_append(e, "timestamp", xv_new_string("0.0"));
    xv_struct_append(e, "class", xv_new_string(cls->lower));
    xv_struct_append(e, "operation", xv_new_string(op));
    xv_struct_append(e, "ref", xv_new_string(ref));
    if (snapshot)
        xv_struct_append(e, "snapshot", snapshot);
    return e;
}

static bool scan_row(DbRow *row, void *ctx)
{
    Scan *scan = ctx;
    if (row->modified <= scan->since || !watches_object(scan->sub, row->cls, row->ref))
        return true;
    const char *op = row->created > scan->since ? "add" : "mod";
    xv_array_append(scan->events,
                    event_new(row->modified, row->cls, op, row->ref, db_row_record(row)));
    return true;
}

/* From the change log: each changed object once, if still there. */
typedef struct {
    Scan *scan;
    GHashTable *seen; /* ref */
} ChangeScan;

static void scan_change(const DmClass *cls, const char *ref, void *ctx)
{
    ChangeScan *cs = ctx;
    if (!watches_class(cs->scan->sub, cls) || g_hash_table_contains(cs->seen, ref))
        return;
    g_hash_table_add(cs->seen, (gpointer)ref);
    DbRow *row = db_lookup(cls, ref);
    if (row)
        scan_row(row, cs->scan);
}

typedef struct {
    Scan *scan;
    const DmClass *cls;
} DeletionScan;

static void scan_deletion(const DbDeletion *d, void *ctx)
{
    DeletionScan *ds = ctx;
    /* An object created and deleted since the token never existed for
     * the caller. */
    if (d->created <= ds->scan->since && watches_object(ds->scan->sub, ds->cls, d->ref))
        xv_array_append(ds->scan->events, event_new(d->deleted, ds->cls, "del", d->ref,
                                                    xv_dup(d->snapshot)));
}

/* One pass over the watched classes; returns the batch (possibly empty)
 * and the generation it is complete up to. Read lock held. */
static Xv *collect_db_events(const Subscription *sub, uint64_t since, uint64_t *upto)
{
    Scan scan = {sub, since, xv_new_array()};
    *upto = db_generation();
    ChangeScan cs = {&scan, g_hash_table_new(g_str_hash, g_str_equal)};
    /* Recent tokens read the change log; old ones scan whole tables. */
    bool from_log = db_foreach_change(since, scan_change, &cs);
    g_hash_table_destroy(cs.seen);
    for (unsigned c = 0; c < dm_n_classes; c++) {
        const DmClass *cls = &dm_classes[c];
        if (!watches_class(sub, cls))
            continue;
        if (!from_log)
            db_foreach(cls, scan_row, &scan);
        DeletionScan ds = {&scan, cls};
        db_foreach_deletion(cls, since, scan_deletion, &ds);
    }
    return scan.events;
}

typedef struct {
    const Subscription *sub;
    GPtrArray *events; /* Xv* */
} MessageScan;

static void scan_message(uint64_t generation, const char *op, const char *ref, Xv *snapshot,
                         void *ctx)
{
    MessageScan *ms = ctx;
    if (watches_object(ms->sub, message_class(), ref))
        g_ptr_array_add(ms->events, event_new(generation, message_class(), op, ref, snapshot));
    else
        xv_free(snapshot);
}

/* The batch after at, and where it is complete up to. The messages are
 * read first, with no lock held, then the database: a message raised after
 * a change of the database (VM_STARTED after the VM's power_state) never
 * comes in a batch before that change. The batch lists the database's
 * events, then the messages'. Returns with the read lock held. */
static Xv *collect_events(const Subscription *sub, Position at, Position *upto)
{
    g_autoptr(GPtrArray) messages = g_ptr_array_new();
    upto->msg = at.msg;
    if (names_class(sub, message_class())) {
        MessageScan ms = {sub, messages};
        upto->msg = message_store_events(at.msg, scan_message, &ms);
    }
    db_read_begin();
    Xv *events = collect_db_events(sub, at.db, &upto->db);
    for (guint i = 0; i < messages->len; i++)
        xv_array_append(events, messages->pdata[i]);
    return events;
}

/* Read lock held; n_messages counted before it was taken. */
static Xv *valid_ref_counts(const Subscription *sub, guint n_messages)
{
    Xv *counts = xv_new_struct();
    for (unsigned c = 0; c < dm_n_classes; c++) {
        const DmClass *cls = &dm_classes[c];
        if (watches_class(sub, cls))
            xv_struct_append(counts, cls->lower, xv_new_i4((int32_t)db_count(cls)));
        else if (cls == message_class() && names_class(sub, cls))
            xv_struct_append(counts, cls->lower, xv_new_i4((int32_t)n_messages));
    }
    return counts;
}

int xapi_event_from(Call *call, const Xv *classes, const char *token, double timeout,
                    Xv **result)
{
    Position since;
    if (!token_parse(token, &since))
        return xapi_error_set(&call->error, "EVENT_FROM_TOKEN_PARSE_FAILURE", token, NULL);
    Subscription sub;
    subscription_parse(&sub, classes);
    if (timeout < 0)
        timeout = 0;
    if (timeout > 86400)
        timeout = 86400;
    int64_t deadline = g_get_monotonic_time() + (int64_t)(timeout * G_USEC_PER_SEC);
    Xv *events;
    Xv *counts;
    Position upto;
    for (;;) {
        uint64_t wakes = db_wakes(); /* before the store is read */
        guint n_messages = message_store_count();
        events = collect_events(&sub, since, &upto);
        counts = valid_ref_counts(&sub, n_messages);
        bool session_alive = db_lookup(dm_class_by_name("session"), call->session_ref) != NULL;
        db_read_end();
        if (!session_alive) {
            xv_free(events);
            xv_free(counts);
            subscription_clear(&sub);
            return xapi_error_set(&call->error, "SESSION_INVALID", call->session_ref, NULL);
        }
        if (xv_len(events) || g_get_monotonic_time() >= deadline)
            break;
        xv_free(events);
        xv_free(counts);
        /* Sleep until a commit moves the generation (or a message is
         * written), then look again: the change may concern other classes. */
        db_wait_for_event(upto.db, wakes, deadline);
    }
    subscription_clear(&sub);
    Xv *batch = xv_new_struct();
    xv_struct_append(batch, "events", events);
    xv_struct_append(batch, "valid_ref_counts", counts);
    xv_struct_append(batch, "token", xv_new_string_take(token_format(upto)));
    *result = batch;
    return 0;
}

/* ---- legacy register / next ----------------------------------------- */

/* One registration per session: the classes it watches and the generation
 * its next call starts from. */
typedef struct {
    GPtrArray *classes; /* char*, as given */
    Position since;
} Registration;

static GMutex registrations_lock;
static GHashTable *registrations; /* session ref -> Registration* */

static void registration_free(gpointer p)
{
    Registration *r = p;
    g_ptr_array_unref(r->classes);
    g_free(r);
}

static Registration *registration_for(const char *session_ref, bool create)
{
    if (!registrations)
        registrations = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, registration_free);
    Registration *r = g_hash_table_lookup(registrations, session_ref);
    if (!r && create) {
        r = g_new0(Registration, 1);
        r->classes = g_ptr_array_new_with_free_func(g_free);
        r->since.msg = message_store_generation();
        db_read_begin();
        r->since.db = db_generation();
        db_read_end();
        g_hash_table_insert(registrations, g_strdup(session_ref), r);
    }
    return r;
}

void event_forget_session(const char *session_ref)
{
    g_mutex_lock(&registrations_lock);
    if (registrations)
        g_hash_table_remove(registrations, session_ref);
    g_mutex_unlock(&registrations_lock);
}

int xapi_event_register(Call *call, const Xv *classes)
{
    g_mutex_lock(&registrations_lock);
    Registration *r = registration_for(call->session_ref, true);
    for (guint i = 0; i < xv_len(classes); i++)
        g_ptr_array_add(r->classes, g_strdup(xv_str(xv_at(classes, i))));
    g_mutex_unlock(&registrations_lock);
    return 0;
}

int xapi_event_unregister(Call *call, const Xv *classes)
{
    g_mutex_lock(&registrations_lock);
    Registration *r = registration_for(call->session_ref, false);
    for (guint i = 0; r && i < xv_len(classes); i++)
        for (guint j = r->classes->len; j-- > 0;)
            if (g_ascii_strcasecmp(r->classes->pdata[j], xv_str(xv_at(classes, i))) == 0)
                g_ptr_array_remove_index(r->classes, j);
    g_mutex_unlock(&registrations_lock);
    return 0;
}

/* Copies the registration's classes and start (under its lock). */
static bool registration_snapshot(const char *session_ref, Xv **classes, Position *since)
{
    g_mutex_lock(&registrations_lock);
    Registration *r = registration_for(session_ref, false);
    if (r) {
        *classes = xv_new_array();
        for (guint i = 0; i < r->classes->len; i++)
            xv_array_append_string(*classes, r->classes->pdata[i]);
        *since = r->since;
    }
    g_mutex_unlock(&registrations_lock);
    return r != NULL;
}

static void registration_advance(const char *session_ref, Position upto)
{
    g_mutex_lock(&registrations_lock);
    Registration *r = registration_for(session_ref, false);
    if (r && r->since.db < upto.db)
        r->since.db = upto.db;
    if (r && r->since.msg < upto.msg)
        r->since.msg = upto.msg;
    g_mutex_unlock(&registrations_lock);
}

/* Lock not held (the message store's is taken, then the read lock). */
static bool events_lost(const Subscription *sub, Position since)
{
    if (names_class(sub, message_class()) && message_store_deletions_forgotten() > since.msg)
        return true;
    bool lost = false;
    db_read_begin();
    for (unsigned c = 0; c < dm_n_classes && !lost; c++)
        lost = watches_class(sub, &dm_classes[c]) &&
               db_deletions_forgotten(&dm_classes[c]) > since.db;
    db_read_end();
    return lost;
}

int xapi_event_next(Call *call, Xv **result)
{
    g_autoptr(Xv) classes = NULL;
    Position since;
    if (!registration_snapshot(call->session_ref, &classes, &since))
        return xapi_error_set(&call->error, "SESSION_NOT_REGISTERED", call->session_ref, NULL);
    Subscription sub;
    subscription_parse(&sub, classes);
    Xv *events = NULL;
    Position upto = since;
    int rc = 0;
    for (;;) {
        uint64_t wakes = db_wakes();
        bool lost = events_lost(&sub, since);
        if (lost) {
            upto.msg = message_store_generation();
            db_read_begin();
            upto.db = db_generation();
        } else {
            events = collect_events(&sub, since, &upto);
        }
        bool session_alive = db_lookup(dm_class_by_name("session"), call->session_ref) != NULL;
        db_read_end();
        if (!session_alive) {
            rc = xapi_error_set(&call->error, "SESSION_INVALID", call->session_ref, NULL);
            break;
        }
        if (lost) {
            /* The caller must re-read everything; it starts from now. */
            registration_advance(call->session_ref, upto);
            rc = xapi_error_set(&call->error, "EVENTS_LOST", NULL);
            break;
        }
        if (xv_len(events))
            break;
        xv_free(events);
        events = NULL;
        db_wait_for_event(upto.db, wakes, G_MAXINT64);
    }
    subscription_clear(&sub);
    if (rc < 0) {
        xv_free(events);
        return -1;
    }
    registration_advance(call->session_ref, upto);
    *result = events;
    return 0;
}

int xapi_event_inject(Call *call, const char *class, const char *ref, Xv **result)
{
    const DmClass *cls = dm_class_by_name_ci(class);
    uint64_t messages = message_store_generation();
    if (db_write_begin(&call->error) < 0)
        return -1;
    DbRow *row = cls ? db_lookup(cls, ref) : NULL;
    if (!row) {
        db_write_abort();
        return xapi_error_set(&call->error, "HANDLE_INVALID", class, ref, NULL);
    }
    db_touch(row);
    uint64_t generation = db_generation();
    if (db_write_commit(&call->error) < 0)
        return -1;
    *result = xv_new_string_take(token_format((Position){generation - 1, messages}));
    return 0;
}

int xapi_event_get_current_id(Call *call, Xv **result)
{
    db_read_begin();
    *result = xv_new_int((int64_t)db_generation());
    db_read_end();
    return 0;
}
