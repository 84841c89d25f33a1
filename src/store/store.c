/* store.c: the store's public entry points, dispatched to its driver. */
#include "store_driver.h"

Store *store_open(const char *path, XapiError **err) { return store_sqlite_open(path, err); }

void store_close(Store *s)
{
    if (s)
        s->driver->close(s);
}

const char *store_driver_name(const Store *s) { return s->driver->name; }
int store_begin(Store *s, XapiError **err) { return s->driver->begin(s, err); }
int store_commit(Store *s, XapiError **err) { return s->driver->commit(s, err); }
void store_rollback(Store *s) { s->driver->rollback(s); }

int store_put_row(Store *s, const DmClass *cls, const char *ref, const char *const *texts,
                  XapiError **err)
{
    return s->driver->put_row(s, cls, ref, texts, err);
}

int store_set_field(Store *s, const DmClass *cls, const char *ref, const DmField *field,
                    const char *text, XapiError **err)
{
    return s->driver->set_field(s, cls, ref, field, text, err);
}

int store_delete_row(Store *s, const DmClass *cls, const char *ref, XapiError **err)
{
    return s->driver->delete_row(s, cls, ref, err);
}

int store_load_class(Store *s, const DmClass *cls, StoreRowCallback cb, void *ctx,
                     XapiError **err)
{
    return s->driver->load_class(s, cls, cb, ctx, err);
}

char *store_meta_get(Store *s, const char *key) { return s->driver->meta_get(s, key); }

int store_meta_set(Store *s, const char *key, const char *value, XapiError **err)
{
    return s->driver->meta_set(s, key, value, err);
}

int store_meta_delete(Store *s, const char *key, XapiError **err)
{
    return s->driver->meta_delete(s, key, err);
}

GPtrArray *store_meta_keys(Store *s, const char *prefix) { return s->driver->meta_keys(s, prefix); }

static int copy_row(void *ctx, const DmClass *cls, const char *ref, const char *const *texts)
{
    void **args = ctx;
    return store_put_row(args[0], cls, ref, texts, args[1]);
}

static int copy_rows(Store *from, Store *to, XapiError **err)
{
    void *args[] = {to, err};
    for (unsigned c = 0; c < dm_n_classes; c++) {
        if (dm_classes[c].persist &&
            store_load_class(from, &dm_classes[c], copy_row, args, err) < 0)
            return -1;
    }
    return 0;
}

static int copy_meta(Store *from, Store *to, XapiError **err)
{
    g_autoptr(GPtrArray) keys = store_meta_keys(from, "");
    for (guint i = 0; i < keys->len; i++) {
        g_autofree char *value = store_meta_get(from, keys->pdata[i]);
        if (value && store_meta_set(to, keys->pdata[i], value, err) < 0)
            return -1;
    }
    return 0;
}

int store_copy(Store *from, Store *to, XapiError **err)
{
    if (store_begin(to, err) < 0)
        return -1;
    if (copy_rows(from, to, err) < 0 || copy_meta(from, to, err) < 0) {
        store_rollback(to);
        return -1;
    }
    return store_commit(to, err);
}
