/* sr_roots.c: the directories SRs may live under (sr_roots.h). */
#include "sr_roots.h"

#include <errno.h>
#include <stdbool.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static GPtrArray *roots; /* canonical absolute paths */

static int add_root(const char *dir, XapiError **err)
{
    g_autofree char *real = realpath(dir, NULL);
    struct stat st;
    if (!real || stat(real, &st) < 0 || !S_ISDIR(st.st_mode))
        return xapi_error_set(err, "INVALID_VALUE", "--sr-root", dir, NULL);
    g_ptr_array_add(roots, g_steal_pointer(&real));
    return 0;
}

int sr_roots_init(const char *state_dir, const char *const *extra, XapiError **err)
{
    if (roots)
        g_ptr_array_free(roots, TRUE);
    roots = g_ptr_array_new_with_free_func(g_free);
    static const char *const own[] = {"sr", "iso"};
    for (size_t i = 0; i < G_N_ELEMENTS(own); i++) {
        g_autofree char *dir = g_build_filename(state_dir ? state_dir : ".", own[i], NULL);
        g_mkdir_with_parents(dir, 0700);
        if (add_root(dir, err) < 0)
            return -1;
    }
    for (; extra && *extra; extra++)
        if (add_root(*extra, err) < 0)
            return -1;
    return 0;
}

/* No empty (but a trailing one), "." or ".." component. */
static bool plain_absolute(const char *path)
{
    if (path[0] != '/')
        return false;
    g_auto(GStrv) parts = g_strsplit(path + 1, "/", -1);
    for (guint i = 0; parts[i]; i++) {
        bool last = parts[i + 1] == NULL;
        if ((!*parts[i] && !(last && i > 0)) || strcmp(parts[i], ".") == 0 ||
            strcmp(parts[i], "..") == 0)
            return false;
    }
    return true;
}

/* Whether every existing component of path is a real directory (no link);
 * the first missing one ends the walk. */
static bool no_links(const char *path)
{
    g_autofree char *walk = g_strdup(path);
    for (char *slash = walk + 1;; slash++) {
        bool end = *slash == '\0';
        if (*slash == '/' || end) {
            char saved = *slash;
            *slash = '\0';
            struct stat st;
            int rc = lstat(walk, &st);
            *slash = saved;
            if (rc < 0)
                return errno == ENOENT;
            if (!S_ISDIR(st.st_mode))
                return false;
            if (end)
                return true;
        }
    }
}

static bool under(const char *path, const char *root)
{
    size_t n = strlen(root);
    return strncmp(path, root, n) == 0 && (path[n] == '\0' || path[n] == '/' || n == 1);
}

int sr_roots_check(const char *location, XapiError **err)
{
    /* a relative location (the state directory's own SRs, under a relative
     * --state-dir) is taken from our working directory, which never changes */
    g_autofree char *path = g_path_is_absolute(location) ? g_strdup(location)
                                                         : g_canonicalize_filename(location, NULL);
    if (plain_absolute(path) && no_links(path))
        for (guint i = 0; roots && i < roots->len; i++)
            if (under(path, roots->pdata[i]))
                return 0;
    return xapi_error_set(err, "INVALID_VALUE", "device_config:location", location, NULL);
}
