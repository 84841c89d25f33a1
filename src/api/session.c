/* session.c: sessions for the local superuser (password hashes, yescrypt)
 * and for Linux users through PAM when external authentication is on
 * (their subjects' roles become the session's permissions, as XAPI's
 * rbac_permissions), the per-call session check and RBAC. */
#include "session.h"

#include <crypt.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "audit_log.h"
#include "bootstrap.h"
#include "db.h"
#include "dm_handlers.h"
#include "event.h"
#include "external_auth.h"
#include "local_accounts.h"
#include "login_throttle.h"
#include "pam_login.h"
#include "pool_replica.h"
#include "pool_role.h"
#include "pool_secret.h"
#include "rbac.h"
#include "task.h"

#define ROOT_HASH_KEY "root_password_hash"

static const DmClass *session_class(void) { return dm_class_by_name("session"); }

/* New hashes are yescrypt (libxcrypt's default cost; salt from the
 * kernel's CSPRNG). Hashes stored earlier (SHA-512 crypt) still verify and
 * are replaced at the next successful login. */
#define HASH_PREFIX "$y$"

static char *hash_password(const char *password)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    if (!crypt_gensalt_rn(HASH_PREFIX, 0, NULL, 0, salt, sizeof salt))
        return NULL;
    struct crypt_data data = {0};
    const char *h = crypt_r(password, salt, &data);
    return (h && h[0] != '*') ? g_strdup(h) : NULL;
}

/* Whether a and b are the same text, in a time that depends only on
 * their lengths (a hash's length says nothing of the password). */
static bool same_text(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    volatile unsigned char diff = n != m;
    for (size_t i = 0; i < n && m; i++)
        diff |= (unsigned char)a[i] ^ (unsigned char)b[i % m];
    return m && diff == 0;
}

/* Whether password is root's; rehashes an old-style hash that matched. */
static bool password_matches(const char *password)
{
    g_autofree char *stored = db_meta_get(ROOT_HASH_KEY);
    if (!stored)
        return false;
    struct crypt_data data = {0};
    const char *h = crypt_r(password, stored, &data);
    if (!h || h[0] == '*' || !same_text(h, stored))
        return false;
    if (!g_str_has_prefix(stored, HASH_PREFIX)) {
        g_autofree char *upgraded = hash_password(password);
        g_autoptr(XapiError) err = NULL;
        if (!upgraded || db_meta_set(ROOT_HASH_KEY, upgraded, &err) < 0)
            g_warning("root password hash not upgraded: %s", err ? err->code : "crypt failed");
    }
    return true;
}

/* A random password: 16 bytes of the kernel's CSPRNG, base64. */
static char *random_password(XapiError **err)
{
    guint8 bytes[16];
    if (getrandom(bytes, sizeof bytes, 0) != (ssize_t)sizeof bytes) {
        xapi_error_internal(err, "getrandom: %s", g_strerror(errno));
        return NULL;
    }
    char *password = g_base64_encode(bytes, sizeof bytes);
    explicit_bzero(bytes, sizeof bytes);
    return password;
}

static bool print_generated_password;

void session_print_generated_password(bool print)
{
    print_generated_password = print;
}

int session_init_root_password(const char *password_file, XapiError **err)
{
    g_autofree char *stored = db_meta_get(ROOT_HASH_KEY);
    if (stored)
        return 0;
    g_autofree char *password = NULL;
    g_autoptr(GError) gerr = NULL;
    if (password_file && g_file_test(password_file, G_FILE_TEST_EXISTS)) {
        if (!g_file_get_contents(password_file, &password, NULL, &gerr))
            return xapi_error_internal(err, "cannot read %s: %s", password_file,
                                       gerr->message);
        g_strchomp(password);
        if (!*password)
            return xapi_error_internal(err, "%s is empty", password_file);
    } else {
        if (!password_file)
            return xapi_error_internal(err, "no root password file");
        if (!(password = random_password(err)))
            return -1;
        g_autofree char *line = g_strconcat(password, "\n", NULL);
        if (!g_file_set_contents_full(password_file, line, -1, G_FILE_SET_CONTENTS_CONSISTENT,
                                      0600, &gerr))
            return xapi_error_internal(err, "cannot write %s: %s", password_file,
                                       gerr->message);
        /* stdout may be a shared terminal or a journal: the password goes
         * there only when asked for. */
        if (print_generated_password)
            g_print("xapid: root password generated: %s (saved in %s)\n", password,
                    password_file);
        else
            g_print("xapid: root password generated and saved in %s\n", password_file);
    }
    g_autofree char *hash = hash_password(password);
    if (!hash)
        return xapi_error_internal(err, "crypt failed");
    return db_meta_set(ROOT_HASH_KEY, hash, err);
}

