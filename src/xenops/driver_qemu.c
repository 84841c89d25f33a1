/* driver_qemu.c: domains as qemu-system-x86_64 processes.
 *
 * Each domain has a directory STATE_DIR/domains/<uuid> with the start
 * intent, the pid file, two QMP sockets (xapid's persistent monitor; one
 * for operators), the serial console log, QEMU's stderr and the VNC
 * socket. QEMU runs detached and unprivileged (qemu_process.c), so a
 * restart of xapid leaves guests running; reattach() finds them again
 * from the directory and opens a new monitor connection. */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <fcntl.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "boot_files.h"
#include "cpu_cgroup.h"
#include "host_accel.h"
#include "hv_driver.h"
#include "network.h"
#include "qemu_balloon.h"
#include "qemu_dump.h"
#include "qemu_cmdline.h"
#include "qemu_fdsets.h"
#include "qemu_migrate.h"
#include "qemu_process.h"
#include "qemu_tpm.h"
#include "qmp.h"
#include "vbd_qos.h"
#include "vm_fields.h"
#include "vm_nvram.h"
#include "vm_vtpm.h"

#define STOP_REASON_FILE "stop-reason"
/* VCPUs_params:mask as the domain started with it: vCPUs plugged after a
 * restart of xapid are pinned to it too. */
#define VCPU_MASK_FILE "vcpu-mask"
/* The firmware resets the machine again while it boots (QEMU reports
 * those as the guest's): resets this close to the previous one belong to
 * the same reboot. */
#define RESET_SETTLE_US (3 * G_USEC_PER_SEC)

typedef struct Domain {
    char *uuid;
    char *dir;
    int64_t pid;
    QmpMonitor *mon;
    HvState state;
    HvStopReason reason;
    bool destroying; /* xapid is stopping it: no notification */
    bool rebooted;   /* RESET by the guest, not yet handled */
    int64_t last_reset; /* monotonic time of the last reset, ours or the guest's */
    GHashTable *deleted; /* device ids QEMU reported DEVICE_DELETED for */
    char *migration;     /* the last MIGRATION event's status, or NULL */
    char *vcpu_mask;     /* VCPUs_params:mask (VCPU_MASK_FILE), or NULL */
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
    qmp_monitor_close(d->mon);
    g_hash_table_unref(d->deleted);
    g_free(d->migration);
    g_free(d->vcpu_mask);
    g_free(d->uuid);
    g_free(d->dir);
    g_free(d);
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

static int save_vcpu_mask(const Domain *d, XapiError **err)
{
    g_autofree char *path = domain_path(d, VCPU_MASK_FILE);
    g_autoptr(GError) gerr = NULL;
    if (!d->vcpu_mask)
        return 0;
    if (!g_file_set_contents(path, d->vcpu_mask, -1, &gerr))
        return xapi_error_internal(err, "cannot write %s: %s", path, gerr->message);
    return 0;
}

/* A reattached domain's mask (none when it started without one). */
static void load_vcpu_mask(Domain *d)
{
    g_autofree char *path = domain_path(d, VCPU_MASK_FILE);
    g_autofree char *text = NULL;
    if (g_file_get_contents(path, &text, NULL, NULL) && *g_strstrip(text))
        d->vcpu_mask = g_steal_pointer(&text);
}

/* Sets the state (lock held) and wakes waiters. */
static void set_state(Domain *d, HvState state)
{
    d->state = state;
    g_cond_broadcast(&qemu.changed);
}

static const char *data_string(json_object *data, const char *key)
{
    json_object *v;
    return data && json_object_object_get_ex(data, key, &v) ? json_object_get_string(v) : NULL;
}

static void on_reset(Domain *d, json_object *data)
{
    json_object *guest = NULL;
    if (!data || !json_object_object_get_ex(data, "guest", &guest) ||
        !json_object_get_boolean(guest))
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
}

static void guest_stopped(Domain *d, const char *reason);

static void on_shutdown(Domain *d, json_object *data)
{
    const char *reason = data_string(data, "reason");
    json_object *field;
    bool by_guest = !(data && json_object_object_get_ex(data, "guest", &field)) ||
                    json_object_get_boolean(field);
    if (!reason)
        reason = "guest-shutdown";
    if (!by_guest && strcmp(reason, "host-signal") != 0)
        return; /* our own quit or reset */
    guest_stopped(d, reason);
}

/* The guest stopped the domain (its poweroff, a panic): why, noted in the
 * domain's directory for a later reattach. */
static void guest_stopped(Domain *d, const char *reason)
{
    save_stop_reason(d, reason);
    g_mutex_lock(&qemu.lock);
    d->reason = stop_reason_of(reason);
    set_state(d, HV_SHUTDOWN);
    bool tell = !d->destroying;
    g_mutex_unlock(&qemu.lock);
    if (tell && qemu.notify)
        qemu.notify(d->uuid);
}

/* The monitor's events (its reader thread). */
static void on_event(void *opaque, const char *name, json_object *data)
{
    Domain *d = opaque;
    if (strcmp(name, "RESET") == 0) {
        on_reset(d, data);
    } else if (strcmp(name, "SHUTDOWN") == 0) {
        on_shutdown(d, data);
    } else if (strcmp(name, "GUEST_PANICKED") == 0) {
        /* pvpanic: -action panic=shutdown with shutdown=pause leaves the
         * domain guest-panicked, with no SHUTDOWN event */
        guest_stopped(d, "guest-panic");
    } else if (strcmp(name, "DEVICE_DELETED") == 0 || strcmp(name, "MIGRATION") == 0) {
        const char *value = data_string(data, strcmp(name, "MIGRATION") == 0 ? "status" : "device");
        g_mutex_lock(&qemu.lock);
        if (value && strcmp(name, "MIGRATION") == 0) {
            g_free(d->migration);
            d->migration = g_strdup(value);
        } else if (value) {
            g_hash_table_add(d->deleted, g_strdup(value));
        }
        g_cond_broadcast(&qemu.changed);
        g_mutex_unlock(&qemu.lock);
    }
}

/* The monitor connection ended: QEMU quit or died (its reader thread). */
static void on_eof(void *opaque)
{
    Domain *d = opaque;
    while (!qemu_process_wait_exit(d->pid, 1000) && !d->destroying)
        ;
    g_mutex_lock(&qemu.lock);
    bool tell = !d->destroying && d->state != HV_ABSENT;
    set_state(d, HV_ABSENT);
    g_mutex_unlock(&qemu.lock);
    if (tell && qemu.notify)
        qemu.notify(d->uuid);
}

static const QmpCallbacks monitor_callbacks = {on_event, on_eof};

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

/* Runs a command on the domain's monitor; its "return" dropped. */
static int qmp_args(Domain *d, const char *command, json_object *args, XapiError **err)
{
    json_object *ret = qmp_monitor_command(d->mon, command, args, -1, err);
    if (!ret)
        return -1;
    json_object_put(ret);
    return 0;
}

static int qmp_simple(Domain *d, const char *command, XapiError **err)
{
    return qmp_args(d, command, NULL, err);
}

/* Opens the domain's monitor and learns its state (lock not held). A
 * domain started by an xapid that had no persistent monitor has only
 * qmp.sock. */
static int attach(Domain *d, XapiError **err)
{
    g_autofree char *path = domain_path(d, QEMU_MONITOR_SOCKET);
    if (access(path, F_OK) < 0) {
        g_free(path);
        path = domain_path(d, QEMU_QMP_SOCKET);
    }
    d->mon = qmp_monitor_open(path, 10000, &monitor_callbacks, d, err);
    if (!d->mon)
        return -1;
    json_object *status = qmp_monitor_command(d->mon, "query-status", NULL, -1, err);
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
    return 0;
}

static Domain *domain_new(const char *uuid)
{
    Domain *d = g_new0(Domain, 1);
    d->uuid = g_strdup(uuid);
    d->dir = g_build_filename(qemu.root, uuid, NULL);
    d->deleted = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return d;
}

/* Only once the domain's QEMU is gone: a live one keeps its files. */
static void remove_runtime_files(const Domain *d)
{
    static const char *const files[] = {QEMU_START_INTENT, QEMU_PIDFILE, QEMU_MONITOR_SOCKET,
                                        QEMU_QMP_SOCKET, "events.sock", QEMU_VNC_SOCKET,
                                        QEMU_SERIAL_SOCKET, QEMU_AGENT_SOCKET,
                                        STOP_REASON_FILE, VCPU_MASK_FILE};
    for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
        g_autofree char *path = domain_path(d, files[i]);
        unlink(path);
    }
    cpu_cgroup_remove(d->uuid);
}

