/* driver_qemu.c: domains as qemu-system-x86_64 processes.
 *
 * Each domain has a directory STATE_DIR/domains/<uuid> with the pid file,
 * two QMP sockets (commands; events, which a watcher thread per domain
 * keeps open), the serial console log and the VNC socket. QEMU runs
 * detached, so a restart of xapid leaves guests running; reattach() finds
 * them again from the directory. */
#include <errno.h>
#include <stdarg.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host_accel.h"
#include "hv_driver.h"
#include "network.h"
#include "qemu_cmdline.h"
#include "qmp.h"

#define STOP_REASON_FILE "stop-reason"
/* The firmware resets the machine again while it boots (QEMU reports
 * those as the guest's): resets this close to the previous one belong to
 * the same reboot. */
#define RESET_SETTLE_US (3 * G_USEC_PER_SEC)

typedef struct Domain {
    char *uuid;
    char *dir;
    int64_t pid;
    HvState state;
    HvStopReason reason;
    bool destroying; /* xapid is stopping it: no notification */
    bool rebooted;   /* RESET by the guest, not yet handled */
    int64_t last_reset; /* monotonic time of the last reset, ours or the guest's */
    GThread *watcher;
} Domain;

static struct {
    char *root;      /* STATE_DIR/domains */
    char *binary;    /* NULL when QEMU is not installed */
    HvChangeNotify notify;
    GMutex lock;     /* domains and every Domain's state */
    GCond changed;
    GHashTable *domains; /* uuid -> Domain */
} qemu;

static char *domain_path(const Domain *d, const char *file)
{
    return g_build_filename(d->dir, file, NULL);
}

static Domain *find(const char *uuid)
{
    return g_hash_table_lookup(qemu.domains, uuid);
}

static void domain_free(Domain *d)
{
    g_free(d->uuid);
    g_free(d->dir);
    g_free(d);
}

/* Alive and not a zombie waiting for a parent that is not us. */
static bool process_alive(int64_t pid)
{
    if (pid <= 0 || kill((pid_t)pid, 0) < 0)
        return false;
    g_autofree char *stat_path = g_strdup_printf("/proc/%" G_GINT64_FORMAT "/stat", pid);
    g_autofree char *stat = NULL;
    if (!g_file_get_contents(stat_path, &stat, NULL, NULL))
        return false;
    const char *close_paren = strrchr(stat, ')');
    return close_paren && close_paren[1] == ' ' && close_paren[2] != 'Z' && close_paren[2] != 'X';
}

/* The process at pid is the QEMU of this domain (pids get reused). */
static bool process_is_domain(int64_t pid, const char *uuid)
{
    g_autofree char *path = g_strdup_printf("/proc/%" G_GINT64_FORMAT "/cmdline", pid);
    g_autofree char *cmdline = NULL;
    gsize len = 0;
    if (!g_file_get_contents(path, &cmdline, &len, NULL))
        return false;
    bool after_uuid_flag = false;
    for (const char *arg = cmdline; arg < cmdline + len; arg += strlen(arg) + 1) {
        if (after_uuid_flag)
            return strcmp(arg, uuid) == 0;
        after_uuid_flag = strcmp(arg, "-uuid") == 0;
    }
    return false;
}

static int64_t read_pid(const Domain *d)
{
    g_autofree char *path = domain_path(d, QEMU_PIDFILE);
    g_autofree char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return 0;
    return g_ascii_strtoll(text, NULL, 10);
}

static void save_stop_reason(const Domain *d, const char *reason)
{
    g_autofree char *path = domain_path(d, STOP_REASON_FILE);
    if (reason)
        g_file_set_contents(path, reason, -1, NULL);
    else
        unlink(path);
}

static HvStopReason stop_reason_of(const char *qemu_reason)
{
    if (strcmp(qemu_reason, "guest-reset") == 0)
        return HV_STOP_REBOOT;
    if (strcmp(qemu_reason, "guest-panic") == 0)
        return HV_STOP_CRASH;
    return HV_STOP_POWEROFF;
}

static HvStopReason saved_stop_reason(const Domain *d)
{
    g_autofree char *path = domain_path(d, STOP_REASON_FILE);
    g_autofree char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return HV_STOP_POWEROFF;
    return stop_reason_of(g_strstrip(text));
}

