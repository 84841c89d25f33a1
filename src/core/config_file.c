/* config_file.c: the configuration file as flags put before the command
 * line's own (see config_file.h). */
#include "config_file.h"

#include <stdbool.h>
#include <string.h>

#define GROUP "xapid"

const char *config_file_path(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            return argv[i + 1];
        if (g_str_has_prefix(argv[i], "--config="))
            return argv[i] + strlen("--config=");
    }
    return NULL;
}

static const GOptionEntry *entry_named(const GOptionEntry *entries, const char *name)
{
    for (const GOptionEntry *e = entries; e->long_name; e++)
        if (strcmp(e->long_name, name) == 0)
            return e;
    return NULL;
}

/* Whether the command line gives --name itself (then the file's is dropped). */
static bool given(const char *name, int argc, char **argv)
{
    size_t n = strlen(name);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            return false;
        if (a[0] == '-' && a[1] == '-' && strncmp(a + 2, name, n) == 0 &&
            (a[2 + n] == 0 || a[2 + n] == '='))
            return true;
    }
    return false;
}

static bool is_list(GOptionArg arg)
{
    return arg == G_OPTION_ARG_STRING_ARRAY || arg == G_OPTION_ARG_FILENAME_ARRAY;
}

char **config_file_merge(const char *path, const GOptionEntry *entries, int argc, char **argv,
                         GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, error)) {
        g_prefix_error(error, "%s: ", path);
        return NULL;
    }
    gsize ngroups = 0;
    g_auto(GStrv) groups = g_key_file_get_groups(kf, &ngroups);
    for (gsize g = 0; g < ngroups; g++)
        if (strcmp(groups[g], GROUP) != 0) {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND,
                        "%s: unknown group [%s] (the settings go in [" GROUP "])", path,
                        groups[g]);
            return NULL;
        }
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(out, g_strdup(argv[0]));
    gsize nkeys = 0;
    g_auto(GStrv) keys = g_key_file_has_group(kf, GROUP)
                             ? g_key_file_get_keys(kf, GROUP, &nkeys, NULL)
                             : g_new0(char *, 1);
    for (gsize k = 0; k < nkeys; k++) {
        const GOptionEntry *e = entry_named(entries, keys[k]);
        if (!e || strcmp(keys[k], "config") == 0 || e->flags & G_OPTION_FLAG_HIDDEN) {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
                        "%s: %s is not a setting of xapid (see xapid --help)", path, keys[k]);
            return NULL;
        }
        if (given(keys[k], argc, argv))
            continue;
        if (e->arg == G_OPTION_ARG_NONE) {
            g_autoptr(GError) gerr = NULL;
            gboolean on = g_key_file_get_boolean(kf, GROUP, keys[k], &gerr);
            if (gerr) {
                g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                            "%s: %s must be true or false", path, keys[k]);
                return NULL;
            }
            if (on)
                g_ptr_array_add(out, g_strconcat("--", keys[k], NULL));
            continue;
        }
        g_auto(GStrv) values = NULL;
        if (is_list(e->arg)) {
            values = g_key_file_get_string_list(kf, GROUP, keys[k], NULL, error);
        } else {
            char *v = g_key_file_get_string(kf, GROUP, keys[k], error);
            if (v) {
                values = g_new0(char *, 2);
                values[0] = v;
            }
        }
        if (!values) {
            g_prefix_error(error, "%s: ", path);
            return NULL;
        }
        bool is_int = e->arg == G_OPTION_ARG_INT;
        if ((is_int || e->arg == G_OPTION_ARG_INT64) &&
            !g_ascii_string_to_signed(values[0], 10, is_int ? G_MININT : G_MININT64,
                                      is_int ? G_MAXINT : G_MAXINT64, NULL, NULL)) {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                        "%s: %s must be an integer, not \"%s\"", path, keys[k], values[0]);
            return NULL;
        }
        for (char **v = values; *v; v++)
            g_ptr_array_add(out, g_strdup_printf("--%s=%s", keys[k], *v));
    }
    for (int i = 1; i < argc; i++)
        g_ptr_array_add(out, g_strdup(argv[i]));
    g_ptr_array_add(out, NULL);
    return (char **)g_ptr_array_steal(out, NULL);
}
