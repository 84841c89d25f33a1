/* pool_failover.c: following the dqlite leader (see pool_failover.h). */
#include "pool_failover.h"

#include <glib.h>
#include <string.h>

#include "agent.h"
#include "db.h"
#include "ha_fence.h"
#include "ha_restart.h"
#include "message_store.h"
#include "bootstrap.h"
#include "pool_client.h"
#include "pool_db.h"
#include "pool_forward.h"
#include "pool_master.h"
#include "pool_replica.h"
#include "pool_role.h"
#include "pool_secret.h"
#include "store.h"

#define WATCH_INTERVAL_US (G_USEC_PER_SEC / 10)

static bool first_row(DbRow *row, void *ctx)
{
    *(DbRow **)ctx = row;
    return false;
}

int pool_failover_claim_master(XapiError **err)
{
    const char *me = pool_own_host();
    if (!me)
        return xapi_error_internal(err, "pool: this host's ref is unknown (no pool-host)");
    if (db_write_begin(err) < 0)
        return -1;
    DbRow *pool = NULL;
    db_foreach(dm_class_by_name("pool"), first_row, &pool);
    if (!pool) {
        db_write_abort();
        return xapi_error_internal(err, "pool: the database holds no pool");
    }
    if (g_strcmp0(xv_str(db_get(pool, "master")), me) == 0) {
        db_write_abort();
        return 0;
    }
    if (db_set_by_name(pool, "master", xv_new_string(me), err) < 0) {
        db_write_abort();
        return -1;
    }
    return db_write_commit(err);
}

static void log_error(const char *what, const XapiError *err)
{
    g_warning("pool: %s: %s %s", what, err ? err->code : "",
              err && err->params->len ? (char *)err->params->pdata[0] : "");
}

/* Restarts the process: it then starts as its node's view of the pool
 * says (pool_start_database). Calls are refused until the exec. */
static void restart(void)
{
    pool_role_set_booting(true);
    agent_schedule_end(AGENT_RESTART);
}

/* The hosts other than one: their refs, their endpoints, or both. */
typedef struct {
    const char *except;
    GPtrArray *refs, *endpoints; /* either may be NULL */
} OtherHosts;

static bool add_other(DbRow *host, void *ctx)
{
    OtherHosts *o = ctx;
    const char *address = xv_str(db_get(host, "address"));
    if (strcmp(host->ref, o->except) == 0)
        return true;
    if (o->refs)
        g_ptr_array_add(o->refs, g_strdup(host->ref));
    if (o->endpoints && address && *address)
        g_ptr_array_add(o->endpoints, pool_endpoint_of(address));
    return true;
}

/* Tells every other host that the master may have changed (POST
 * /pool/leader-hint): a standby's node knows no leader, and its stream
 * may wait on a master that cannot answer; the hint makes it ask the
 * voters at once (pool_failover_hint). A host that does not answer
 * within a second or two is passed over. */
static gpointer announce(gpointer data)
{
    GPtrArray *endpoints = data;
    g_autoptr(XapiError) err = NULL;
    g_autofree char *header = pool_secret_header(pool_state_dir(), &err);
    const char *headers[] = {header, NULL};
    for (guint i = 0; header && i < endpoints->len; i++) {
        PoolHttpReply reply;
        g_autoptr(XapiError) io = NULL;
        if (pool_http_connect_within(endpoints->pdata[i], "POST", "/pool/leader-hint", headers,
                                     "", 0, 2, 2, &reply, &io) == 0)
            pool_http_reply_clear(&reply);
    }
    g_ptr_array_free(endpoints, TRUE);
    return NULL;
}

static void announce_start(void)
{
    GPtrArray *endpoints = g_ptr_array_new_with_free_func(g_free);
    OtherHosts scan = {pool_own_host(), NULL, endpoints};
    db_read_begin();
    db_foreach(dm_class_by_name("host"), add_other, &scan);
    db_read_end();
    g_thread_unref(g_thread_new("pool-announce", announce, endpoints));
}

/* This member's node leads: it turns master in-process, its node (the
 * leader) kept running. */