/* Sets the state (lock held) and wakes waiters. */
static void set_state(Domain *d, HvState state)
{
    d->state = state;
    g_cond_broadcast(&qemu.changed);
}

static void note_event(Domain *d, json_object *msg)
{
    json_object *event, *data, *field;
    if (!json_object_object_get_ex(msg, "event", &event))
        return;
    const char *name = json_object_get_string(event);
    if (strcmp(name, "RESET") == 0) {
        json_object *guest = NULL;
        if (!json_object_object_get_ex(msg, "data", &data) ||
            !json_object_object_get_ex(data, "guest", &guest) || !json_object_get_boolean(guest))
            return; /* our own system_reset */
        g_mutex_lock(&qemu.lock);
        int64_t now = g_get_monotonic_time();
        bool same_reboot = d->last_reset && now - d->last_reset < RESET_SETTLE_US;
        d->last_reset = now;
        if (same_reboot) {
            g_mutex_unlock(&qemu.lock);
            return;
        }
        d->rebooted = true;
        bool tell = !d->destroying;
        g_cond_broadcast(&qemu.changed);
        g_mutex_unlock(&qemu.lock);
        if (tell && qemu.notify)
            qemu.notify(d->uuid);
        return;
    }
    if (strcmp(name, "SHUTDOWN") != 0)
        return;
    const char *reason = "guest-shutdown";
    bool by_guest = true;
    if (json_object_object_get_ex(msg, "data", &data)) {
        if (json_object_object_get_ex(data, "reason", &field))
            reason = json_object_get_string(field);
        if (json_object_object_get_ex(data, "guest", &field))
            by_guest = json_object_get_boolean(field);
    }
    if (!by_guest && strcmp(reason, "host-signal") != 0)
        return; /* our own quit or reset */
    save_stop_reason(d, reason);
    g_mutex_lock(&qemu.lock);
    d->reason = stop_reason_of(reason);
    set_state(d, HV_SHUTDOWN);
    bool tell = !d->destroying;
    g_mutex_unlock(&qemu.lock);
    if (tell && qemu.notify)
        qemu.notify(d->uuid);
}

/* Follows one domain's events until its QEMU goes away. */
static gpointer watch_domain(gpointer data)
{
    Domain *d = data;
    g_autofree char *path = domain_path(d, QEMU_EVENTS_SOCKET);
    g_autoptr(XapiError) err = NULL;
    QmpConn *q = qmp_connect(path, 0, &err);
    if (q) {
        for (json_object *msg; (msg = qmp_read(q));) {
            note_event(d, msg);
            json_object_put(msg);
        }
        qmp_close(q);
    }
    /* EOF: QEMU exited (or was never reachable). */
    while (process_alive(d->pid) && !d->destroying)
        g_usleep(20000);
    g_mutex_lock(&qemu.lock);
    bool tell = !d->destroying && d->state != HV_ABSENT;
    set_state(d, HV_ABSENT);
    g_mutex_unlock(&qemu.lock);
    if (tell && qemu.notify)
        qemu.notify(d->uuid);
    return NULL;
}

static HvState state_from_status(const char *status, Domain *d)
{
    if (strcmp(status, "running") == 0)
        return HV_RUNNING;
    if (strcmp(status, "shutdown") == 0) {
        d->reason = saved_stop_reason(d);
        return HV_SHUTDOWN;
    }
    if (strcmp(status, "guest-panicked") == 0) {
        d->reason = HV_STOP_CRASH;
        return HV_SHUTDOWN;
    }
    return HV_PAUSED; /* paused, prelaunch, debug, ... */
}

static int qmp_simple(Domain *d, const char *command, const char *args, XapiError **err)
{
    g_autofree char *path = domain_path(d, QEMU_QMP_SOCKET);
    json_object *ret = qmp_run(path, command, args, err);
    if (!ret && err && *err)
        return -1;
    json_object_put(ret);
    return 0;
}

