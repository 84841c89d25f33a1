/* driver_sim.c: simulated domains with the qemu driver's state machine.
 *
 * No guest runs: a domain is an entry in a table. The simulated guest
 * honours the ACPI power button at once (it powers off), which is what a
 * well-behaved guest does, unless the VM's other_config:sim_guest is
 * "ignores-acpi" (a guest that hangs, for timeouts and lock tests) or
 * "panics" (it crashes as it boots, for actions_after_crash), and a
 * start waits for the file other_config:sim_start_gate names to exist (a
 * start held in flight, for lock tests; 60 s at most). For
 * scale tests and hosts without QEMU; the host reports "sim" as its
 * hypervisor so nobody mistakes it for VMs. Disk images are changed as
 * QEMU would change them (live snapshots, resizes), so storage stays true. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hv_driver.h"
#include "migrate_link.h"
#include "qemu_img.h"

typedef struct {
    HvState state;
    HvStopReason reason;
    bool ignores_power_button; /* VM other_config:sim_guest = "ignores-acpi" */
    unsigned disks;            /* slots with a disk plugged */
    guint64 nics;              /* VIF devices (0-63) with a NIC; no host link is made */
    int64_t started;           /* monotonic time of the start: the figures grow from it */
    int64_t memory;            /* what the guest holds: its balloon meets targets at once */
    int64_t vcpus, vcpus_booted, vcpus_max;
} SimDomain;

static struct {
    HvChangeNotify notify;
    GMutex lock;
    GCond changed;
    GHashTable *domains; /* uuid -> SimDomain */
    char *record_dir;    /* one file per domain, or NULL (hv_sim_record_domains) */
} sim;

/* A domain's file in record_dir: its uuid, holding xapid's pid (lock held). */
static void record_domain(const char *uuid, bool exists)
{
    if (!sim.record_dir)
        return;
    g_autofree char *path = g_build_filename(sim.record_dir, uuid, NULL);
    if (!exists) {
        unlink(path);
        return;
    }
    g_autofree char *pid = g_strdup_printf("%d\n", (int)getpid());
    g_file_set_contents(path, pid, -1, NULL);
}

void hv_sim_record_domains(const char *dir)
{
    g_mkdir_with_parents(dir, 0700);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    for (const char *name; d && (name = g_dir_read_name(d));) { /* a dead process's */
        g_autofree char *path = g_build_filename(dir, name, NULL);
        unlink(path);
    }
    g_mutex_lock(&sim.lock);
    g_free(sim.record_dir);
    sim.record_dir = g_strdup(dir);
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, sim.domains);
    while (g_hash_table_iter_next(&it, &key, NULL))
        record_domain(key, true);
    g_mutex_unlock(&sim.lock);
}

#define SIM_SAVED_STATE "xapid simulated domain state\n"

