/* store_schema.h: the SQL of the stored schema, generated once from the
 * datamodel and shared by both store drivers: one table per persisted
 * class ("_ref" and one TEXT column per stored field, in field order) and
 * the "_meta" key/value table. */
#pragma once
#include <glib.h>

#include "datamodel.h"

typedef struct StoreClassSql {
    char *create;  /* CREATE TABLE IF NOT EXISTS, every stored column */
    char *put;     /* INSERT OR REPLACE: ?1 the ref, then one ? per stored field */
    char *del;     /* DELETE ... WHERE "_ref" = ?1 */
    char *select;  /* SELECT "_ref", every stored column */
    unsigned n_columns; /* stored fields (without "_ref") */
} StoreClassSql;

/* The statements of a persisted class (NULL for the others); static. */
const StoreClassSql *store_schema_class(const DmClass *cls);
/* UPDATE of one field: ?1 the value, ?2 the ref (caller frees). */
char *store_schema_update_sql(const DmClass *cls, const DmField *field);
/* ALTER TABLE ... ADD COLUMN for the stored fields missing from
 * existing_columns (a set of column names); the caller frees the array. */
GPtrArray *store_schema_missing_columns(const DmClass *cls, GHashTable *existing_columns);
/* PRAGMA table_info of a class's table (column 1 holds the names). */
char *store_schema_table_info_sql(const DmClass *cls);

#define STORE_SCHEMA_META_CREATE "CREATE TABLE IF NOT EXISTS \"_meta\" (key TEXT PRIMARY KEY, value TEXT)"
#define STORE_SCHEMA_META_GET "SELECT value FROM \"_meta\" WHERE key = ?"
#define STORE_SCHEMA_META_SET "INSERT OR REPLACE INTO \"_meta\" (key, value) VALUES (?, ?)"
#define STORE_SCHEMA_META_DELETE "DELETE FROM \"_meta\" WHERE key = ?"
#define STORE_SCHEMA_META_KEYS "SELECT key FROM \"_meta\" WHERE substr(key, 1, ?) = ?"