/* A failed check: the address's penalty (login_throttle.h), then code. */
static int refuse_login(Call *call, LoginThrottle *throttle, const char *addr, const char *code,
                        const char *const *params, guint n_params)
{
    unsigned in_a_row;
    int64_t delay = login_throttle_failure(throttle, addr, g_get_monotonic_time() / 1000,
                                           &in_a_row);
    g_message("login failure %u in a row from %s: answering in %" G_GINT64_FORMAT " ms",
              in_a_row, addr, delay);
    g_usleep((gulong)delay * 1000);
    login_throttle_answered(throttle, addr);
    return xapi_error_setv(&call->error, code, params, n_params);
}

static const char *call_address(const Call *call)
{
    return call->peer ? call->peer : "an unknown address";
}

/* Whether the address may try now; else code with its params at once. */
static bool admitted(Call *call, LoginThrottle *throttle, const char *code,
                     const char *const *params, guint n_params)
{
    const char *addr = call_address(call);
    if (login_throttle_admit(throttle, addr))
        return true;
    g_message("login from %s refused unchecked: %d failures from there are waiting", addr,
              LOGIN_THROTTLE_WAITING);
    xapi_error_setv(&call->error, code, params, n_params);
    return false;
}

/* Checks root's password, or answers code with its params after the
 * failing address's penalty (login_throttle.h). */
static int check_password(Call *call, const char *uname, const char *pwd, const char *code,
                          const char *const *params, guint n_params)
{
    LoginThrottle *throttle = login_throttle_default();
    const char *addr = call_address(call);
    if (!admitted(call, throttle, code, params, n_params))
        return -1;
    /* The hash is computed whatever the user name, so that the answer's
     * time does not tell root from another name. */
    bool matched = password_matches(pwd);
    if (matched && strcmp(uname, "root") == 0) {
        login_throttle_success(throttle, addr);
        return 0;
    }
    return refuse_login(call, throttle, addr, code, params, n_params);
}

/* Who a new session is for. */
typedef struct {
    const char *uname;
    const char *originator;
    bool pool;
    bool superuser;
    const char *subject;   /* NULL: none */
    const char *sid;       /* auth_user_sid */
    unsigned roles;        /* its permissions, for a subject's session */
    bool here_only;        /* kept on this member alone (db_write_begin_here) */
} SessionFor;

/* A new session of this host (the caller's reply: its ref). */
static int new_session_for(Call *call, const SessionFor *who, Xv **result)
{
    if ((who->here_only ? db_write_begin_here(&call->error) : db_write_begin(&call->error)) < 0)
        return -1;
    g_autofree char *host = bootstrap_this_host();
    DbRow *row = db_row_new(session_class());
    int64_t now = g_get_real_time() / G_USEC_PER_SEC;
    db_row_put(row, "this_host", xv_new_string(host));
    db_row_put(row, "last_active", xv_new_datetime(now));
    db_row_put(row, "validation_time", xv_new_datetime(now));
    db_row_put(row, "is_local_superuser", xv_new_bool(who->superuser));
    db_row_put(row, "auth_user_name", xv_new_string(who->uname));
    db_row_put(row, "originator", xv_new_string(who->originator));
    db_row_put(row, "pool", xv_new_bool(who->pool));
    if (who->subject) {
        db_row_put(row, "subject", xv_new_string(who->subject));
        db_row_put(row, "auth_user_sid", xv_new_string(who->sid));
        db_row_put(row, "rbac_permissions", rbac_permissions_of_roles(who->roles));
    }
    char *ref = db_insert_and_commit(row, &call->error);
    if (!ref)
        return -1;
    *result = xv_new_string_take(ref);
    return 0;
}

static int new_session(Call *call, const char *uname, const char *originator, bool pool,
                       Xv **result)
{
    SessionFor who = {.uname = uname, .originator = originator, .pool = pool,
                      .superuser = true};
    return new_session_for(call, &who, result);
}