static int sim_start(const char *uuid, const Xv *vm, const HvDisk *disks, size_t n_disks,
                     const HvNic *nics, size_t n_nics,
                     const char *resume_image, bool paused, XapiError **err)
{
    g_autofree char *saved = NULL;
    if (resume_image && (!g_file_get_contents(resume_image, &saved, NULL, NULL) ||
                         strcmp(saved, SIM_SAVED_STATE) != 0))
        return xapi_error_internal(err, "%s is not a saved state", resume_image);
    const Xv *other_config = xv_struct_get(vm, "other_config");
    const Xv *gate = other_config ? xv_struct_get(other_config, "sim_start_gate") : NULL;
    for (int64_t deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
         gate && !g_file_test(xv_str(gate), G_FILE_TEST_EXISTS);) {
        if (g_get_monotonic_time() > deadline)
            return xapi_error_internal(err, "%s did not appear", xv_str(gate));
        g_usleep(20000);
    }
    g_mutex_lock(&sim.lock);
    bool exists = g_hash_table_contains(sim.domains, uuid);
    if (!exists) {
        SimDomain *d = g_new0(SimDomain, 1);
        for (size_t i = 0; i < n_disks; i++)
            if (!disks[i].cdrom)
                d->disks |= 1u << disks[i].slot;
        for (size_t i = 0; i < n_nics; i++)
            if (nics[i].device >= 0 && nics[i].device < 64)
                d->nics |= G_GUINT64_CONSTANT(1) << nics[i].device;
        d->state = paused ? HV_PAUSED : HV_RUNNING;
        d->started = g_get_monotonic_time();
        const Xv *static_max = xv_struct_get(vm, "memory_static_max");
        const Xv *dynamic_max = xv_struct_get(vm, "memory_dynamic_max");
        d->memory = static_max ? static_max->i : 0;
        if (dynamic_max && dynamic_max->i > 0 && dynamic_max->i < d->memory)
            d->memory = dynamic_max->i;
        const Xv *at_startup = xv_struct_get(vm, "VCPUs_at_startup");
        const Xv *vcpus_max = xv_struct_get(vm, "VCPUs_max");
        d->vcpus = d->vcpus_booted = at_startup ? MAX(at_startup->i, 1) : 1;
        d->vcpus_max = vcpus_max ? MAX(vcpus_max->i, d->vcpus) : d->vcpus;
        const Xv *other = xv_struct_get(vm, "other_config");
        const Xv *guest = other ? xv_struct_get(other, "sim_guest") : NULL;
        d->ignores_power_button = guest && strcmp(xv_str(guest), "ignores-acpi") == 0;
        /* "panics": the guest crashes as it boots (once: a restart runs) */
        if (guest && strcmp(xv_str(guest), "panics") == 0 && !paused) {
            d->state = HV_SHUTDOWN;
            d->reason = HV_STOP_CRASH;
        }
        g_hash_table_insert(sim.domains, g_strdup(uuid), d);
        record_domain(uuid, true);
    }
    g_mutex_unlock(&sim.lock);
    if (exists)
        return xapi_error_internal(err, "a domain for VM %s already exists", uuid);
    return 0;
}

/* Moves a domain from one of the states in `from` (a bit set) to `to`. */
static int transition(const char *uuid, unsigned from, HvState to, XapiError **err)
{
    g_mutex_lock(&sim.lock);
    SimDomain *d = g_hash_table_lookup(sim.domains, uuid);
    bool ok = d && (from & (1u << d->state));
    if (ok) {
        d->state = to;
        g_cond_broadcast(&sim.changed);
    }
    g_mutex_unlock(&sim.lock);
    if (!ok)
        return xapi_error_internal(err, "simulated domain %s is not in a state for this", uuid);
    return 0;
}

static int sim_pause(const char *uuid, XapiError **err)
{
    return transition(uuid, 1u << HV_RUNNING | 1u << HV_PAUSED, HV_PAUSED, err);
}

static int sim_unpause(const char *uuid, XapiError **err)
{
    return transition(uuid, 1u << HV_RUNNING | 1u << HV_PAUSED, HV_RUNNING, err);
}

/* An NMI or keys reach a running simulated guest and do nothing there. */
static int sim_running(const char *uuid, XapiError **err)
{
    g_mutex_lock(&sim.lock);
    SimDomain *d = g_hash_table_lookup(sim.domains, uuid);
    bool running = d && d->state == HV_RUNNING;
    g_mutex_unlock(&sim.lock);
    if (!d)
        return xapi_error_internal(err, "no simulated domain %s", uuid);
    return running ? 0 : xapi_error_internal(err, "simulated domain %s is not running", uuid);
}

static int sim_nmi(const char *uuid, XapiError **err) { return sim_running(uuid, err); }

static int sim_send_keys(const char *uuid, const char *const *qcodes, XapiError **err)
{
    (void)qcodes;
    return sim_running(uuid, err);
}

