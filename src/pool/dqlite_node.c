/* dqlite_node.c: starting, stopping and reconfiguring this host's dqlite
 * node (see dqlite_node.h). */
#include "dqlite_node.h"

#include "store_dqlite.h"

#include <dqlite.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct PoolDqliteNode {
    dqlite_node *node;
    uint64_t id;
    char *address;
    char *bind;
    DqliteConnectFn connect;
    void *connect_ctx;
    gint64 leaderless_since; /* atomic: monotonic us since no leader is known; 0: one is */
};

uint64_t pool_dqlite_node_id(const PoolDqliteNode *n) { return n->id; }
const char *pool_dqlite_node_address(const PoolDqliteNode *n) { return n->address; }
const char *pool_dqlite_node_bind_address(const PoolDqliteNode *n) { return n->bind; }

int pool_dqlite_node_id_load(const char *dir, bool founder, uint64_t *id, XapiError **err)
{
    if (g_mkdir_with_parents(dir, 0700) < 0)
        return xapi_error_internal(err, "dqlite: %s: %s", dir, g_strerror(errno));
    g_autofree char *path = g_build_filename(dir, "node-id", NULL);
    g_autofree char *text = NULL;
    if (g_file_get_contents(path, &text, NULL, NULL)) {
        char *end = NULL;
        *id = g_ascii_strtoull(text, &end, 16);
        if (*id == 0 || (end && *end && *end != '\n'))
            return xapi_error_internal(err, "dqlite: %s holds no node id", path);
        return 0;
    }
    uint64_t fresh = POOL_DQLITE_FOUNDER_ID;
    while (!founder && (fresh == POOL_DQLITE_FOUNDER_ID || fresh <= 1)) {
        if (getrandom(&fresh, sizeof fresh, 0) != sizeof fresh)
            return xapi_error_internal(err, "dqlite: getrandom: %s", g_strerror(errno));
        fresh &= 0x7fffffffffffffffULL; /* positive in any signed reading */
    }
    g_autofree char *hex = g_strdup_printf("%" G_GINT64_MODIFIER "x\n", (guint64)fresh);
    GError *gerr = NULL;
    if (!g_file_set_contents_full(path, hex, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &gerr)) {
        xapi_error_internal(err, "dqlite: %s: %s", path, gerr->message);
        g_error_free(gerr);
        return -1;
    }
    *id = fresh;
    return 0;
}