/* The member's local sessions (made here_only): their logout too is
 * this host's alone. */
static struct {
    GMutex lock;
    GHashTable *refs;
} local_sessions;

static void local_session_add(const char *ref)
{
    g_mutex_lock(&local_sessions.lock);
    if (!local_sessions.refs)
        local_sessions.refs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_hash_table_add(local_sessions.refs, g_strdup(ref));
    g_mutex_unlock(&local_sessions.lock);
}

/* Whether ref is a local session (and forgets it when gone says so). */
static bool local_session(const char *ref, bool gone)
{
    g_mutex_lock(&local_sessions.lock);
    bool local = local_sessions.refs && g_hash_table_contains(local_sessions.refs, ref);
    if (local && gone)
        g_hash_table_remove(local_sessions.refs, ref);
    g_mutex_unlock(&local_sessions.lock);
    return local;
}

static int write_begin_for(const char *session_ref, XapiError **err)
{
    return local_session(session_ref, false) ? db_write_begin_here(err) : db_write_begin(err);
}

/* A member's local login: the pool's session while its master answers,
 * else one of this host's own (XAPI's emergency mode: a slave's local
 * sessions are never the master's), valid here until the member next
 * resyncs with a master; with it the replica reads, the emergency calls
 * run, writes fail with CANNOT_CONTACT_HOST. */
static int new_local_session(Call *call, const char *uname, Xv **result)
{
    if (!pool_is_member())
        return new_session(call, uname, "", false, result);
    if (pool_replica_connected()) {
        if (new_session(call, uname, "", false, result) == 0)
            return 0;
        if (strcmp(call->error->code, "CANNOT_CONTACT_HOST") != 0)
            return -1;
        xapi_error_free(g_steal_pointer(&call->error));
    }
    g_message("session: the master cannot be reached: a local session of this host for %s",
              uname);
    SessionFor who = {.uname = uname, .originator = "", .superuser = true, .here_only = true};
    if (new_session_for(call, &who, result) < 0)
        return -1;
    local_session_add(xv_str(*result));
    return 0;
}

/* The subjects among the user's identifier and its groups': their roles,
 * and the one the session is of (the user's own, else a group's). */
typedef struct {
    const char *sid;
    const Xv *groups;
    char *subject;
    bool own;
    unsigned roles;
    unsigned matched;
} SubjectMatch;

static unsigned roles_of_subject(const DbRow *subject)
{
    unsigned mask = 0;
    const Xv *roles = db_get(subject, "roles");
    for (guint i = 0; i < xv_len(roles); i++) {
        const DbRow *role = db_lookup(dm_class_by_name("role"), xv_str(xv_at(roles, i)));
        if (role)
            mask |= rbac_role_of_name(xv_str(db_get(role, "name_label")));
    }
    return mask;
}

static bool match_subject(DbRow *subject, void *ctx)
{
    SubjectMatch *m = ctx;
    const char *id = xv_str(db_get(subject, "subject_identifier"));
    bool own = strcmp(id, m->sid) == 0;
    bool group = false;
    for (guint i = 0; !own && i < xv_len(m->groups); i++)
        group = group || strcmp(id, xv_str(xv_at(m->groups, i))) == 0;
    if (!own && !group)
        return true;
    m->matched++;
    m->roles |= roles_of_subject(subject);
    if (!m->subject || (own && !m->own)) {
        g_free(m->subject);
        m->subject = g_strdup(subject->ref);
        m->own = own;
    }
    return true;
}

/* A Linux user's login through PAM (XAPI's external authentication):
 * the user, or a group of the user, must be a subject with a role. */
