/* pool_failover.c: following the dqlite leader (see pool_failover.h). */
#include "pool_failover.h"

#include <glib.h>
#include <string.h>

#include "agent.h"
#include "db.h"
#include "pool_db.h"
#include "pool_master.h"
#include "pool_replica.h"
#include "pool_role.h"
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
    pool_role_set_booting(false);
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
    pool_replica_resync();
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
} watcher;

static gpointer watch(gpointer unused)
{
    while (!g_atomic_int_get(&watcher.stop)) {
        g_usleep(WATCH_INTERVAL_US);
        if (pool_role_changed() || agent_end() != AGENT_RUN) /* starting, changing role, */
            continue;                                          /* stopping or restarting */
        uint64_t id = 0;
        g_autofree char *leader = NULL;
        if (pool_db_leader(&id, &leader) < 0 || id == 0)
            continue;
        bool mine = id == pool_db_node_id();
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
}

void pool_failover_watch_stop(void)
{
    g_atomic_int_set(&watcher.stop, 1);
    if (watcher.thread)
        g_thread_join(watcher.thread);
    watcher.thread = NULL;
}