int pool_dqlite_dial_abstract(const char *bind_address)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(bind_address); /* the '@' stands for the leading NUL */
    if (bind_address[0] != '@' || len > sizeof sa.sun_path) {
        errno = EINVAL;
        return -1;
    }
    memcpy(sa.sun_path + 1, bind_address + 1, len - 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* dqlite's connect hook: ours takes the same arguments. */
static int node_connect(void *arg, const char *address, int *fd)
{
    PoolDqliteNode *n = arg;
    return n->connect(n->connect_ctx, address, fd) == 0 && *fd >= 0 ? 0 : DQLITE_ERROR;
}

static int node_fail(XapiError **err, dqlite_node *node, const char *what, int rc)
{
    return xapi_error_internal(err, "dqlite: %s: %s (%d)", what,
                               node ? dqlite_node_errmsg(node) : "", rc);
}

/* Raft keeps every log entry since the last snapshot but SNAPSHOT_TRAILING
 * in memory, and each of xapid's commits is an entry of the WAL pages it
 * wrote (about 24 KiB for a VM.create): with dqlite's defaults (a snapshot
 * every 1,024 entries, 8,192 kept) up to ~9,200 entries, some 200 MiB on
 * every node, voter or standby. A node further behind than the entries
 * kept gets the snapshot instead (the database, a few MiB to tens). */
#define SNAPSHOT_THRESHOLD 512
#define SNAPSHOT_TRAILING 512

PoolDqliteNode *pool_dqlite_node_start(const PoolDqliteConfig *cfg, XapiError **err)
{
    /* A peer's death must not kill us through a write to its socket. */
    signal(SIGPIPE, SIG_IGN);
    uint64_t id;
    if (pool_dqlite_node_id_load(cfg->dir, cfg->founder, &id, err) < 0)
        return NULL;
    PoolDqliteNode *n = g_new0(PoolDqliteNode, 1);
    n->id = id;
    n->address = g_strdup(cfg->address);
    n->connect = cfg->connect;
    n->connect_ctx = cfg->connect_ctx;
    int rc = dqlite_node_create(id, cfg->address, cfg->dir, &n->node);
    if (rc != 0) {
        node_fail(err, n->node, "create", rc);
        goto fail;
    }
    if ((rc = dqlite_node_set_bind_address(n->node, "@")) != 0) {
        node_fail(err, n->node, "bind", rc);
        goto fail;
    }
    if ((rc = dqlite_node_set_connect_func(n->node, node_connect, n)) != 0 ||
        (rc = dqlite_node_set_network_latency_ms(n->node, cfg->latency_ms ? cfg->latency_ms : 20)) != 0 ||
        (rc = dqlite_node_set_snapshot_params(n->node, SNAPSHOT_THRESHOLD, SNAPSHOT_TRAILING)) != 0) {
        node_fail(err, n->node, "configure", rc);
        goto fail;
    }
    if ((rc = dqlite_node_start(n->node)) != 0) {
        node_fail(err, n->node, "start", rc);
        goto fail;
    }
    n->bind = g_strdup(dqlite_node_get_bind_address(n->node));
    return n;
fail:
    if (n->node)
        dqlite_node_destroy(n->node);
    g_free(n->address);
    g_free(n);
    return NULL;
}

void pool_dqlite_node_stop(PoolDqliteNode *n)
{
    if (!n)
        return;
    dqlite_node_stop(n->node);
    dqlite_node_destroy(n->node);
    g_free(n->address);
    g_free(n->bind);
    g_free(n);
}

DqliteConn *pool_dqlite_local_client(PoolDqliteNode *n, int timeout_ms, XapiError **err)
{
    int fd = pool_dqlite_dial_abstract(n->bind);
    if (fd < 0) {
        xapi_error_internal(err, "dqlite: cannot connect to the local node: %s", g_strerror(errno));
        return NULL;
    }
    return dqlite_conn_adopt(fd, n->address, timeout_ms, err);
}

int pool_dqlite_leader(PoolDqliteNode *n, uint64_t *id, char **address, XapiError **err)
{
    DqliteConn *c = pool_dqlite_local_client(n, 2000, err);
    if (!c)
        return -1;
    int rc = dqlite_conn_leader(c, id, address, err);
    dqlite_conn_close(c);
    if (rc == 0 && *id != 0)
        __atomic_store_n(&n->leaderless_since, 0, __ATOMIC_RELAXED);
    else if (rc == 0 && !__atomic_load_n(&n->leaderless_since, __ATOMIC_RELAXED))
        __atomic_store_n(&n->leaderless_since, g_get_monotonic_time(), __ATOMIC_RELAXED);
    return rc;
}

GPtrArray *pool_dqlite_other_voters(PoolDqliteNode *n)
{
    DqliteConn *c = pool_dqlite_local_client(n, 2000, NULL);
    GPtrArray *servers = c ? dqlite_conn_cluster(c, NULL) : NULL;
    if (c)
        dqlite_conn_close(c);
    if (!servers)
        return NULL;
    GPtrArray *voters = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; voters && i < servers->len; i++) {
        const DqliteServerInfo *s = servers->pdata[i];
        if (s->role == DQLITE_ROLE_VOTER && s->id == n->id)
            g_clear_pointer(&voters, g_ptr_array_unref); /* its own answer stands */
        else if (s->role == DQLITE_ROLE_VOTER)
            g_ptr_array_add(voters, g_strdup(s->address));
    }
    g_ptr_array_free(servers, TRUE);
    return voters;
}

int pool_dqlite_peer_leader(DqliteConnectFn connect, void *ctx, const char *address,
                            int timeout_ms, uint64_t *id, char **leader)
{
    *id = 0;
    *leader = NULL;
    DqliteConn *c = dqlite_conn_open(connect, ctx, address, timeout_ms, NULL);
    if (!c)
        return -1;
    int rc = dqlite_conn_leader(c, id, leader, NULL);
    dqlite_conn_close(c);
    if (rc < 0 || *id == 0) {
        *id = 0;
        g_clear_pointer(leader, g_free);
    }
    return rc;
}

bool pool_dqlite_is_leader(PoolDqliteNode *n)
{
    uint64_t id = 0;
    g_autofree char *address = NULL;
    return pool_dqlite_leader(n, &id, &address, NULL) == 0 && id == n->id;
}

DqliteConn *pool_dqlite_leader_client(PoolDqliteNode *n, int timeout_ms, XapiError **err)
{
    uint64_t id = 0;
    g_autofree char *address = NULL;
    if (pool_dqlite_leader(n, &id, &address, err) < 0)
        return NULL;
    if (id == 0) {
        xapi_error_internal(err, "dqlite: no node leads the pool's database (no quorum)");
        return NULL;
    }
    DqliteConn *c = id == n->id ? pool_dqlite_local_client(n, timeout_ms, err)
                                : dqlite_conn_open(n->connect, n->connect_ctx, address, timeout_ms, err);
    if (c && dqlite_conn_open_db(c, POOL_DQLITE_DB_NAME, err) < 0) {
        dqlite_conn_close(c);
        return NULL;
    }
    return c;
}