/* Starts watching a domain whose QEMU runs (lock not held). */
static int attach(Domain *d, XapiError **err)
{
    g_autofree char *path = domain_path(d, QEMU_QMP_SOCKET);
    json_object *status = qmp_run(path, "query-status", NULL, err);
    if (!status)
        return -1;
    json_object *field;
    const char *text = json_object_object_get_ex(status, "status", &field)
                           ? json_object_get_string(field) : "running";
    g_mutex_lock(&qemu.lock);
    d->state = state_from_status(text, d);
    g_hash_table_replace(qemu.domains, d->uuid, d);
    g_mutex_unlock(&qemu.lock);
    json_object_put(status);
    g_autofree char *name = g_strdup_printf("watch-%.8s", d->uuid);
    d->watcher = g_thread_new(name, watch_domain, d);
    return 0;
}

static Domain *domain_new(const char *uuid)
{
    Domain *d = g_new0(Domain, 1);
    d->uuid = g_strdup(uuid);
    d->dir = g_build_filename(qemu.root, uuid, NULL);
    return d;
}

static void remove_runtime_files(const Domain *d)
{
    static const char *const files[] = {QEMU_PIDFILE, QEMU_QMP_SOCKET, QEMU_EVENTS_SOCKET,
                                        QEMU_VNC_SOCKET, STOP_REASON_FILE};
    for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
        g_autofree char *path = domain_path(d, files[i]);
        unlink(path);
    }
}

static int wait_incoming(Domain *d, XapiError **err);
static int qmp_transition(const char *uuid, const char *command, HvState from, HvState to,
                          XapiError **err);
static HvDriver qemu_driver;

/* The guest's taps, made on their bridges before QEMU starts; xapid's
 * copies of the fds are closed once QEMU holds them. */
typedef struct {
    int *fds;
    size_t n;
} TapFds;

static void tap_fds_close(TapFds *t)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->fds[i] >= 0)
            close(t->fds[i]);
    g_free(t->fds);
    t->fds = NULL;
    t->n = 0;
}

static int open_taps(const HvNic *nics, size_t n, TapFds *t, XapiError **err)
{
    t->fds = g_new(int, n + 1);
    t->n = 0;
    for (size_t i = 0; i < n; i++) {
        int fd = network_guest_tap_open(nics[i].tap, nics[i].bridge, nics[i].mtu,
                                        nics[i].internal, !nics[i].disabled, err);
        if (fd < 0) {
            tap_fds_close(t);
            network_bridges_gc();
            return -1;
        }
        t->fds[t->n++] = fd;
    }
    return 0;
}

/* In the child, before exec: each tap at the fd the command line names
 * (dup2 clears close-on-exec on the copy). Async-signal-safe only. */
static void pass_taps(gpointer data)
{
    const TapFds *t = data;
    for (size_t i = 0; i < t->n; i++)
        if (dup2(t->fds[i], QEMU_TAP_FD((int)i)) < 0)
            _exit(127);
}

static int qemu_start(const char *uuid, const Xv *vm, const HvDisk *disks, size_t n_disks,
                      const HvNic *nics, size_t n_nics, const char *resume_image, bool paused,
                      XapiError **err)
{
    if (!qemu.binary)
        return xapi_error_internal(err, "qemu-system-x86_64 is not installed on this host");
    g_mutex_lock(&qemu.lock);
    bool exists = find(uuid) != NULL;
    g_mutex_unlock(&qemu.lock);
    if (exists)
        return xapi_error_internal(err, "a domain for VM %s already exists", uuid);
    Domain *d = domain_new(uuid);
    d->last_reset = g_get_monotonic_time(); /* the firmware's resets follow */
    if (g_mkdir_with_parents(d->dir, 0700) < 0) {
        xapi_error_internal(err, "cannot create %s: %s", d->dir, g_strerror(errno));
        domain_free(d);
        return -1;
    }
    remove_runtime_files(d);
    g_autofree char *console = domain_path(d, QEMU_CONSOLE_LOG);
    if (!resume_image) /* a resumed guest's console goes on where it was */
        unlink(console);
    QemuHost host = {qemu.binary, qemu_driver.accel, d->dir};
    g_auto(GStrv) argv = qemu_cmdline(&host, uuid, vm, disks, n_disks, nics, n_nics,
                                      resume_image, paused, err);
    TapFds taps = {NULL, 0};
    if (!argv || open_taps(nics, n_nics, &taps, err) < 0) {
        domain_free(d);
        return -1;
    }
    g_autofree char *errors = NULL;
    int wait_status = 0;
    g_autoptr(GError) gerr = NULL;
    /* With -daemonize the command returns once the domain is set up. */
    bool spawned = g_spawn_sync(NULL, argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL,
                                n_nics ? pass_taps : NULL, &taps, NULL, &errors, &wait_status,
                                &gerr) &&
                   g_spawn_check_wait_status(wait_status, NULL);
    tap_fds_close(&taps); /* QEMU holds them now, or they go with it */
    if (!spawned) {
        xapi_error_internal(err, "QEMU did not start: %s",
                            gerr ? gerr->message : g_strstrip(errors));
        network_bridges_gc();
        domain_free(d);
        return -1;
    }
    d->pid = read_pid(d);
    if (!process_alive(d->pid) || attach(d, err) < 0) {
        if (process_alive(d->pid))
            kill((pid_t)d->pid, SIGKILL);
        if (!(err && *err))
            xapi_error_internal(err, "QEMU exited right after starting");
        domain_free(d);
        return -1;
    }
    /* A saved state was paused when it was taken: it continues only if
     * asked to. */
    if (resume_image && (wait_incoming(d, err) < 0 ||
                         (!paused && qmp_transition(uuid, "cont", HV_PAUSED, HV_RUNNING, err) < 0))) {
        g_autoptr(XapiError) ignored = NULL;
        qemu_driver.destroy(uuid, &ignored);
        return -1;
    }
    return 0;
}

