/* dqlite_wire.h: our client of dqlite's wire protocol (version 1), as
 * dqlite.io documents it: every message is an 8-byte header (the body's
 * length in 64-bit words, the type, a schema revision, two unused bytes)
 * and a body of little-endian 64-bit words; text is NUL-terminated and
 * padded to a word. The encoders and decoders are pure functions over
 * byte arrays (the unit test holds them to golden bytes); DqliteConn is
 * one blocking connection with a deadline per request. Errors are
 * XapiErrors; a FAILURE response also leaves its SQLite code readable
 * (dqlite_conn_failure_code) so that callers can tell "not leader". */
#pragma once
#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "xapi_error.h"

#define DQLITE_WIRE_PROTOCOL 1

enum { /* request types */
    DQLITE_WIRE_LEADER = 0,
    DQLITE_WIRE_CLIENT = 1,
    DQLITE_WIRE_OPEN = 3,
    DQLITE_WIRE_PREPARE = 4,
    DQLITE_WIRE_EXEC = 5,
    DQLITE_WIRE_QUERY = 6,
    DQLITE_WIRE_FINALIZE = 7,
    DQLITE_WIRE_EXEC_SQL = 8,
    DQLITE_WIRE_QUERY_SQL = 9,
    DQLITE_WIRE_ADD = 12,
    DQLITE_WIRE_ASSIGN = 13,
    DQLITE_WIRE_REMOVE = 14,
    DQLITE_WIRE_CLUSTER = 16,
    DQLITE_WIRE_TRANSFER = 17,
};

enum { /* response types */
    DQLITE_WIRE_FAILURE = 0,
    DQLITE_WIRE_SERVER = 1,
    DQLITE_WIRE_WELCOME = 2,
    DQLITE_WIRE_SERVERS = 3,
    DQLITE_WIRE_DB = 4,
    DQLITE_WIRE_STMT = 5,
    DQLITE_WIRE_RESULT = 6,
    DQLITE_WIRE_ROWS = 7,
    DQLITE_WIRE_EMPTY = 8,
};

enum { /* value types of parameters and rows */
    DQLITE_WIRE_INTEGER = 1,
    DQLITE_WIRE_FLOAT = 2,
    DQLITE_WIRE_TEXT = 3,
    DQLITE_WIRE_BLOB = 4,
    DQLITE_WIRE_NULL = 5,
    DQLITE_WIRE_UNIXTIME = 9,
    DQLITE_WIRE_ISO8601 = 10,
    DQLITE_WIRE_BOOLEAN = 11,
};

enum { DQLITE_ROLE_VOTER = 0, DQLITE_ROLE_STANDBY = 1, DQLITE_ROLE_SPARE = 2 };

/* SQLite's extended codes for "this node does not lead" (dqlite's). */
#define DQLITE_WIRE_NOT_LEADER (10 | (40 << 8))
#define DQLITE_WIRE_LEADERSHIP_LOST (10 | (41 << 8))

#define DQLITE_WIRE_ROWS_PART 0xeeeeeeeeeeeeeeeeULL
#define DQLITE_WIRE_ROWS_DONE 0xffffffffffffffffULL

/* The most parameters one statement can carry (a one-byte count). */
#define DQLITE_WIRE_MAX_PARAMS 255

/* ---- encoding: each appends one whole message (header and body) ---- */
void dqlite_wire_handshake(GByteArray *out);
void dqlite_wire_encode_leader(GByteArray *out);
void dqlite_wire_encode_client(GByteArray *out, uint64_t id);
void dqlite_wire_encode_open(GByteArray *out, const char *name);
/* EXEC_SQL / QUERY_SQL with text parameters (a NULL entry binds NULL). */
void dqlite_wire_encode_sql(GByteArray *out, uint8_t type, uint64_t db, const char *sql,
                            const char *const *params, unsigned n_params);