/* A unix socket bound at path and listening, for QEMU to serve on. */
static int listening_socket(const char *path, XapiError **err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path)
        return xapi_error_internal(err, "socket path too long: %s", path);
    strcpy(addr.sun_path, path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 4) < 0) {
        xapi_error_internal(err, "cannot listen on %s: %s", path, g_strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static void close_fds(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* Opens what QEMU gets as descriptors (QEMU_FD_*, in order). */
static int open_domain_fds(Domain *d, bool keep_console, int fds[QEMU_N_FDS], XapiError **err)
{
    g_autofree char *monitor = domain_path(d, QEMU_MONITOR_SOCKET);
    g_autofree char *operator = domain_path(d, QEMU_QMP_SOCKET);
    g_autofree char *console = domain_path(d, QEMU_CONSOLE_LOG);
    g_autofree char *serial = domain_path(d, QEMU_SERIAL_SOCKET);
    for (size_t i = 0; i < QEMU_N_FDS; i++)
        fds[i] = -1;
    if ((fds[0] = listening_socket(monitor, err)) < 0 ||
        (fds[1] = listening_socket(operator, err)) < 0 ||
        (fds[3] = listening_socket(serial, err)) < 0)
        goto fail;
    /* A resumed guest's console goes on where it was. */
    fds[2] = open(console, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (keep_console ? 0 : O_TRUNC),
                  0600);
    if (fds[2] < 0) {
        xapi_error_internal(err, "cannot open %s: %s", console, g_strerror(errno));
        goto fail;
    }
    return 0;
fail:
    close_fds(fds, QEMU_N_FDS);
    return -1;
}

/* QEMU's last words, for the error of a start that failed. */
static char *stderr_tail(Domain *d)
{
    g_autofree char *path = domain_path(d, QEMU_STDERR_LOG);
    g_autofree char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL) || !*g_strstrip(text))
        return g_strdup("QEMU exited right after starting");
    const char *last = strrchr(text, '\n');
    return g_strdup(last ? last + 1 : text);
}

/* Spawns the domain's QEMU and records its pid. The start intent goes to
 * disk first: a kill -9 of xapid before the pid file exists leaves a QEMU
 * that the next start-up finds by its -uuid (qemu_scan_domains). Besides
 * the domain's own descriptors QEMU gets the ones xapid opened for it
 * (taps, images, boot files), each at its target. */
typedef struct {
    GArray *fds;     /* int, xapid's copies (closed once QEMU holds them) */
    GArray *targets; /* int, where QEMU finds each */
} HandedFds;

static void handed_fds_init(HandedFds *h)
{
    h->fds = g_array_new(FALSE, FALSE, sizeof(int));
    h->targets = g_array_new(FALSE, FALSE, sizeof(int));
}

static void handed_fds_add(HandedFds *h, int fd, int target)
{
    g_array_append_val(h->fds, fd);
    g_array_append_val(h->targets, target);
}

static void handed_fds_clear(HandedFds *h)
{
    for (guint i = 0; h->fds && i < h->fds->len; i++)
        close(g_array_index(h->fds, int, i));
    g_clear_pointer(&h->fds, g_array_unref);
    g_clear_pointer(&h->targets, g_array_unref);
}

static int spawn(Domain *d, char **argv, bool keep_console, const HandedFds *handed,
                 XapiError **err)
{
    g_autofree char *intent = domain_path(d, QEMU_START_INTENT);
    g_autofree char *pidfile = domain_path(d, QEMU_PIDFILE);
    g_autofree char *log = domain_path(d, QEMU_STDERR_LOG);
    int fds[QEMU_N_FDS];
    if (open_domain_fds(d, keep_console, fds, err) < 0)
        return -1;
    int log_fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    g_autoptr(GError) gerr = NULL;
    if (!g_file_set_contents(intent, "", 0, &gerr)) {
        xapi_error_internal(err, "cannot write %s: %s", intent, gerr->message);
        close_fds(fds, QEMU_N_FDS);
        if (log_fd >= 0)
            close(log_fd);
        return -1;
    }
    /* The domain's own descriptors at 3.., then the handed ones. */
    size_t n = QEMU_N_FDS + handed->fds->len;
    g_autofree int *all = g_new(int, n);
    g_autofree int *targets = g_new(int, n);
    for (size_t i = 0; i < QEMU_N_FDS; i++)
        all[i] = fds[i], targets[i] = 3 + (int)i;
    for (guint i = 0; i < handed->fds->len; i++) {
        all[QEMU_N_FDS + i] = g_array_index(handed->fds, int, i);
        targets[QEMU_N_FDS + i] = g_array_index(handed->targets, int, i);
    }
    d->pid = qemu_process_spawn(argv, d->dir, all, targets, n, log_fd, err);
    /* QEMU holds the listening sockets now: were it to die, connecting
     * fails at once instead of waiting in a backlog we keep open. */
    close_fds(fds, QEMU_N_FDS);
    if (log_fd >= 0)
        close(log_fd);
    if (d->pid < 0)
        return -1;
    g_autofree char *pid_text = g_strdup_printf("%" G_GINT64_FORMAT "\n", d->pid);
    if (!g_file_set_contents(pidfile, pid_text, -1, &gerr)) {
        kill((pid_t)d->pid, SIGKILL);
        return xapi_error_internal(err, "cannot write %s: %s", pidfile, gerr->message);
    }
    return 0;
}

static int incoming(Domain *d, const char *image, XapiError **err);
static Domain *lookup(const char *uuid, XapiError **err);
static int qmp_transition(const char *uuid, const char *command, HvState from, HvState to,
                          XapiError **err);
static HvDriver qemu_driver;
static int qemu_memory_target(const char *uuid, int64_t target, XapiError **err);
static int pin_vcpus(Domain *d, XapiError **err);

/* A QEMU of this domain that still runs (its pid file, else its -uuid). */
static int64_t live_pid(const Domain *d)
{
    int64_t pid = read_pid(d);
    if (qemu_process_alive(pid) && qemu_process_is_domain(pid, d->uuid))
        return pid;
    return qemu_process_find(d->uuid, d->dir);
}

/* The fd of a NIC's backend: its macvtap on the PIF's NIC, or its tap on
 * the bridge. */
static int nic_backend_open(const HvNic *nic, XapiError **err)
{
    if (nic->macvtap_parent)
        return network_guest_macvtap_open(nic->tap, nic->macvtap_parent, nic->mac, nic->mtu,
                                          nic->policy, err);
    return network_guest_tap_open(nic->tap, nic->bridge, nic->mtu, nic->internal, nic->policy,
                                  err);
}

/* A macvtap outlives its fd: removed where a tap would go by itself. */
static void nic_backends_remove(const HvNic *nics, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        g_autoptr(XapiError) ignored = NULL;
        network_guest_macvtap_remove(nics[i].tap, &ignored);
    }
}

/* The guest's taps (or macvtaps), made before QEMU starts, each where its
 * -netdev says. */
static int open_taps(const HvNic *nics, size_t n, HandedFds *h, XapiError **err)
{
    for (size_t i = 0; i < n; i++) {
        int fd = nic_backend_open(&nics[i], err);
        if (fd < 0) {
            nic_backends_remove(nics, i);
            network_bridges_gc();
            return -1;
        }
        handed_fds_add(h, fd, QEMU_TAP_FD((int)i));
    }
    return 0;
}

/* Every disk's images (image_chain.c), their descriptors where
 * qemu_cmdline puts them; chains has one entry per disk. */
static int open_images(const HvDisk *disks, size_t n, ImageChain *chains, HandedFds *h,
                       XapiError **err)
{
    size_t n_fds = 0;
    for (size_t i = 0; i < n; i++) {
        if (disks[i].path &&
            image_chain_open(disks[i].path, disks[i].format, !disks[i].read_only, &chains[i],
                             err) < 0)
            return -1;
        n_fds += 2 * chains[i].n;
    }
    g_autofree int *fds = g_new(int, n_fds + 1);
    g_autofree int *targets = g_new(int, n_fds + 1);
    size_t listed = qemu_image_fds(chains, n, fds, targets);
    for (size_t i = 0; i < listed; i++) {
        int copy = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
        if (copy < 0)
            return xapi_error_internal(err, "cannot duplicate a descriptor: %s",
                                       g_strerror(errno));
        handed_fds_add(h, copy, targets[i]);
    }
    return 0;
}

static void close_images(ImageChain *chains, size_t n)
{
    for (size_t i = 0; i < n; i++)
        image_chain_close(&chains[i]);
    g_free(chains);
}

/* PV_kernel and PV_ramdisk, read by QEMU through /proc/self/fd/N: a file
 * that QEMU's user may not read goes as a copy in a memfd it may read. */
static int open_boot_file(const char *path, int target, HandedFds *h, XapiError **err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        xapi_error_internal(err, "cannot open %s: %s", path, g_strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!(st.st_mode & S_IROTH)) {
        int copy = boot_file_memfd_copy(fd, (long long)st.st_size, path, err);
        close(fd);
        if (copy < 0)
            return -1;
        fd = copy;
    }
    handed_fds_add(h, fd, target);
    return 0;
}

/* The guest agent's socket, listening before QEMU exists (as the
 * monitors'), the vTPM's swtpm, and under UEFI OVMF's code and the VM's
 * variable store. */
