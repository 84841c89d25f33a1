/* pool_replica.c: the change stream's consumer and write shipping. */
#include "pool_replica.h"

#include <string.h>

#include "db.h"
#include "ha_fence.h"
#include "pool_client.h"
#include "pool_failover.h"
#include "pool_role.h"
#include "pool_secret.h"
#include "pool_wire.h"

/* How long the master holds a poll with nothing to say. */
#define POLL_WAIT_S 5
/* The longest a member waits for its master to take a connection before
 * a write fails: XAPI's master_connection_default_timeout; less with a
 * shorter --member-timeout (the silence after which the master counts the
 * member gone). Once connected, a busy master has COMMIT_ANSWER_S to
 * answer. */
#define MASTER_WAIT_MAX_S 10u
#define COMMIT_ANSWER_S 60u

static unsigned master_wait_s(void)
{
    return MAX(1u, MIN(pool_member_timeout(), MASTER_WAIT_MAX_S));
}

static struct {
    GThread *thread;
    gint stop;
    gint epoch; /* atomic: the stream thread of this epoch is the one that applies */
    gint connected;
    gint64 last_contact; /* atomic: monotonic us when the last successful poll began */
    gint resync; /* atomic: the next poll asks for everything (a new master) */
    uint64_t generation; /* the master's generation the replica has reached */
    GMutex lock;
    GMutex apply_lock; /* a batch is applied only while not stopped */
    GCond first;
    bool synced;
} replica;

static char *secret_header(XapiError **err)
{
    return pool_secret_header(pool_state_dir(), err);
}

/* The host a 409 "HOST_IS_SLAVE ADDRESS" names: the host asked is no
 * longer master (a change of master; the request was not served). NULL
 * for any other answer. */
static char *named_master(const PoolHttpReply *reply)
{
    static const char prefix[] = "HOST_IS_SLAVE ";
    if (reply->status != 409 || !g_str_has_prefix(reply->body, prefix))
        return NULL;
    g_autofree char *address = g_strstrip(g_strdup(reply->body + strlen(prefix)));
    return *address ? g_steal_pointer(&address) : NULL;
}

static bool still_booting(const PoolHttpReply *reply)
{
    return reply->status == 503 && g_str_has_prefix(reply->body, "HOST_STILL_BOOTING");
}

/* Whether the thread of this epoch is the stream (not stopped, not
 * replaced by a newer one). */
static bool stream_current(gint epoch)
{
    return !g_atomic_int_get(&replica.stop) && g_atomic_int_get(&replica.epoch) == epoch;
}

static int poll_once(gint epoch, XapiError **err)
{
    g_autofree char *endpoint = pool_master_endpoint();
    g_autofree char *header = secret_header(err);
    if (!header)
        return -1;
    /* Under the lock a repoint takes: a thread it replaced cannot take
     * the new one's resync. */
    g_mutex_lock(&replica.apply_lock);
    if (stream_current(epoch) && g_atomic_int_compare_and_exchange(&replica.resync, 1, 0))
        replica.generation = 0;
    uint64_t since = replica.generation;
    g_mutex_unlock(&replica.apply_lock);
    g_autofree char *path =
        g_strdup_printf("/pool/changes?since=%" G_GUINT64_FORMAT "&host=%s&wait=%d",
                        (guint64)since, pool_this_host(), POLL_WAIT_S);
    const char *headers[] = {header, NULL};
    PoolHttpReply reply;
    /* Under HA a poll must not hang on a master cut off: the member would
     * go on waiting for it after the pool chose another (ha_fence.h). */
    unsigned timeout_s = POLL_WAIT_S + master_wait_s();
    if (ha_fence_poll_hold_us() > 0)
        timeout_s = MIN(timeout_s, (unsigned)(ha_fence_poll_hold_us() / G_USEC_PER_SEC) + 2);
    if (pool_http(endpoint, "GET", path, headers, NULL, 0, timeout_s, &reply, err) < 0)
        return -1;
    if (reply.status != 200) {
        g_autofree char *next = named_master(&reply);
        if (next) /* not the master any more: who is? */
            pool_failover_hint();
        xapi_error_internal(err, "pool: the master answered %d to the stream", reply.status);
        pool_http_reply_clear(&reply);
        return -1;
    }
    json_object *batch = pool_wire_parse(reply.body, reply.len, err);
    pool_http_reply_clear(&reply);
    if (!batch)
        return -1;
    json_object *g = NULL;
    uint64_t generation =
        json_object_object_get_ex(batch, "generation", &g) ? (uint64_t)json_object_get_int64(g) : 0;
    int rc = 0;
    json_object *rows = NULL, *deleted = NULL;
    json_object_object_get_ex(batch, "rows", &rows);
    json_object_object_get_ex(batch, "deleted", &deleted);
    json_object *r = NULL;
    bool resync = json_object_object_get_ex(batch, "resync", &r) && json_object_get_boolean(r);
    bool empty = !resync && json_object_array_length(rows) == 0 &&
                 json_object_array_length(deleted) == 0;
    g_mutex_lock(&replica.apply_lock);
    if (!stream_current(epoch))
        rc = xapi_error_internal(err, "pool: the stream stopped");
    else if (!empty || generation > replica.generation)
        rc = pool_wire_apply_batch(batch, err);
    if (rc == 0)
        replica.generation = generation;
    g_mutex_unlock(&replica.apply_lock);
    json_object_put(batch);
    return rc;
}