void dqlite_wire_encode_add(GByteArray *out, uint64_t id, const char *address);
void dqlite_wire_encode_assign(GByteArray *out, uint64_t id, uint64_t role);
void dqlite_wire_encode_remove(GByteArray *out, uint64_t id);
void dqlite_wire_encode_cluster(GByteArray *out);
void dqlite_wire_encode_transfer(GByteArray *out, uint64_t id);

/* ---- decoding of a response body (len bytes, a multiple of 8) ---- */
typedef struct DqliteServerInfo {
    uint64_t id;
    char *address;
    uint64_t role;
} DqliteServerInfo;
void dqlite_server_info_free(gpointer info);

int dqlite_wire_decode_failure(const uint8_t *body, size_t len, uint64_t *code, char **message);
int dqlite_wire_decode_server(const uint8_t *body, size_t len, uint64_t *id, char **address);
int dqlite_wire_decode_db(const uint8_t *body, size_t len, uint32_t *db);
int dqlite_wire_decode_result(const uint8_t *body, size_t len, uint64_t *last_id,
                              uint64_t *rows_affected);
/* A SERVERS body: a GPtrArray of DqliteServerInfo (NULL when malformed). */
GPtrArray *dqlite_wire_decode_servers(const uint8_t *body, size_t len);

/* One row of a result: values rendered as text (integers in decimal,
 * NULL as NULL), n the column count. Returns nonzero to stop. */
typedef int (*DqliteRowFn)(void *ctx, unsigned n, const char *const *values);
/* A ROWS body: calls fn for each row; *more is set when the server sends
 * another ROWS message (the PART marker). -1 when malformed, -2 when fn
 * stopped. */
int dqlite_wire_decode_rows(const uint8_t *body, size_t len, DqliteRowFn fn, void *ctx,
                            bool *more);

/* ---- one connection ---- */
/* Dials address and returns a connected stream socket's fd (or -1 with
 * errno set); xapid's dials the peer's HTTP port and upgrades (the pool
 * tunnel), tests dial a node's abstract socket. */
typedef int (*DqliteConnectFn)(void *ctx, const char *address, int *fd);

typedef struct DqliteConn DqliteConn;
/* Connects, sends the handshake; timeout_ms bounds each request. */
DqliteConn *dqlite_conn_open(DqliteConnectFn connect, void *ctx, const char *address,
                             int timeout_ms, XapiError **err);
/* Takes an fd already connected (the handshake is sent here). */
DqliteConn *dqlite_conn_adopt(int fd, const char *address, int timeout_ms, XapiError **err);
void dqlite_conn_close(DqliteConn *c);
const char *dqlite_conn_address(const DqliteConn *c);
/* The SQLite code of the last FAILURE response (0: the last request did
 * not fail that way, e.g. it timed out or the connection broke). */
uint64_t dqlite_conn_failure_code(const DqliteConn *c);
/* Whether the connection still works (a broken one must be replaced). */
bool dqlite_conn_usable(const DqliteConn *c);

/* id 0 and address "" when no leader is known. */
int dqlite_conn_leader(DqliteConn *c, uint64_t *id, char **address, XapiError **err);
int dqlite_conn_open_db(DqliteConn *c, const char *name, XapiError **err);
int dqlite_conn_exec(DqliteConn *c, const char *sql, const char *const *params, unsigned n,
                     uint64_t *rows_affected, XapiError **err);
int dqlite_conn_query(DqliteConn *c, const char *sql, const char *const *params, unsigned n,
                      DqliteRowFn fn, void *ctx, XapiError **err);
int dqlite_conn_add(DqliteConn *c, uint64_t id, const char *address, XapiError **err);
int dqlite_conn_assign(DqliteConn *c, uint64_t id, uint64_t role, XapiError **err);
int dqlite_conn_remove(DqliteConn *c, uint64_t id, XapiError **err);
int dqlite_conn_transfer(DqliteConn *c, uint64_t id, XapiError **err);
/* The Raft configuration: DqliteServerInfo with roles (caller frees). */
GPtrArray *dqlite_conn_cluster(DqliteConn *c, XapiError **err);
