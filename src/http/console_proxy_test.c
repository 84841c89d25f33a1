/* console_proxy_test.c: who may open a console: XAPI's
 * http/connect_console is vm-operator and above; a read-only session is
 * refused with RBAC_PERMISSION_DENIED (HTTP 403), a session that does not
 * exist with SESSION_INVALID (401). The handshakes and the proxy are
 * proven against a real guest in tests/client/test_console.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "bootstrap.h"
#include "console_proxy.h"
#include "db.h"
#include "rbac.h"
#include "http_auth.h"
#include "session.h"

static bool find_role(DbRow *role, void *ctx)
{
    const char **wanted = ctx;
    if (strcmp(xv_str(db_get(role, "name_label")), wanted[0]) != 0)
        return true;
    wanted[1] = g_strdup(role->ref);
    return false;
}

/* A session of an external user holding one role. */
static char *user_session(const char *role_name)
{
    const char *search[2] = {role_name, NULL};
    db_read_begin();
    db_foreach(dm_class_by_name("role"), find_role, search);
    db_read_end();
    assert_non_null(search[1]);
    assert_int_equal(db_write_begin(NULL), 0);
    DbRow *subject = db_row_new(dm_class_by_name("subject"));
    Xv *roles = xv_new_array();
    xv_array_append_string(roles, search[1]);
    g_free((char *)search[1]);
    db_row_put(subject, "roles", roles);
    db_row_put(subject, "subject_identifier", xv_new_string(role_name));
    g_autofree char *subject_ref = g_strdup(subject->ref);
    assert_int_equal(db_insert(subject, NULL), 0);
    DbRow *session = db_row_new(dm_class_by_name("session"));
    db_row_put(session, "subject", xv_new_string(subject_ref));
    /* what login gives a subject's session: its roles' permissions */
    db_row_put(session, "rbac_permissions", rbac_permissions_of_roles(rbac_role_of_name(role_name)));
    db_row_put(session, "auth_user_sid", xv_new_string(role_name));
    char *ref = g_strdup(session->ref);
    assert_int_equal(db_insert(session, NULL), 0);
    assert_int_equal(db_write_commit(NULL), 0);
    return ref;
}

static int setup(void **state)
{
    return db_open(NULL, NULL) < 0 || bootstrap_database(NULL, NULL) < 0;
}

/* The error authorizing session for a console gives, or NULL. */
static XapiError *authorize(const char *session)
{
    Call call = {.msg = console_proxy_permission(), .session_ref = (char *)session};
    session_authorize(&call);
    return call.error;
}

static void test_vm_operator_and_above_only(void **state)
{
    const char *allowed[] = {"vm-operator", "vm-admin", "vm-power-admin", "pool-operator",
                             "pool-admin"};
    for (size_t i = 0; i < G_N_ELEMENTS(allowed); i++) {
        g_autofree char *s = user_session(allowed[i]);
        assert_null(authorize(s));
    }
    g_autofree char *reader = user_session("read-only");
    g_autoptr(XapiError) denied = authorize(reader);
    assert_non_null(denied);
    assert_string_equal(denied->code, "RBAC_PERMISSION_DENIED");
    assert_string_equal(denied->params->pdata[0], "http/connect_console");
    assert_int_equal(http_auth_status(denied), MHD_HTTP_FORBIDDEN);
    g_autoptr(XapiError) unknown = authorize("OpaqueRef:nope");
    assert_string_equal(unknown->code, "SESSION_INVALID");
    assert_int_equal(http_auth_status(unknown), MHD_HTTP_UNAUTHORIZED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vm_operator_and_above_only),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