GPtrArray *pool_dqlite_cluster(PoolDqliteNode *n, XapiError **err)
{
    DqliteConn *c = pool_dqlite_leader_client(n, 5000, err);
    if (!c)
        return NULL;
    GPtrArray *servers = dqlite_conn_cluster(c, err);
    dqlite_conn_close(c);
    return servers;
}

/* How many of n nodes vote: an odd number, as dqlite's own role
 * management keeps it (two voters survive no more than one does, and
 * each needs the other): one up to two nodes, three from three on. */
static unsigned voters_wanted(unsigned nodes)
{
    return nodes >= POOL_DQLITE_MAX_VOTERS ? POOL_DQLITE_MAX_VOTERS : 1;
}

/* On the leader's connection c: standbys vote, or voters other than the
 * leader stand by, until voters_wanted() vote. */
static int balance(DqliteConn *c, uint64_t leader, XapiError **err)
{
    GPtrArray *servers = dqlite_conn_cluster(c, err);
    if (!servers)
        return -1;
    unsigned voters = 0;
    for (guint i = 0; i < servers->len; i++)
        voters += ((DqliteServerInfo *)servers->pdata[i])->role == DQLITE_ROLE_VOTER;
    unsigned wanted = voters_wanted(servers->len);
    int rc = 0;
    for (guint i = 0; rc == 0 && voters != wanted && i < servers->len; i++) {
        const DqliteServerInfo *s = servers->pdata[i];
        if (voters < wanted && s->role == DQLITE_ROLE_STANDBY) {
            rc = dqlite_conn_assign(c, s->id, DQLITE_ROLE_VOTER, err);
            voters++;
        } else if (voters > wanted && s->role == DQLITE_ROLE_VOTER && s->id != leader) {
            rc = dqlite_conn_assign(c, s->id, DQLITE_ROLE_STANDBY, err);
            voters--;
        }
    }
    g_ptr_array_free(servers, TRUE);
    return rc;
}

int pool_dqlite_add(PoolDqliteNode *n, uint64_t id, const char *address, XapiError **err)
{
    /* Promotion waits for the new voter to catch up: allow it time. */
    DqliteConn *c = pool_dqlite_leader_client(n, 30000, err);
    if (!c)
        return -1;
    int rc = -1;
    GPtrArray *servers = dqlite_conn_cluster(c, err);
    if (!servers)
        goto out;
    bool present = false;
    for (guint i = 0; i < servers->len; i++)
        present |= ((DqliteServerInfo *)servers->pdata[i])->id == id;
    g_ptr_array_free(servers, TRUE);
    if (!present && (dqlite_conn_add(c, id, address, err) < 0 ||
                     dqlite_conn_assign(c, id, DQLITE_ROLE_STANDBY, err) < 0))
        goto out;
    rc = balance(c, n->id, err);
out:
    dqlite_conn_close(c);
    return rc;
}

int pool_dqlite_remove(PoolDqliteNode *n, uint64_t id, XapiError **err)
{
    DqliteConn *c = pool_dqlite_leader_client(n, 30000, err);
    if (!c)
        return -1;
    int rc = dqlite_conn_remove(c, id, err);
    g_autoptr(XapiError) unbalanced = NULL;
    if (rc == 0 && balance(c, n->id, &unbalanced) < 0) /* removed all the same */
        g_warning("dqlite: the voters were not rebalanced after a removal: %s",
                  unbalanced->params->len ? (char *)unbalanced->params->pdata[0] : "");
    dqlite_conn_close(c);
    return rc;
}

typedef int (*IdRequest)(DqliteConn *c, uint64_t id, XapiError **err);

static int leader_request(PoolDqliteNode *n, IdRequest fn, uint64_t id, XapiError **err)
{
    DqliteConn *c = pool_dqlite_leader_client(n, 30000, err);
    if (!c)
        return -1;
    int rc = fn(c, id, err);
    dqlite_conn_close(c);
    return rc;
}

int pool_dqlite_assign(PoolDqliteNode *n, uint64_t id, uint64_t role, XapiError **err)
{
    DqliteConn *c = pool_dqlite_leader_client(n, 30000, err);
    if (!c)
        return -1;
    int rc = dqlite_conn_assign(c, id, role, err);
    dqlite_conn_close(c);
    return rc;
}