static Domain *lookup(const char *uuid, XapiError **err)
{
    g_mutex_lock(&qemu.lock);
    Domain *d = find(uuid);
    g_mutex_unlock(&qemu.lock);
    if (!d)
        xapi_error_internal(err, "no domain for VM %s", uuid);
    return d;
}

/* Runs a QMP command that moves the domain from one state to another. */
static int qmp_transition(const char *uuid, const char *command, HvState from, HvState to,
                          XapiError **err)
{
    Domain *d = lookup(uuid, err);
    if (!d || qmp_simple(d, command, NULL, err) < 0)
        return -1;
    g_mutex_lock(&qemu.lock);
    if (d->state == from)
        set_state(d, to);
    g_mutex_unlock(&qemu.lock);
    return 0;
}

static int qemu_pause(const char *uuid, XapiError **err)
{
    return qmp_transition(uuid, "stop", HV_RUNNING, HV_PAUSED, err);
}

static int qemu_unpause(const char *uuid, XapiError **err)
{
    return qmp_transition(uuid, "cont", HV_PAUSED, HV_RUNNING, err);
}

static int qemu_request_shutdown(const char *uuid, XapiError **err)
{
    Domain *d = lookup(uuid, err);
    return d ? qmp_simple(d, "system_powerdown", NULL, err) : -1;
}

static int qemu_reset(const char *uuid, XapiError **err)
{
    Domain *d = lookup(uuid, err);
    if (d) {
        g_mutex_lock(&qemu.lock);
        d->last_reset = g_get_monotonic_time();
        g_mutex_unlock(&qemu.lock);
    }
    if (!d || qmp_simple(d, "system_reset", NULL, err) < 0 ||
        qmp_simple(d, "cont", NULL, err) < 0)
        return -1;
    save_stop_reason(d, NULL);
    g_mutex_lock(&qemu.lock);
    d->rebooted = false;
    set_state(d, HV_RUNNING);
    g_mutex_unlock(&qemu.lock);
    return 0;
}

static int qemu_destroy(const char *uuid, XapiError **err)
{
    g_mutex_lock(&qemu.lock);
    Domain *d = find(uuid);
    if (d)
        d->destroying = true;
    g_mutex_unlock(&qemu.lock);
    if (!d)
        return 0;
    g_autoptr(XapiError) ignored = NULL;
    g_autofree char *path = domain_path(d, QEMU_QMP_SOCKET);
    json_object_put(qmp_run(path, "quit", NULL, &ignored));
    /* QEMU quits within milliseconds; a wedged one gets SIGKILL. */
    for (int i = 0; i < 200 && process_alive(d->pid); i++)
        g_usleep(10000);
    if (process_alive(d->pid))
        kill((pid_t)d->pid, SIGKILL);
    for (int i = 0; i < 500 && process_alive(d->pid); i++)
        g_usleep(10000);
    if (process_alive(d->pid))
        return xapi_error_internal(err, "QEMU (pid %" G_GINT64_FORMAT ") of VM %s does not exit",
                                   d->pid, uuid);
    g_thread_join(d->watcher);
    g_mutex_lock(&qemu.lock);
    g_hash_table_remove(qemu.domains, uuid);
    g_cond_broadcast(&qemu.changed);
    g_mutex_unlock(&qemu.lock);
    remove_runtime_files(d);
    network_guest_taps_wait_gone(uuid); /* its taps go with QEMU */
    domain_free(d);
    network_bridges_gc();
    return 0;
}

