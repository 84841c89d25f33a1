/* pool_db.c: this host's dqlite node in xapid and the founding move. */
#include "pool_db.h"

#include <glib/gstdio.h>
#include <string.h>

#include "bootstrap.h"
#include "db.h"
#include "dqlite_node.h"
#include "pool_failover.h"
#include "pool_client.h"
#include "pool_role.h"
#include "pool_secret.h"
#include "pool_tunnel.h"

/* How long a founder waits for its one-node cluster to elect it. */
#define FOUND_WAIT_US (5 * G_USEC_PER_SEC)
/* How long a restarting host's node waits to hear of a leader. */
#define RESUME_WAIT_US (60 * G_USEC_PER_SEC)

static struct {
    bool enabled;
    GMutex lock;
    PoolDqliteNode *node;
} pdb;

void pool_db_enable(bool on) { pdb.enabled = on; }
bool pool_db_enabled(void) { return pdb.enabled; }

static char *node_dir(const char *state_dir)
{
    return g_build_filename(state_dir, "dqlite", NULL);
}

bool pool_db_founded(const char *state_dir)
{
    g_autofree char *dir = node_dir(state_dir);
    g_autofree char *id = g_build_filename(dir, "node-id", NULL);
    return g_file_test(id, G_FILE_TEST_EXISTS);
}

/* Starts the node (lock held). */
static int node_start(bool founder, XapiError **err)
{
    if (!pool_local_address())
        return xapi_error_internal(err, "pool: a dqlite node needs a --listen naming this "
                                        "host's address");
    g_autofree char *dir = node_dir(pool_state_dir());
    g_autofree char *address = pool_endpoint_of(pool_local_address());
    PoolDqliteConfig cfg = {dir, address, founder, pool_tunnel_dial, (void *)pool_state_dir(), 0};
    pdb.node = pool_dqlite_node_start(&cfg, err);
    if (!pdb.node)
        return -1;
    pool_tunnel_configure(pool_state_dir(), pool_dqlite_node_bind_address(pdb.node));
    g_message("pool: dqlite node %" G_GINT64_MODIFIER "x started at %s",
              (guint64)pool_dqlite_node_id(pdb.node), address);
    pool_failover_watch_start();
    return 0;
}

static void node_stop(void)
{
    pool_tunnel_configure(pool_state_dir(), NULL);
    pool_dqlite_node_stop(pdb.node);
    pdb.node = NULL;
}

/* Founds the cluster from this master's database (lock held). */
static int found(XapiError **err)
{
    if (pdb.node)
        return 0;
    if (node_start(true, err) < 0)
        return -1;
    gint64 until = g_get_monotonic_time() + FOUND_WAIT_US;
    while (!pool_dqlite_is_leader(pdb.node) && g_get_monotonic_time() < until)
        g_usleep(5000);
    Store *store = pool_dqlite_is_leader(pdb.node) ? pool_dqlite_store_open(pdb.node, err) : NULL;
    if (!store && err && !*err)
        xapi_error_internal(err, "pool: the founding dqlite node did not lead within 5 s");
    if (!store || db_move_to_store(store, err) < 0) {
        if (store)
            store_close(store);
        node_stop();
        g_autofree char *dir = node_dir(pool_state_dir());
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
        if (system(cmd) != 0)
            g_warning("pool: could not remove %s", dir);
        return -1;
    }
    /* The master's own host ref, for its restarts as a member of a later
     * master (pool.master then names another host). */
    db_read_begin();
    g_autofree char *me = bootstrap_this_host();
    db_read_end();
    if (pool_role_write_master(me, err) < 0)
        return -1;
    g_message("pool: founded the pool's dqlite database from xapid.db");
    return 0;
}

