/* qemu_fdsets.c: disk images handed to a running QEMU as fdsets over its
 * monitor (QMP add-fd), and the sets removed when their disk goes.
 *
 * A removed set's descriptors stay open while a block node uses them
 * (QEMU holds duplicates), so removing a set early is safe; a set never
 * removed would keep its image open, and its lock held, until QEMU ends. */
#include "qemu_fdsets.h"

#include <glib.h>
#include <string.h>

#include "qemu_cmdline.h"

/* Adds fd to fdset (or to a new set when fdset < 0): the set's id, or -1. */
static int64_t add_fd(QmpMonitor *mon, int fd, int64_t fdset, const char *opaque,
                      XapiError **err)
{
    json_object *args = json_object_new_object();
    json_object_object_add(args, "opaque", json_object_new_string(opaque));
    if (fdset >= 0)
        json_object_object_add(args, "fdset-id", json_object_new_int64(fdset));
    json_object *reply = qmp_monitor_command(mon, "add-fd", args, fd, err);
    if (!reply)
        return -1;
    json_object *id;
    int64_t set = json_object_object_get_ex(reply, "fdset-id", &id) ? json_object_get_int64(id)
                                                                     : -1;
    json_object_put(reply);
    if (set < 0)
        xapi_error_internal(err, "QEMU's add-fd answered no fdset-id");
    return set;
}

int qemu_fdsets_add_chain(QmpMonitor *mon, int slot, const ImageChain *chain, int64_t *fdsets,
                          XapiError **err)
{
    g_autofree char *opaque = g_strdup_printf(QEMU_DISK_FDSET_FMT, slot);
    for (size_t i = 0; i < chain->n; i++) {
        const ImageLayer *l = &chain->layers[i];
        fdsets[i] = add_fd(mon, l->fd_ro, -1, opaque, err);
        if (fdsets[i] < 0 || (l->fd_rw >= 0 && add_fd(mon, l->fd_rw, fdsets[i], opaque, err) < 0)) {
            qemu_fdsets_remove(mon, fdsets, fdsets[i] < 0 ? i : i + 1);
            return -1;
        }
    }
    return 0;
}

static void remove_set(QmpMonitor *mon, int64_t fdset)
{
    json_object *args = json_object_new_object();
    json_object_object_add(args, "fdset-id", json_object_new_int64(fdset));
    g_autoptr(XapiError) ignored = NULL; /* gone already: nothing to do */
    json_object_put(qmp_monitor_command(mon, "remove-fd", args, -1, &ignored));
}

void qemu_fdsets_remove(QmpMonitor *mon, const int64_t *fdsets, size_t n)
{
    for (size_t i = 0; i < n; i++)
        remove_set(mon, fdsets[i]);
}

static bool set_has_opaque(json_object *set, const char *opaque)
{
    json_object *fds, *o;
    if (!json_object_object_get_ex(set, "fds", &fds) || !json_object_is_type(fds, json_type_array))
        return false;
    for (size_t i = 0; i < json_object_array_length(fds); i++)
        if (json_object_object_get_ex(json_object_array_get_idx(fds, i), "opaque", &o) &&
            strcmp(json_object_get_string(o), opaque) == 0)
            return true;
    return false;
}

void qemu_fdsets_remove_slot(QmpMonitor *mon, int slot, const int64_t *keep, size_t n_keep)
{
    g_autoptr(XapiError) ignored = NULL;
    json_object *sets = qmp_monitor_command(mon, "query-fdsets", NULL, -1, &ignored);
    if (!sets)
        return;
    g_autofree char *opaque = g_strdup_printf(QEMU_DISK_FDSET_FMT, slot);
    for (size_t i = 0; i < json_object_array_length(sets); i++) {
        json_object *set = json_object_array_get_idx(sets, i), *id;
        if (!json_object_object_get_ex(set, "fdset-id", &id) || !set_has_opaque(set, opaque))
            continue;
        int64_t fdset = json_object_get_int64(id);
        bool kept = false;
        for (size_t k = 0; k < n_keep && !kept; k++)
            kept = keep[k] == fdset;
        if (!kept)
            remove_set(mon, fdset);
    }
    json_object_put(sets);
}
