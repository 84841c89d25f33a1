/* session.c: sessions for the local superuser, password hashes (yescrypt),
 * the per-call session check and role-based access control. */
#include "session.h"

#include <crypt.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "bootstrap.h"
#include "db.h"
#include "dm_handlers.h"
#include "event.h"
#include "login_throttle.h"
#include "pool_replica.h"
#include "pool_role.h"
#include "pool_secret.h"
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

/* Checks root's password, or answers code with its params after the
 * failing address's penalty (login_throttle.h). */
static int check_password(Call *call, const char *uname, const char *pwd, const char *code,
                          const char *const *params, guint n_params)
{
    LoginThrottle *throttle = login_throttle_default();
    const char *addr = call->peer ? call->peer : "an unknown address";
    if (!login_throttle_admit(throttle, addr)) {
        g_message("login from %s refused unchecked: %d failures from there are waiting", addr,
                  LOGIN_THROTTLE_WAITING);
        return xapi_error_setv(&call->error, code, params, n_params);
    }
    /* The hash is computed whatever the user name, so that the answer's
     * time does not tell root from another name. */
    bool matched = password_matches(pwd);
    if (matched && strcmp(uname, "root") == 0) {
        login_throttle_success(throttle, addr);
        return 0;
    }
    unsigned in_a_row;
    int64_t delay = login_throttle_failure(throttle, addr, g_get_monotonic_time() / 1000,
                                           &in_a_row);
    g_message("login failure %u in a row from %s: answering in %" G_GINT64_FORMAT " ms",
              in_a_row, addr, delay);
    g_usleep((gulong)delay * 1000);
    login_throttle_answered(throttle, addr);
    return xapi_error_setv(&call->error, code, params, n_params);
}

/* A new session of this host (the caller's reply: its ref); here_only:
 * kept on this member alone (db_write_begin_here). */
static int new_session_at(Call *call, const char *uname, const char *originator, bool pool,
                          bool here_only, Xv **result)
{
    if ((here_only ? db_write_begin_here(&call->error) : db_write_begin(&call->error)) < 0)
        return -1;
    g_autofree char *host = bootstrap_this_host();
    DbRow *row = db_row_new(session_class());
    int64_t now = g_get_real_time() / G_USEC_PER_SEC;
    db_row_put(row, "this_host", xv_new_string(host));
    db_row_put(row, "last_active", xv_new_datetime(now));
    db_row_put(row, "validation_time", xv_new_datetime(now));
    db_row_put(row, "is_local_superuser", xv_new_bool(true));
    db_row_put(row, "auth_user_name", xv_new_string(uname));
    db_row_put(row, "originator", xv_new_string(originator));
    db_row_put(row, "pool", xv_new_bool(pool));
    char *ref = db_insert_and_commit(row, &call->error);
    if (!ref)
        return -1;
    *result = xv_new_string_take(ref);
    return 0;
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

static int new_session(Call *call, const char *uname, const char *originator, bool pool,
                       Xv **result)
{
    return new_session_at(call, uname, originator, pool, false, result);
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
    if (new_session_at(call, uname, "", false, true, result) < 0)
        return -1;
    local_session_add(xv_str(*result));
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
    /* The unix socket is pre-authenticated: no password check there. */
    const char *params[] = {uname, "Authentication failure"};
    if (!call->trusted &&
        check_password(call, uname, pwd, "SESSION_AUTHENTICATION_FAILED", params, 2) < 0)
        return -1;
    /* Over TCP only root has a password; on the unix socket any name logs
     * in as the local superuser under that name, as with XAPI (plugins'
     * xapi_local() sessions). */
    if (!call->trusted && strcmp(uname, "root") != 0)
        return xapi_error_setv(&call->error, "SESSION_AUTHENTICATION_FAILED", params, 2);
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

int xapi_session_logout(Call *call)
{
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

/* Roles held by a session: those of its subject. (The local superuser
 * bypasses the check, as in XAPI: some messages, change_password among
 * them, are for the local root only and list no role at all.) */
static unsigned session_roles(const DbRow *session)
{
    const DbRow *subject = db_lookup(dm_class_by_name("subject"),
                                     xv_str(db_get(session, "subject")));
    if (!subject)
        return 0;
    unsigned mask = 0;
    const Xv *roles = db_get(subject, "roles");
    for (guint i = 0; i < xv_len(roles); i++) {
        const DbRow *role = db_lookup(dm_class_by_name("role"), xv_str(xv_at(roles, i)));
        const char *name = role ? xv_str(db_get(role, "name_label")) : "";
        for (unsigned r = 0; r < DM_N_ROLES; r++)
            if (strcmp(name, dm_role_names[r]) == 0)
                mask |= 1u << r;
    }
    return mask;
}

bool session_has_any_role(const DbRow *session, unsigned roles)
{
    return db_get(session, "is_local_superuser")->b || (session_roles(session) & roles);
}

static int permission_denied(Call *call)
{
    g_autofree char *permission = g_ascii_strdown(call->msg->wire_name, -1);
    GString *holders = g_string_new(NULL);
    for (unsigned r = 0; r < DM_N_ROLES; r++)
        if (call->msg->roles & (1u << r))
            g_string_append_printf(holders, "%s%s", holders->len ? ", " : "",
                                   dm_role_names[r]);
    g_autofree char *text = g_strdup_printf(
        "No permission in user session. (Roles with this permission: %s)", holders->str);
    g_string_free(holders, TRUE);
    return xapi_error_set(&call->error, "RBAC_PERMISSION_DENIED", permission, text, NULL);
}

int session_authorize(Call *call)
{
    db_read_begin();
    const DbRow *row = db_lookup(session_class(), call->session_ref);
    bool superuser = row && db_get(row, "is_local_superuser")->b;
    unsigned roles = row && !superuser ? session_roles(row) : 0;
    int64_t last_active = row ? db_get(row, "last_active")->i : 0;
    db_read_end();
    if (!row)
        return xapi_error_set(&call->error, "SESSION_INVALID", call->session_ref, NULL);
    if (!call->trusted && !superuser && !(roles & call->msg->roles))
        return permission_denied(call);
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