static void promote(void)
{
    gint64 start = g_get_monotonic_time();
    pool_role_set_booting(true);
    g_message("pool: this host's dqlite node leads: turning master (the master was %s)",
              pool_master_address());
    g_autoptr(XapiError) err = NULL;
    pool_replica_stop_stream();
    Store *store = pool_db_store_open(&err);
    if (!store || db_adopt_store(store, &err) < 0) {
        if (store)
            store_close(store);
        log_error("the pool's database could not be adopted; restarting", err);
        restart();
        return;
    }
    if (pool_role_write_master(pool_own_host(), &err) < 0 ||
        pool_failover_claim_master(&err) < 0) {
        log_error("could not claim the pool's master role; restarting", err);
        restart();
        return;
    }
    pool_master_start();
    /* Messages live on the master (docs/messages.md): from now on here
     * (HA's HA_HOST_FAILED of the old master among the first). */
    message_store_set_remote(NULL);
    if (message_store_open(pool_state_dir(), &err) < 0)
        log_error("the message store could not be opened", err);
    pool_role_set_booting(false);
    announce_start();
    g_message("pool: serving as the pool's master (%.0f ms after the change was seen)",
              (double)(g_get_monotonic_time() - start) / 1000.0);
}

/* A member follows the leader's host. */
static void follow(const char *master)
{
    g_autoptr(XapiError) err = NULL;
    g_message("pool: the pool's master is now %s (was %s)", master, pool_master_address());
    if (pool_role_follow(master, &err) < 0) {
        log_error("could not follow the new master", err);
        return;
    }
    pool_replica_repoint();
}

/* A master whose node does not lead any more: a member of the leader's
 * host after a restart (its writes fail until then: Raft refuses them and
 * db's undo journal restores memory). */
static void demote(const char *master)
{
    g_autoptr(XapiError) err = NULL;
    g_message("pool: this host's dqlite node no longer leads (%s does): restarting as a member",
              master);
    if (pool_role_write_member(master, pool_own_host(), &err) < 0) {
        log_error("could not write the member role", err);
        return;
    }
    restart();
}

static struct {
    GThread *thread;
    gint stop;
    gint64 led_at; /* atomic: monotonic us when this node was last seen leading */
    gint64 hinted_until; /* atomic: monotonic us until which a standby asks the voters */
    /* the watch's own: */
    gint64 hint_seen;       /* the hinted_until it last saw */
    gint64 voters_asked;    /* when it last asked the voters */
    gint64 voters_interval; /* until it asks again: 0, then doubling */
} watcher;

/* A standby's node never names the leader (dqlite tells only a voter's
 * clients): its watch asks the voters instead, not at every tick (each
 * question is a tunnel to each voter) but while its master is in doubt:
 * its stream failed or has been silent longer than a poll lasts, or a
 * hint came (a new master's announcement, a HOST_IS_SLAVE from the old
 * one). At once, then after 250 ms, doubling up to 4 s while the doubt
 * lasts (a pool without a quorum, or a standby cut off, must not have
 * every standby dial every voter four times a second); a new hint asks
 * at once again. */
#define VOTERS_ASK_FIRST_US (G_USEC_PER_SEC / 4)
#define VOTERS_ASK_MAX_US (4 * G_USEC_PER_SEC)
#define STREAM_SILENT_US (8 * G_USEC_PER_SEC)
#define HINT_US (5 * G_USEC_PER_SEC)

void pool_failover_hint(void)
{
    __atomic_store_n(&watcher.hinted_until, g_get_monotonic_time() + HINT_US, __ATOMIC_RELEASE);
}

static bool master_in_doubt(gint64 now, gint64 hinted_until)
{
    return now < hinted_until || !pool_replica_connected() ||
           now - pool_replica_last_contact() > STREAM_SILENT_US;
}

/* The leader as this node knows it, or as the voters name it when this
 * node knows none and this host is a member whose master is in doubt, or
 * the master (a master that handed its lead to a standby stands by after,
 * and a standby's node names no leader). */
static int watched_leader(uint64_t *id, char **leader)
{
    if (pool_db_leader(id, leader) < 0)
        return -1;
    gint64 now = g_get_monotonic_time();
    gint64 hinted_until = __atomic_load_n(&watcher.hinted_until, __ATOMIC_ACQUIRE);
    if (hinted_until != watcher.hint_seen) { /* a new hint: ask at once */
        watcher.hint_seen = hinted_until;
        watcher.voters_interval = 0;
    }
    if (*id != 0 || (pool_is_member() && !master_in_doubt(now, hinted_until))) {
        watcher.voters_interval = 0;
        return 0;
    }
    if (now - watcher.voters_asked < watcher.voters_interval)
        return 0;
    watcher.voters_asked = now;
    watcher.voters_interval =
        CLAMP(watcher.voters_interval * 2, VOTERS_ASK_FIRST_US, VOTERS_ASK_MAX_US);
    g_clear_pointer(leader, g_free);
    return pool_db_leader_any(id, leader);
}

int64_t pool_failover_last_led(void)
{
    return __atomic_load_n(&watcher.led_at, __ATOMIC_ACQUIRE);
}

