/* store.h: the durable copy of the object database. Rows are persisted as
 * DB text strings (see db_text.h), one table per persisted class, one
 * column per stored field (store_schema.h). Two drivers (store_driver.h):
 * store_sqlite, a local SQLite file in WAL with synchronous=NORMAL, so a
 * committed write survives kill -9 of the process; store_dqlite, the same
 * SQL run against a pool's Raft-replicated dqlite database, where a commit
 * returns once a quorum holds it. The caller serialises writes; writes
 * happen inside store_begin/store_commit, and a failed commit leaves
 * nothing. */
#pragma once
#include "datamodel.h"
#include "xapi_error.h"
typedef struct Store Store;
Store *store_open(const char *path, XapiError **err);
void store_close(Store *s);
const char *store_driver_name(const Store *s); /* "sqlite" or "dqlite" */
int store_begin(Store *s, XapiError **err);
int store_commit(Store *s, XapiError **err);
void store_rollback(Store *s);
int store_put_row(Store *s, const DmClass *cls, const char *ref, const char *const *texts, XapiError **err);
int store_set_field(Store *s, const DmClass *cls, const char *ref, const DmField *field, const char *text, XapiError **err);
int store_delete_row(Store *s, const DmClass *cls, const char *ref, XapiError **err);
typedef int (*StoreRowCallback)(void *ctx, const DmClass *cls, const char *ref, const char *const *texts);
int store_load_class(Store *s, const DmClass *cls, StoreRowCallback cb, void *ctx, XapiError **err);
char *store_meta_get(Store *s, const char *key);
int store_meta_set(Store *s, const char *key, const char *value, XapiError **err);
int store_meta_delete(Store *s, const char *key, XapiError **err);
/* The keys that start with prefix (caller frees the array). */
GPtrArray *store_meta_keys(Store *s, const char *prefix);
/* Copies every persisted row and every meta key of from into to, in one
 * transaction of to (a pool's database starts from the founder's rows). */
int store_copy(Store *from, Store *to, XapiError **err);
