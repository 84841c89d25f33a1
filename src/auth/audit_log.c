/* audit_log.c: the audit lines, in XAPI's form: the debug-log prefix
 * "[<time>|audit|<host>|<peer>|<action>|audit] " and an s-expression
 * ('trackid=<md5 of the session>' '<subject id>' '<user>' 'ALLOWED'|'DENIED'
 * 'OK'|'ERROR:<code>' 'API'|'HTTP' '<action>' ((<arg>)...)). */
#include "audit_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "pool_role.h"

static GMutex lock;
static int log_fd = -1;
static char *log_path;

const char *audit_log_path(void)
{
    g_mutex_lock(&lock);
    if (!log_path && pool_state_dir())
        log_path = g_build_filename(pool_state_dir(), "audit.log", NULL);
    g_mutex_unlock(&lock);
    return log_path;
}

bool audit_log_wanted(const char *action)
{
    static const char *const quiet[] = {
        "session.local_logout", "session.logout", "event.next", "event.from",
        "http/get_rrd_updates", "http/rrd_updates", "http/post_remote_db_access",
        "host.tickle_heartbeat"};
    if (strstr(action, ".get"))
        return false;
    for (unsigned i = 0; i < G_N_ELEMENTS(quiet); i++)
        if (g_ascii_strcasecmp(action, quiet[i]) == 0)
            return false;
    return true;
}

/* An s-expression string: quoted, with \ and ' escaped; no line breaks. */
static void sexpr_string(GString *out, const char *s)
{
    g_string_append_c(out, '\'');
    for (; s && *s; s++) {
        if (*s == '\\' || *s == '\'')
            g_string_append_c(out, '\\');
        g_string_append_c(out, *s == '\n' || *s == '\r' ? ' ' : *s);
    }
    g_string_append_c(out, '\'');
}

static void sexpr_arg(GString *out, const char *name, const char *label, const char *uuid,
                      const char *ref)
{
    if (out->len > 1)
        g_string_append_c(out, ' ');
    g_string_append_c(out, '(');
    sexpr_string(out, name);
    g_string_append_c(out, ' ');
    sexpr_string(out, label);
    g_string_append_c(out, ' ');
    sexpr_string(out, uuid);
    g_string_append_c(out, ' ');
    sexpr_string(out, ref);
    g_string_append_c(out, ')');
}

char *audit_log_named_args(const char *name, ...)
{
    GString *out = g_string_new("(");
    va_list ap;
    va_start(ap, name);
    for (const char *n = name; n; n = va_arg(ap, const char *)) {
        const char *value = va_arg(ap, const char *);
        sexpr_arg(out, n, value ? value : "", "", "");
    }
    va_end(ap);
    g_string_append_c(out, ')');
    return g_string_free(out, FALSE);
}

/* XAPI's action_params_whitelist: parameters printed whatever they are. */
static bool selected(const char *action, const char *param)
{
    static const char *const pairs[][2] = {
        {"host.create", "hostname"}, {"host.create", "address"},
        {"host.create", "external_auth_type"}, {"host.create", "external_auth_service_name"},
        {"host.create", "edition"}, {"VM.create", "is_a_template"},
        {"VM.create", "memory_target"}, {"VM.create", "memory_static_max"},
        {"VM.create", "memory_dynamic_max"}, {"VM.create", "memory_dynamic_min"},
        {"VM.create", "memory_static_min"}, {"VM.create", "ha_always_run"},
        {"VM.create", "ha_restart_priority"}, {"host.set_address", "value"},
        {"VM.migrate", "dest"}, {"VM.migrate", "live"}, {"VM.start_on", "start_paused"},
        {"VM.start_on", "force"}, {"VM.start", "start_paused"}, {"VM.start", "force"},
        {"pool.create_VLAN", "device"}, {"pool.create_VLAN", "vLAN"},
        {"pool.join_force", "master_address"}, {"pool.join", "master_address"},
        {"pool.enable_external_auth", "service_name"},
        {"pool.enable_external_auth", "auth_type"},
        {"host.enable_external_auth", "service_name"},
        {"host.enable_external_auth", "auth_type"},
        {"subject.create", "subject_identifier"}, {"subject.create", "other_config"},
        {"subject.create.other_config", "subject-name"}, {"message.create", "name"},
        {"message.create", "body"}};
    static const char *const descriptive[] = {"name", "label", "description", "name_label",
                                              "name_description", "new_name"};
    for (unsigned i = 0; i < G_N_ELEMENTS(descriptive); i++)
        if (strcmp(param, descriptive[i]) == 0)
            return true;
    for (unsigned i = 0; i < G_N_ELEMENTS(pairs); i++)
        if (strcmp(action, pairs[i][0]) == 0 && strcmp(param, pairs[i][1]) == 0)
            return true;
    return false;
}

/* The name an object goes by in the log: its name_label, a subject's
 * subject-name; read lock held. */
static const char *object_name(const DbRow *row)
{
    const Xv *label = db_get(row, "name_label");
    if (label)
        return xv_str(label);
    const Xv *other = db_get(row, "other_config");
    const Xv *name = other ? xv_struct_get(other, "subject-name") : NULL;
    return name ? xv_str(name) : "";
}

static void args_of(GString *out, const char *action, const char *name, const Xv *value);

static void struct_args(GString *out, const char *action, const Xv *value)
{
    for (guint i = 0; i < xv_len(value); i++) {
        const XvMember *m = xv_member_at(value, i);
        args_of(out, action, m->key, &m->value);
    }
}

