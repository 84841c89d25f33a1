/* pending_files.c: crash-safe creation and removal of image files (see
 * pending_files.h). The notes are `pending-file:<path>` settings. */
#include "pending_files.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "storage.h"

#define PREFIX "pending-file:"

int pending_file_note(const char *path, XapiError **err)
{
    g_autofree char *key = g_strconcat(PREFIX, path, NULL);
    return db_write_held() ? db_meta_put(key, "", err) : db_meta_set(key, "", err);
}

void pending_file_done(const char *path)
{
    g_autofree char *key = g_strconcat(PREFIX, path, NULL);
    g_autoptr(XapiError) err = NULL;
    if (db_meta_delete(key, &err) < 0)
        g_warning("storage: cannot forget the note on %s: %s", path, err->code);
}

static bool add_path(DbRow *vdi, void *ctx)
{
    g_autoptr(XapiError) ignored = NULL;
    char *path = storage_vdi_path(vdi, &ignored);
    if (path)
        g_hash_table_add(ctx, path);
    return true;
}

void pending_files_sweep(void)
{
    g_autoptr(GPtrArray) keys = db_meta_keys(PREFIX);
    if (!keys->len)
        return;
    g_autoptr(GHashTable) named = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    db_read_begin();
    db_foreach(dm_class_by_name("VDI"), add_path, named);
    db_read_end();
    for (guint i = 0; i < keys->len; i++) {
        const char *path = (const char *)keys->pdata[i] + strlen(PREFIX);
        if (!g_hash_table_contains(named, path)) {
            if (unlink(path) == 0)
                g_message("storage: removed %s, left by an operation that did not finish", path);
            else if (errno != ENOENT)
                g_warning("storage: cannot remove %s: %s", path, g_strerror(errno));
        }
        pending_file_done(path);
    }
}
