/* dispatch_test.c: the dispatch order and its errors on a memory-only
 * database: unknown methods, arity, types, sessions, RBAC. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "bootstrap.h"
#include "db.h"
#include "rbac.h"
#include "dispatch.h"
#include "session.h"
#include "task.h"

static const DispatchOrigin tcp = {.trusted = false};
static const DispatchOrigin unix_socket = {.trusted = true};

/* Calls method with string params (NULL-terminated); returns the error
 * code or NULL on success, and the result in *out if given. */
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

static char *root_session(void)
{
    Xv *ref = NULL;
    /* The unix socket is pre-authenticated: no password check. */
    assert_null(call(&unix_socket, &ref, "session.login_with_password", "root", "any", NULL));
    char *s = g_strdup(xv_str(ref));
    xv_free(ref);
    return s;
}

static int setup(void **state)
{
    return db_open(NULL, NULL) < 0 || bootstrap_database(NULL, NULL) < 0;
}

static void test_unknown_and_unimplemented(void **state)
{
    g_autofree char *e1 = call(&tcp, NULL, "VM.no_such_message", NULL);
    assert_string_equal(e1, "MESSAGE_METHOD_UNKNOWN VM.no_such_message");
    g_autofree char *e2 = call(&tcp, NULL, "VM.restart_device_models", "s", "v", NULL);
    assert_string_equal(e2, "MESSAGE_METHOD_UNKNOWN VM.restart_device_models");
}

static void test_arity_counts_exclude_session_and_defaults(void **state)
{
    g_autofree char *e1 = call(&tcp, NULL, "VM.get_name_label", "s", NULL);
    assert_string_equal(e1, "MESSAGE_PARAMETER_COUNT_MISMATCH VM.get_name_label 1 0");
    g_autofree char *e2 = call(&tcp, NULL, "session.login_with_password", "root", NULL);
    assert_string_equal(e2, "MESSAGE_PARAMETER_COUNT_MISMATCH session.login_with_password 2 1");
}

static void test_session_and_types(void **state)
{
    g_autofree char *e1 = call(&tcp, NULL, "VM.get_all", "OpaqueRef:nope", NULL);
    assert_string_equal(e1, "SESSION_INVALID OpaqueRef:nope");
    g_autofree char *s = root_session();
    g_autofree char *e2 = call(&tcp, NULL, "VM.set_user_version", s, "OpaqueRef:x", "ten", NULL);
    assert_string_equal(e2, "FIELD_TYPE_ERROR value");
    g_autofree char *e3 = call(&tcp, NULL, "VM.get_name_label", s, "OpaqueRef:x", NULL);
    assert_string_equal(e3, "HANDLE_INVALID VM OpaqueRef:x");
    Xv *all = NULL;
    assert_null(call(&tcp, &all, "VM.get_all", s, NULL));
    assert_true(xv_len(all) >= 2); /* control domain and templates */
    xv_free(all);
}