static void args_of(GString *out, const char *action, const char *name, const Xv *value)
{
    if (selected(action, name)) {
        if (value->kind == XV_STRUCT) {
            g_autofree char *inner_action = g_strconcat(action, ".", name, NULL);
            GString *inner = g_string_new("(");
            struct_args(inner, inner_action, value);
            g_string_append_c(inner, ')');
            if (out->len > 1)
                g_string_append_c(out, ' ');
            g_string_append_c(out, '(');
            sexpr_string(out, name);
            g_string_append_printf(out, " %s '' '')", inner->str);
            g_string_free(inner, TRUE);
            return;
        }
        g_autofree char *text = value->kind == XV_STRING ? g_strdup(xv_str(value))
                                                          : xv_to_debug_string(value);
        sexpr_arg(out, name, text, "", "");
        return;
    }
    if (value->kind != XV_STRING)
        return;
    const char *s = xv_str(value);
    if (!g_str_has_prefix(s, "OpaqueRef:") || strcmp(s, "OpaqueRef:NULL") == 0)
        return;
    const DbRow *row = db_lookup_any(s);
    const Xv *uuid = row ? db_get(row, "uuid") : NULL;
    sexpr_arg(out, name, row ? object_name(row) : "", uuid ? xv_str(uuid) : "", s);
}

char *audit_log_args(const Call *call)
{
    const DmMessage *msg = call->msg;
    GString *out = g_string_new("(");
    db_read_begin();
    for (unsigned i = 0; call->args && i < msg->n_params && i < xv_len(call->args); i++) {
        const Xv *v = call_arg(call, i);
        if (msg->params[i].type->kind == DM_RECORD)
            struct_args(out, msg->wire_name, v);
        else
            args_of(out, msg->wire_name, msg->params[i].name, v);
    }
    db_read_end();
    g_string_append_c(out, ')');
    return g_string_free(out, FALSE);
}

/* Who: trackid, subject identifier, user name (XAPI's LOCAL_SUPERUSER for
 * root's sessions). */
static void who(GString *out, const char *session)
{
    g_autofree char *md5 =
        g_compute_checksum_for_string(G_CHECKSUM_MD5, session ? session : "", -1);
    g_autofree char *trackid = g_strconcat("trackid=", md5, NULL);
    g_autofree char *sid = NULL, *user = NULL;
    db_read_begin();
    const DbRow *row = session ? db_lookup(dm_class_by_name("session"), session) : NULL;
    if (row) {
        sid = g_strdup(db_get(row, "is_local_superuser")->b
                           ? "LOCAL_SUPERUSER"
                           : xv_str(db_get(row, "auth_user_sid")));
        user = g_strdup(xv_str(db_get(row, "auth_user_name")));
    }
    db_read_end();
    sexpr_string(out, trackid);
    g_string_append_c(out, ' ');
    sexpr_string(out, sid ? sid : (session ? "" : "LOCAL_SUPERUSER"));
    g_string_append_c(out, ' ');
    sexpr_string(out, user ? user : "");
}

static void append_line(const char *line, size_t len)
{
    const char *path = audit_log_path();
    if (!path)
        return;
    g_mutex_lock(&lock);
    if (log_fd < 0)
        log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (log_fd < 0 || write(log_fd, line, len) != (ssize_t)len)
        g_warning("audit log %s: %s", path, g_strerror(errno));
    g_mutex_unlock(&lock);
}

void audit_log_line(const char *session, const char *peer, const char *action, bool allowed,
                    const char *error_code, const char *args)
{
    GDateTime *now = g_date_time_new_now_utc();
    g_autofree char *stamp = g_date_time_format(now, "%Y%m%dT%H:%M:%S");
    int ms = g_date_time_get_microsecond(now) / 1000;
    g_date_time_unref(now);
    GString *line = g_string_new(NULL);
    g_string_append_printf(line, "[%s.%03dZ|audit|%s|%s|%s|audit] (", stamp, ms,
                           g_get_host_name(), peer ? peer : "unix", action);
    who(line, session);
    g_string_append_printf(line, " '%s' ", allowed ? "ALLOWED" : "DENIED");
    if (!allowed)
        g_string_append(line, "''");
    else if (error_code) {
        g_autofree char *result = g_strconcat("ERROR:", error_code, NULL);
        sexpr_string(line, result);
    } else
        g_string_append(line, "'OK'");
    g_string_append_printf(line, " '%s' ", g_str_has_prefix(action, "http/") ? "HTTP" : "API");
    sexpr_string(line, action);
    g_string_append_printf(line, " %s)\n", args ? args : "()");
    append_line(line->str, line->len);
    g_string_free(line, TRUE);
}

void audit_log_call(const Call *call, const char *args, bool allowed, const XapiError *error)
{
    if (audit_log_wanted(call->msg->wire_name))
        audit_log_line(call->session_ref, call->peer, call->msg->wire_name, allowed,
                       error ? error->code : NULL, args);
}

/* XAPI's log_timestamp_of_iso8601: "-" and "Z" dropped; a space for T. */
static char *since_stamp(const char *since)
{
    GString *s = g_string_new(NULL);
    for (; since && *since; since++)
        if (*since != '-' && *since != 'Z')
            g_string_append_c(s, *since == ' ' ? 'T' : *since);
    return g_string_free(s, FALSE);
}

GString *audit_log_read(const char *since)
{
    GString *out = g_string_new(NULL);
    const char *path = audit_log_path();
    g_autofree char *text = NULL;
    if (!path || !g_file_get_contents(path, &text, NULL, NULL))
        return out;
    g_autofree char *from = since_stamp(since);
    size_t n = strlen(from);
    for (char *line = text; *line;) {
        char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) + 1 : strlen(line);
        /* the timestamp follows the '[' */
        if (!n || (len > n + 1 && strncmp(line + 1, from, n) >= 0))
            g_string_append_len(out, line, (gssize)len);
        line += len;
    }
    return out;
}