static int external_login(Call *call, const char *uname, const char *pwd,
                          const char *originator, Xv **result)
{
    LoginThrottle *throttle = login_throttle_default();
    const char *addr = call_address(call);
    const char *params[] = {uname, "Authentication failure"};
    if (!admitted(call, throttle, "SESSION_AUTHENTICATION_FAILED", params, 2))
        return -1;
    g_autofree char *why = NULL;
    if (!pam_login_check(uname, pwd, &why)) {
        params[1] = why ? why : "Authentication failure";
        return refuse_login(call, throttle, addr, "SESSION_AUTHENTICATION_FAILED", params, 2);
    }
    g_autofree char *sid = local_accounts_identifier(uname);
    g_autoptr(Xv) groups = sid ? local_accounts_group_membership(sid) : NULL;
    if (!sid || !groups) {
        g_autofree char *msg = g_strdup_printf(
            "Could not find either the user id or the group id for '%s'", uname);
        params[1] = msg;
        return refuse_login(call, throttle, addr, "SESSION_AUTHENTICATION_FAILED", params, 2);
    }
    SubjectMatch m = {.sid = sid, .groups = groups};
    db_read_begin();
    db_foreach(dm_class_by_name("subject"), match_subject, &m);
    db_read_end();
    g_autofree char *subject = m.subject;
    if (!m.matched) {
        g_autofree char *msg = g_strdup_printf(
            "Subject %s (identifier %s, from %s) has no access rights in this pool", uname, sid,
            addr);
        params[1] = msg;
        return refuse_login(call, throttle, addr, "SESSION_AUTHORIZATION_FAILED", params, 2);
    }
    if (!m.roles) {
        g_autofree char *msg = g_strdup_printf(
            "Subject %s (identifier %s, from %s) has no roles in this pool", uname, sid, addr);
        const char *denied[] = {"session.login_with_password", msg};
        return refuse_login(call, throttle, addr, "RBAC_PERMISSION_DENIED", denied, 2);
    }
    login_throttle_success(throttle, addr);
    SessionFor who = {.uname = uname, .originator = originator, .subject = subject,
                      .sid = sid, .roles = m.roles};
    if (new_session_for(call, &who, result) < 0)
        return -1;
    g_autofree char *args =
        audit_log_named_args("uname", uname, "originator", originator, NULL);
    audit_log_line(xv_str(*result), call->peer, "session.create", true, NULL, args);
    return 0;
}

int xapi_session_login_with_password(Call *call, const char *uname, const char *pwd,
                                     const char *version, const char *originator,
                                     Xv **result)
{
    /* A pool member's clients log in at the master (they reconnect to the
     * address this names); its unix socket's callers log in here. */
    if (pool_is_member() && !call->trusted)
        return xapi_error_set(&call->error, "HOST_IS_SLAVE", pool_master_address(), NULL);
    /* On the unix socket any name logs in as the local superuser under that
     * name, unchecked, as with XAPI (plugins' xapi_local() sessions). */
    if (call->trusted)
        return new_session(call, uname, originator, false, result);
    /* root logs in with its own password even when external authentication
     * is on (XAPI: the local superuser always may); others through PAM. */
    g_autofree char *auth_type = external_auth_type();
    if (strcmp(uname, "root") != 0 && strcmp(auth_type, "PAM") == 0)
        return external_login(call, uname, pwd, originator, result);
    const char *params[] = {uname, "Authentication failure"};
    if (check_password(call, uname, pwd, "SESSION_AUTHENTICATION_FAILED", params, 2) < 0)
        return -1;
    return new_session(call, uname, originator, false, result);
}

/* This host's own root password, on a member too (XAPI's login for when
 * the master cannot be reached; while it can, the session is the pool's). */
int xapi_session_slave_local_login_with_password(Call *call, const char *uname, const char *pwd,
                                                 Xv **result)
{
    const char *params[] = {uname, "Authentication failure"};
    if (!call->trusted &&
        (check_password(call, uname, pwd, "SESSION_AUTHENTICATION_FAILED", params, 2) < 0 ||
         strcmp(uname, "root") != 0))
        return call->error ? -1
                           : xapi_error_setv(&call->error, "SESSION_AUTHENTICATION_FAILED",
                                             params, 2);
    return new_local_session(call, uname, result);
}

/* Host-to-host calls of a pool: the pool secret is the credential. */
int xapi_session_slave_login(Call *call, const char *host, const char *psecret, Xv **result)
{
    g_autoptr(XapiError) why = NULL;
    g_autofree char *secret = pool_secret_get(pool_state_dir(), &why);
    if (!secret || !pool_secret_equal(psecret, secret)) {
        g_message("pool: a slave_login from %s with a wrong pool secret",
                  call->peer ? call->peer : "an unknown address");
        return xapi_error_set(&call->error, "SESSION_AUTHENTICATION_FAILED", host,
                              "Pool secret mismatch", NULL);
    }
    return new_session(call, "", "", true, result);
}

