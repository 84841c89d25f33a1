/* pool_start.c: opening the database for this host's role. */
#include "pool_start.h"

#include <string.h>

#include "db.h"
#include "pool_db.h"
#include "pool_failover.h"
#include "pool_master.h"
#include "pool_replica.h"
#include "pool_role.h"

/* How long a member's start waits for the master's first batch. */
#define FIRST_BATCH_WAIT_S 30

/* The host part of "HOST:PORT" or "[V6]:PORT" (caller frees) and its port
 * (0 when absent). */
static char *split_host_port(const char *host_port, int *port)
{
    const char *colon = strrchr(host_port, ':');
    *port = colon ? (int)g_ascii_strtoll(colon + 1, NULL, 10) : 0;
    size_t len = colon ? (size_t)(colon - host_port) : strlen(host_port);
    if (len >= 2 && host_port[0] == '[' && host_port[len - 1] == ']')
        return g_strndup(host_port + 1, len - 2);
    return g_strndup(host_port, len);
}

/* Whether a listener's address names this host among others: not a
 * wildcard, and not the loopback address every host has (a host serving
 * only itself keeps its management interface's address; hosts simulated
 * on one machine listen on 127.0.0.2, 127.0.0.3, ...). */
static bool specific(const char *host)
{
    static const char *const anonymous[] = {"", "0.0.0.0", "::", "*", "127.0.0.1", "::1",
                                            "localhost"};
    for (unsigned i = 0; i < G_N_ELEMENTS(anonymous); i++)
        if (strcmp(host, anonymous[i]) == 0)
            return false;
    return true;
}

int pool_start_prepare(const char *state_dir, const char *const *listen,
                       unsigned member_timeout, XapiError **err)
{
    pool_set_member_timeout(member_timeout);
    for (const char *const *a = listen; a && *a; a++) {
        int port;
        g_autofree char *host = split_host_port(*a, &port);
        if (specific(host)) {
            pool_set_local_address(host, port);
            break;
        }
        if (a == listen)
            pool_set_local_address(NULL, port);
    }
    if (pool_role_load(state_dir, err) < 0)
        return -1;
    if (pool_start_listens_first())
        pool_role_set_booting(true); /* until pool_start_services */
    return 0;
}

bool pool_start_listens_first(void)
{
    return pool_db_enabled() && pool_db_founded(pool_state_dir());
}

static int open_replica(XapiError **err)
{
    g_autofree char *settings = g_build_filename(pool_state_dir(), POOL_MEMBER_SETTINGS, NULL);
    if (db_open(NULL, err) < 0 || db_open_member_settings(settings, err) < 0)
        return -1;
    g_message("pool: a member of the pool of %s (this host %s)", pool_master_address(),
              pool_this_host());
    if (!pool_replica_start(FIRST_BATCH_WAIT_S))
        g_warning("pool: the master %s has not answered in %d s; the replica is empty until "
                  "it does", pool_master_address(), FIRST_BATCH_WAIT_S);
    return 0;
}

static bool take_master(DbRow *pool, void *ctx)
{
    *(char **)ctx = g_strdup(xv_str(db_get(pool, "master")));
    return false;
}

/* This host leads the pool's database: it serves as the master, whatever
 * its role file said (a master restarted, or a member whose node won the
 * election while it was down). */
static int open_as_master(XapiError **err)
{
    Store *store = pool_db_store_open(err);
    if (!store)
        return -1;
    if (db_open_store(store, err) < 0)
        return -1;
    g_autofree char *master = NULL;
    db_read_begin();
    db_foreach(dm_class_by_name("pool"), take_master, &master);
    db_read_end();
    const char *me = pool_own_host() ? pool_own_host() : master;
    if (!me)
        return xapi_error_internal(err, "pool: %s/pool-host is missing", pool_state_dir());
    if ((pool_is_member() || !pool_own_host()) && pool_role_write_master(me, err) < 0)
        return -1;
    if (g_strcmp0(master, me) != 0 && pool_failover_claim_master(err) < 0)
        return -1;
    g_message("pool: this host's node leads the pool's dqlite database: serving as the master");
    return 0;
}

int pool_start_database(XapiError **err)
{
    if (pool_start_listens_first()) {
        g_autofree char *leader = NULL;
        if (pool_db_resume(&leader, err) < 0)
            return -1;
        if (!leader)
            return open_as_master(err);
        g_autofree char *master = pool_db_master_of(leader);
        if (g_strcmp0(master, pool_master_address()) != 0 && pool_role_follow(master, err) < 0)
            return -1;
        return open_replica(err);
    }
    if (!pool_is_member())
        return db_open(pool_state_dir(), err);
    return open_replica(err);
}

void pool_start_listening(const char *host_port, int port)
{
    int asked;
    g_autofree char *host = split_host_port(host_port, &asked);
    if (asked == 0 && pool_local_port() == 0 &&
        g_strcmp0(pool_local_address() ? pool_local_address() : "", specific(host) ? host : "") == 0)
        pool_set_local_address(pool_local_address(), port);
}

/* Starts our node and has the master add it, off the start's path (the
 * master may be founding the cluster meanwhile). */
static gpointer add_our_node(gpointer unused)
{
    g_autoptr(XapiError) err = NULL;
    if (pool_db_member_start(&err) < 0)
        g_warning("pool: our dqlite node is not in the pool's cluster: %s %s", err->code,
                  err->params->len ? (char *)err->params->pdata[0] : "");
    return NULL;
}

void pool_start_services(void)
{
    if (!pool_is_member())
        pool_master_start();
    else if (pool_db_enabled())
        g_thread_unref(g_thread_new("pool-dqlite-add", add_our_node, NULL));
    pool_role_set_booting(false);
}

void pool_start_stop(void)
{
    pool_failover_watch_stop();
    pool_replica_stop();
}
