/* pool_wire.h: rows in DB text form as JSON, between the hosts of a pool:
 * the master's change stream and a member's shipped write sets.
 *
 *   row        {"c": class, "r": ref, "cr": created, "mo": modified,
 *               "f": {field: DB text, ...}}       (every non-derived field)
 *   batch      {"generation": G, "resync": bool, "rows": [row...],
 *               "deleted": [[class, ref]...]}
 *   write set  {"ops": [{"op": "insert"|"set"|"touch"|"delete",
 *               "c": class, "r": ref, "f": {...}}...]}
 *   commit     {"generation": G} or {"error": [code, param...]} */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "db.h"

json_object *pool_wire_row(const DbRow *row);
/* Sets the fields of o's "f" on row (insert: not yet inserted, no
 * journal; else with db_set, skipping equal values). */
int pool_wire_fill_row(DbRow *row, json_object *fields, bool inserted, XapiError **err);
/* Inserts the row o names, or updates it when it exists; *inserted_row is
 * set for a new row (to link its relations once the batch is in). */
int pool_wire_put_row(json_object *o, DbRow **inserted_row, XapiError **err);

/* Master: the batch of changes after since (read lock held). */
json_object *pool_wire_changes(uint64_t since);
/* Member: the write set of the open transaction (write lock held). */
json_object *pool_wire_write_set(void);
/* Master: applies a member's write set in the open write transaction. */
int pool_wire_apply_write_set(json_object *ws, XapiError **err);
/* Member: applies a batch of the master's stream (takes the write lock). */
int pool_wire_apply_batch(json_object *batch, XapiError **err);

/* Parses JSON text (NULL and INTERNAL_ERROR when it does not parse). */
json_object *pool_wire_parse(const char *text, size_t len, XapiError **err);
/* {"error": [code, params...]} */
json_object *pool_wire_error(const XapiError *e);
/* Sets err from an {"error": [...]} object; -1. */
int pool_wire_take_error(json_object *o, XapiError **err);