char *session_create_child(const char *parent_ref, const char *originator, XapiError **err)
{
    if (db_write_begin(err) < 0)
        return NULL;
    const DbRow *parent = db_lookup(session_class(), parent_ref);
    if (!parent) {
        db_write_abort();
        xapi_error_set(err, "SESSION_INVALID", parent_ref, NULL);
        return NULL;
    }
    DbRow *row = db_row_new(session_class());
    int64_t now = g_get_real_time() / G_USEC_PER_SEC;
    static const char *const inherited[] = {"this_host", "is_local_superuser", "subject",
                                            "auth_user_sid", "auth_user_name",
                                            "rbac_permissions"};
    for (unsigned i = 0; i < G_N_ELEMENTS(inherited); i++)
        db_row_put(row, inherited[i], xv_dup(db_get(parent, inherited[i])));
    db_row_put(row, "parent", xv_new_string(parent_ref));
    db_row_put(row, "last_active", xv_new_datetime(now));
    db_row_put(row, "validation_time", xv_new_datetime(now));
    db_row_put(row, "originator", xv_new_string(originator));
    return db_insert_and_commit(row, err);
}

void session_destroy(const char *ref)
{
    if (write_begin_for(ref, NULL) < 0)
        return;
    DbRow *row = db_lookup(session_class(), ref);
    if (row) {
        task_destroy_for_session(row);
        event_forget_session(ref);
        if (db_delete(row, NULL) < 0) {
            db_write_abort();
            return;
        }
    }
    if (db_write_commit(NULL) == 0)
        local_session(ref, true);
}

/* XAPI audits the end of a subject's session as session.destroy. */
static void audit_logout(const Call *call)
{
    db_read_begin();
    const DbRow *row = db_lookup(session_class(), call->session_ref);
    bool subject = row && !db_get(row, "is_local_superuser")->b && !db_get(row, "pool")->b;
    g_autofree char *args =
        subject ? audit_log_named_args("originator", xv_str(db_get(row, "originator")), NULL)
                : NULL;
    db_read_end();
    if (subject)
        audit_log_line(call->session_ref, call->peer, "session.destroy", true, NULL, args);
}

int xapi_session_logout(Call *call)
{
    audit_logout(call);
    if (write_begin_for(call->session_ref, &call->error) < 0)
        return -1;
    DbRow *row = db_lookup(session_class(), call->session_ref);
    if (row)
        task_destroy_for_session(row);
    event_forget_session(call->session_ref);
    if (row && db_delete(row, &call->error) < 0) {
        db_write_abort();
        return -1;
    }
    if (db_write_commit(&call->error) < 0)
        return -1;
    local_session(call->session_ref, true);
    return 0;
}

int xapi_session_change_password(Call *call, const char *old_pwd, const char *new_pwd)
{
    if (pool_is_member()) /* the pool's password is the master's */
        return xapi_error_set(&call->error, "HOST_IS_SLAVE", pool_master_address(), NULL);
    const char *params[] = {"Authentication failure"};
    if (check_password(call, "root", old_pwd, "CHANGE_PASSWORD_REJECTED", params, 1) < 0)
        return -1;
    g_autofree char *hash = hash_password(new_pwd);
    if (!hash)
        return xapi_error_internal(&call->error, "crypt failed");
    return db_meta_set(ROOT_HASH_KEY, hash, &call->error);
}

/* The roles of a session: those named in its rbac_permissions, fixed at
 * login as in XAPI (a change of a subject's roles counts from its next
 * login). The local superuser bypasses the check, as in XAPI: some
 * messages, change_password among them, are for the local root only and
 * list no role at all. */
bool session_has_any_role(const DbRow *session, unsigned roles)
{
    return db_get(session, "is_local_superuser")->b ||
           (rbac_roles_of_permissions(db_get(session, "rbac_permissions")) & roles);
}

/* The call's permission (its message's, or a protected map key's) must
 * be among the session's; a set_ of a map with protected keys needs the
 * key permissions of what it changes (XAPI's set_map_with_rbac). */