static HvStatus qemu_status(const char *uuid)
{
    HvStatus s = {HV_ABSENT, HV_STOP_POWEROFF, false};
    g_mutex_lock(&qemu.lock);
    Domain *d = find(uuid);
    if (d) {
        s.state = d->state;
        s.reason = d->reason;
        s.rebooted = d->rebooted;
    }
    g_mutex_unlock(&qemu.lock);
    return s;
}

static void qemu_clear_rebooted(const char *uuid)
{
    g_mutex_lock(&qemu.lock);
    Domain *d = find(uuid);
    if (d)
        d->rebooted = false;
    g_mutex_unlock(&qemu.lock);
}

static bool qemu_wait_stopped(const char *uuid, int64_t deadline)
{
    bool stopped = false;
    g_mutex_lock(&qemu.lock);
    for (;;) {
        Domain *d = find(uuid);
        if (!d || (d->state != HV_RUNNING && d->state != HV_PAUSED)) {
            stopped = true;
            break;
        }
        if (!g_cond_wait_until(&qemu.changed, &qemu.lock, deadline))
            break;
    }
    g_mutex_unlock(&qemu.lock);
    return stopped;
}

static bool qemu_reattach(const char *uuid)
{
    g_mutex_lock(&qemu.lock);
    bool known = find(uuid) != NULL;
    g_mutex_unlock(&qemu.lock);
    if (known)
        return true;
    Domain *d = domain_new(uuid);
    d->pid = read_pid(d);
    g_autoptr(XapiError) err = NULL;
    if (process_alive(d->pid) && process_is_domain(d->pid, uuid) && attach(d, &err) == 0)
        return true;
    if (err)
        g_warning("VM %s: QEMU pid %" G_GINT64_FORMAT " not reachable: %s", uuid, d->pid,
                  err->code);
    remove_runtime_files(d);
    domain_free(d);
    return false;
}

static char *qemu_vnc_location(const char *uuid)
{
    return g_strdup_printf("unix:%s/%s/" QEMU_VNC_SOCKET, qemu.root, uuid);
}

/* ---- disks ----------------------------------------------------------------- */

static char *args_text(json_object *o)
{
    char *text = g_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return text;
}

static json_object *args_object(const char *key, ...) G_GNUC_NULL_TERMINATED;
/* {key: string value, ...} */
static json_object *args_object(const char *key, ...)
{
    json_object *o = json_object_new_object();
    va_list ap;
    va_start(ap, key);
    for (const char *k = key; k; k = va_arg(ap, const char *))
        json_object_object_add(o, k, json_object_new_string(va_arg(ap, const char *)));
    va_end(ap);
    return o;
}

static int qmp_args(Domain *d, const char *command, json_object *args, XapiError **err)
{
    g_autofree char *text = args_text(args);
    return qmp_simple(d, command, text, err);
}

/* The device's qdev path names it ("/machine/peripheral/<id>/..." or <id>). */
static bool qdev_is(const char *qdev, const char *id)
{
    if (strcmp(qdev, id) == 0)
        return true;
    g_autofree char *inner = g_strdup_printf("/%s/", id);
    g_autofree char *tail = g_strdup_printf("/%s", id);
    return strstr(qdev, inner) || g_str_has_suffix(qdev, tail);
}

/* The top block node under a slot's device (it changes with live
 * snapshots), or NULL. */