static gpointer stream_thread(gpointer data)
{
    gint epoch = GPOINTER_TO_INT(data);
    unsigned failures = 0;
    while (stream_current(epoch)) {
        g_autoptr(XapiError) err = NULL;
        gint64 began = g_get_monotonic_time();
        if (poll_once(epoch, &err) == 0) {
            __atomic_store_n(&replica.last_contact, began, __ATOMIC_RELEASE);
            if (!g_atomic_int_get(&replica.connected))
                g_message("pool: the master's stream is flowing (generation %" G_GUINT64_FORMAT
                          ")", (guint64)replica.generation);
            g_atomic_int_set(&replica.connected, 1);
            failures = 0;
            g_mutex_lock(&replica.lock);
            replica.synced = true;
            g_cond_broadcast(&replica.first);
            g_mutex_unlock(&replica.lock);
            continue;
        }
        if (failures++ == 0)
            g_warning("pool: the master's stream failed: %s %s", err ? err->code : "",
                      err && err->params->len ? (char *)err->params->pdata[0] : "");
        g_atomic_int_set(&replica.connected, 0);
        g_usleep(G_USEC_PER_SEC / 2);
    }
    return NULL;
}

/* The master's answer to a commit: its generation, or its XenAPI error;
 * HOST_IS_SLAVE [master] or HOST_STILL_BOOTING when it passed the write
 * on or was not ready yet (XAPI's errors, for the caller to retry). */
static int commit_answer(const PoolHttpReply *reply, uint64_t *generation, XapiError **err)
{
    g_autofree char *master = named_master(reply);
    if (master)
        return xapi_error_set(err, "HOST_IS_SLAVE", master, NULL);
    if (still_booting(reply))
        return xapi_error_set(err, "HOST_STILL_BOOTING", NULL);
    if (reply->status != 200)
        return xapi_error_internal(err, "pool: the master answered %d to a commit",
                                   reply->status);
    json_object *answer = pool_wire_parse(reply->body, reply->len, err);
    if (!answer)
        return -1;
    json_object *g = NULL;
    int rc = json_object_object_get_ex(answer, "generation", &g)
                 ? (*generation = (uint64_t)json_object_get_int64(g), 0)
                 : pool_wire_take_error(answer, err);
    json_object_put(answer);
    return rc;
}

/* A commit sent to a host that is no longer master goes to the one it
 * names (at most this many hops: a change of master under way may name
 * a master that is itself passing the role on), and to a master still
 * turning master (HOST_STILL_BOOTING, 20-120 ms) again after a pause,
 * for a few seconds. */
#define COMMIT_HOPS_MAX 3
#define BOOTING_PAUSE_US (G_USEC_PER_SEC / 10)
#define BOOTING_WAIT_US (3 * G_USEC_PER_SEC)

/* The commit hook: the write set goes to the master, whose generation of
 * it comes back (or its XenAPI error). A master that cannot be reached
 * (down, or this member cut off) fails the write with CANNOT_CONTACT_HOST
 * [master] within master_wait_s(), where XAPI's slave blocks and retries;
 * a cut after the master took the connection fails it after
 * COMMIT_ANSWER_S, and may leave it committed there, which the stream
 * then brings back. A master that is one no longer answers 409
 * HOST_IS_SLAVE [new master] without serving the request: the write goes
 * there (and the watch asks who leads: pool_failover_hint). */