int pool_db_add(uint64_t id, const char *address, XapiError **err)
{
    if (!pdb.enabled)
        return xapi_error_set(err, "OPERATION_NOT_ALLOWED", "this master runs without "
                              "--pool-dqlite", NULL);
    if (pool_is_member())
        return xapi_error_set(err, "HOST_IS_SLAVE", pool_master_address(), NULL);
    g_mutex_lock(&pdb.lock);
    int rc = found(err);
    if (rc == 0)
        rc = pool_dqlite_add(pdb.node, id, address, err);
    g_mutex_unlock(&pdb.lock);
    if (rc == 0)
        g_message("pool: dqlite node %" G_GINT64_MODIFIER "x (%s) added", (guint64)id, address);
    return rc;
}

int pool_db_member_start(XapiError **err)
{
    bool first = !pool_db_founded(pool_state_dir());
    g_mutex_lock(&pdb.lock);
    int rc = pdb.node ? 0 : node_start(false, err);
    uint64_t id = rc == 0 ? pool_dqlite_node_id(pdb.node) : 0;
    g_mutex_unlock(&pdb.lock);
    if (rc < 0 || !first)
        return rc;
    g_autofree char *header = pool_secret_header(pool_state_dir(), err);
    if (!header)
        return -1;
    g_autofree char *endpoint = pool_master_endpoint();
    g_autofree char *address = pool_endpoint_of(pool_local_address());
    g_autofree char *body = g_strdup_printf("%" G_GUINT64_FORMAT " %s", (guint64)id, address);
    const char *headers[] = {header, "Content-Type: text/plain", NULL};
    PoolHttpReply reply;
    if (pool_http(endpoint, "POST", "/pool/dqlite-add", headers, body, strlen(body), 30, &reply,
                  err) < 0) {
        g_autoptr(XapiError) ignored = NULL;
        pool_db_leave(&ignored); /* tried again at the next start */
        return -1;
    }
    rc = reply.status == 200 ? 0
                             : xapi_error_internal(err, "pool: the master refused our dqlite "
                                                        "node (%d): %.*s", reply.status,
                                                   (int)reply.len, reply.body);
    pool_http_reply_clear(&reply);
    /* A node in no cluster must not make the next start wait for a leader. */
    g_autoptr(XapiError) ignored = NULL;
    if (rc < 0 && pool_db_leave(&ignored) < 0)
        g_warning("pool: our unused dqlite node's data stays");
    return rc;
}

int pool_db_resume(char **leader, XapiError **err)
{
    *leader = NULL;
    g_mutex_lock(&pdb.lock);
    int rc = pdb.node ? 0 : node_start(false, err);
    g_mutex_unlock(&pdb.lock);
    if (rc < 0)
        return -1;
    gint64 until = g_get_monotonic_time() + RESUME_WAIT_US;
    for (;;) {
        uint64_t id = 0;
        g_autofree char *address = NULL;
        if (pool_db_leader_any(&id, &address) == 0 && id != 0) {
            if (id != pool_dqlite_node_id(pdb.node))
                *leader = g_steal_pointer(&address);
            g_message("pool: the pool's dqlite database is led by %s",
                      *leader ? *leader : "this host");
            return 0;
        }
        if (g_get_monotonic_time() >= until)
            return xapi_error_internal(err, "pool: no dqlite node of the pool leads after %d s "
                                            "(no quorum: start more of the pool's hosts)",
                                       (int)(RESUME_WAIT_US / G_USEC_PER_SEC));
        g_usleep(100000); /* a standby's question goes to every voter */
    }
}

int pool_db_leader(uint64_t *id, char **address)
{
    *id = 0;
    *address = NULL;
    g_mutex_lock(&pdb.lock);
    int rc = pdb.node ? pool_dqlite_leader(pdb.node, id, address, NULL) : -1;
    g_mutex_unlock(&pdb.lock);
    return rc;
}

/* How long a standby waits for each voter it asks. */
#define VOTER_ASK_MS 1000