static int check_permission(Call *call, unsigned roles)
{
    unsigned needed = 0;
    g_autofree char *permission = rbac_call_permission(call, &needed);
    if (!(roles & needed))
        return rbac_deny(&call->error, permission, needed);
    if (!call->args || !rbac_is_keyed_map_set(call->msg) || !call->msg->field)
        return 0;
    db_read_begin();
    const DbRow *obj = db_lookup(call->msg->cls, xv_str(call_arg(call, 0)));
    const Xv *old = obj ? db_get(obj, call->msg->field->name) : NULL;
    g_autofree char *missing =
        rbac_map_set_missing(call->msg, old, call_arg(call, 1), roles, &needed);
    db_read_end();
    return missing ? rbac_deny(&call->error, missing, needed) : 0;
}

int session_authorize(Call *call)
{
    db_read_begin();
    const DbRow *row = db_lookup(session_class(), call->session_ref);
    bool superuser = row && db_get(row, "is_local_superuser")->b;
    unsigned roles =
        row && !superuser ? rbac_roles_of_permissions(db_get(row, "rbac_permissions")) : 0;
    int64_t last_active = row ? db_get(row, "last_active")->i : 0;
    db_read_end();
    if (!row)
        return xapi_error_set(&call->error, "SESSION_INVALID", call->session_ref, NULL);
    if (!call->trusted && !superuser && check_permission(call, roles) < 0)
        return -1;
    /* XAPI refreshes last_active at most every 600 s; so do we, to keep
     * reads from writing. */
    int64_t now = g_get_real_time() / G_USEC_PER_SEC;
    if (now - last_active > 600 && db_write_begin(NULL) == 0) {
        DbRow *live = db_lookup(session_class(), call->session_ref);
        if (live)
            db_set_by_name(live, "last_active", xv_new_datetime(now), NULL);
        db_write_commit(NULL);
    }
    return 0;
}

/* The subject identifier of a session's subject, "" if none (removed). */
static const char *subject_sid(const DbRow *session)
{
    const DbRow *subject =
        db_lookup(dm_class_by_name("subject"), xv_str(db_get(session, "subject")));
    return subject ? xv_str(db_get(subject, "subject_identifier")) : "";
}

static bool collect_sids(DbRow *row, void *ctx)
{
    GHashTable *sids = ctx;
    if (db_get(row, "is_local_superuser")->b)
        return true;
    const char *ids[] = {xv_str(db_get(row, "auth_user_sid")), subject_sid(row)};
    for (unsigned i = 0; i < G_N_ELEMENTS(ids); i++)
        if (*ids[i])
            g_hash_table_add(sids, g_strdup(ids[i]));
    return true;
}

int xapi_session_get_all_subject_identifiers(Call *call, Xv **result)
{
    g_autoptr(GHashTable) sids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    db_read_begin();
    db_foreach(session_class(), collect_sids, sids);
    db_read_end();
    g_autofree gpointer *keys = g_hash_table_get_keys_as_array(sids, NULL);
    Xv *out = xv_new_array();
    for (gpointer *k = keys; *k; k++)
        xv_array_append_string(out, *k);
    *result = out;
    return 0;
}

typedef struct {
    const char *sid;
    const char *current;
    GPtrArray *doomed;
} LogoutScan;

static bool find_subject_sessions(DbRow *row, void *ctx)
{
    LogoutScan *scan = ctx;
    if (db_get(row, "is_local_superuser")->b || strcmp(row->ref, scan->current) == 0)
        return true;
    if (strcmp(xv_str(db_get(row, "auth_user_sid")), scan->sid) == 0 ||
        strcmp(subject_sid(row), scan->sid) == 0)
        g_ptr_array_add(scan->doomed, row);
    return true;
}

/* XAPI's: every session of the identifier (as the user's, or as the group
 * subject it logged in through) but the caller's and the local superuser's. */
int xapi_session_logout_subject_identifier(Call *call, const char *subject_identifier)
{
    if (db_write_begin(&call->error) < 0)
        return -1;
    LogoutScan scan = {subject_identifier, call->session_ref ? call->session_ref : "",
                       g_ptr_array_new()};
    db_foreach(session_class(), find_subject_sessions, &scan);
    for (guint i = 0; i < scan.doomed->len; i++) {
        DbRow *row = scan.doomed->pdata[i];
        task_destroy_for_session(row);
        event_forget_session(row->ref);
        if (db_delete(row, &call->error) < 0) {
            g_ptr_array_unref(scan.doomed);
            db_write_abort();
            return -1;
        }
    }
    g_ptr_array_unref(scan.doomed);
    return db_write_commit(&call->error);
}