static int sim_request_shutdown(const char *uuid, XapiError **err)
{
    g_mutex_lock(&sim.lock);
    SimDomain *d = g_hash_table_lookup(sim.domains, uuid);
    /* A paused guest cannot see the button; it acts once unpaused. */
    bool acted = d && d->state == HV_RUNNING && !d->ignores_power_button;
    if (acted) {
        d->state = HV_SHUTDOWN;
        d->reason = HV_STOP_POWEROFF;
        g_cond_broadcast(&sim.changed);
    }
    g_mutex_unlock(&sim.lock);
    if (!d)
        return xapi_error_internal(err, "no simulated domain %s", uuid);
    if (acted && sim.notify)
        sim.notify(uuid);
    return 0;
}

static int sim_reset(const char *uuid, XapiError **err)
{
    return transition(uuid, 1u << HV_RUNNING | 1u << HV_PAUSED | 1u << HV_SHUTDOWN, HV_RUNNING,
                      err);
}

static int sim_destroy(const char *uuid, XapiError **err)
{
    g_mutex_lock(&sim.lock);
    g_hash_table_remove(sim.domains, uuid);
    record_domain(uuid, false);
    g_cond_broadcast(&sim.changed);
    g_mutex_unlock(&sim.lock);
    return 0;
}

static HvStatus sim_status(const char *uuid)
{
    HvStatus s = {HV_ABSENT, HV_STOP_POWEROFF, false};
    g_mutex_lock(&sim.lock);
    SimDomain *d = g_hash_table_lookup(sim.domains, uuid);
    if (d) {
        s.state = d->state;
        s.reason = d->reason;
    }
    g_mutex_unlock(&sim.lock);
    return s;
}

static bool sim_wait_stopped(const char *uuid, int64_t deadline)
{
    bool stopped = false;
    g_mutex_lock(&sim.lock);
    for (;;) {
        SimDomain *d = g_hash_table_lookup(sim.domains, uuid);
        if (!d || (d->state != HV_RUNNING && d->state != HV_PAUSED)) {
            stopped = true;
            break;
        }
        if (!g_cond_wait_until(&sim.changed, &sim.lock, deadline))
            break;
    }
    g_mutex_unlock(&sim.lock);
    return stopped;
}

static void sim_clear_rebooted(const char *uuid) {} /* simulated guests never reboot alone */

/* Simulated domains live in xapid's memory: none survive a kill or a
 * stop, but host.restart_agent hands them over to the re-executed xapid
 * in its environment (one "uuid state reason ignores disks nics" line
 * each), as QEMU domains outlive it. */
#define SIM_HANDOVER_ENV "XAPID_SIM_DOMAINS"

static void sim_prepare_reexec(void)
{
    GString *out = g_string_new(NULL);
    g_mutex_lock(&sim.lock);
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, sim.domains);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        const SimDomain *d = value;
        g_string_append_printf(out, "%s %d %d %d %u %" G_GUINT64_FORMAT "\n", (char *)key,
                               d->state, d->reason, d->ignores_power_button, d->disks, d->nics);
    }
    g_mutex_unlock(&sim.lock);
    g_setenv(SIM_HANDOVER_ENV, out->str, TRUE);
    g_string_free(out, TRUE);
}

/* The domains handed over, waiting for their reattach. */
static GHashTable *sim_handed_over;

static void sim_take_handover(void)
{
    sim_handed_over = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    const char *env = g_getenv(SIM_HANDOVER_ENV);
    g_auto(GStrv) lines = env ? g_strsplit(env, "\n", -1) : NULL;
    for (char **l = lines; l && *l; l++) {
        char uuid[64];
        int state, reason, ignores;
        unsigned disks;
        guint64 nics;
        if (sscanf(*l, "%63s %d %d %d %u %" G_GUINT64_FORMAT, uuid, &state, &reason, &ignores,
                   &disks, &nics) != 6)
            continue;
        SimDomain *d = g_new0(SimDomain, 1);
        *d = (SimDomain){.state = (HvState)state, .reason = (HvStopReason)reason,
                         .ignores_power_button = ignores, .disks = disks, .nics = nics};
        g_hash_table_insert(sim_handed_over, g_strdup(uuid), d);
    }
    g_unsetenv(SIM_HANDOVER_ENV);
}