int pool_db_leader_any(uint64_t *id, char **address)
{
    *id = 0;
    *address = NULL;
    g_mutex_lock(&pdb.lock);
    int rc = pdb.node ? pool_dqlite_leader(pdb.node, id, address, NULL) : -1;
    GPtrArray *voters = rc == 0 && *id == 0 ? pool_dqlite_other_voters(pdb.node) : NULL;
    g_mutex_unlock(&pdb.lock);
    /* Not under the lock: a voter may take seconds to answer or fail. */
    for (guint i = 0; voters && *id == 0 && i < voters->len; i++) {
        g_autofree char *leader = NULL;
        if (pool_dqlite_peer_leader(pool_tunnel_dial, (void *)pool_state_dir(), voters->pdata[i],
                                    VOTER_ASK_MS, id, &leader) == 0 && *id != 0) {
            g_free(*address);
            *address = g_steal_pointer(&leader);
        }
    }
    if (voters)
        g_ptr_array_free(voters, TRUE);
    return rc;
}

uint64_t pool_db_node_id(void)
{
    g_mutex_lock(&pdb.lock);
    uint64_t id = pdb.node ? pool_dqlite_node_id(pdb.node) : 0;
    g_mutex_unlock(&pdb.lock);
    return id;
}

Store *pool_db_store_open(XapiError **err)
{
    g_mutex_lock(&pdb.lock);
    Store *store = pdb.node ? pool_dqlite_store_open(pdb.node, err) : NULL;
    if (!pdb.node)
        xapi_error_internal(err, "pool: this host runs no dqlite node");
    g_mutex_unlock(&pdb.lock);
    return store;
}

char *pool_db_master_of(const char *node_address)
{
    /* "HOST:PORT" or "[V6]:PORT": the port is dropped when it is ours (a
     * host's address, as HOST_IS_SLAVE names it). */
    const char *colon = strrchr(node_address, ':');
    size_t len = strlen(node_address);
    if (colon && g_ascii_strtoll(colon + 1, NULL, 10) == pool_local_port())
        len = (size_t)(colon - node_address);
    if (len >= 2 && node_address[0] == '[' && node_address[len - 1] == ']')
        return g_strndup(node_address + 1, len - 2);
    return g_strndup(node_address, len);
}

bool pool_db_running(void)
{
    g_mutex_lock(&pdb.lock);
    bool running = pdb.node != NULL;
    g_mutex_unlock(&pdb.lock);
    return running;
}

/* The Raft configuration's entry for a host address (lock held). */
static int find_server(const char *host_address, DqliteServerInfo *found, XapiError **err)
{
    g_autofree char *endpoint = pool_endpoint_of(host_address);
    GPtrArray *servers = pool_dqlite_cluster(pdb.node, err);
    if (!servers)
        return -1;
    int rc = 0;
    for (guint i = 0; i < servers->len; i++) {
        DqliteServerInfo *s = servers->pdata[i];
        if (strcmp(s->address, endpoint) == 0) {
            *found = (DqliteServerInfo){s->id, NULL, s->role};
            rc = 1;
        }
    }
    g_ptr_array_free(servers, TRUE);
    return rc;
}

int pool_db_designate(const char *host_address, XapiError **err)
{
    g_mutex_lock(&pdb.lock);
    DqliteServerInfo server = {0};
    int rc = pdb.node ? find_server(host_address, &server, err)
                      : xapi_error_internal(err, "pool: this host runs no dqlite node");
    if (rc == 0)
        rc = xapi_error_set(err, "OPERATION_NOT_ALLOWED", "the host's dqlite node is not in "
                            "the pool's cluster", NULL);
    else if (rc == 1)
        rc = pool_dqlite_hand_over(pdb.node, server.id, server.role != DQLITE_ROLE_VOTER, err);
    g_mutex_unlock(&pdb.lock);
    if (rc == 0)
        g_message("pool: dqlite leadership handed to %s (node %" G_GINT64_MODIFIER "x)",
                  host_address, (guint64)server.id);
    return rc;
}

