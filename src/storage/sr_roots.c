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

/* Where path leads: the real path of its longest existing prefix (links
 * resolved) with the rest appended, which must be plain names (no "",
 * "." or ".."); NULL if it is not. */
static char *resolve(const char *path)
{
    g_autofree char *prefix = g_strdup(path);
    GPtrArray *rest = g_ptr_array_new_with_free_func(g_free);
    char *real = NULL;
    while (!(real = realpath(prefix, NULL))) {
        char *slash = strrchr(prefix, '/');
        if (errno != ENOENT || !slash || slash == prefix) {
            g_ptr_array_free(rest, TRUE);
            return NULL;
        }
        const char *name = slash + 1;
        if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
            g_ptr_array_free(rest, TRUE);
            return NULL;
        }
        g_ptr_array_insert(rest, 0, g_strdup(name));
        *slash = '\0';
    }
    GString *out = g_string_new(real);
    free(real);
    for (guint i = 0; i < rest->len; i++)
        g_string_append_printf(out, "%s%s", out->str[out->len - 1] == '/' ? "" : "/",
                               (char *)rest->pdata[i]);
    g_ptr_array_free(rest, TRUE);
    return g_string_free(out, FALSE);
}

static bool under(const char *path, const char *root)
{
    size_t n = strlen(root);
    return strncmp(path, root, n) == 0 && (path[n] == '\0' || path[n] == '/' || n == 1);
}

int sr_roots_check(const char *location, XapiError **err)
{
    /* relative: the state directory's own SRs under a relative --state-dir,
     * from our working directory, which never changes */
    g_autofree char *path = *location ? resolve(location) : NULL;
    for (guint i = 0; path && roots && i < roots->len; i++)
        if (under(path, roots->pdata[i]))
            return 0;
    return xapi_error_set(err, "INVALID_VALUE", "device_config:location", location, NULL);
}