static int ship(uint64_t *generation, XapiError **err)
{
    g_autofree char *header = secret_header(err);
    if (!header)
        return -1;
    json_object *ws = pool_wire_write_set();
    const char *text = json_object_to_json_string_ext(ws, JSON_C_TO_STRING_PLAIN);
    const char *headers[] = {header, "Content-Type: application/json", NULL};
    g_autofree char *master = g_strdup(pool_master_address());
    gint64 booting_until = g_get_monotonic_time() + BOOTING_WAIT_US;
    unsigned hops = 0;
    int rc;
    for (;;) {
        g_autofree char *endpoint = pool_endpoint_of(master);
        PoolHttpReply reply;
        g_autoptr(XapiError) io = NULL;
        if (pool_http_connect_within(endpoint, "POST", "/pool/commit", headers, text,
                                     strlen(text), master_wait_s(), COMMIT_ANSWER_S, &reply,
                                     &io) < 0) {
            g_warning("pool: a write could not reach the master: %s",
                      io->params->len ? (char *)io->params->pdata[0] : io->code);
            rc = xapi_error_set(err, "CANNOT_CONTACT_HOST", master, NULL);
            break;
        }
        g_autofree char *next = named_master(&reply);
        if (next && hops < COMMIT_HOPS_MAX && strcmp(next, master) != 0) {
            g_message("pool: %s is no longer the master: the write goes to %s", master, next);
            pool_failover_hint();
            hops++;
            g_free(master);
            master = g_steal_pointer(&next);
            pool_http_reply_clear(&reply);
            continue;
        }
        if (still_booting(&reply) && g_get_monotonic_time() < booting_until) {
            pool_http_reply_clear(&reply);
            g_usleep(BOOTING_PAUSE_US);
            continue;
        }
        rc = commit_answer(&reply, generation, err);
        pool_http_reply_clear(&reply);
        break;
    }
    json_object_put(ws);
    return rc;
}

bool pool_replica_start(unsigned wait_s)
{
    db_set_commit_hook(ship);
    replica.stop = 0;
    replica.thread = g_thread_new("pool-stream", stream_thread,
                                  GINT_TO_POINTER(g_atomic_int_get(&replica.epoch)));
    gint64 deadline = g_get_monotonic_time() + (gint64)wait_s * G_USEC_PER_SEC;
    g_mutex_lock(&replica.lock);
    while (!replica.synced)
        if (!g_cond_wait_until(&replica.first, &replica.lock, deadline))
            break;
    bool synced = replica.synced;
    g_mutex_unlock(&replica.lock);
    return synced;
}

void pool_replica_stop_stream(void)
{
    if (!replica.thread)
        return;
    /* Not joined: its poll may hang on a master that stopped answering
     * (up to its timeout); it applies nothing from here on and ends. */
    g_mutex_lock(&replica.apply_lock);
    g_atomic_int_set(&replica.stop, 1);
    g_mutex_unlock(&replica.apply_lock);
    g_thread_unref(replica.thread);
    replica.thread = NULL;
}

void pool_replica_stop(void)
{
    if (!replica.thread)
        return;
    g_atomic_int_set(&replica.stop, 1);
    g_thread_join(replica.thread);
    replica.thread = NULL;
    db_set_commit_hook(NULL);
}

void pool_replica_repoint(void)
{
    /* The thread polling the old master is abandoned, not joined: its
     * poll may wait on a host that cannot answer (up to its timeout); it
     * applies nothing from here on and ends. */
    g_mutex_lock(&replica.apply_lock);
    gint epoch = g_atomic_int_add(&replica.epoch, 1) + 1;
    g_atomic_int_set(&replica.resync, 1);
    g_mutex_unlock(&replica.apply_lock);
    if (replica.thread)
        g_thread_unref(replica.thread);
    replica.thread = g_thread_new("pool-stream", stream_thread, GINT_TO_POINTER(epoch));
}

int64_t pool_replica_last_contact(void)
{
    return __atomic_load_n(&replica.last_contact, __ATOMIC_ACQUIRE);
}

bool pool_replica_connected(void)
{
    return g_atomic_int_get(&replica.connected);
}