static bool sim_reattach(const char *uuid)
{
    gpointer key, d;
    if (!g_hash_table_steal_extended(sim_handed_over, uuid, &key, &d))
        return false;
    g_mutex_lock(&sim.lock);
    g_hash_table_insert(sim.domains, key, d);
    record_domain(uuid, true);
    g_mutex_unlock(&sim.lock);
    return true;
}

/* Handed-over domains whose VM is no longer resident here are forgotten. */
static void sim_stop_unattached(void) { g_hash_table_remove_all(sim_handed_over); }
/* Simulated domains have no screen nor serial port. */
static bool sim_console_served(const char *uuid, const char *protocol) { return false; }

static int sim_console_connect(const char *uuid, const char *protocol, XapiError **err)
{
    return xapi_error_internal(err, "simulated domains have no console");
}

/* A simulated domain's memory is a marker file too. */
#define SIM_MEMORY_DUMP "xapid simulated domain memory\n"

static int sim_dump_memory(const char *uuid, const char *path, XapiError **err)
{
    g_mutex_lock(&sim.lock);
    bool known = g_hash_table_lookup(sim.domains, uuid) != NULL;
    g_mutex_unlock(&sim.lock);
    if (!known)
        return xapi_error_internal(err, "no simulated domain %s", uuid);
    g_autoptr(GError) error = NULL;
    if (!g_file_set_contents(path, SIM_MEMORY_DUMP, -1, &error))
        return xapi_error_internal(err, "cannot write %s: %s", path, error->message);
    return 0;
}

/* The state of a simulated domain is a marker file. */
static int sim_save(const char *uuid, const char *path, XapiError **err)
{
    g_mutex_lock(&sim.lock);
    SimDomain *d = g_hash_table_lookup(sim.domains, uuid);
    bool paused = d && d->state == HV_PAUSED;
    bool hotplugged = d && d->vcpus != d->vcpus_booted;
    g_mutex_unlock(&sim.lock);
    if (!paused)
        return xapi_error_internal(err, "simulated domain %s is not paused", uuid);
    if (hotplugged) /* as the qemu driver */
        return xapi_error_set(err, "OPERATION_NOT_ALLOWED",
                              "the domain has hot-plugged vCPUs: set_VCPUs_number_live back to "
                              "VCPUs_at_startup before saving it", NULL);
    g_autoptr(GError) error = NULL;
    if (!g_file_set_contents(path, SIM_SAVED_STATE, -1, &error))
        return xapi_error_internal(err, "cannot write %s: %s", path, error->message);
    return 0;
}

/* ---- disks: the slots in use; images change as QEMU would change them -- */

static int with_domain_disks(const char *uuid, int slot, int plug, XapiError **err)
{
    g_mutex_lock(&sim.lock);
    SimDomain *d = g_hash_table_lookup(sim.domains, uuid);
    int rc = 0;
    if (!d) {
        rc = xapi_error_internal(err, "no simulated domain %s", uuid);
    } else if (plug > 0) {
        if (d->disks & (1u << slot))
            rc = xapi_error_internal(err, "slot %d of %s is in use", slot, uuid);
        d->disks |= 1u << slot;
    } else if (plug < 0) {
        d->disks &= ~(1u << slot);
    }
    g_mutex_unlock(&sim.lock);
    return rc;
}

static int sim_disk_plug(const char *uuid, const HvDisk *disk, XapiError **err)
{
    if (disk->floppy) /* as the qemu driver */
        return xapi_error_set(err, "OPERATION_NOT_ALLOWED",
                              "a floppy drive is plugged only when the VM starts", NULL);
    return with_domain_disks(uuid, disk->slot, 1, err);
}

