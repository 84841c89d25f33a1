/* store_dqlite.h: the store driver over a pool's replicated database. It
 * runs store_sqlite's SQL (store_schema.h) on a connection to this host's
 * own dqlite node, which must lead: a write transaction is one dqlite
 * transaction (EXEC "BEGIN" ... "COMMIT" on one connection) and returns
 * once a quorum of voters holds it. On a node that does not (or no
 * longer) lead, every write fails and leaves nothing: HOST_IS_SLAVE
 * [leader's address] when another node is known to lead, else an
 * INTERNAL_ERROR naming the Raft failure. */
#pragma once
#include "dqlite_wire.h"
#include "store.h"

typedef struct StoreDqliteSource {
    /* A new connection to the local node with the database open. */
    DqliteConn *(*connect)(void *ctx, int timeout_ms, XapiError **err);
    /* The leader's address when another node leads (caller frees), else NULL. */
    char *(*other_leader)(void *ctx);
    void *ctx;
    int timeout_ms; /* per request; 0: 5000 */
    /* Whether the node has known no leader for longer than an election
     * takes (its quorum is lost): a write then fails at once instead of
     * waiting on requests the node cannot serve. NULL: never. */
    bool (*quorum_lost)(void *ctx);
} StoreDqliteSource;

/* Connects and creates (or upgrades) the schema. */
Store *store_dqlite_open(const StoreDqliteSource *source, XapiError **err);