/* A session whose subject holds only read-only may read but not write. */
static void test_rbac_read_only_subject(void **state)
{
    assert_int_equal(db_write_begin(NULL), 0);
    DbRow *subject = db_row_new(dm_class_by_name("subject"));
    Xv *roles = xv_new_array();
    xv_array_append_string(roles, "OpaqueRef:7233b8e3-eacb-d7da-2c95-f2e581cdbf4e");
    db_row_put(subject, "roles", roles);
    g_autofree char *subject_ref = g_strdup(subject->ref);
    assert_int_equal(db_insert(subject, NULL), 0);
    DbRow *session = db_row_new(dm_class_by_name("session"));
    db_row_put(session, "subject", xv_new_string(subject_ref));
    db_row_put(session, "rbac_permissions", rbac_permissions_of_roles(DM_ROLE_READ_ONLY));
    g_autofree char *s = g_strdup(session->ref);
    assert_int_equal(db_insert(session, NULL), 0);
    assert_int_equal(db_write_commit(NULL), 0);

    /* The role's uuid is the MD5 of "read-only", as XAPI's. */
    Xv *label = NULL;
    assert_null(call(&tcp, &label, "role.get_name_label", s,
                     "OpaqueRef:7233b8e3-eacb-d7da-2c95-f2e581cdbf4e", NULL));
    assert_string_equal(xv_str(label), "read-only");
    xv_free(label);
    Xv *all = NULL;
    assert_null(call(&tcp, &all, "VM.get_all", s, NULL));
    g_autofree char *vm = g_strdup(xv_str(xv_at(all, 0)));
    xv_free(all);
    g_autofree char *e = call(&tcp, NULL, "VM.set_name_label", s, vm, "x", NULL);
    assert_string_equal(e, "RBAC_PERMISSION_DENIED vm.set_name_label No permission in user "
                           "session. (Roles with this permission: pool-admin, pool-operator, "
                           "vm-power-admin, vm-admin)");
}

/* Idle sessions expire after 24 h; each group keeps its newest 400/500. */
static void test_session_gc(void **state)
{
    g_autofree char *old = root_session();
    g_autofree char *fresh = root_session();
    int64_t now = g_get_real_time() / G_USEC_PER_SEC;
    assert_int_equal(db_write_begin(NULL), 0);
    db_set_by_name(db_lookup_any(old), "last_active", xv_new_datetime(now - 25 * 3600), NULL);
    for (int i = 0; i < 450; i++) {
        DbRow *s = db_row_new(dm_class_by_name("session"));
        db_row_put(s, "is_local_superuser", xv_new_bool(true));
        db_row_put(s, "last_active", xv_new_datetime(now - 1000 + i));
        assert_int_equal(db_insert(s, NULL), 0);
    }
    assert_int_equal(db_write_commit(NULL), 0);
    guint before = db_count(dm_class_by_name("session"));
    unsigned destroyed = session_gc(now);
    db_read_begin();
    guint after = db_count(dm_class_by_name("session"));
    bool old_gone = db_lookup_any(old) == NULL;
    bool fresh_kept = db_lookup_any(fresh) != NULL;
    db_read_end();
    assert_int_equal(before - after, destroyed);
    assert_true(old_gone);
    assert_true(fresh_kept);
    /* root sessions with no originator: the newest 400 stay */
    assert_true(after <= 400 + 1 /* the read-only subject's session */);
}

/* Finished tasks expire after 65 minutes; at most 200 are kept. */
static void test_task_gc(void **state)
{
    int64_t now = g_get_real_time() / G_USEC_PER_SEC;
    const DmClass *task = dm_class_by_name("task");
    assert_int_equal(db_write_begin(NULL), 0);
    for (int i = 0; i < 260; i++) {
        DbRow *t = db_row_new(task);
        db_row_put(t, "status", xv_new_string(i < 250 ? "success" : "pending"));
        db_row_put(t, "created", xv_new_datetime(now - 100));
        /* 10 finished long ago, 240 recently */
        db_row_put(t, "finished", xv_new_datetime(i < 10 ? now - 66 * 60 : now - i));
        assert_int_equal(db_insert(t, NULL), 0);
    }
    assert_int_equal(db_write_commit(NULL), 0);
    unsigned destroyed = task_gc(now);
    db_read_begin();
    guint left = db_count(task);
    db_read_end();
    /* 10 expired + 40 beyond the 200 newest finished; the 10 pending stay */
    assert_int_equal(destroyed, 50);
    assert_int_equal(left, 210);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_and_unimplemented),
        cmocka_unit_test(test_arity_counts_exclude_session_and_defaults),
        cmocka_unit_test(test_session_and_types),
        cmocka_unit_test(test_rbac_read_only_subject),
        cmocka_unit_test(test_session_gc),
        cmocka_unit_test(test_task_gc),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
