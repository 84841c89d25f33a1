/* pool_db.h: xapid's dqlite node and the pool's database in it (opt-in:
 * --pool-dqlite). The master founds the cluster when the first member
 * asks to be added (POST /pool/dqlite-add, pool secret): its node
 * bootstraps, db moves from xapid.db into dqlite (db_move_to_store), and
 * every later write is a Raft commit. A member starts its node empty and
 * asks the master to add it; the leader keeps the voters odd (itself
 * alone for two hosts, three from three on), the rest standbys. Peers reach a node only through the pool tunnel on the
 * HTTP port (pool_tunnel.h). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "xapi_error.h"

void pool_db_enable(bool on);
bool pool_db_enabled(void);
/* Whether state_dir holds a dqlite node's data (a founded pool). */
bool pool_db_founded(const char *state_dir);
/* On the master: founds the cluster if not yet, then adds the node. */
int pool_db_add(uint64_t id, const char *address, XapiError **err);
/* On a member, after the listeners opened: starts the node and, the
 * first time, asks the master to add it. */
int pool_db_member_start(XapiError **err);
/* A host whose node holds the pool's data (pool_db_founded), at start:
 * starts the node and waits until it knows a leader: *leader NULL when
 * this node leads, else the leader's "HOST:PORT" (caller frees). */
typedef struct Store Store;
int pool_db_resume(char **leader, XapiError **err);
/* The leader as this host's node knows it (id 0: none); -1 without a node. */
int pool_db_leader(uint64_t *id, char **address);
/* The same, asking the voters (through the pool tunnel, a second each
 * at most, not under the node's lock) when this node stands by: dqlite
 * names no leader to a standby's clients (pool_dqlite_other_voters). */
int pool_db_leader_any(uint64_t *id, char **address);
uint64_t pool_db_node_id(void); /* 0: no node */
/* The store over this host's node (writes succeed while it leads). */
Store *pool_db_store_open(XapiError **err);
/* A node's "HOST:PORT" as a host address: without the port when it is
 * this host's (caller frees). */
char *pool_db_master_of(const char *node_address);
bool pool_db_running(void); /* this host runs a node */
/* On the leader: hands leadership to the node of the host at host_address
 * (a voter); the watchers then move the master role (pool_failover.h). */
int pool_db_designate(const char *host_address, XapiError **err);
/* On the leader: removes an ejected host's node from the cluster (a
 * standby then takes a voter's place); nothing when it has none. */
int pool_db_remove_host(const char *host_address, XapiError **err);
/* On the leader, for a host the master counts dead (--member-timeout):
 * when its node votes, the first standby among live_addresses (NULL
 * ended) becomes a voter and the dead host's node a standby, so that the
 * pool keeps its voters; nothing when it does not vote or no standby
 * lives. */
int pool_db_replace_voter(const char *dead_address, const char *const *live_addresses,
                          XapiError **err);
/* Stops the node and rewrites its Raft configuration with this node as
 * the only voter (a pool that lost its quorum); the node starts again at
 * the next start of xapid. */
int pool_db_recover_alone(XapiError **err);
/* On a host leaving the pool: its node stops and its data goes. */
int pool_db_leave(XapiError **err);
void pool_db_stop(void);