static char *top_node(Domain *d, const char *id, XapiError **err)
{
    g_autofree char *path = domain_path(d, QEMU_QMP_SOCKET);
    json_object *blocks = qmp_run(path, "query-block", NULL, err);
    if (!blocks)
        return NULL;
    char *node = NULL;
    for (size_t i = 0; i < json_object_array_length(blocks) && !node; i++) {
        json_object *b = json_object_array_get_idx(blocks, i), *qdev, *inserted, *name;
        if (json_object_object_get_ex(b, "qdev", &qdev) &&
            qdev_is(json_object_get_string(qdev), id) &&
            json_object_object_get_ex(b, "inserted", &inserted) &&
            json_object_object_get_ex(inserted, "node-name", &name))
            node = g_strdup(json_object_get_string(name));
    }
    json_object_put(blocks);
    if (!node)
        xapi_error_internal(err, "no image under device %s", id);
    return node;
}

static bool device_present(Domain *d, const char *id)
{
    g_autofree char *path = domain_path(d, QEMU_QMP_SOCKET);
    g_autoptr(XapiError) ignored = NULL;
    json_object *list = qmp_run(path, "qom-list", "{\"path\": \"/machine/peripheral\"}", &ignored);
    bool present = false;
    for (size_t i = 0; list && i < json_object_array_length(list); i++) {
        json_object *name;
        if (json_object_object_get_ex(json_object_array_get_idx(list, i), "name", &name) &&
            strcmp(json_object_get_string(name), id) == 0)
            present = true;
    }
    json_object_put(list);
    return present;
}

static int qemu_disk_plug(const char *uuid, const HvDisk *disk, XapiError **err)
{
    Domain *d = lookup(uuid, err);
    if (!d)
        return -1;
    g_autofree char *blockdev = qemu_disk_blockdev_json(disk);
    g_autofree char *device = qemu_disk_device_json(disk);
    if (qmp_simple(d, "blockdev-add", blockdev, err) < 0)
        return -1;
    if (qmp_simple(d, "device_add", device, err) < 0) {
        g_autofree char *node = g_strdup_printf("vbd%d", disk->slot);
        g_autoptr(XapiError) ignored = NULL;
        qmp_args(d, "blockdev-del", args_object("node-name", node, NULL), &ignored);
        return -1;
    }
    return 0;
}

static int qemu_disk_unplug(const char *uuid, const HvDisk *disk, int64_t timeout_ms,
                            XapiError **err)
{
    Domain *d = lookup(uuid, err);
    if (!d)
        return -1;
    if (disk->cdrom)
        return xapi_error_set(err, "OPERATION_NOT_ALLOWED",
                              "CD drives stay attached while the VM runs: eject the disc",
                              NULL);
    g_autofree char *id = g_strdup_printf(QEMU_DISK_ID_FMT, disk->slot);
    g_autofree char *node = top_node(d, id, err);
    if (!node || qmp_args(d, "device_del", args_object("id", id, NULL), err) < 0)
        return -1;
    int64_t deadline = g_get_monotonic_time() + timeout_ms * 1000;
    while (device_present(d, id)) {
        if (g_get_monotonic_time() > deadline)
            return 1;
        g_usleep(20 * 1000);
    }
    /* The image stays open until its nodes go; a node made by a live
     * snapshot is released with its device. */
    g_autoptr(XapiError) not_ours = NULL;
    qmp_args(d, "blockdev-del", args_object("node-name", node, NULL), &not_ours);
    return 0;
}

static int qemu_disk_change_medium(const char *uuid, const HvDisk *disk, XapiError **err)
{
    Domain *d = lookup(uuid, err);
    if (!d)
        return -1;
    g_autofree char *id = g_strdup_printf(QEMU_DISK_ID_FMT, disk->slot);
    if (!disk->path) {
        json_object *args = args_object("id", id, NULL);
        json_object_object_add(args, "force", json_object_new_boolean(true));
        return qmp_args(d, "eject", args, err);
    }
    return qmp_args(d, "blockdev-change-medium",
                    args_object("id", id, "filename", disk->path, "format", disk->format,
                                "read-only-mode", "read-only", NULL),
                    err);
}

/* The domain and the top block node of a disk's device (caller frees). */
static char *disk_node(const char *uuid, const HvDisk *disk, Domain **d, XapiError **err)
{
    *d = lookup(uuid, err);
    if (!*d)
        return NULL;
    g_autofree char *id = g_strdup_printf(QEMU_DISK_ID_FMT, disk->slot);
    return top_node(*d, id, err);
}