static bool collect_external(DbRow *row, void *ctx)
{
    if (!db_get(row, "is_local_superuser")->b)
        g_ptr_array_add(ctx, row);
    return true;
}

unsigned session_logout_external(void)
{
    if (db_write_begin(NULL) < 0)
        return 0;
    g_autoptr(GPtrArray) doomed = g_ptr_array_new();
    db_foreach(session_class(), collect_external, doomed);
    for (guint i = 0; i < doomed->len; i++) {
        DbRow *row = doomed->pdata[i];
        task_destroy_for_session(row);
        event_forget_session(row->ref);
        db_delete(row, NULL);
    }
    db_write_commit(NULL);
    return doomed->len;
}

#define SESSION_IDLE_LIMIT (24 * 3600)
#define SESSION_GROUP_LIMIT_POOL 400
#define SESSION_GROUP_LIMIT_ROOT_NO_ORIGINATOR 400
#define SESSION_GROUP_LIMIT_OTHER 500

typedef struct {
    GHashTable *groups;  /* group name -> GPtrArray of DbRow* */
    GPtrArray *expired;  /* DbRow* */
    int64_t now;
} GcScan;

static bool owns_pending_task(const DbRow *session)
{
    const DmClass *task = dm_class_by_name("task");
    const Xv *tasks = db_get(session, "tasks");
    for (guint i = 0; i < xv_len(tasks); i++) {
        const DbRow *t = db_lookup(task, xv_str(xv_at(tasks, i)));
        if (t && strcmp(xv_str(db_get(t, "status")), "pending") == 0)
            return true;
    }
    return false;
}

static bool gc_scan_session(DbRow *row, void *ctx)
{
    GcScan *scan = ctx;
    if (owns_pending_task(row))
        return true;
    if (scan->now - db_get(row, "last_active")->i > SESSION_IDLE_LIMIT) {
        g_ptr_array_add(scan->expired, row);
        return true;
    }
    const char *user = xv_str(db_get(row, "auth_user_name"));
    const char *originator = xv_str(db_get(row, "originator"));
    g_autofree char *group =
        db_get(row, "pool")->b ? g_strdup("pool")
        : db_get(row, "is_local_superuser")->b
            ? (*originator ? g_strconcat("root/", originator, NULL) : g_strdup("root"))
            : g_strconcat("user/", user, NULL);
    GPtrArray *members = g_hash_table_lookup(scan->groups, group);
    if (!members) {
        members = g_ptr_array_new();
        g_hash_table_insert(scan->groups, g_steal_pointer(&group), members);
    }
    g_ptr_array_add(members, row);
    return true;
}

static gint by_last_active(gconstpointer a, gconstpointer b)
{
    int64_t x = db_get(*(DbRow *const *)a, "last_active")->i;
    int64_t y = db_get(*(DbRow *const *)b, "last_active")->i;
    return x < y ? -1 : x > y;
}

static guint group_limit(const char *group)
{
    if (strcmp(group, "pool") == 0)
        return SESSION_GROUP_LIMIT_POOL;
    if (strcmp(group, "root") == 0)
        return SESSION_GROUP_LIMIT_ROOT_NO_ORIGINATOR;
    return SESSION_GROUP_LIMIT_OTHER;
}

unsigned session_gc(int64_t now)
{
    if (db_write_begin(NULL) < 0)
        return 0;
    GcScan scan = {g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify)g_ptr_array_unref),
                   g_ptr_array_new(), now};
    db_foreach(session_class(), gc_scan_session, &scan);
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, scan.groups);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        GPtrArray *members = value;
        guint limit = group_limit(key);
        if (members->len <= limit)
            continue;
        g_ptr_array_sort(members, by_last_active);
        for (guint i = 0; i < members->len - limit; i++)
            g_ptr_array_add(scan.expired, members->pdata[i]);
    }
    unsigned destroyed = scan.expired->len;
    for (guint i = 0; i < scan.expired->len; i++) {
        task_destroy_for_session(scan.expired->pdata[i]);
        event_forget_session(((DbRow *)scan.expired->pdata[i])->ref);
        db_delete(scan.expired->pdata[i], NULL);
    }
    g_hash_table_destroy(scan.groups);
    g_ptr_array_unref(scan.expired);
    db_write_commit(NULL);
    return destroyed;
}
