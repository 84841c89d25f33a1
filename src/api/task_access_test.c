/* task_access_test.c: whose tasks a session may cancel, destroy, set or
 * name in a transfer: its user's own; another user's only with
 * task.destroy/any (pool-operator and up), as XAPI. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "bootstrap.h"
#include "db.h"
#include "rbac.h"
#include "dispatch.h"
#include "task.h"

static const DispatchOrigin tcp = {.trusted = false, .peer = "192.0.2.1"};
static const DispatchOrigin unix_socket = {.trusted = true};

static char *call(const DispatchOrigin *origin, Xv **out, const char *method, ...)
{
    g_autoptr(Xv) params = xv_new_array();
    va_list ap;
    va_start(ap, method);
    for (const char *p = va_arg(ap, const char *); p; p = va_arg(ap, const char *))
        xv_array_append_string(params, p);
    va_end(ap);
    XapiError *err = NULL;
    bool bare;
    Xv *result = dispatch_call(method, params, origin, &bare, &err);
    if (out)
        *out = result;
    else
        xv_free(result);
    if (!err)
        return NULL;
    GString *s = g_string_new(err->code);
    for (guint i = 0; i < err->params->len; i++)
        g_string_append_printf(s, " %s", (char *)err->params->pdata[i]);
    xapi_error_free(err);
    return g_string_free(s, FALSE);
}

static char *string_result(const DispatchOrigin *origin, const char *method, const char *a,
                           const char *b, const char *c)
{
    Xv *v = NULL;
    g_autofree char *e = call(origin, &v, method, a, b, c, NULL);
    if (e)
        fail_msg("%s: %s", method, e);
    char *s = g_strdup(xv_str(v));
    xv_free(v);
    return s;
}

typedef struct {
    const char *name;
    char *ref;
} RoleSearch;

static bool find_role(DbRow *role, void *ctx)
{
    RoleSearch *search = ctx;
    if (strcmp(xv_str(db_get(role, "name_label")), search->name) != 0)
        return true;
    search->ref = g_strdup(role->ref);
    return false;
}

/* A session of an external user (its sid) holding one role. */
static char *user_session(const char *sid, const char *role_name)
{
    RoleSearch search = {role_name, NULL};
    db_read_begin();
    db_foreach(dm_class_by_name("role"), find_role, &search);
    db_read_end();
    assert_non_null(search.ref);
    assert_int_equal(db_write_begin(NULL), 0);
    DbRow *subject = db_row_new(dm_class_by_name("subject"));
    Xv *roles = xv_new_array();
    xv_array_append_string(roles, search.ref);
    g_free(search.ref);
    db_row_put(subject, "roles", roles);
    db_row_put(subject, "subject_identifier", xv_new_string(sid));
    g_autofree char *subject_ref = g_strdup(subject->ref);
    assert_int_equal(db_insert(subject, NULL), 0);
    DbRow *session = db_row_new(dm_class_by_name("session"));
    db_row_put(session, "subject", xv_new_string(subject_ref));
    /* what login gives a subject's session: its roles' permissions */
    db_row_put(session, "rbac_permissions", rbac_permissions_of_roles(rbac_role_of_name(role_name)));
    db_row_put(session, "auth_user_sid", xv_new_string(sid));
    char *ref = g_strdup(session->ref);
    assert_int_equal(db_insert(session, NULL), 0);
    assert_int_equal(db_write_commit(NULL), 0);
    return ref;
}

static int setup(void **state)
{
    return db_open(NULL, NULL) < 0 || bootstrap_database(NULL, NULL) < 0;
}

static void test_other_users_tasks_need_destroy_any(void **state)
{
    g_autofree char *root = string_result(&unix_socket, "session.login_with_password", "root",
                                          "x", NULL);
    g_autofree char *alice = user_session("S-alice", "vm-admin");
    g_autofree char *alice2 = user_session("S-alice", "vm-admin");
    g_autofree char *operator = user_session("S-bob", "pool-operator");
    g_autofree char *roots_task = string_result(&tcp, "task.create", root, "root's", "");
    g_autofree char *alices_task = string_result(&tcp, "task.create", alice, "alice's", "");

    const char *denied = "RBAC_PERMISSION_DENIED task.destroy/any No permission in user "
                         "session. (Roles with this permission: pool-admin, pool-operator)";
    g_autofree char *e1 = call(&tcp, NULL, "task.cancel", alice, roots_task, NULL);
    assert_string_equal(e1, denied);
    g_autofree char *e2 = call(&tcp, NULL, "task.destroy", alice, roots_task, NULL);
    assert_string_equal(e2, denied);
    g_autofree char *e3 = call(&tcp, NULL, "task.set_status", alice, roots_task, "success", NULL);
    assert_string_equal(e3, denied);
    Xv *status = NULL;
    assert_null(call(&tcp, &status, "task.get_status", root, roots_task, NULL));
    assert_string_equal(xv_str(status), "pending"); /* nothing changed */
    xv_free(status);
    XapiError *err = NULL;
    assert_int_equal(task_check_use(alice, false, roots_task, &err), -1);
    assert_string_equal(err->code, "RBAC_PERMISSION_DENIED");
    xapi_error_free(err);
    err = NULL;

    /* Her own tasks, from any of her sessions; others' for an operator
     * and for root; any for the unix socket. */
    assert_int_equal(task_check_use(alice2, false, alices_task, NULL), 0);
    assert_null(call(&tcp, NULL, "task.cancel", alice2, alices_task, NULL));
    assert_int_equal(task_check_use(operator, false, alices_task, NULL), 0);
    assert_int_equal(task_check_use(root, false, alices_task, NULL), 0);
    assert_int_equal(task_check_use(NULL, true, roots_task, NULL), 0);
    assert_null(call(&tcp, NULL, "task.destroy", operator, roots_task, NULL));

    assert_int_equal(task_check_use(root, false, "OpaqueRef:nope", &err), -1);
    assert_string_equal(err->code, "HANDLE_INVALID");
    xapi_error_free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_other_users_tasks_need_destroy_any),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