static int qemu_disk_snapshot(const char *uuid, const HvDisk *disk, const char *new_path,
                              XapiError **err)
{
    Domain *d;
    g_autofree char *node = disk_node(uuid, disk, &d, err);
    if (!node)
        return -1;
    g_autofree char *new_node = g_strdup_printf("vbd%d-%" G_GINT64_MODIFIER "x", disk->slot,
                                                g_get_real_time());
    return qmp_args(d, "blockdev-snapshot-sync",
                    args_object("node-name", node, "snapshot-file", new_path,
                                "snapshot-node-name", new_node, "format", "qcow2", NULL),
                    err);
}

static int qemu_disk_resize(const char *uuid, const HvDisk *disk, int64_t size, XapiError **err)
{
    Domain *d;
    g_autofree char *node = disk_node(uuid, disk, &d, err);
    if (!node)
        return -1;
    json_object *args = args_object("node-name", node, NULL);
    json_object_object_add(args, "size", json_object_new_int64(size));
    return qmp_args(d, "block_resize", args, err);
}

/* ---- saved states ------------------------------------------------------------- */

/* A status field of a QMP query, or NULL (caller frees). */
static char *query_field(Domain *d, const char *command, const char *field, XapiError **err)
{
    g_autofree char *path = domain_path(d, QEMU_QMP_SOCKET);
    json_object *reply = qmp_run(path, command, NULL, err);
    json_object *v;
    char *text = reply && json_object_object_get_ex(reply, field, &v)
                     ? g_strdup(json_object_get_string(v)) : NULL;
    if (reply && !text)
        text = g_strdup("");
    json_object_put(reply);
    return text;
}

/* Until the saved state is loaded (the domain then runs, or stays paused
 * when started paused). */
static int wait_incoming(Domain *d, XapiError **err)
{
    int64_t deadline = g_get_monotonic_time() + 600 * G_USEC_PER_SEC;
    for (;;) {
        g_autofree char *status = query_field(d, "query-status", "status", err);
        if (!status)
            return -1;
        if (strcmp(status, "inmigrate") != 0) {
            g_mutex_lock(&qemu.lock);
            set_state(d, strcmp(status, "running") == 0 ? HV_RUNNING : HV_PAUSED);
            g_mutex_unlock(&qemu.lock);
            return 0;
        }
        if (g_get_monotonic_time() > deadline)
            return xapi_error_internal(err, "the saved state did not load within 600 s");
        g_usleep(20 * 1000);
    }
}

static int qemu_save(const char *uuid, const char *path, XapiError **err)
{
    Domain *d = lookup(uuid, err);
    if (!d)
        return -1;
    g_autofree char *quoted = g_shell_quote(path);
    g_autofree char *uri = g_strdup_printf("exec:cat > %s", quoted);
    if (qmp_args(d, "migrate", args_object("uri", uri, NULL), err) < 0)
        return -1;
    for (;;) {
        g_autofree char *status = query_field(d, "query-migrate", "status", err);
        if (!status)
            return -1;
        if (strcmp(status, "completed") == 0)
            return 0;
        if (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0) {
            g_autofree char *why = query_field(d, "query-migrate", "error-desc", NULL);
            return xapi_error_internal(err, "saving the domain's state failed: %s",
                                       why && *why ? why : status);
        }
        g_usleep(20 * 1000);
    }
}

/* ---- NICs of a running domain ---------------------------------------------- */

