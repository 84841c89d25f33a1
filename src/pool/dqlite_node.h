/* dqlite_node.h: this host's dqlite node, the replica of a pool's
 * database. Its data lives in STATE_DIR/dqlite (Raft log, snapshots and
 * the node-id file); it listens only on an abstract unix socket, which
 * dqlite serves to this process alone, and its address in the Raft
 * configuration is the host's xapid address "HOST:PORT": peers reach it
 * through the caller's connect function (xapid's: the pool tunnel over
 * the HTTP port, see pool_tunnel.h). Membership changes go to the leader,
 * which keeps one voter for one or two nodes, three from three on, and
 * makes the rest standbys. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "dqlite_wire.h"
#include "store.h"
#include "xapi_error.h"

/* The id a founder bootstraps with: dqlite 1.11 bootstraps a cluster of
 * one only for this id (or 1); every joiner draws a random one. */
#define POOL_DQLITE_FOUNDER_ID 0x2dc171858c3155beULL
#define POOL_DQLITE_DB_NAME "xapid"
#define POOL_DQLITE_MAX_VOTERS 3

typedef struct PoolDqliteConfig {
    const char *dir;        /* STATE_DIR/dqlite (created) */
    const char *address;    /* "HOST:PORT", as peers dial it */
    bool founder;           /* bootstrap a cluster of one (first start only) */
    DqliteConnectFn connect;/* dials a peer's address */
    void *connect_ctx;
    unsigned latency_ms;    /* 0: 20 */
} PoolDqliteConfig;

typedef struct PoolDqliteNode PoolDqliteNode;

/* The node's id, read from dir/node-id or made (the founder's id when
 * founder, else random) and kept there durably. */
int pool_dqlite_node_id_load(const char *dir, bool founder, uint64_t *id, XapiError **err);

/* Creates and starts the node (SIGPIPE becomes ignored process-wide: a
 * peer that dies must not kill us through a write on its socket). */
PoolDqliteNode *pool_dqlite_node_start(const PoolDqliteConfig *cfg, XapiError **err);
/* Stops the node (in-flight requests complete) and frees it. */
void pool_dqlite_node_stop(PoolDqliteNode *n);

uint64_t pool_dqlite_node_id(const PoolDqliteNode *n);
const char *pool_dqlite_node_address(const PoolDqliteNode *n);
/* "@name", the abstract socket the node listens on. */
const char *pool_dqlite_node_bind_address(const PoolDqliteNode *n);
/* A new connection to an abstract socket "@name" (-1 with errno). */
int pool_dqlite_dial_abstract(const char *bind_address);

/* A client connection to this host's own node. */
DqliteConn *pool_dqlite_local_client(PoolDqliteNode *n, int timeout_ms, XapiError **err);
/* A client connection to the leader (this node or a peer, through the
 * connect function), with the database opened; NULL when none leads. */
DqliteConn *pool_dqlite_leader_client(PoolDqliteNode *n, int timeout_ms, XapiError **err);
/* The leader as this node knows it (id 0, address "" when none). */
int pool_dqlite_leader(PoolDqliteNode *n, uint64_t *id, char **address, XapiError **err);
bool pool_dqlite_is_leader(PoolDqliteNode *n);
/* dqlite names the leader only to a voter's clients (a standby's node
 * answers none, even while it follows one): a standby asks the voters.
 * The addresses of the voters of this node's configuration (CLUSTER is
 * answered locally), NULL when this node votes itself (its own answer
 * stands) or cannot say. */
GPtrArray *pool_dqlite_other_voters(PoolDqliteNode *n);
/* The leader the node at address names (id 0, *leader NULL: none, or it
 * could not be asked within about timeout_ms). */
int pool_dqlite_peer_leader(DqliteConnectFn connect, void *ctx, const char *address,
                            int timeout_ms, uint64_t *id, char **leader);

/* Adds a node that was started empty, as a standby, then keeps the
 * voters odd: the leader alone votes while the cluster has one or two
 * nodes, POOL_DQLITE_MAX_VOTERS from three on (standbys vote until then).
 * pool_dqlite_remove does the same after the removal (a voter gone: a
 * standby votes; two nodes left: the one that does not lead stands by). */
int pool_dqlite_add(PoolDqliteNode *n, uint64_t id, const char *address, XapiError **err);
int pool_dqlite_assign(PoolDqliteNode *n, uint64_t id, uint64_t role, XapiError **err);
int pool_dqlite_remove(PoolDqliteNode *n, uint64_t id, XapiError **err);
int pool_dqlite_transfer(PoolDqliteNode *n, uint64_t id, XapiError **err);
/* Leadership to node id, a standby made a voter first (and the voters
 * kept odd after). */
int pool_dqlite_hand_over(PoolDqliteNode *n, uint64_t id, bool standby, XapiError **err);
/* The Raft configuration (DqliteServerInfo), as the leader knows it. */
GPtrArray *pool_dqlite_cluster(PoolDqliteNode *n, XapiError **err);

/* The store driver over this node (store_dqlite.h): writes succeed while
 * this node leads. */
Store *pool_dqlite_store_open(PoolDqliteNode *n, XapiError **err);

/* With the node stopped: rewrites its Raft configuration so that it is
 * the only voter (emergency_transition_to_master in a pool that lost its
 * quorum). Start it again afterwards. */
int pool_dqlite_recover_alone(const char *dir, const char *address, XapiError **err);
