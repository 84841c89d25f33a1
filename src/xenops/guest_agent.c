/* guest_agent.c: VM_guest_metrics from the QEMU guest agent.
 *
 * QEMU serves the domain's virtio-serial port org.qemu.guest_agent.0 on a
 * unix socket in the domain's directory; a poller connects to it every
 * few seconds, resynchronises (guest-sync-delimited: the agent may hold a
 * half-read command from an earlier client), asks guest-info,
 * guest-get-osinfo and guest-network-get-interfaces, and writes what
 * changed into the VM's VM_guest_metrics in XAPI's shapes (os_version,
 * PV_drivers_version, networks "N/ip", "N/ipv4/K", "N/ipv6/K" with N the
 * VIF's device, matched by MAC). A guest without an agent leaves its
 * metrics as they are. */
#include "guest_agent.h"

#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bootstrap.h"
#include "db.h"
#include "dm_handlers.h"
#include "operations.h"
#include "vm_operations.h"
#include "xenops.h"

#define POLL_PERIOD_S 3
#define ANSWER_TIMEOUT_MS 1000
/* How long a guest-shutdown may take to fail (qemu-ga waits for the
 * guest's shutdown command to end before it reports an error). */
#define SHUTDOWN_REFUSAL_MS 2000

void guest_agent_report_clear(GuestAgentReport *r)
{
    g_clear_pointer(&r->os_version, xv_free);
    g_clear_pointer(&r->pv_drivers_version, xv_free);
    g_clear_pointer(&r->interfaces, xv_free);
}

/* ---- the protocol ---------------------------------------------------------- */

typedef struct {
    int fd;
    GString *in;    /* bytes read, not yet parsed */
    int timeout_ms; /* for each answer */
} Agent;