static int qemu_nic_plug(const char *uuid, const HvNic *nic, XapiError **err)
{
    Domain *d = lookup(uuid, err);
    if (!d)
        return -1;
    if (nic->device < 0 || nic->device >= QEMU_NIC_SLOTS) {
        char device[16];
        g_snprintf(device, sizeof device, "%d", nic->device);
        return xapi_error_set(err, "INVALID_DEVICE", device, NULL);
    }
    int fd = network_guest_tap_open(nic->tap, nic->bridge, nic->mtu, nic->internal,
                                    !nic->disabled, err);
    if (fd < 0)
        return -1;
    g_autofree char *path = domain_path(d, QEMU_QMP_SOCKET);
    g_autofree char *name = g_strdup_printf(QEMU_NIC_NETDEV_FMT, nic->device);
    g_autofree char *getfd = g_strdup_printf("{\"fdname\":\"%s\"}", name);
    g_autofree char *netdev = qemu_nic_netdev_json(nic);
    g_autofree char *device = qemu_nic_device_json(nic);
    int rc = -1;
    /* getfd's fd belongs to the connection it came on: one connection. */
    QmpConn *q = qmp_connect(path, 10000, err);
    json_object *r = q ? qmp_execute_with_fd(q, "getfd", getfd, fd, err) : NULL;
    close(fd); /* QEMU has its own copy now, or none */
    if (r) {
        json_object_put(r);
        r = qmp_execute(q, "netdev_add", netdev, err);
    }
    if (r) {
        json_object_put(r);
        r = qmp_execute(q, "device_add", device, err);
        if (r) {
            rc = 0;
        } else {
            g_autoptr(XapiError) ignored = NULL;
            g_autofree char *del = g_strdup_printf("{\"id\":\"%s\"}", name);
            json_object_put(qmp_execute(q, "netdev_del", del, &ignored));
        }
    }
    json_object_put(r);
    qmp_close(q);
    if (rc < 0)
        network_bridges_gc();
    return rc;
}

static int qemu_nic_unplug(const char *uuid, const HvNic *nic, int64_t timeout_ms,
                           XapiError **err)
{
    Domain *d = lookup(uuid, err);
    if (!d)
        return -1;
    g_autofree char *id = g_strdup_printf(QEMU_NIC_ID_FMT, nic->device);
    g_autofree char *name = g_strdup_printf(QEMU_NIC_NETDEV_FMT, nic->device);
    if (device_present(d, id)) {
        if (qmp_args(d, "device_del", args_object("id", id, NULL), err) < 0)
            return -1;
        int64_t deadline = g_get_monotonic_time() + timeout_ms * 1000;
        while (device_present(d, id)) {
            if (g_get_monotonic_time() > deadline)
                return 1;
            g_usleep(20 * 1000);
        }
    }
    /* The netdev holds the tap: deleting it removes the tap. */
    g_autoptr(XapiError) gone = NULL;
    qmp_args(d, "netdev_del", args_object("id", name, NULL), &gone);
    network_guest_tap_wait_gone(nic->tap);
    network_bridges_gc();
    return 0;
}

static HvDriver qemu_driver = {
    .name = "qemu",
    .start = qemu_start,
    .save = qemu_save,
    .disk_plug = qemu_disk_plug,
    .nic_plug = qemu_nic_plug,
    .nic_unplug = qemu_nic_unplug,
    .disk_unplug = qemu_disk_unplug,
    .disk_change_medium = qemu_disk_change_medium,
    .disk_snapshot = qemu_disk_snapshot,
    .disk_resize = qemu_disk_resize,
    .pause = qemu_pause,
    .unpause = qemu_unpause,
    .request_shutdown = qemu_request_shutdown,
    .reset = qemu_reset,
    .destroy = qemu_destroy,
    .status = qemu_status,
    .clear_rebooted = qemu_clear_rebooted,
    .wait_stopped = qemu_wait_stopped,
    .reattach = qemu_reattach,
    .vnc_location = qemu_vnc_location,
};

const HvDriver *hv_qemu_driver(const char *state_dir, HvChangeNotify notify, XapiError **err)
{
    /* Absolute: QEMU runs detached from our working directory. */
    g_autofree char *cwd = g_get_current_dir();
    g_autofree char *root = g_build_filename(state_dir ? state_dir : ".", "domains", NULL);
    qemu.root = g_path_is_absolute(root) ? g_strdup(root) : g_build_filename(cwd, root, NULL);
    if (g_mkdir_with_parents(qemu.root, 0700) < 0) {
        xapi_error_internal(err, "cannot create %s: %s", qemu.root, g_strerror(errno));
        return NULL;
    }
    qemu.binary = g_find_program_in_path("qemu-system-x86_64");
    if (!qemu.binary)
        g_warning("qemu-system-x86_64 not found: VMs cannot start (see --hypervisor)");
    qemu.notify = notify;
    qemu.domains = g_hash_table_new(g_str_hash, g_str_equal);
    qemu_driver.accel = host_accel();
    return &qemu_driver;
}