static int sim_disk_unplug(const char *uuid, const HvDisk *disk, int64_t timeout_ms,
                           XapiError **err)
{
    return with_domain_disks(uuid, disk->slot, -1, err);
}

static int sim_nic(const char *uuid, const HvNic *nic, bool plug, XapiError **err)
{
    if (nic->device < 0 || nic->device >= 64) {
        char device[16];
        g_snprintf(device, sizeof device, "%d", nic->device);
        return xapi_error_set(err, "INVALID_DEVICE", device, NULL);
    }
    guint64 bit = G_GUINT64_CONSTANT(1) << nic->device;
    g_mutex_lock(&sim.lock);
    SimDomain *d = g_hash_table_lookup(sim.domains, uuid);
    int rc = 0;
    if (!d)
        rc = xapi_error_internal(err, "no simulated domain %s", uuid);
    else if (plug && (d->nics & bit))
        rc = xapi_error_internal(err, "NIC %d of %s is plugged", nic->device, uuid);
    else if (plug)
        d->nics |= bit;
    else
        d->nics &= ~bit;
    g_mutex_unlock(&sim.lock);
    return rc;
}

static int sim_nic_plug(const char *uuid, const HvNic *nic, XapiError **err)
{
    return sim_nic(uuid, nic, true, err);
}

/* No host link is made, so there is nothing to follow but the NIC. */
static int sim_nic_update(const char *uuid, const HvNic *nic, XapiError **err)
{
    g_mutex_lock(&sim.lock);
    SimDomain *d = g_hash_table_lookup(sim.domains, uuid);
    bool plugged = d && nic->device >= 0 && nic->device < 64 &&
                   (d->nics & (G_GUINT64_CONSTANT(1) << nic->device));
    g_mutex_unlock(&sim.lock);
    return plugged ? 0 : xapi_error_internal(err, "NIC %d of %s is not plugged", nic->device, uuid);
}

static int sim_nic_unplug(const char *uuid, const HvNic *nic, int64_t timeout_ms,
                          XapiError **err)
{
    return sim_nic(uuid, nic, false, err);
}

static SimDomain *sim_find(const char *uuid, XapiError **err)
{
    SimDomain *d = g_hash_table_lookup(sim.domains, uuid);
    if (!d)
        xapi_error_internal(err, "no domain for VM %s", uuid);
    return d;
}

static int sim_memory_target(const char *uuid, int64_t target, XapiError **err)
{
    g_mutex_lock(&sim.lock);
    SimDomain *d = sim_find(uuid, err);
    if (d)
        d->memory = target;
    g_mutex_unlock(&sim.lock);
    return d ? 0 : -1;
}

static int64_t sim_memory_actual(const char *uuid, XapiError **err)
{
    g_mutex_lock(&sim.lock);
    SimDomain *d = sim_find(uuid, err);
    int64_t memory = d ? d->memory : -1;
    g_mutex_unlock(&sim.lock);
    return memory;
}

/* As the qemu driver: hot-plugged vCPUs come and go, booted ones stay. */
static int sim_vcpus_set(const char *uuid, int64_t n, int64_t timeout_ms, XapiError **err)
{
    (void)timeout_ms;
    g_mutex_lock(&sim.lock);
    SimDomain *d = sim_find(uuid, err);
    bool fits = d && n >= d->vcpus_booted && n <= d->vcpus_max;
    if (fits)
        d->vcpus = n;
    int64_t booted = d ? d->vcpus_booted : 0, room = d ? d->vcpus_max : 0;
    g_mutex_unlock(&sim.lock);
    if (!d)
        return -1;
    if (fits)
        return 0;
    g_autofree char *why = g_strdup_printf("%" G_GINT64_FORMAT " vCPUs: the domain keeps the %"
                                           G_GINT64_FORMAT " it booted with and has room for %"
                                           G_GINT64_FORMAT, n, booted, room);
    return xapi_error_set(err, "OPERATION_NOT_ALLOWED", why, NULL);
}