int pool_dqlite_transfer(PoolDqliteNode *n, uint64_t id, XapiError **err)
{
    return leader_request(n, dqlite_conn_transfer, id, err);
}

int pool_dqlite_hand_over(PoolDqliteNode *n, uint64_t id, bool standby, XapiError **err)
{
    /* Only a voter can lead: a standby votes first (one voter more for a
     * moment), and once it leads the voters are made odd again, the old
     * leader standing by if it is the one too many. */
    DqliteConn *c = pool_dqlite_leader_client(n, 30000, err);
    if (!c)
        return -1;
    int rc = standby ? dqlite_conn_assign(c, id, DQLITE_ROLE_VOTER, err) : 0;
    if (rc == 0)
        rc = dqlite_conn_transfer(c, id, err);
    dqlite_conn_close(c);
    if (rc < 0 || !standby)
        return rc;
    g_autoptr(XapiError) unbalanced = NULL;
    c = pool_dqlite_leader_client(n, 30000, &unbalanced); /* the new leader's */
    if (!c || balance(c, id, &unbalanced) < 0) /* handed over all the same */
        g_warning("dqlite: the voters were not rebalanced after the hand-over: %s",
                  unbalanced && unbalanced->params->len ? (char *)unbalanced->params->pdata[0]
                                                        : "");
    if (c)
        dqlite_conn_close(c);
    return 0;
}

int pool_dqlite_recover_alone(const char *dir, const char *address, XapiError **err)
{
    uint64_t id;
    if (pool_dqlite_node_id_load(dir, false, &id, err) < 0)
        return -1;
    dqlite_node *node = NULL;
    int rc = dqlite_node_create(id, address, dir, &node);
    if (rc == 0) {
        dqlite_node_info info = {.id = id, .address = address};
        rc = dqlite_node_recover(node, &info, 1);
    }
    if (rc != 0)
        node_fail(err, node, "recover", rc);
    if (node)
        dqlite_node_destroy(node);
    return rc == 0 ? 0 : -1;
}

static DqliteConn *store_connect(void *ctx, int timeout_ms, XapiError **err)
{
    PoolDqliteNode *n = ctx;
    DqliteConn *c = pool_dqlite_local_client(n, timeout_ms, err);
    if (c && dqlite_conn_open_db(c, POOL_DQLITE_DB_NAME, err) < 0) {
        dqlite_conn_close(c);
        return NULL;
    }
    return c;
}

#define OTHER_LEADER_WAIT_US (2 * G_USEC_PER_SEC)

static char *store_other_leader(void *ctx)
{
    PoolDqliteNode *n = ctx;
    uint64_t id = 0;
    char *address = NULL;
    /* A deposed leader hears of its successor within a heartbeat or two:
     * wait that long for a name to give the caller. */
    gint64 until = g_get_monotonic_time() + OTHER_LEADER_WAIT_US;
    for (;;) {
        if (pool_dqlite_leader(n, &id, &address, NULL) == 0 && id != 0 && id != n->id)
            break;
        g_clear_pointer(&address, g_free);
        if (g_get_monotonic_time() >= until)
            return NULL;
        g_usleep(20000);
    }
    /* The leader's host address, as HOST_IS_SLAVE names a master: without
     * the port when it is ours (the hosts of a pool share one). */
    const char *mine = strrchr(n->address, ':');
    const char *its = strrchr(address, ':');
    if (mine && its && strcmp(mine, its) == 0) {
        size_t len = (size_t)(its - address);
        bool v6 = len >= 2 && address[0] == '[' && address[len - 1] == ']';
        char *host = v6 ? g_strndup(address + 1, len - 2) : g_strndup(address, len);
        g_free(address);
        return host;
    }
    return address;
}

/* Longer than an election takes with set_network_latency_ms(20) (the
 * failover bench's are 0.4-1 s). */
#define LEADERLESS_QUORUM_LOST_US (3 * G_USEC_PER_SEC)

static bool store_quorum_lost(void *ctx)
{
    PoolDqliteNode *n = ctx;
    uint64_t id = 0;
    g_autofree char *address = NULL;
    if (pool_dqlite_leader(n, &id, &address, NULL) < 0 || id != 0)
        return false;
    gint64 since = __atomic_load_n(&n->leaderless_since, __ATOMIC_RELAXED);
    return since && g_get_monotonic_time() - since > LEADERLESS_QUORUM_LOST_US;
}

Store *pool_dqlite_store_open(PoolDqliteNode *n, XapiError **err)
{
    StoreDqliteSource source = {store_connect, store_other_leader, n, 0, store_quorum_lost};
    return store_dqlite_open(&source, err);
}
