/* session_test.c: root's password: generated from the CSPRNG into its file
 * only, hashed with yescrypt; an older SHA-512 hash still logs in and is
 * upgraded; wrong passwords fail from TCP, the unix socket needs none. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <crypt.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <glib/gstdio.h>
#include <sys/stat.h>

#include "bootstrap.h"
#include "db.h"
#include "dispatch.h"
#include "login_throttle.h"
#include "session.h"

static const DispatchOrigin tcp = {.trusted = false, .peer = "192.0.2.7"};

/* The error code of a login, or NULL on success. */
static char *login(const char *password)
{
    g_autoptr(Xv) params = xv_new_array();
    xv_array_append_string(params, "root");
    xv_array_append_string(params, password);
    XapiError *err = NULL;
    bool bare;
    g_autoptr(Xv) result = dispatch_call("session.login_with_password", params, &tcp, &bare, &err);
    char *code = err ? g_strdup(err->code) : NULL;
    xapi_error_free(err);
    return code;
}

static char *state_dir;

static int setup(void **state)
{
    login_throttle_configure(0); /* no waiting in unit tests */
    state_dir = g_dir_make_tmp("xapid-session-XXXXXX", NULL);
    return !state_dir || db_open(state_dir, NULL) < 0 || bootstrap_database(state_dir, NULL) < 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int teardown(void **state)
{
    db_close();
    int rc = nftw(state_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    g_free(state_dir);
    return rc;
}

static void test_generated_password_goes_to_the_file(void **state)
{
    g_autofree char *dir = g_dir_make_tmp("xapid-session-XXXXXX", NULL);
    g_autofree char *file = g_build_filename(dir, "root-password", NULL);
    assert_int_equal(session_init_root_password(file, NULL), 0);
    g_autofree char *password = NULL;
    assert_true(g_file_get_contents(file, &password, NULL, NULL));
    g_strchomp(password);
    assert_true(strlen(password) >= 22); /* 16 random bytes */
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    g_autofree char *hash = db_meta_get("root_password_hash");
    assert_true(g_str_has_prefix(hash, "$y$"));
    assert_null(login(password));
    g_autofree char *wrong = login("not it");
    assert_string_equal(wrong, "SESSION_AUTHENTICATION_FAILED");
    g_unlink(file);
    g_rmdir(dir);
}

static void test_sha512_hash_still_works_and_is_upgraded(void **state)
{
    struct crypt_data data = {0};
    const char *old = crypt_r("old-style", "$6$abcdefgh$", &data);
    assert_int_equal(db_meta_set("root_password_hash", old, NULL), 0);
    g_autofree char *wrong = login("old-stylE");
    assert_string_equal(wrong, "SESSION_AUTHENTICATION_FAILED");
    g_autofree char *kept = db_meta_get("root_password_hash");
    assert_string_equal(kept, old); /* a failure changes nothing */
    assert_null(login("old-style"));
    g_autofree char *upgraded = db_meta_get("root_password_hash");
    assert_true(g_str_has_prefix(upgraded, "$y$"));
    assert_null(login("old-style"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_password_goes_to_the_file),
        cmocka_unit_test(test_sha512_hash_still_works_and_is_upgraded),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