static int sim_disk_change_medium(const char *uuid, const HvDisk *disk, XapiError **err)
{
    return with_domain_disks(uuid, disk->slot, 0, err);
}

/* The files are made by storage; a simulated guest has nothing to move. */
static int sim_disks_switch(const char *uuid, const HvDisk *disks, const char *const *new_paths,
                            size_t n, XapiError **err)
{
    (void)new_paths;
    for (size_t i = 0; i < n; i++)
        if (with_domain_disks(uuid, disks[i].slot, 0, err) < 0)
            return -1;
    return 0;
}

static int sim_disk_resize(const char *uuid, const HvDisk *disk, int64_t size, XapiError **err)
{
    if (with_domain_disks(uuid, disk->slot, 0, err) < 0)
        return -1;
    return qemu_img_resize(disk->path, disk->format, size, err);
}

/* Plausible figures for scale tests: each vCPU of a domain busy at a
 * level of its own (2-12%) that swings over a few minutes, disks and NICs
 * moving some KiB/s; counters, so they only grow. */
static double sim_busy_seconds(double t, unsigned seed)
{
    double base = 0.02 + 0.01 * (seed % 11), swing = base / 2, period = 60.0 + seed % 120;
    return base * t + swing * period * (1 - cos(t / period)); /* integral of base + swing sin */
}

static int sim_sample(const char *uuid, HvSample *sample)
{
    g_mutex_lock(&sim.lock);
    SimDomain *d = g_hash_table_lookup(sim.domains, uuid);
    double t = d ? (double)(g_get_monotonic_time() - d->started) / G_USEC_PER_SEC : 0;
    bool running = d && d->state == HV_RUNNING;
    g_mutex_unlock(&sim.lock);
    if (!d)
        return -1;
    unsigned seed = g_str_hash(uuid);
    for (unsigned i = 0; i < sample->n_vcpus; i++)
        sample->vcpu_seconds[i] = running ? sim_busy_seconds(t, seed + i) : 0;
    for (unsigned i = 0; i < sample->n_disks; i++) {
        /* 4 KiB reads of 100-400 us, 8 KiB writes of 200-1000 us */
        int64_t reads = (int64_t)(t * (1 + (seed + i) % 7));
        int64_t writes = (int64_t)(t / 4 * (1 + (seed + i) % 5));
        sample->disks[i].read_ops = reads;
        sample->disks[i].write_ops = writes;
        sample->disks[i].read_bytes = reads * 4096;
        sample->disks[i].write_bytes = writes * 8192;
        sample->disks[i].read_ns = reads * 100000 * (1 + (seed + i) % 4);
        sample->disks[i].write_ns = writes * 200000 * (1 + (seed + i) % 5);
    }
    for (unsigned i = 0; i < sample->n_nics; i++) {
        sample->nics[i].rx_bytes = (int64_t)(t * 1500 * (1 + (seed + i) % 9));
        sample->nics[i].tx_bytes = (int64_t)(t * 800 * (1 + (seed + i) % 3));
    }
    return 0;
}

/* ---- live migration ------------------------------------------------------------ */

/* A simulated domain migrates as the saved-state marker and one line
 * "MEMORY VCPUS" (what a QEMU's state carries: its balloon's size and its
 * vCPUs), over the same link and handshake as a QEMU domain; the source
 * is paused from the end of the stream to the switch, as QEMU's is, and
 * the destination waits paused until then. other_config:sim_migration =
 * "fail-load" on the VM makes the destination fail to load it, "stall-load"
 * makes it wait 40 s first (logged: a test kills a host mid-way). */
typedef struct {
    const char *uuid;
    int fd;         /* the destination's end of the pair, read to its end */
    bool fail_load;
    bool stall_load;
} SimMigration;