int pool_db_remove_host(const char *host_address, XapiError **err)
{
    g_mutex_lock(&pdb.lock);
    DqliteServerInfo server = {0};
    int rc = pdb.node ? find_server(host_address, &server, err) : 0;
    if (rc == 1) /* the voters kept odd (a standby votes in a voter's place) */
        rc = pool_dqlite_remove(pdb.node, server.id, err);
    g_mutex_unlock(&pdb.lock);
    if (rc == 0 && server.id)
        g_message("pool: dqlite node %" G_GINT64_MODIFIER "x (%s) removed from the cluster",
                  (guint64)server.id, host_address);
    return rc;
}

/* The entry among servers of the first live address (lock held). */
static const DqliteServerInfo *live_standby(GPtrArray *servers, const char *const *live)
{
    for (const char *const *a = live; *a; a++) {
        g_autofree char *endpoint = pool_endpoint_of(*a);
        for (guint i = 0; i < servers->len; i++) {
            const DqliteServerInfo *s = servers->pdata[i];
            if (s->role == DQLITE_ROLE_STANDBY && strcmp(s->address, endpoint) == 0)
                return s;
        }
    }
    return NULL;
}

int pool_db_replace_voter(const char *dead_address, const char *const *live_addresses,
                          XapiError **err)
{
    g_mutex_lock(&pdb.lock);
    DqliteServerInfo dead = {0};
    int rc = pdb.node ? find_server(dead_address, &dead, err) : 0;
    GPtrArray *servers = rc == 1 && dead.role == DQLITE_ROLE_VOTER
                             ? pool_dqlite_cluster(pdb.node, err) : NULL;
    rc = rc < 0 || (rc == 1 && dead.role == DQLITE_ROLE_VOTER && !servers) ? -1 : 0;
    const DqliteServerInfo *standby = servers ? live_standby(servers, live_addresses) : NULL;
    g_autofree char *standby_address = standby ? g_strdup(standby->address) : NULL;
    uint64_t standby_id = standby ? standby->id : 0;
    /* The standby votes first, then the dead voter stands by: the quorum
     * never needs more live voters than the pool has. */
    if (standby)
        rc = pool_dqlite_assign(pdb.node, standby_id, DQLITE_ROLE_VOTER, err);
    if (standby && rc == 0)
        rc = pool_dqlite_assign(pdb.node, dead.id, DQLITE_ROLE_STANDBY, err);
    if (servers)
        g_ptr_array_free(servers, TRUE);
    g_mutex_unlock(&pdb.lock);
    if (servers && !standby_id)
        g_message("pool: the dqlite voter of %s is dead and no live standby can take its vote",
                  dead_address);
    else if (standby_id && rc == 0)
        g_message("pool: the dqlite voter of %s is dead: node %" G_GINT64_MODIFIER "x (%s) "
                  "votes in its place, it stands by", dead_address, (guint64)standby_id,
                  standby_address);
    return rc;
}

int pool_db_recover_alone(XapiError **err)
{
    g_mutex_lock(&pdb.lock);
    int rc = 0;
    g_autofree char *address = pdb.node ? g_strdup(pool_dqlite_node_address(pdb.node)) : NULL;
    if (!pdb.node)
        rc = xapi_error_internal(err, "pool: this host runs no dqlite node");
    else
        node_stop();
    g_autofree char *dir = node_dir(pool_state_dir());
    if (rc == 0)
        rc = pool_dqlite_recover_alone(dir, address, err);
    g_mutex_unlock(&pdb.lock);
    if (rc == 0)
        g_message("pool: the dqlite configuration now has this node as its only voter");
    return rc;
}

int pool_db_leave(XapiError **err)
{
    pool_db_stop();
    g_autofree char *dir = node_dir(pool_state_dir());
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
    if (g_file_test(dir, G_FILE_TEST_EXISTS) && system(cmd) != 0)
        return xapi_error_internal(err, "pool: could not remove %s", dir);
    return 0;
}

void pool_db_stop(void)
{
    g_mutex_lock(&pdb.lock);
    if (pdb.node)
        node_stop();
    g_mutex_unlock(&pdb.lock);
}
