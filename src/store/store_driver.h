/* store_driver.h: the table a store driver fills in (store_sqlite for a
 * standalone host, store_dqlite for a pool); store.c dispatches to it.
 * Each driver's own state starts with a Store, which points at the table. */
#pragma once
#include "store.h"

typedef struct StoreDriver {
    const char *name;
    int (*begin)(Store *s, XapiError **err);
    int (*commit)(Store *s, XapiError **err);
    void (*rollback)(Store *s);
    int (*put_row)(Store *s, const DmClass *cls, const char *ref, const char *const *texts,
                   XapiError **err);
    int (*set_field)(Store *s, const DmClass *cls, const char *ref, const DmField *field,
                     const char *text, XapiError **err);
    int (*delete_row)(Store *s, const DmClass *cls, const char *ref, XapiError **err);
    int (*load_class)(Store *s, const DmClass *cls, StoreRowCallback cb, void *ctx,
                      XapiError **err);
    char *(*meta_get)(Store *s, const char *key);
    int (*meta_set)(Store *s, const char *key, const char *value, XapiError **err);
    int (*meta_delete)(Store *s, const char *key, XapiError **err);
    GPtrArray *(*meta_keys)(Store *s, const char *prefix);
    void (*close)(Store *s);
} StoreDriver;

struct Store {
    const StoreDriver *driver;
};

/* The SQLite driver's entry point (store_open opens through it). */
Store *store_sqlite_open(const char *path, XapiError **err);