static int sim_send_start(void *ctx, int fd, XapiError **err)
{
    SimMigration *m = ctx;
    g_autoptr(GString) state = g_string_new(SIM_SAVED_STATE);
    g_mutex_lock(&sim.lock);
    SimDomain *d = g_hash_table_lookup(sim.domains, m->uuid);
    if (d)
        g_string_append_printf(state, "%" G_GINT64_FORMAT " %" G_GINT64_FORMAT "\n", d->memory,
                               d->vcpus);
    g_mutex_unlock(&sim.lock);
    if (!d)
        return xapi_error_internal(err, "no simulated domain %s", m->uuid);
    for (size_t done = 0; done < state->len;) {
        ssize_t n = write(fd, state->str + done, state->len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return xapi_error_internal(err, "cannot send the simulated state: %s",
                                       g_strerror(errno));
        done += (size_t)n;
    }
    return 0;
}

static int sim_send_wait(void *ctx, XapiError **err)
{
    SimMigration *m = ctx;
    return transition(m->uuid, 1u << HV_RUNNING, HV_PAUSED, err);
}

static int sim_send_resume(void *ctx, XapiError **err)
{
    SimMigration *m = ctx;
    return transition(m->uuid, 1u << HV_PAUSED, HV_RUNNING, err);
}

static void sim_send_finish(void *ctx)
{
    SimMigration *m = ctx;
    sim_destroy(m->uuid, NULL);
}

static bool sim_send_was_running(void *ctx)
{
    (void)ctx;
    return true; /* sim_migrate_send takes running domains only, as the qemu driver */
}

static const MigrateSourceOps sim_source_ops = {sim_send_start, sim_send_wait, sim_send_resume,
                                                sim_send_finish, sim_send_was_running};

static int sim_migrate_send(const char *uuid, int conn, const HvMigrateOptions *opts,
                            HvMigrateStats *stats, XapiError **err)
{
    HvStatus st = sim_status(uuid);
    if (st.state != HV_RUNNING)
        return xapi_error_internal(err, "only a running domain migrates live");
    MigrateLink *link = migrate_link_new(conn, opts ? opts->idle_timeout_ms : 0, err);
    if (!link)
        return -1;
    SimMigration m = {.uuid = uuid, .fd = -1};
    migrate_link_register(uuid, link);
    int rc = migrate_link_unregister(uuid, migrate_link_send(link, &sim_source_ops, &m, err), err);
    if (stats) {
        memset(stats, 0, sizeof *stats);
        g_strlcpy(stats->status, rc == 0 ? "completed" : "failed", sizeof stats->status);
        stats->expected_downtime_ms = -1;
        stats->live = true;
        migrate_link_counts(link, &stats->link_sent, &stats->link_received);
    }
    migrate_link_free(link, g_get_monotonic_time() + 5 * G_USEC_PER_SEC);
    return rc;
}

static int sim_receive_start(void *ctx, int fd, XapiError **err)
{
    SimMigration *m = ctx;
    m->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    return m->fd < 0 ? xapi_error_internal(err, "dup: %s", g_strerror(errno)) : 0;
}

static int sim_receive_wait(void *ctx, XapiError **err)
{
    SimMigration *m = ctx;
    if (m->stall_load) {
        g_message("sim: the migration of %s stalls before loading (sim_migration=stall-load)",
                  m->uuid);
        g_usleep(40 * G_USEC_PER_SEC);
    }
    g_autoptr(GString) state = g_string_new(NULL);
    char buf[512];
    ssize_t n;
    while (state->len < 4096 && ((n = read(m->fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)))
        if (n > 0)
            g_string_append_len(state, buf, n);
    close(m->fd);
    m->fd = -1;
    long long memory = 0, vcpus = 0;
    if (!g_str_has_prefix(state->str, SIM_SAVED_STATE) ||
        sscanf(state->str + strlen(SIM_SAVED_STATE), "%lld %lld", &memory, &vcpus) != 2)
        return xapi_error_internal(err, "loading the migrated state failed: it ended short");
    if (m->fail_load)
        return xapi_error_internal(err, "loading the migrated state failed: simulated");
    g_mutex_lock(&sim.lock);
    SimDomain *d = g_hash_table_lookup(sim.domains, m->uuid);
    if (d) {
        d->memory = memory;
        d->vcpus = vcpus;
    }
    g_mutex_unlock(&sim.lock);
    return d ? 0 : xapi_error_internal(err, "no simulated domain %s", m->uuid);
}

static int sim_receive_run(void *ctx, bool run, XapiError **err)
{
    SimMigration *m = ctx;
    return run ? transition(m->uuid, 1u << HV_PAUSED, HV_RUNNING, err) : 0;
}

static void sim_receive_discard(void *ctx)
{
    SimMigration *m = ctx;
    sim_destroy(m->uuid, NULL);
}

static const MigrateDestOps sim_dest_ops = {sim_receive_start, sim_receive_wait, sim_receive_run,
                                            sim_receive_discard};

static int sim_migrate_receive(const char *uuid, const Xv *vm, const HvDisk *disks,
                               size_t n_disks, const HvNic *nics, size_t n_nics, int conn,
                               const HvMigrateOptions *opts, XapiError **err)
{
    MigrateLink *link = migrate_link_new(conn, opts ? opts->idle_timeout_ms : 0, err);
    if (!link)
        return -1;
    const Xv *other = xv_struct_get(vm, "other_config");
    const Xv *mode = other ? xv_struct_get(other, "sim_migration") : NULL;
    SimMigration m = {.uuid = uuid, .fd = -1,
                      .fail_load = mode && strcmp(xv_str(mode), "fail-load") == 0,
                      .stall_load = mode && strcmp(xv_str(mode), "stall-load") == 0};
    if (sim_start(uuid, vm, disks, n_disks, nics, n_nics, NULL, true, err) < 0) {
        migrate_link_refuse(link, err ? *err : NULL);
        return -1;
    }
    migrate_link_register(uuid, link);
    int rc = migrate_link_unregister(uuid, migrate_link_receive(link, &sim_dest_ops, &m, err),
                                     err);
    if (m.fd >= 0)
        close(m.fd);
    migrate_link_free(link, g_get_monotonic_time() + 5 * G_USEC_PER_SEC);
    return rc;
}

static const HvDriver sim_driver = {
    .name = "sim",
    .accel = "sim",
    .start = sim_start,
    .save = sim_save,
    .disk_plug = sim_disk_plug,
    .nic_plug = sim_nic_plug,
    .nic_unplug = sim_nic_unplug,
    .nic_update = sim_nic_update,
    .disk_unplug = sim_disk_unplug,
    .disk_change_medium = sim_disk_change_medium,
    .disks_switch = sim_disks_switch,
    .disk_resize = sim_disk_resize,
    .pause = sim_pause,
    .unpause = sim_unpause,
    .request_shutdown = sim_request_shutdown,
    .reset = sim_reset,
    .nmi = sim_nmi,
    .send_keys = sim_send_keys,
    .destroy = sim_destroy,
    .status = sim_status,
    .sample = sim_sample,
    .clear_rebooted = sim_clear_rebooted,
    .wait_stopped = sim_wait_stopped,
    .reattach = sim_reattach,
    .stop_unattached = sim_stop_unattached,
    .prepare_reexec = sim_prepare_reexec,
    .console_served = sim_console_served,
    .console_connect = sim_console_connect,
    .memory_target = sim_memory_target,
    .memory_actual = sim_memory_actual,
    .vcpus_set = sim_vcpus_set,
    .migrate_send = sim_migrate_send,
    .migrate_receive = sim_migrate_receive,
    .migrate_cancel = migrate_link_cancel,
    .dump_memory = sim_dump_memory,
};

const HvDriver *hv_sim_driver(HvChangeNotify notify)
{
    sim.notify = notify;
    sim.domains = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    sim_take_handover();
    return &sim_driver;
}