static int agent_send(Agent *a, const char *text, XapiError **err)
{
    size_t len = strlen(text);
    for (size_t done = 0; done < len;) {
        ssize_t n = send(a->fd, text + done, len - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return xapi_error_internal(err, "guest agent: %s", g_strerror(errno));
        done += (size_t)n;
    }
    return 0;
}

/* The next line (without its newline), or NULL with *closed false when
 * none came within timeout_ms, true when the connection closed. */
static char *agent_next_line(Agent *a, int timeout_ms, bool *closed)
{
    int64_t deadline = g_get_monotonic_time() + (int64_t)timeout_ms * 1000;
    *closed = false;
    for (;;) {
        char *nl = memchr(a->in->str, '\n', a->in->len);
        if (nl) {
            char *line = g_strndup(a->in->str, (gsize)(nl - a->in->str));
            g_string_erase(a->in, 0, nl - a->in->str + 1);
            return line;
        }
        int left = (int)((deadline - g_get_monotonic_time()) / 1000);
        struct pollfd p = {a->fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return NULL;
        char buf[4096];
        ssize_t n = recv(a->fd, buf, sizeof buf, 0);
        if (n <= 0) {
            *closed = true;
            return NULL;
        }
        g_string_append_len(a->in, buf, n);
    }
}

static char *agent_line(Agent *a, int timeout_ms, XapiError **err)
{
    bool closed;
    char *line = agent_next_line(a, timeout_ms, &closed);
    if (!line && closed)
        xapi_error_internal(err, "guest agent: connection closed");
    else if (!line)
        xapi_error_internal(err, "guest agent: no answer within %d ms", timeout_ms);
    return line;
}

/* A command's "return" (caller puts), skipping anything before it. */
static json_object *agent_command(Agent *a, const char *command, XapiError **err)
{
    g_autofree char *text = g_strdup_printf("{\"execute\":\"%s\"}\n", command);
    if (agent_send(a, text, err) < 0)
        return NULL;
    for (;;) {
        g_autofree char *line = agent_line(a, a->timeout_ms, err);
        if (!line)
            return NULL;
        json_object *reply = json_tokener_parse(line), *ret;
        if (reply && json_object_object_get_ex(reply, "return", &ret)) {
            json_object_get(ret);
            json_object_put(reply);
            return ret;
        }
        bool failed = reply && json_object_object_get_ex(reply, "error", NULL);
        json_object_put(reply);
        if (failed) {
            xapi_error_internal(err, "guest agent: %s failed", command);
            return NULL;
        }
    }
}

/* guest-sync-delimited: the agent answers after a 0xFF byte, so what an
 * earlier client left half-read is skipped up to it. */
static int agent_sync(Agent *a, XapiError **err)
{
    int64_t id = g_random_int_range(1, G_MAXINT32);
    g_autofree char *text = g_strdup_printf(
        "\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":%" G_GINT64_FORMAT "}}\n", id);
    if (agent_send(a, text, err) < 0)
        return -1;
    for (;;) {
        g_autofree char *line = agent_line(a, a->timeout_ms, err);
        if (!line)
            return -1;
        const char *mark = strrchr(line, '\xff');
        size_t skip = mark ? (size_t)(mark - line) + 1 : 0;
        json_object *reply = json_tokener_parse(line + skip), *ret;
        bool synced = reply && json_object_object_get_ex(reply, "return", &ret) &&
                      json_object_get_int64(ret) == id;
        json_object_put(reply);
        if (synced)
            return 0;
    }
}

static const char *jstr(json_object *o, const char *key)
{
    json_object *v;
    return o && json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static void set_if(Xv *st, const char *key, const char *value)
{
    if (value && *value)
        xv_struct_set_string(st, key, value);
}

/* XAPI's os_version from guest-get-osinfo: name, uname, distro, major, minor. */
static Xv *os_version_of(json_object *info)
{
    Xv *os = xv_new_struct();
    set_if(os, "name", jstr(info, "pretty-name") ? jstr(info, "pretty-name") : jstr(info, "name"));
    set_if(os, "uname", jstr(info, "kernel-release"));
    set_if(os, "distro", jstr(info, "id"));
    const char *version = jstr(info, "version-id");
    if (version) {
        g_auto(GStrv) parts = g_strsplit(version, ".", 3);
        set_if(os, "major", parts[0]);
        if (parts[0] && parts[1])
            set_if(os, "minor", parts[1]);
    }
    return os;
}

static Xv *drivers_version_of(json_object *info)
{
    Xv *v = xv_new_struct();
    const char *version = jstr(info, "version");
    g_auto(GStrv) parts = g_strsplit(version ? version : "", ".", 4);
    static const char *const keys[] = {"major", "minor", "micro", "build"};
    for (size_t i = 0, have = 1; i < G_N_ELEMENTS(keys); i++) {
        have = have && parts[i];
        xv_struct_set_string(v, keys[i], have ? parts[i] : "0");
    }
    return v;
}

static Xv *interfaces_of(json_object *list)
{
    Xv *out = xv_new_struct();
    for (size_t i = 0; json_object_is_type(list, json_type_array) &&
                       i < json_object_array_length(list); i++) {
        json_object *nic = json_object_array_get_idx(list, i), *addrs;
        const char *mac = jstr(nic, "hardware-address");
        if (!mac || !json_object_object_get_ex(nic, "ip-addresses", &addrs))
            continue;
        Xv *ips = xv_new_struct();
        Xv *v4 = xv_new_array(), *v6 = xv_new_array();
        for (size_t k = 0; k < json_object_array_length(addrs); k++) {
            json_object *addr = json_object_array_get_idx(addrs, k);
            const char *type = jstr(addr, "ip-address-type"), *ip = jstr(addr, "ip-address");
            if (type && ip)
                xv_array_append_string(strcmp(type, "ipv6") == 0 ? v6 : v4, ip);
        }
        xv_struct_set(ips, "ipv4", v4);
        xv_struct_set(ips, "ipv6", v6);
        g_autofree char *key = g_ascii_strdown(mac, -1);
        xv_struct_set(out, key, ips);
    }
    return out;
}

void guest_agent_report_parse(const char *info, const char *os, const char *nics,
                              GuestAgentReport *out)
{
    json_object *i = json_tokener_parse(info), *o = json_tokener_parse(os),
                *n = json_tokener_parse(nics);
    out->os_version = os_version_of(o);
    out->pv_drivers_version = drivers_version_of(i);
    out->interfaces = interfaces_of(n);
    json_object_put(i);
    json_object_put(o);
    json_object_put(n);
}

/* Connects to the agent's socket and resynchronises; -1 with err when the
 * agent does not answer. */
static int agent_open(Agent *a, const char *path, int timeout_ms, XapiError **err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    *a = (Agent){-1, g_string_new(NULL), timeout_ms};
    if (strlen(path) >= sizeof addr.sun_path)
        return xapi_error_internal(err, "guest agent socket path too long: %s", path);
    strcpy(addr.sun_path, path);
    a->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (a->fd < 0 || connect(a->fd, (struct sockaddr *)&addr, sizeof addr) < 0)
        return xapi_error_internal(err, "guest agent: %s", g_strerror(errno));
    return agent_sync(a, err);
}

static void agent_close(Agent *a)
{
    if (a->fd >= 0)
        close(a->fd);
    g_string_free(a->in, TRUE);
}

int guest_agent_query(const char *path, int timeout_ms, GuestAgentReport *out, XapiError **err)
{
    Agent a;
    int rc = -1;
    json_object *info = NULL, *os = NULL, *nics = NULL;
    if (agent_open(&a, path, timeout_ms, err) == 0 &&
        (info = agent_command(&a, "guest-info", err)) &&
        (os = agent_command(&a, "guest-get-osinfo", err)) &&
        (nics = agent_command(&a, "guest-network-get-interfaces", err))) {
        out->os_version = os_version_of(os);
        out->pv_drivers_version = drivers_version_of(info);
        out->interfaces = interfaces_of(nics);
        rc = 0;
    }
    json_object_put(info);
    json_object_put(os);
    json_object_put(nics);
    agent_close(&a);
    return rc;
}

/* guest-shutdown answers only when it fails (QGA: no reply on success,
 * the guest is on its way down): an error within the wait is a refusal;
 * silence, the port closing or the domain stopping is the guest going. */
int guest_agent_shutdown(const char *uuid, int timeout_ms, XapiError **err)
{
    const HvDriver *hv = xenops_driver();
    g_autofree char *path = hv && hv->agent_socket ? hv->agent_socket(uuid) : NULL;
    if (!path)
        return xapi_error_internal(err, "guest agent: the domain has no agent port");
    Agent a;
    int rc = agent_open(&a, path, timeout_ms, err);
    if (rc == 0)
        rc = agent_send(&a, "{\"execute\":\"guest-shutdown\",\"arguments\":{\"mode\":"
                            "\"powerdown\"}}\n", err);
    int64_t deadline = g_get_monotonic_time() + SHUTDOWN_REFUSAL_MS * 1000;
    while (rc == 0 && g_get_monotonic_time() < deadline &&
           !hv->wait_stopped(uuid, g_get_monotonic_time())) {
        bool closed;
        g_autofree char *line = agent_next_line(&a, 100, &closed);
        if (closed)
            break;
        json_object *reply = line ? json_tokener_parse(line) : NULL, *error;
        if (reply && json_object_object_get_ex(reply, "error", &error)) {
            const char *desc = jstr(error, "desc");
            rc = xapi_error_internal(err, "guest agent: guest-shutdown failed: %s",
                                     desc ? desc : "?");
        }
        json_object_put(reply);
    }
    agent_close(&a);
    return rc;
}

/* ---- VM_guest_metrics ------------------------------------------------------- */

Xv *guest_agent_networks(const Xv *interfaces, const char *const *macs,
                         const char *const *devices, size_t n)
{
    Xv *networks = xv_new_struct();
    for (size_t i = 0; i < n; i++) {
        g_autofree char *mac = g_ascii_strdown(macs[i], -1);
        const Xv *ips = interfaces ? xv_struct_get(interfaces, mac) : NULL;
        if (!ips)
            continue;
        const Xv *v4 = xv_struct_get(ips, "ipv4"), *v6 = xv_struct_get(ips, "ipv6");
        for (guint k = 0; k < xv_len(v4); k++) {
            g_autofree char *key = g_strdup_printf("%s/ipv4/%u", devices[i], k);
            xv_struct_set_string(networks, key, xv_str(xv_at(v4, k)));
            if (k == 0) {
                g_autofree char *ip = g_strdup_printf("%s/ip", devices[i]);
                xv_struct_set_string(networks, ip, xv_str(xv_at(v4, k)));
            }
        }
        for (guint k = 0; k < xv_len(v6); k++) {
            g_autofree char *key = g_strdup_printf("%s/ipv6/%u", devices[i], k);
            xv_struct_set_string(networks, key, xv_str(xv_at(v6, k)));
        }
    }
    return networks;
}

static Xv *networks_of(const DbRow *vm, const Xv *interfaces)
{
    const Xv *vifs = db_get(vm, "VIFs");
    g_autoptr(GPtrArray) macs = g_ptr_array_new(), devices = g_ptr_array_new();
    for (guint i = 0; i < xv_len(vifs); i++) {
        DbRow *vif = db_lookup(dm_class_by_name("VIF"), xv_str(xv_at(vifs, i)));
        if (!vif)
            continue;
        g_ptr_array_add(macs, (gpointer)xv_str(db_get(vif, "MAC")));
        g_ptr_array_add(devices, (gpointer)xv_str(db_get(vif, "device")));
    }
    return guest_agent_networks(interfaces, (const char *const *)macs->pdata,
                                (const char *const *)devices->pdata, macs->len);
}

static int set_changed(DbRow *row, const char *field, Xv *value, bool *changed, XapiError **err)
{
    if (xv_equal(db_get(row, field), value)) {
        xv_free(value);
        return 0;
    }
    *changed = true;
    return db_set_by_name(row, field, value, err);
}

static int write_metrics(DbRow *vm, const void *arg, XapiError **err)
{
    const GuestAgentReport *r = arg;
    if (strcmp(xv_str(db_get(vm, "power_state")), "Running") != 0)
        return 0; /* it stopped meanwhile */
    const DmClass *cls = dm_class_by_name("VM_guest_metrics");
    DbRow *m = db_lookup(cls, xv_str(db_get(vm, "guest_metrics")));
    if (!m) {
        DbRow *row = db_row_new(cls);
        char *ref = g_strdup(row->ref);
        if (db_insert(row, err) < 0 ||
            db_set_by_name(vm, "guest_metrics", xv_new_string_take(ref), err) < 0)
            return -1;
        m = db_lookup(cls, xv_str(db_get(vm, "guest_metrics")));
    }
    bool changed = false;
    if (set_changed(m, "os_version", xv_dup(r->os_version), &changed, err) < 0 ||
        set_changed(m, "PV_drivers_version", xv_dup(r->pv_drivers_version), &changed, err) < 0 ||
        set_changed(m, "networks", networks_of(vm, r->interfaces), &changed, err) < 0 ||
        set_changed(m, "PV_drivers_detected", xv_new_bool(true), &changed, err) < 0 ||
        set_changed(m, "PV_drivers_up_to_date", xv_new_bool(true), &changed, err) < 0 ||
        set_changed(m, "live", xv_new_bool(true), &changed, err) < 0)
        return -1;
    if (changed)
        return db_set_by_name(m, "last_updated",
                              xv_new_datetime(g_get_real_time() / G_USEC_PER_SEC), err);
    return 0;
}

/* ---- the poller -------------------------------------------------------------- */

static bool add_running(DbRow *vm, void *ctx)
{
    GPtrArray *refs = ctx;
    if (!db_get(vm, "is_control_domain")->b &&
        strcmp(xv_str(db_get(vm, "power_state")), "Running") == 0)
        g_ptr_array_add(refs, g_strdup_printf("%s\n%s", vm->ref, xv_str(db_get(vm, "uuid"))));
    return true;
}

static GThreadPool *pool;
static gint polling; /* a poll is queued or running */

static void poll_agents(gpointer data, gpointer user_data)
{
    (void)data, (void)user_data;
    const HvDriver *hv = xenops_driver();
    g_autoptr(GPtrArray) vms = g_ptr_array_new_with_free_func(g_free);
    db_read_begin();
    db_foreach(dm_class_by_name("VM"), add_running, vms);
    db_read_end();
    for (guint i = 0; i < vms->len; i++) {
        g_auto(GStrv) ref_uuid = g_strsplit(g_ptr_array_index(vms, i), "\n", 2);
        g_autofree char *path = hv->agent_socket(ref_uuid[1]);
        GuestAgentReport r = {0};
        g_autoptr(XapiError) err = NULL;
        if (path && guest_agent_query(path, ANSWER_TIMEOUT_MS, &r, &err) == 0)
            operations_write(&vm_operations, ref_uuid[0], write_metrics, &r, &err);
        guest_agent_report_clear(&r);
    }
    g_atomic_int_set(&polling, 0);
}

static gboolean on_poll_timer(gpointer data)
{
    (void)data;
    if (g_atomic_int_compare_and_exchange(&polling, 0, 1))
        g_thread_pool_push(pool, GINT_TO_POINTER(1), NULL);
    return G_SOURCE_CONTINUE;
}

void guest_agent_start_polling(void)
{
    const HvDriver *hv = xenops_driver();
    if (!hv || !hv->agent_socket || pool)
        return;
    pool = g_thread_pool_new(poll_agents, NULL, 1, FALSE, NULL);
    g_timeout_add_seconds(POLL_PERIOD_S, on_poll_timer, NULL);
}