static int open_agent_and_firmware(Domain *d, const Xv *vm, HandedFds *h, XapiError **err)
{
    g_autofree char *agent = domain_path(d, QEMU_AGENT_SOCKET);
    int fd = listening_socket(agent, err);
    if (fd < 0)
        return -1;
    handed_fds_add(h, fd, QEMU_FD_AGENT);
    const Xv *tpm_state = xv_struct_get(vm, VM_VTPM_STATE_MEMBER);
    if (tpm_state) {
        g_autofree char *log = domain_path(d, QEMU_TPM_LOG);
        int tpm = qemu_tpm_start(xv_str(tpm_state), log, err);
        if (tpm < 0)
            return -1;
        handed_fds_add(h, tpm, QEMU_FD_TPM);
    }
    if (!vm_nvram_uefi(vm))
        return 0;
    g_autofree char *vars = vm_nvram_path(d->uuid);
    const char *firmware = vm_nvram_code(vm); /* the Secure Boot build or not */
    int code = open(firmware, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    int store = code < 0 ? -1 : open(vars, O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (store < 0) {
        xapi_error_internal(err, "cannot open %s: %s", code < 0 ? firmware : vars,
                            g_strerror(errno));
        if (code >= 0)
            close(code);
        return -1;
    }
    handed_fds_add(h, code, QEMU_FD_OVMF_CODE);
    handed_fds_add(h, store, QEMU_FD_NVRAM);
    return 0;
}

static int open_boot_files(const Xv *vm, HandedFds *h, XapiError **err)
{
    const Xv *kernel = xv_struct_get(vm, "PV_kernel");
    const Xv *ramdisk = xv_struct_get(vm, "PV_ramdisk");
    const char *kernel_path = kernel ? xv_str(kernel) : NULL;
    const char *ramdisk_path = ramdisk ? xv_str(ramdisk) : NULL;
    if (!kernel_path || !*kernel_path)
        return 0;
    if (open_boot_file(kernel_path, QEMU_FD_KERNEL, h, err) < 0)
        return -1;
    if (ramdisk_path && *ramdisk_path &&
        open_boot_file(ramdisk_path, QEMU_FD_RAMDISK, h, err) < 0)
        return -1;
    return 0;
}

/* Spawns the domain's QEMU and attaches to it; with incoming, QEMU waits
 * for a saved or migrated state (-incoming defer), which the caller hands
 * it. */
/* A disk's ratelimit: QEMU's throttling of its BlockBackend, in its group. */
static int disk_throttle(Domain *d, const HvDisk *disk, XapiError **err)
{
    if (!disk->rate_bps && !disk->rate_iops)
        return 0;
    /* virtio-blk-pci's block backend is its virtio device's, a child */
    g_autofree char *id =
        g_strdup_printf("/machine/peripheral/" QEMU_DISK_ID_FMT "/virtio-backend", disk->slot);
    json_object *args = json_object_new_object();
    json_object_object_add(args, "id", json_object_new_string(id));
    static const char *const zero[] = {"bps_rd", "bps_wr", "iops_rd", "iops_wr"};
    for (size_t i = 0; i < G_N_ELEMENTS(zero); i++)
        json_object_object_add(args, zero[i], json_object_new_int64(0));
    json_object_object_add(args, "bps", json_object_new_int64(disk->rate_bps));
    json_object_object_add(args, "iops", json_object_new_int64(disk->rate_iops));
    json_object_object_add(args, "group", json_object_new_string(disk->rate_group));
    return qmp_args(d, "block_set_io_throttle", args, err);
}

/* The disks' QoS: their ionice (they agree: vm_disks_for_start checked) on
 * QEMU's threads, their rate limits. */
static int disks_qos_apply(Domain *d, const HvDisk *disks, size_t n, XapiError **err)
{
    int ioprio = 0;
    for (size_t i = 0; i < n; i++) {
        ioprio = ioprio ? ioprio : disks[i].ioprio;
        if (disk_throttle(d, &disks[i], err) < 0)
            return -1;
    }
    return vbd_qos_apply(d->pid, ioprio, err);
}

static int start_domain(const char *uuid, const Xv *vm, const HvDisk *disks, size_t n_disks,
                        const HvNic *nics, size_t n_nics, bool incoming, bool paused,
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
    int64_t stray = live_pid(d);
    if (stray) { /* its files are its own: never deleted under it */
        xapi_error_internal(err, "QEMU pid %" G_GINT64_FORMAT " of VM %s still runs", stray,
                            uuid);
        domain_free(d);
        return -1;
    }
    remove_runtime_files(d);
    HandedFds handed;
    handed_fds_init(&handed);
    ImageChain *chains = g_new0(ImageChain, n_disks + 1);
    int rc = open_images(disks, n_disks, chains, &handed, err);
    QemuHost host = {.binary = qemu.binary, .accel = qemu_driver.accel, .chains = chains,
                     .now = g_get_real_time() / G_USEC_PER_SEC};
    g_auto(GStrv) argv = rc < 0 ? NULL
                                : qemu_cmdline(&host, uuid, vm, disks, n_disks, nics, n_nics,
                                               incoming ? "(handed over)" : NULL, paused, err);
    close_images(chains, n_disks);
    if (!argv || open_boot_files(vm, &handed, err) < 0 ||
        open_agent_and_firmware(d, vm, &handed, err) < 0 ||
        open_taps(nics, n_nics, &handed, err) < 0) {
        handed_fds_clear(&handed);
        domain_free(d);
        return -1;
    }
    rc = spawn(d, argv, incoming, &handed, err);
    handed_fds_clear(&handed); /* QEMU holds them now, or they go with it */
    if (rc < 0) {
        nic_backends_remove(nics, n_nics);
        network_bridges_gc();
        domain_free(d);
        return -1;
    }
    if (attach(d, err) < 0) {
        if (qemu_process_alive(d->pid))
            kill((pid_t)d->pid, SIGKILL);
        qemu_process_wait_exit(d->pid, 5000);
        g_clear_pointer(err ? err : &(XapiError *){NULL}, xapi_error_free);
        g_autofree char *why = stderr_tail(d);
        xapi_error_internal(err, "QEMU did not start: %s", why);
        g_mutex_lock(&qemu.lock);
        g_hash_table_remove(qemu.domains, uuid);
        g_mutex_unlock(&qemu.lock);
        remove_runtime_files(d);
        nic_backends_remove(nics, n_nics);
        domain_free(d);
        return -1;
    }
    const Xv *params = xv_struct_get(vm, "VCPUs_params");
    const Xv *mask = params && params->kind == XV_STRUCT ? xv_struct_get(params, "mask") : NULL;
    if (mask && *xv_str(mask))
        d->vcpu_mask = g_strdup(xv_str(mask));
    const Xv *weight = params && params->kind == XV_STRUCT ? xv_struct_get(params, "weight") : NULL;
    const Xv *cap = params && params->kind == XV_STRUCT ? xv_struct_get(params, "cap") : NULL;
    if (save_vcpu_mask(d, err) < 0 || pin_vcpus(d, err) < 0 ||
        cpu_cgroup_apply(uuid, d->pid, weight ? xv_str(weight) : NULL, cap ? xv_str(cap) : NULL,
                         err) < 0 ||
        disks_qos_apply(d, disks, n_disks, err) < 0 ||
        qemu_balloon_stats_enable(d->mon, err) < 0) {
        g_autoptr(XapiError) ignored = NULL;
        qemu_driver.destroy(uuid, &ignored);
        return -1;
    }
    /* The guest starts with memory_dynamic_max of its memory_static_max
     * (a saved state carries its balloon with it). */
    const Xv *dynamic_max = xv_struct_get(vm, "memory_dynamic_max");
    const Xv *static_max = xv_struct_get(vm, "memory_static_max");
    if (!incoming && dynamic_max && static_max && dynamic_max->kind == XV_INT &&
        dynamic_max->i > 0 && dynamic_max->i < static_max->i &&
        qemu_memory_target(uuid, dynamic_max->i, err) < 0) {
        g_autoptr(XapiError) ignored = NULL;
        qemu_driver.destroy(uuid, &ignored);
        return -1;
    }
    return 0;
}

static int qemu_start(const char *uuid, const Xv *vm, const HvDisk *disks, size_t n_disks,
                      const HvNic *nics, size_t n_nics, const char *resume_image, bool paused,
                      XapiError **err)
{
    if (start_domain(uuid, vm, disks, n_disks, nics, n_nics, resume_image != NULL, paused,
                     err) < 0)
        return -1;
    /* A saved state was paused when it was taken: it continues only if
     * asked to. */
    Domain *d = resume_image ? lookup(uuid, err) : NULL;
    if (resume_image && (!d || incoming(d, resume_image, err) < 0 ||
                         (!paused && qmp_transition(uuid, "cont", HV_PAUSED, HV_RUNNING, err) < 0))) {
        g_autoptr(XapiError) ignored = NULL;
        qemu_driver.destroy(uuid, &ignored);
        return -1;
    }
    return 0;
}

/* The start is recorded in the database: the intent has served. */
static void qemu_start_recorded(const char *uuid)
{
    g_autofree char *path = g_build_filename(qemu.root, uuid, QEMU_START_INTENT, NULL);
    unlink(path);
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
    if (!d || qmp_simple(d, command, err) < 0)
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
    return d ? qmp_simple(d, "system_powerdown", err) : -1;
}

static int qemu_nmi(const char *uuid, XapiError **err)
{
    Domain *d = lookup(uuid, err);
    return d ? qmp_simple(d, "inject-nmi", err) : -1;
}

static int qemu_send_keys(const char *uuid, const char *const *qcodes, XapiError **err)
{
    Domain *d = lookup(uuid, err);
    if (!d)
        return -1;
    json_object *keys = json_object_new_array();
    for (const char *const *q = qcodes; *q; q++) {
        json_object *key = json_object_new_object();
        json_object_object_add(key, "type", json_object_new_string("qcode"));
        json_object_object_add(key, "data", json_object_new_string(*q));
        json_object_array_add(keys, key);
    }
    json_object *args = json_object_new_object();
    json_object_object_add(args, "keys", keys);
    return qmp_args(d, "send-key", args, err);
}

static int qemu_reset(const char *uuid, XapiError **err)
{
    Domain *d = lookup(uuid, err);
    if (d) {
        g_mutex_lock(&qemu.lock);
        d->last_reset = g_get_monotonic_time();
        g_mutex_unlock(&qemu.lock);
    }
    if (!d || qmp_simple(d, "system_reset", err) < 0 || qmp_simple(d, "cont", err) < 0)
        return -1;
    save_stop_reason(d, NULL);
    g_mutex_lock(&qemu.lock);
    d->rebooted = false;
    set_state(d, HV_RUNNING);
    g_mutex_unlock(&qemu.lock);
    return 0;
}

/* Ends a QEMU: quit over the monitor if there is one, SIGKILL if it lingers. */
static int stop_process(int64_t pid, QmpMonitor *mon, const char *uuid, XapiError **err)
{
    if (mon) {
        g_autoptr(XapiError) ignored = NULL;
        json_object_put(qmp_monitor_command(mon, "quit", NULL, -1, &ignored));
    } else if (qemu_process_alive(pid)) {
        kill((pid_t)pid, SIGTERM);
    }
    /* QEMU quits within milliseconds; a wedged one gets SIGKILL. */
    if (!qemu_process_wait_exit(pid, 2000)) {
        kill((pid_t)pid, SIGKILL);
        if (!qemu_process_wait_exit(pid, 5000))
            return xapi_error_internal(err, "QEMU (pid %" G_GINT64_FORMAT ") of VM %s does not exit",
                                       pid, uuid);
    }
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
    if (stop_process(d->pid, d->mon, uuid, err) < 0)
        return -1;
    g_mutex_lock(&qemu.lock);
    g_hash_table_remove(qemu.domains, uuid);
    g_cond_broadcast(&qemu.changed);
    g_mutex_unlock(&qemu.lock);
    remove_runtime_files(d);
    network_guest_macvtaps_remove(uuid); /* macvtaps stay unless removed */
    network_guest_taps_wait_gone(uuid); /* its taps go with QEMU */
    domain_free(d); /* joins the monitor's reader */
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
    d->pid = live_pid(d);
    g_autoptr(XapiError) err = NULL;
    if (d->pid && attach(d, &err) == 0) {
        qemu_start_recorded(uuid); /* the VM's record says it runs */
        load_vcpu_mask(d);
        if (pin_vcpus(d, &err) < 0)
            g_warning("VM %s: %s", uuid, err->params->len ? (char *)err->params->pdata[0]
                                                          : err->code);
        g_autoptr(XapiError) no_stats = NULL; /* a domain of an older xapid may have no balloon */
        qemu_balloon_stats_enable(d->mon, &no_stats);
        return true;
    }
    if (d->pid) { /* a QEMU we cannot drive is stopped, not left behind */
        g_warning("VM %s: QEMU pid %" G_GINT64_FORMAT " not reachable (%s): stopping it", uuid,
                  d->pid, err ? err->code : "?");
        g_autoptr(XapiError) ignored = NULL;
        qmp_monitor_close(g_steal_pointer(&d->mon));
        if (stop_process(d->pid, NULL, uuid, &ignored) < 0) {
            domain_free(d); /* it keeps its files */
            return false;
        }
    }
    remove_runtime_files(d);
    domain_free(d);
    return false;
}

/* Removes a domain's directory and what is in it (flat). */
static void remove_domain_dir(const char *dir)
{
    g_autoptr(GDir) entries = g_dir_open(dir, 0, NULL);
    for (const char *name; entries && (name = g_dir_read_name(entries));) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        unlink(path);
    }
    rmdir(dir);
}

static void qemu_stop_unattached(void)
{
    g_autoptr(GDir) dir = g_dir_open(qemu.root, 0, NULL);
    for (const char *name; dir && (name = g_dir_read_name(dir));) {
        g_mutex_lock(&qemu.lock);
        bool attached = find(name) != NULL;
        g_mutex_unlock(&qemu.lock);
        if (attached)
            continue;
        Domain *d = domain_new(name);
        int64_t pid = live_pid(d);
        g_autoptr(XapiError) err = NULL;
        if (pid) {
            g_message("domain %s: QEMU pid %" G_GINT64_FORMAT
                      " runs for a VM not resident here: stopping it", name, pid);
            if (stop_process(pid, NULL, name, &err) < 0) {
                g_warning("domain %s: %s", name, err->code);
                domain_free(d);
                continue;
            }
        }
        remove_domain_dir(d->dir);
        domain_free(d);
    }
}

/* Every domain has a VNC server (qemu_cmdline.c); its serial port is a
 * socket in its directory (an older xapid's domain may lack it). */
static bool qemu_console_served(const char *uuid, const char *protocol)
{
    if (strcmp(protocol, "rfb") == 0) {
        g_mutex_lock(&qemu.lock);
        bool known = find(uuid) != NULL;
        g_mutex_unlock(&qemu.lock);
        return known;
    }
    g_autofree char *serial = g_build_filename(qemu.root, uuid, QEMU_SERIAL_SOCKET, NULL);
    return strcmp(protocol, "vt100") == 0 && g_file_test(serial, G_FILE_TEST_EXISTS);
}

static int connect_unix(const char *path, XapiError **err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path)
        return xapi_error_internal(err, "socket path too long: %s", path);
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        xapi_error_internal(err, "cannot connect to %s: %s", path, g_strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static json_object *args_object(const char *key, ...) G_GNUC_NULL_TERMINATED;

/* A VNC client: one end of a socket pair QEMU's VNC server takes as a
 * client of its own (add_client), as libvirt's openGraphicsFD does. */
static int connect_vnc(const char *uuid, XapiError **err)
{
    Domain *d = lookup(uuid, err);
    if (!d)
        return -1;
    static gint counter;
    g_autofree char *name = g_strdup_printf("vnc-client-%d", g_atomic_int_add(&counter, 1));
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
        return xapi_error_internal(err, "socketpair: %s", g_strerror(errno));
    json_object *ret = qmp_monitor_command(d->mon, "getfd", args_object("fdname", name, NULL),
                                           pair[1], err);
    close(pair[1]);
    if (!ret) {
        close(pair[0]);
        return -1;
    }
    json_object_put(ret);
    json_object *args = args_object("protocol", "vnc", "fdname", name, NULL);
    json_object_object_add(args, "skipauth", json_object_new_boolean(true));
    if (qmp_args(d, "add_client", args, err) < 0) {
        close(pair[0]);
        return -1;
    }
    return pair[0];
}

static int qemu_console_connect(const char *uuid, const char *protocol, XapiError **err)
{
    if (strcmp(protocol, "rfb") == 0)
        return connect_vnc(uuid, err);
    g_autofree char *serial = g_build_filename(qemu.root, uuid, QEMU_SERIAL_SOCKET, NULL);
    return connect_unix(serial, err);
}

/* ---- disks ----------------------------------------------------------------- */

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
    json_object *blocks = qmp_monitor_command(d->mon, "query-block", NULL, -1, err);
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

/* Until QEMU reports the device gone (the guest let go), or the deadline. */
static bool wait_device_deleted(Domain *d, const char *id, int64_t deadline)
{
    g_mutex_lock(&qemu.lock);
    bool gone;
    while (!(gone = g_hash_table_remove(d->deleted, id)))
        if (!g_cond_wait_until(&qemu.changed, &qemu.lock, deadline))
            break;
    g_mutex_unlock(&qemu.lock);
    return gone;
}

static int qemu_disk_plug(const char *uuid, const HvDisk *disk, XapiError **err)
{
    if (disk->floppy)
        return xapi_error_set(err, "OPERATION_NOT_ALLOWED",
                              "a floppy drive is plugged only when the VM starts", NULL);
    Domain *d = lookup(uuid, err);
    if (!d)
        return -1;
    ImageChain chain;
    if (image_chain_open(disk->path, disk->format, !disk->read_only, &chain, err) < 0)
        return -1;
    g_autofree int64_t *fdsets = g_new(int64_t, chain.n);
    int rc = qemu_fdsets_add_chain(d->mon, disk->slot, &chain, fdsets, err);
    size_t n_sets = chain.n;
    g_autofree char *blockdev = rc < 0 ? NULL : qemu_disk_blockdev_json(disk, &chain, fdsets);
    image_chain_close(&chain); /* QEMU holds its copies */
    if (rc < 0)
        return -1;
    g_autofree char *device = qemu_disk_device_json(disk);
    if (qmp_args(d, "blockdev-add", json_tokener_parse(blockdev), err) < 0) {
        qemu_fdsets_remove(d->mon, fdsets, n_sets);
        return -1;
    }
    if (qmp_args(d, "device_add", json_tokener_parse(device), err) < 0) {
        g_autofree char *node = g_strdup_printf("vbd%d", disk->slot);
        g_autoptr(XapiError) ignored = NULL;
        qmp_args(d, "blockdev-del", args_object("node-name", node, NULL), &ignored);
        qemu_fdsets_remove(d->mon, fdsets, n_sets);
        return -1;
    }
    return disks_qos_apply(d, disk, 1, err);
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
    if (!node)
        return -1;
    g_mutex_lock(&qemu.lock);
    g_hash_table_remove(d->deleted, id);
    g_mutex_unlock(&qemu.lock);
    if (qmp_args(d, "device_del", args_object("id", id, NULL), err) < 0)
        return -1;
    if (!wait_device_deleted(d, id, g_get_monotonic_time() + timeout_ms * 1000))
        return 1;
    /* The image stays open until its nodes go; a node made by a live
     * snapshot is released with its device. */
    g_autoptr(XapiError) not_ours = NULL;
    qmp_args(d, "blockdev-del", args_object("node-name", node, NULL), &not_ours);
    qemu_fdsets_remove_slot(d->mon, disk->slot, NULL, 0);
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
        if (qmp_args(d, "eject", args, err) < 0)
            return -1;
        qemu_fdsets_remove_slot(d->mon, disk->slot, NULL, 0);
        return 0;
    }
    /* The disc's image on a set of its own; the previous disc's set goes
     * once the new one is in. */
    ImageChain chain;
    if (image_chain_open(disk->path, disk->format, false, &chain, err) < 0)
        return -1;
    g_autofree int64_t *fdsets = g_new(int64_t, chain.n);
    size_t n_sets = chain.n;
    int rc = qemu_fdsets_add_chain(d->mon, disk->slot, &chain, fdsets, err);
    image_chain_close(&chain);
    if (rc < 0)
        return -1;
    g_autofree char *filename = g_strdup_printf("/dev/fdset/%" G_GINT64_FORMAT, fdsets[0]);
    if (qmp_args(d, "blockdev-change-medium",
                 args_object("id", id, "filename", filename, "format", disk->format,
                             "read-only-mode", "read-only", NULL),
                 err) < 0) {
        qemu_fdsets_remove(d->mon, fdsets, n_sets);
        return -1;
    }
    qemu_fdsets_remove_slot(d->mon, disk->slot, fdsets, n_sets);
    return 0;
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

/* The node name of the image at path once it tops a disk: made from its
 * file name (a uuid), so that a move made before a crash is seen done. */
static char *leaf_node(const char *path)
{
    g_autofree char *name = g_path_get_basename(path);
    GString *node = g_string_new("leaf-");
    for (const char *c = name; *c && *c != '.' && node->len < 31; c++)
        if (g_ascii_isalnum(*c))
            g_string_append_c(node, *c);
    return g_string_free(node, FALSE);
}

/* The overlay as a node of its own, without its backing file yet (the
 * transaction puts the disk's current top under it, keeping the relative
 * backing name the file was made with), on a set of the disk's slot. */
static int add_leaf(Domain *d, int slot, const char *node, const char *path, XapiError **err)
{
    ImageChain chain = {0};
    ImageLayer layer = {.format = (char *)"qcow2", .fd_ro = -1, .fd_rw = -1};
    layer.fd_ro = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    layer.fd_rw = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    int64_t fdset = -1;
    int rc = -1;
    if (layer.fd_ro < 0 || layer.fd_rw < 0) {
        xapi_error_internal(err, "cannot open %s: %s", path, g_strerror(errno));
    } else {
        chain.layers = &layer;
        chain.n = 1;
        rc = qemu_fdsets_add_chain(d->mon, slot, &chain, &fdset, err);
    }
    if (layer.fd_ro >= 0)
        close(layer.fd_ro);
    if (layer.fd_rw >= 0)
        close(layer.fd_rw);
    if (rc < 0)
        return -1;
    g_autofree char *filename = g_strdup_printf("/dev/fdset/%" G_GINT64_FORMAT, fdset);
    json_object *file = args_object("driver", "file", "filename", filename, NULL);
    json_object *args = args_object("driver", "qcow2", "node-name", node, NULL);
    json_object_object_add(args, "file", file);
    json_object_object_add(args, "backing", NULL); /* JSON null */
    if (qmp_args(d, "blockdev-add", args, err) < 0) {
        qemu_fdsets_remove(d->mon, &fdset, 1);
        return -1;
    }
    return 0; /* the set stays while the disk does: QEMU may reopen the image */
}

static int qemu_disks_switch(const char *uuid, const HvDisk *disks, const char *const *new_paths,
                             size_t n, XapiError **err)
{
    Domain *d = lookup(uuid, err);
    if (!d)
        return -1;
    json_object *actions = json_object_new_array();
    g_autoptr(GPtrArray) added = g_ptr_array_new_with_free_func(g_free);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        g_autofree char *id = g_strdup_printf(QEMU_DISK_ID_FMT, disks[i].slot);
        g_autofree char *top = top_node(d, id, err);
        g_autofree char *node = leaf_node(new_paths[i]);
        if (!top ||
            (strcmp(top, node) != 0 && add_leaf(d, disks[i].slot, node, new_paths[i], err) < 0)) {
            rc = -1;
        } else if (strcmp(top, node) != 0) {
            g_ptr_array_add(added, g_strdup(node));
            json_object *action = args_object("type", "blockdev-snapshot", NULL);
            json_object_object_add(action, "data",
                                   args_object("node", top, "overlay", node, NULL));
            json_object_array_add(actions, action);
        }
    }
    if (rc == 0 && json_object_array_length(actions) > 0) {
        json_object *args = json_object_new_object();
        json_object_object_add(args, "actions", json_object_get(actions));
        rc = qmp_args(d, "transaction", args, err);
    }
    json_object_put(actions);
    for (guint i = 0; rc < 0 && i < added->len; i++) {
        g_autoptr(XapiError) ignored = NULL;
        qmp_args(d, "blockdev-del", args_object("node-name", added->pdata[i], NULL), &ignored);
    }
    return rc;
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
    json_object *reply = qmp_monitor_command(d->mon, command, NULL, -1, err);
    json_object *v;
    char *text = reply && json_object_object_get_ex(reply, field, &v)
                     ? g_strdup(json_object_get_string(v)) : NULL;
    if (reply && !text)
        text = g_strdup("");
    json_object_put(reply);
    return text;
}

/* Hands fd to QEMU under name (getfd) and turns on MIGRATION events, so
 * that a migration over it reports its end instead of being polled. */
static int prepare_migration(Domain *d, int fd, const char *name, XapiError **err)
{
    json_object *cap = json_object_new_object();
    json_object_object_add(cap, "capability", json_object_new_string("events"));
    json_object_object_add(cap, "state", json_object_new_boolean(true));
    json_object *caps = json_object_new_array();
    json_object_array_add(caps, cap);
    json_object *args = json_object_new_object();
    json_object_object_add(args, "capabilities", caps);
    if (qmp_args(d, "migrate-set-capabilities", args, err) < 0)
        return -1;
    json_object *ret = qmp_monitor_command(d->mon, "getfd", args_object("fdname", name, NULL), fd,
                                           err);
    if (!ret)
        return -1;
    json_object_put(ret);
    g_mutex_lock(&qemu.lock);
    g_clear_pointer(&d->migration, g_free);
    g_mutex_unlock(&qemu.lock);
    return 0;
}

/* Until the migration under way ends: 0 when it completed. */
static int wait_migration(Domain *d, const char *what, XapiError **err)
{
    g_mutex_lock(&qemu.lock);
    for (;;) {
        const char *st = d->migration;
        if (st && strcmp(st, "completed") == 0) {
            g_mutex_unlock(&qemu.lock);
            return 0;
        }
        if ((st && (strcmp(st, "failed") == 0 || strcmp(st, "cancelled") == 0)) ||
            d->state == HV_ABSENT)
            break;
        g_cond_wait(&qemu.changed, &qemu.lock);
    }
    g_autofree char *status = g_strdup(d->migration ? d->migration : "QEMU gone");
    g_mutex_unlock(&qemu.lock);
    g_autoptr(XapiError) ignored = NULL;
    g_autofree char *why = d->state != HV_ABSENT
                               ? query_field(d, "query-migrate", "error-desc", &ignored) : NULL;
    return xapi_error_internal(err, "%s failed: %s", what, why && *why ? why : status);
}

/* Loads the saved state at image (QEMU waits for it: -incoming defer);
 * xapid opens the file, QEMU reads the descriptor. */
static int incoming(Domain *d, const char *image, XapiError **err)
{
    int fd = open(image, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return xapi_error_internal(err, "cannot open %s: %s", image, g_strerror(errno));
    int rc = prepare_migration(d, fd, "xapid-incoming", err);
    close(fd); /* QEMU has its own copy */
    if (rc < 0 ||
        qmp_args(d, "migrate-incoming", args_object("uri", "fd:xapid-incoming", NULL), err) < 0 ||
        wait_migration(d, "loading the saved state", err) < 0)
        return -1;
    g_autofree char *status = query_field(d, "query-status", "status", err);
    if (!status)
        return -1;
    g_mutex_lock(&qemu.lock);
    set_state(d, strcmp(status, "running") == 0 ? HV_RUNNING : HV_PAUSED);
    g_mutex_unlock(&qemu.lock);
    return 0;
}

static int hotplugged_vcpus(Domain *d, XapiError **err);

static int qemu_save(const char *uuid, const char *path, XapiError **err)
{
    Domain *d = lookup(uuid, err);
    if (!d)
        return -1;
    int hotplugged = hotplugged_vcpus(d, err);
    if (hotplugged < 0)
        return -1;
    if (hotplugged > 0) /* the resume boots VCPUs_at_startup: the state would not fit */
        return xapi_error_set(err, "OPERATION_NOT_ALLOWED",
                              "the domain has hot-plugged vCPUs: set_VCPUs_number_live back to "
                              "VCPUs_at_startup before saving it", NULL);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return xapi_error_internal(err, "cannot create %s: %s", path, g_strerror(errno));
    int rc = prepare_migration(d, fd, "xapid-save", err) < 0 ||
                     qmp_args(d, "migrate", args_object("uri", "fd:xapid-save", NULL), err) < 0 ||
                     wait_migration(d, "saving the domain's state", err) < 0
                 ? -1 : 0;
    /* The image is the only copy of the guest once the domain stops. */
    if (rc == 0 && fsync(fd) < 0)
        rc = xapi_error_internal(err, "cannot write %s: %s", path, g_strerror(errno));
    close(fd);
    return rc;
}

/* ---- NICs of a running domain ---------------------------------------------- */

static void netdev_del_quietly(Domain *d, const char *fmt, int device)
{
    g_autofree char *id = g_strdup_printf(fmt, device);
    g_autoptr(XapiError) ignored = NULL;
    qmp_args(d, "netdev_del", args_object("id", id, NULL), &ignored);
}

/* A switchable NIC's backend leaves the hub (QEMU closes its fd), and its
 * link goes: a macvtap at once, a tap when the fd is closed. */
static void nic_backend_detach(Domain *d, const HvNic *nic)
{
    netdev_del_quietly(d, QEMU_NIC_BACKEND_PORT_FMT, nic->device);
    netdev_del_quietly(d, QEMU_NIC_BACKEND_FMT, nic->device);
    g_autoptr(XapiError) ignored = NULL;
    network_guest_macvtap_remove(nic->tap, &ignored);
    network_guest_tap_wait_gone(nic->tap);
    network_bridges_gc();
}

/* A backend made for nic joins the NIC's hub: its fd passed with getfd
 * (under the backend's id), the tap netdev, its hub port. */
static int nic_backend_attach(Domain *d, const HvNic *nic, XapiError **err)
{
    int fd = nic_backend_open(nic, err);
    if (fd < 0)
        return -1;
    g_autofree char *name = g_strdup_printf(QEMU_NIC_BACKEND_FMT, nic->device);
    g_autofree char *backend = qemu_nic_backend_json(nic);
    g_autofree char *port = qemu_nic_hubport_json(nic, true);
    json_object *r = qmp_monitor_command(d->mon, "getfd", args_object("fdname", name, NULL), fd,
                                         err);
    close(fd);
    if (r) {
        json_object_put(r);
        r = qmp_monitor_command(d->mon, "netdev_add", json_tokener_parse(backend), -1, err);
    }
    if (r) {
        json_object_put(r);
        r = qmp_monitor_command(d->mon, "netdev_add", json_tokener_parse(port), -1, err);
    }
    if (!r) {
        /* netdev_add takes the fd only when it succeeds. */
        g_autoptr(XapiError) ignored = NULL;
        qmp_args(d, "closefd", args_object("fdname", name, NULL), &ignored);
        nic_backend_detach(d, nic);
        return -1;
    }
    json_object_put(r);
    return 0;
}

/* Whether the domain's NIC device has a hub (it was made switchable):
 * a property of the running domain, not of the VIF's record. HMP's "info
 * network" lists a hub's ports with their peers: " \\ vif0: vif0-dev: ..." */
static bool nic_has_hub(Domain *d, int device)
{
    g_autoptr(XapiError) ignored = NULL;
    json_object *r = qmp_monitor_command(
        d->mon, "human-monitor-command", args_object("command-line", "info network", NULL), -1,
        &ignored);
    g_autofree char *port = g_strdup_printf(" " QEMU_NIC_NETDEV_FMT ": " QEMU_NIC_ID_FMT ":",
                                            device, device);
    bool hub = r && json_object_is_type(r, json_type_string) &&
               strstr(json_object_get_string(r), port) != NULL;
    json_object_put(r);
    return hub;
}

static int switchable_nic_plug(Domain *d, const HvNic *nic, XapiError **err)
{
    g_autofree char *device = qemu_nic_device_json(nic);
    g_autofree char *own_port = qemu_nic_hubport_json(nic, false);
    if (nic_backend_attach(d, nic, err) < 0)
        return -1;
    json_object *r = qmp_monitor_command(d->mon, "netdev_add", json_tokener_parse(own_port), -1,
                                         err);
    if (r) {
        json_object_put(r);
        r = qmp_monitor_command(d->mon, "device_add", json_tokener_parse(device), -1, err);
    }
    if (!r) {
        netdev_del_quietly(d, QEMU_NIC_NETDEV_FMT, nic->device);
        nic_backend_detach(d, nic);
        return -1;
    }
    json_object_put(r);
    return 0;
}

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
    if (nic->switchable)
        return switchable_nic_plug(d, nic, err);
    int fd = network_guest_tap_open(nic->tap, nic->bridge, nic->mtu, nic->internal,
                                    nic->policy, err);
    if (fd < 0)
        return -1;
    g_autofree char *name = g_strdup_printf(QEMU_NIC_NETDEV_FMT, nic->device);
    g_autofree char *netdev = qemu_nic_netdev_json(nic);
    g_autofree char *device = qemu_nic_device_json(nic);
    int rc = -1;
    /* The tap travels with getfd on the domain's monitor, which keeps it
     * under name for the netdev_add that follows on the same connection. */
    json_object *r = qmp_monitor_command(d->mon, "getfd", args_object("fdname", name, NULL), fd,
                                         err);
    close(fd); /* QEMU has its own copy now, or none */
    if (r) {
        json_object_put(r);
        r = qmp_monitor_command(d->mon, "netdev_add", json_tokener_parse(netdev), -1, err);
    }
    if (r) {
        json_object_put(r);
        r = qmp_monitor_command(d->mon, "device_add", json_tokener_parse(device), -1, err);
        if (r) {
            rc = 0;
        } else {
            g_autoptr(XapiError) ignored = NULL;
            json_object_put(qmp_monitor_command(d->mon, "netdev_del",
                                                args_object("id", name, NULL), -1, &ignored));
        }
    }
    json_object_put(r);
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
    g_mutex_lock(&qemu.lock);
    g_hash_table_remove(d->deleted, id);
    g_mutex_unlock(&qemu.lock);
    g_autoptr(XapiError) del_error = NULL;
    if (qmp_args(d, "device_del", args_object("id", id, NULL), &del_error) == 0) {
        if (!wait_device_deleted(d, id, g_get_monotonic_time() + timeout_ms * 1000))
            return 1;
    } else if (!strstr(del_error->params->len ? (char *)del_error->params->pdata[0] : "",
                       "not found")) {
        if (err && !*err) /* anything but a NIC already gone */
            *err = g_steal_pointer(&del_error);
        return -1;
    }
    /* The netdev holds the tap: deleting it removes the tap. */
    g_autoptr(XapiError) gone = NULL;
    qmp_args(d, "netdev_del", args_object("id", name, NULL), &gone);
    nic_backend_detach(d, nic); /* a switchable NIC's, and a macvtap */
    netdev_del_quietly(d, QEMU_NIC_SINK_FMT, nic->device); /* a failed switch's */
    return 0;
}

typedef enum { BACKEND_NONE, BACKEND_TAP, BACKEND_MACVTAP } NicBackend;

/* Test only: XAPID_TEST_NIC_SWITCH_GAP_MS keeps a switching NIC without a
 * backend that long before its new one joins, so that the guest surely
 * sends into the gap (test_first_vm_qemu.py). */
static void test_switch_gap(void)
{
    const char *gap = g_getenv("XAPID_TEST_NIC_SWITCH_GAP_MS");
    if (gap)
        g_usleep((gulong)g_ascii_strtoull(gap, NULL, 10) * 1000);
}

/* The hub's sink port (QEMU_NIC_SINK_FMT), before the backend leaves; one
 * left by a switch that did not end (xapid killed) is already there. */
static int nic_sink_add(Domain *d, const HvNic *nic, XapiError **err)
{
    g_autofree char *sink = qemu_nic_sink_json(nic);
    g_autoptr(XapiError) e = NULL;
    json_object *r = qmp_monitor_command(d->mon, "netdev_add", json_tokener_parse(sink), -1, &e);
    json_object_put(r);
    if (r || (e && e->params->len && strstr(e->params->pdata[0], "Duplicate")))
        return 0;
    if (err && !*err)
        *err = g_steal_pointer(&e);
    return -1;
}

static int qemu_nic_update(const char *uuid, const HvNic *nic, XapiError **err)
{
    Domain *d = lookup(uuid, err);
    if (!d)
        return -1;
    NicBackend want = nic->detached         ? BACKEND_NONE
                      : nic->macvtap_parent ? BACKEND_MACVTAP
                                            : BACKEND_TAP;
    NicBackend now = network_guest_macvtap_on(nic->tap, NULL) ? BACKEND_MACVTAP
                     : network_guest_tap_exists(nic->tap)     ? BACKEND_TAP
                                                              : BACKEND_NONE;
    if (want == BACKEND_TAP && now == BACKEND_TAP)
        return network_guest_tap_update(nic->tap, nic->bridge, nic->mtu, nic->internal,
                                        nic->policy, err);
    if (want == BACKEND_MACVTAP && network_guest_macvtap_on(nic->tap, nic->macvtap_parent))
        return network_guest_macvtap_update(nic->tap, nic->policy, err);
    if (!nic_has_hub(d, nic->device)) {
        char device[16];
        g_snprintf(device, sizeof device, "%d", nic->device);
        g_autofree char *why = g_strdup_printf(
            "the running NIC %s cannot change between a bridge and macvtap: it was plugged on "
            "a network whose PIF is no NIC; unplug and plug it",
            device);
        return xapi_error_set(err, "OPERATION_NOT_ALLOWED", why, NULL);
    }
    /* The sink stays while the NIC has no backend, an attach that failed
     * included: the guest's frames go nowhere, as on a cable pulled out. */
    if (nic_sink_add(d, nic, err) < 0)
        return -1;
    if (now != BACKEND_NONE)
        nic_backend_detach(d, nic);
    if (want == BACKEND_NONE)
        return 0;
    test_switch_gap();
    if (nic_backend_attach(d, nic, err) < 0)
        return -1;
    netdev_del_quietly(d, QEMU_NIC_SINK_FMT, nic->device);
    return 0;
}

/* ---- metrics ------------------------------------------------------------------ */

/* CPU time a thread of QEMU used (utime + stime of its stat), seconds. */
static double thread_cpu_seconds(int64_t pid, int64_t tid)
{
    g_autofree char *path = g_strdup_printf("/proc/%" G_GINT64_FORMAT "/task/%" G_GINT64_FORMAT
                                            "/stat", pid, tid);
    g_autofree char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return -1;
    const char *p = strrchr(text, ')'); /* the name may hold spaces */
    unsigned long long utime = 0, stime = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                     &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static int64_t tap_counter(const char *tap, const char *counter)
{
    g_autofree char *path = g_strdup_printf("/sys/class/net/%s/statistics/%s", tap, counter);
    g_autofree char *text = NULL;
    return g_file_get_contents(path, &text, NULL, NULL) ? g_ascii_strtoll(text, NULL, 10) : -1;
}

static json_object *member(json_object *o, const char *key)
{
    json_object *v = NULL;
    return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* vCPUs from query-cpus-fast's thread ids, disks from query-blockstats,
 * NICs from their taps (the guest's rx is the tap's tx). */
static int qemu_sample(const char *uuid, HvSample *sample)
{
    g_autoptr(XapiError) err = NULL;
    Domain *d = lookup(uuid, &err);
    if (!d || !d->mon)
        return -1;
    json_object *cpus = qmp_monitor_command(d->mon, "query-cpus-fast", NULL, -1, &err);
    sample->n_vcpus = 0;
    for (size_t i = 0; cpus && i < json_object_array_length(cpus) &&
                       sample->n_vcpus < HV_SAMPLE_MAX_VCPUS; i++) {
        json_object *tid = member(json_object_array_get_idx(cpus, i), "thread-id");
        if (tid)
            sample->vcpu_seconds[sample->n_vcpus++] =
                thread_cpu_seconds(d->pid, json_object_get_int64(tid));
    }
    json_object_put(cpus);
    json_object *blocks = qmp_monitor_command(d->mon, "query-blockstats", NULL, -1, &err);
    for (unsigned k = 0; k < sample->n_disks; k++) {
        g_autofree char *id = g_strdup_printf(QEMU_DISK_ID_FMT, sample->disks[k].slot);
        g_autofree char *inner = g_strconcat("/", id, "/", NULL);
        sample->disks[k].read_bytes = sample->disks[k].write_bytes = -1;
        sample->disks[k].read_ops = sample->disks[k].write_ops = -1;
        sample->disks[k].read_ns = sample->disks[k].write_ns = -1;
        for (size_t i = 0; blocks && i < json_object_array_length(blocks); i++) {
            json_object *b = json_object_array_get_idx(blocks, i);
            const char *qdev = json_object_get_string(member(b, "qdev"));
            /* "vbd0-dev" or "/machine/peripheral/vbd0-dev/virtio-backend" */
            if (!qdev || (strcmp(qdev, id) != 0 && !strstr(qdev, inner)))
                continue;
            json_object *stats = member(b, "stats");
            sample->disks[k].read_bytes = json_object_get_int64(member(stats, "rd_bytes"));
            sample->disks[k].write_bytes = json_object_get_int64(member(stats, "wr_bytes"));
            sample->disks[k].read_ops = json_object_get_int64(member(stats, "rd_operations"));
            sample->disks[k].write_ops = json_object_get_int64(member(stats, "wr_operations"));
            sample->disks[k].read_ns = json_object_get_int64(member(stats, "rd_total_time_ns"));
            sample->disks[k].write_ns = json_object_get_int64(member(stats, "wr_total_time_ns"));
        }
    }
    json_object_put(blocks);
    sample->memory_internal_free = qemu_balloon_free_kib(d->mon);
    for (unsigned k = 0; k < sample->n_nics; k++) {
        g_autofree char *tap = network_guest_tap_name(uuid, sample->nics[k].device);
        sample->nics[k].rx_bytes = tap_counter(tap, "tx_bytes");
        sample->nics[k].tx_bytes = tap_counter(tap, "rx_bytes");
    }
    return 0;
}

/* ---- memory and vCPUs ------------------------------------------------------ */

static int qemu_memory_target(const char *uuid, int64_t target, XapiError **err)
{
    Domain *d = lookup(uuid, err);
    if (!d)
        return -1;
    json_object *args = json_object_new_object();
    json_object_object_add(args, "value", json_object_new_int64(target));
    return qmp_args(d, "balloon", args, err);
}

static int64_t qemu_memory_actual(const char *uuid, XapiError **err)
{
    Domain *d = lookup(uuid, err);
    json_object *reply = d ? qmp_monitor_command(d->mon, "query-balloon", NULL, -1, err) : NULL;
    json_object *actual;
    int64_t bytes = reply && json_object_object_get_ex(reply, "actual", &actual)
                        ? json_object_get_int64(actual) : -1;
    json_object_put(reply);
    if (reply && bytes < 0)
        xapi_error_internal(err, "query-balloon gave no actual size");
    return bytes;
}

static int64_t cpu_prop(json_object *cpu, const char *name)
{
    json_object *props, *v;
    return json_object_object_get_ex(cpu, "props", &props) &&
                   json_object_object_get_ex(props, name, &v)
               ? json_object_get_int64(v) : 0;
}

static int compare_cpu_slots(const void *a, const void *b)
{
    json_object *x = *(json_object *const *)a, *y = *(json_object *const *)b;
    static const char *const order[] = {"socket-id", "core-id", "thread-id"};
    for (size_t i = 0; i < G_N_ELEMENTS(order); i++) {
        int64_t p = cpu_prop(x, order[i]), q = cpu_prop(y, order[i]);
        if (p != q)
            return p < q ? -1 : 1;
    }
    return 0;
}

static const char *cpu_qom_path(json_object *cpu)
{
    json_object *path;
    return json_object_object_get_ex(cpu, "qom-path", &path) ? json_object_get_string(path)
                                                              : NULL;
}

/* The id xapid gives a vCPU it plugs: after its place in the topology. */
static char *cpu_id(json_object *cpu)
{
    return g_strdup_printf("vcpu-%" G_GINT64_FORMAT "-%" G_GINT64_FORMAT "-%" G_GINT64_FORMAT,
                           cpu_prop(cpu, "socket-id"), cpu_prop(cpu, "core-id"),
                           cpu_prop(cpu, "thread-id"));
}

static int plug_cpu(Domain *d, json_object *cpu, XapiError **err)
{
    json_object *type;
    if (!json_object_object_get_ex(cpu, "type", &type))
        return xapi_error_internal(err, "query-hotpluggable-cpus gave no CPU type");
    g_autofree char *id = cpu_id(cpu);
    json_object *args = args_object("driver", json_object_get_string(type), "id", id, NULL);
    static const char *const props[] = {"socket-id", "core-id", "thread-id"};
    for (size_t i = 0; i < G_N_ELEMENTS(props); i++)
        json_object_object_add(args, props[i], json_object_new_int64(cpu_prop(cpu, props[i])));
    return qmp_args(d, "device_add", args, err);
}

static int unplug_cpu(Domain *d, json_object *cpu, int64_t deadline, XapiError **err)
{
    g_autofree char *id = cpu_id(cpu);
    if (qmp_args(d, "device_del", args_object("id", id, NULL), err) < 0)
        return -1;
    return wait_device_deleted(d, id, deadline) ? 0 : 1;
}

/* Every vCPU thread on the host CPUs of VCPUs_params:mask. */
static int pin_vcpus(Domain *d, XapiError **err)
{
    if (!d->vcpu_mask)
        return 0;
    g_autoptr(GArray) cpus = g_array_new(FALSE, FALSE, sizeof(int));
    if (!vm_fields_parse_mask(d->vcpu_mask, CPU_SETSIZE, cpus))
        return xapi_error_set(err, "INVALID_VALUE", "VCPUs_params:mask", d->vcpu_mask, NULL);
    cpu_set_t set;
    CPU_ZERO(&set);
    for (guint i = 0; i < cpus->len; i++)
        CPU_SET(g_array_index(cpus, int, i), &set);
    json_object *list = qmp_monitor_command(d->mon, "query-cpus-fast", NULL, -1, err);
    if (!list)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < json_object_array_length(list) && rc == 0; i++) {
        json_object *tid;
        if (!json_object_object_get_ex(json_object_array_get_idx(list, i), "thread-id", &tid))
            continue;
        if (sched_setaffinity((pid_t)json_object_get_int64(tid), sizeof set, &set) < 0)
            rc = xapi_error_internal(err, "cannot pin vCPU thread %" PRId64 ": %s",
                                     json_object_get_int64(tid), g_strerror(errno));
    }
    json_object_put(list);
    return rc;
}

static int hotplugged_vcpus(Domain *d, XapiError **err)
{
    json_object *list = qmp_monitor_command(d->mon, "query-hotpluggable-cpus", NULL, -1, err);
    if (!list)
        return -1;
    int n = 0;
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        const char *path = cpu_qom_path(json_object_array_get_idx(list, i));
        n += path && g_str_has_prefix(path, "/machine/peripheral/");
    }
    json_object_put(list);
    return n;
}

static int qemu_vcpus_set(const char *uuid, int64_t n, int64_t timeout_ms, XapiError **err)
{
    Domain *d = lookup(uuid, err);
    json_object *list = d ? qmp_monitor_command(d->mon, "query-hotpluggable-cpus", NULL, -1, err)
                          : NULL;
    if (!list)
        return -1;
    size_t total = json_object_array_length(list);
    g_autofree json_object **cpus = g_new0(json_object *, total + 1);
    int64_t plugged = 0, booted = 0;
    for (size_t i = 0; i < total; i++) {
        cpus[i] = json_object_array_get_idx(list, i);
        const char *path = cpu_qom_path(cpus[i]);
        plugged += path != NULL;
        booted += path && !g_str_has_prefix(path, "/machine/peripheral/");
    }
    qsort(cpus, total, sizeof *cpus, compare_cpu_slots);
    int rc = 0;
    if (n > (int64_t)total || n < booted) {
        g_autofree char *why = g_strdup_printf(
            "%" G_GINT64_FORMAT " vCPUs: the domain keeps the %" G_GINT64_FORMAT
            " it booted with and has room for %zu", n, booted, total);
        rc = xapi_error_set(err, "OPERATION_NOT_ALLOWED", why, NULL);
    }
    /* plug in topology order, unplug from the top */
    for (size_t i = 0; rc == 0 && i < total && plugged < n; i++)
        if (!cpu_qom_path(cpus[i]) && (rc = plug_cpu(d, cpus[i], err)) == 0)
            plugged++;
    int64_t deadline = g_get_monotonic_time() + timeout_ms * 1000;
    for (size_t i = total; rc == 0 && i-- > 0 && plugged > n;) {
        const char *path = cpu_qom_path(cpus[i]);
        if (path && g_str_has_prefix(path, "/machine/peripheral/") &&
            (rc = unplug_cpu(d, cpus[i], deadline, err)) == 0)
            plugged--;
    }
    json_object_put(list);
    return rc == 0 ? pin_vcpus(d, err) : rc;
}

static int qemu_dump_memory(const char *uuid, const char *path, XapiError **err)
{
    Domain *d = lookup(uuid, err);
    if (!d)
        return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return xapi_error_internal(err, "cannot create %s: %s", path, g_strerror(errno));
    int rc = qemu_dump_guest_memory(d->mon, fd, err);
    if (rc == 0 && fsync(fd) < 0)
        rc = xapi_error_internal(err, "cannot write %s: %s", path, g_strerror(errno));
    close(fd);
    return rc;
}

static char *qemu_agent_socket(const char *uuid)
{
    g_mutex_lock(&qemu.lock);
    Domain *d = find(uuid);
    char *path = d && (d->state == HV_RUNNING) ? domain_path(d, QEMU_AGENT_SOCKET) : NULL;
    g_mutex_unlock(&qemu.lock);
    return path;
}

/* ---- lent to qemu_migrate.c ----------------------------------------------- */

QemuDomain *qemu_domain_lookup(const char *uuid, XapiError **err) { return lookup(uuid, err); }

json_object *qemu_domain_command(QemuDomain *d, const char *command, json_object *args, int fd,
                                 XapiError **err)
{
    return qmp_monitor_command(d->mon, command, args, fd, err);
}

int qemu_domain_migration_prepare(QemuDomain *d, int fd, const char *name, XapiError **err)
{
    return prepare_migration(d, fd, name, err);
}

char *qemu_domain_migration_wait(QemuDomain *d, int64_t deadline)
{
    g_mutex_lock(&qemu.lock);
    for (;;) {
        const char *st = d->migration;
        if (d->state == HV_ABSENT || (st && (strcmp(st, "completed") == 0 ||
                                             strcmp(st, "failed") == 0 ||
                                             strcmp(st, "cancelled") == 0)))
            break;
        if (!g_cond_wait_until(&qemu.changed, &qemu.lock, deadline))
            break;
    }
    char *status = g_strdup(d->state == HV_ABSENT ? "gone" : d->migration);
    g_mutex_unlock(&qemu.lock);
    return status;
}

HvState qemu_domain_state(QemuDomain *d)
{
    g_mutex_lock(&qemu.lock);
    HvState state = d->state;
    g_mutex_unlock(&qemu.lock);
    return state;
}

void qemu_domain_set_state(QemuDomain *d, HvState state)
{
    g_mutex_lock(&qemu.lock);
    if (d->state != HV_ABSENT)
        set_state(d, state);
    g_mutex_unlock(&qemu.lock);
}

int qemu_domain_hotplugged_vcpus(QemuDomain *d, XapiError **err)
{
    return hotplugged_vcpus(d, err);
}

int qemu_domain_destroy(const char *uuid, XapiError **err) { return qemu_destroy(uuid, err); }

char *qemu_domain_last_words(QemuDomain *d) { return stderr_tail(d); }

bool qemu_domain_wait_exit(QemuDomain *d, int timeout_ms)
{
    return qemu_process_wait_exit(d->pid, timeout_ms);
}

int qemu_domain_start_incoming(const char *uuid, const Xv *vm, const HvDisk *disks,
                               size_t n_disks, const HvNic *nics, size_t n_nics, XapiError **err)
{
    return start_domain(uuid, vm, disks, n_disks, nics, n_nics, true, true, err);
}

static HvDriver qemu_driver = {
    .name = "qemu",
    .start = qemu_start,
    .save = qemu_save,
    .disk_plug = qemu_disk_plug,
    .nic_plug = qemu_nic_plug,
    .nic_unplug = qemu_nic_unplug,
    .nic_update = qemu_nic_update,
    .disk_unplug = qemu_disk_unplug,
    .disk_change_medium = qemu_disk_change_medium,
    .disks_switch = qemu_disks_switch,
    .disk_resize = qemu_disk_resize,
    .pause = qemu_pause,
    .unpause = qemu_unpause,
    .request_shutdown = qemu_request_shutdown,
    .reset = qemu_reset,
    .nmi = qemu_nmi,
    .send_keys = qemu_send_keys,
    .destroy = qemu_destroy,
    .status = qemu_status,
    .clear_rebooted = qemu_clear_rebooted,
    .wait_stopped = qemu_wait_stopped,
    .reattach = qemu_reattach,
    .stop_unattached = qemu_stop_unattached,
    .start_recorded = qemu_start_recorded,
    .console_served = qemu_console_served,
    .console_connect = qemu_console_connect,
    .sample = qemu_sample,
    .memory_target = qemu_memory_target,
    .memory_actual = qemu_memory_actual,
    .vcpus_set = qemu_vcpus_set,
    .agent_socket = qemu_agent_socket,
    .migrate_send = qemu_migrate_send,
    .migrate_receive = qemu_migrate_receive,
    .migrate_cancel = qemu_migrate_cancel,
    .dump_memory = qemu_dump_memory,
};

const HvDriver *hv_qemu_driver(const char *dir, HvChangeNotify notify, XapiError **err)
{
    /* Absolute: QEMU runs detached from our working directory. */
    g_autofree char *cwd = g_get_current_dir();
    g_autofree char *root = g_build_filename(dir ? dir : ".", "domains", NULL);
    qemu.root = g_path_is_absolute(root) ? g_strdup(root) : g_build_filename(cwd, root, NULL);
    if (g_mkdir_with_parents(qemu.root, 0700) < 0) {
        xapi_error_internal(err, "cannot create %s: %s", qemu.root, g_strerror(errno));
        return NULL;
    }
    qemu.binary = g_find_program_in_path("qemu-system-x86_64");
    if (!qemu.binary)
        g_warning("qemu-system-x86_64 not found: VMs cannot start (see --hypervisor)");
    if (!qemu_process_user_init())
        g_message("QEMU runs as xapid's own user (uid %d)", (int)geteuid());
    qemu.notify = notify;
    qemu.domains = g_hash_table_new(g_str_hash, g_str_equal);
    qemu_driver.accel = host_accel();
    return &qemu_driver;
}