static gpointer watch(gpointer unused)
{
    while (!g_atomic_int_get(&watcher.stop)) {
        g_usleep(WATCH_INTERVAL_US);
        if (pool_role_changed() || agent_end() != AGENT_RUN) /* starting, changing role, */
            continue;                                          /* stopping or restarting */
        uint64_t id = 0;
        g_autofree char *leader = NULL;
        if (watched_leader(&id, &leader) < 0 || id == 0)
            continue;
        bool mine = id == pool_db_node_id();
        if (mine) /* HA's master contact reads it (no query of its own) */
            __atomic_store_n(&watcher.led_at, g_get_monotonic_time(), __ATOMIC_RELEASE);
        g_autofree char *master = pool_db_master_of(leader);
        if (pool_is_member() && mine)
            promote();
        else if (pool_is_member() && g_strcmp0(master, pool_master_address()) != 0)
            follow(master);
        else if (!pool_is_member() && !mine)
            demote(master);
    }
    return NULL;
}

void pool_failover_watch_start(void)
{
    static gint started;
    if (g_atomic_int_compare_and_exchange(&started, 0, 1))
        watcher.thread = g_thread_new("pool-failover", watch, NULL);
    ha_fence_start();   /* HA's halves (they idle while HA is off) */
    ha_restart_start();
}

void pool_failover_watch_stop(void)
{
    ha_restart_stop(); /* they read the database too */
    ha_fence_stop();
    g_atomic_int_set(&watcher.stop, 1);
    if (watcher.thread)
        g_thread_join(watcher.thread);
    watcher.thread = NULL;
}

/* ---- the XenAPI calls ------------------------------------------------------ */

static gint designating; /* atomic: a pool.designate_new_master under way */

int pool_failover_designate(const char *host_address, XapiError **err)
{
    if (!g_atomic_int_compare_and_exchange(&designating, 0, 1))
        return xapi_error_set(err, "DESIGNATE_NEW_MASTER_IN_PROGRESS", NULL);
    int rc = pool_db_designate(host_address, err);
    g_atomic_int_set(&designating, 0);
    return rc;
}

int pool_failover_emergency_master(XapiError **err)
{
    uint64_t id = 0;
    g_autofree char *leader = NULL;
    if (pool_db_leader_any(&id, &leader) == 0 && id != 0) {
        if (id == pool_db_node_id())
            return 0; /* this host is (turning) master */
        g_autofree char *master = pool_db_master_of(leader);
        return xapi_error_set(err, "OPERATION_NOT_ALLOWED",
                              "the pool's database has a leader; pool.designate_new_master "
                              "moves the master role", master, NULL);
    }
    /* No quorum: this node becomes the only voter, and xapid restarts as
     * the master of what it holds. */
    if (pool_db_recover_alone(err) < 0)
        return -1;
    g_message("pool: emergency transition to master: restarting");
    restart();
    return 0;
}

int pool_failover_reset_master(const char *master_address, XapiError **err)
{
    if (pool_db_running()) {
        uint64_t id = 0;
        g_autofree char *leader = NULL;
        g_autofree char *master = NULL;
        if (pool_db_leader_any(&id, &leader) == 0 && id != 0 && id != pool_db_node_id())
            master = pool_db_master_of(leader);
        if (master && strcmp(master, master_address) == 0)
            return 0; /* it follows that host already (or is about to) */
        return xapi_error_set(err, "OPERATION_NOT_ALLOWED",
                              "the pool's master is the host whose dqlite node leads",
                              master ? master : "none", NULL);
    }
    if (pool_role_write_member(master_address, pool_own_host(), err) < 0)
        return -1;
    g_message("pool: emergency reset: restarting as a member of %s", master_address);
    restart();
    return 0;
}

Xv *pool_failover_recover_slaves(const char *my_address)
{
    g_autoptr(GPtrArray) hosts = g_ptr_array_new_with_free_func(g_free);
    db_read_begin();
    g_autofree char *master = bootstrap_this_host();
    OtherHosts scan = {master, hosts, NULL};
    db_foreach(dm_class_by_name("host"), add_other, &scan);
    db_read_end();
    Xv *recovered = xv_new_array();
    for (guint i = 0; i < hosts->len; i++) {
        g_autoptr(XapiError) err = NULL;
        if (pool_forward_internal(hosts->pdata[i], "pool.emergency_reset_master", my_address,
                                  &err) == 0)
            xv_array_append_string(recovered, hosts->pdata[i]);
        else
            g_message("pool: recover_slaves: %s not recovered: %s", (char *)hosts->pdata[i],
                      err->code);
    }
    return recovered;
}
