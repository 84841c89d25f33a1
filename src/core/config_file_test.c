/* config_file_test.c: the configuration file becomes flags, the command
 * line's own win, and what the file cannot mean is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "config_file.h"

static char *state_dir, *config, **listen, **listen_tls;
static gboolean pool_dqlite;
static gint limit = 7;

static const GOptionEntry entries[] = {
    {"config", 0, 0, G_OPTION_ARG_FILENAME, &config, "", "FILE"},
    {"state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state_dir, "", "DIR"},
    {"listen", 0, 0, G_OPTION_ARG_STRING_ARRAY, &listen, "", "HOST:PORT"},
    {"listen-tls", 0, 0, G_OPTION_ARG_STRING_ARRAY, &listen_tls, "", "HOST:PORT"},
    {"pool-dqlite", 0, 0, G_OPTION_ARG_NONE, &pool_dqlite, "", NULL},
    {"message-limit", 0, 0, G_OPTION_ARG_INT, &limit, "", "N"},
    {NULL}};

static char *write_conf(const char *text)
{
    char *path = NULL;
    int fd = g_file_open_tmp("xapid-conf-XXXXXX", &path, NULL);
    assert_true(fd >= 0);
    close(fd);
    assert_true(g_file_set_contents(path, text, -1, NULL));
    return path;
}

/* Parses argv after merging path in, as main() does. */
static bool parse(const char *path, int argc, char **argv, GError **error)
{
    g_auto(GStrv) merged = config_file_merge(path, entries, argc, argv, error);
    if (!merged)
        return false;
    int n = (int)g_strv_length(merged);
    char **v = g_memdup2(merged, sizeof(char *) * (gsize)(n + 1)); /* GOption reorders */
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
    g_option_context_add_main_entries(ctx, entries, NULL);
    bool ok = g_option_context_parse(ctx, &n, &v, error);
    g_free(v);
    return ok;
}

static void reset(void)
{
    g_clear_pointer(&state_dir, g_free);
    g_clear_pointer(&config, g_free);
    g_clear_pointer(&listen, g_strfreev);
    g_clear_pointer(&listen_tls, g_strfreev);
    pool_dqlite = FALSE;
    limit = 7;
}

static void test_every_kind_of_flag(void **unused)
{
    g_autofree char *path = write_conf("# installed defaults\n[xapid]\n"
                                       "state-dir = /var/lib/xapid\n"
                                       "listen = 0.0.0.0:80\n"
                                       "listen-tls = 0.0.0.0:443;[::1]:8443\n"
                                       "pool-dqlite = true\n"
                                       "message-limit = 50\n");
    char *argv[] = {"xapid", "--config", path, NULL};
    g_autoptr(GError) error = NULL;
    reset();
    assert_true(parse(path, 3, argv, &error));
    assert_string_equal(state_dir, "/var/lib/xapid");
    assert_int_equal(g_strv_length(listen), 1);
    assert_string_equal(listen[0], "0.0.0.0:80");
    assert_int_equal(g_strv_length(listen_tls), 2);
    assert_string_equal(listen_tls[1], "[::1]:8443");
    assert_true(pool_dqlite);
    assert_int_equal(limit, 50);
    assert_string_equal(config_file_path(3, argv), path);
    g_unlink(path);
    reset();
}

static void test_flags_win(void **unused)
{
    g_autofree char *path = write_conf("[xapid]\nstate-dir=/var/lib/xapid\n"
                                       "listen=0.0.0.0:80\nlisten-tls=0.0.0.0:443\n"
                                       "message-limit=50\npool-dqlite=false\n");
    g_autofree char *config = g_strconcat("--config=", path, NULL);
    char *argv[] = {"xapid", config, "--listen", "127.0.0.1:1", "--listen=127.0.0.1:2",
                    "--message-limit=3", "--state-dir", "here", "--pool-dqlite", NULL};
    g_autoptr(GError) error = NULL;
    reset();
    assert_string_equal(config_file_path(9, argv), path);
    assert_true(parse(path, 9, argv, &error));
    /* A list given on the command line replaces the file's, not adds to it. */
    assert_int_equal(g_strv_length(listen), 2);
    assert_string_equal(listen[0], "127.0.0.1:1");
    assert_string_equal(listen[1], "127.0.0.1:2");
    assert_string_equal(listen_tls[0], "0.0.0.0:443");
    assert_string_equal(state_dir, "here");
    assert_int_equal(limit, 3);
    assert_true(pool_dqlite);
    g_unlink(path);
    reset();
}

static void refused(const char *text, const char *needle)
{
    g_autofree char *path = write_conf(text);
    char *argv[] = {"xapid", NULL};
    g_autoptr(GError) error = NULL;
    reset();
    assert_false(parse(path, 1, argv, &error));
    assert_non_null(strstr(error->message, needle));
    assert_non_null(strstr(error->message, path));
    g_unlink(path);
    reset();
}

static void test_refused(void **unused)
{
    refused("[xapid]\nlisten-tsl=0.0.0.0:443\n", "listen-tsl is not a setting");
    refused("[xapid]\nconfig=/etc/other.conf\n", "config is not a setting");
    refused("[xapid]\npool-dqlite=maybe\n", "pool-dqlite must be true or false");
    refused("[xapi]\nlisten=0.0.0.0:80\n", "unknown group [xapi]");
    refused("listen=0.0.0.0:80\n", "");                          /* outside a group */
    refused("[xapid]\nmessage-limit=many\n", "message-limit must be an integer");
    char *argv[] = {"xapid", NULL};
    g_autoptr(GError) error = NULL;
    assert_null(config_file_merge("/nonexistent/xapid.conf", entries, 1, argv, &error));
    assert_non_null(strstr(error->message, "/nonexistent/xapid.conf"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_kind_of_flag),
        cmocka_unit_test(test_flags_win),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
