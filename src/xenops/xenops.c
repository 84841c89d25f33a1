/* xenops.c: driver choice, VM locks, reconciliation, and the database
 * side of power-state changes. */
#include "xenops.h"

#include <string.h>

#include "bootstrap.h"
#include "ha_fence.h"
#include "host_evacuate.h"
#include "implicit.h"
#include "network.h"
#include "vdi_fork.h"
#include "guest_agent.h"
#include "vm_consoles.h"
#include "vm_crashdump.h"
#include "vm_fields.h"
#include "vm_bootloader.h"
#include "vm_nvram.h"
#include "vm_disks.h"
#include "vm_lifecycle.h"
#include "vm_nics.h"
#include "vm_operations.h"
#include "vm_vtpm.h"

static struct {
    const HvDriver *driver;
    GMutex locks_lock;
    GHashTable *locks;       /* uuid -> GMutex*, kept for the daemon's life */
    GHashTable *waiting;     /* uuids whose operation waits for the guest */
    GThreadPool *reactions;  /* reconciles VMs whose guests changed by themselves */
    int64_t host_reserve;    /* memory the host keeps for itself */
} xenops;

const HvDriver *xenops_driver(void) { return xenops.driver; }

void xenops_prepare_reexec(void)
{
    if (xenops.driver && xenops.driver->prepare_reexec)
        xenops.driver->prepare_reexec();
}

static GMutex *vm_mutex(const char *uuid)
{
    g_mutex_lock(&xenops.locks_lock);
    GMutex *m = g_hash_table_lookup(xenops.locks, uuid);
    if (!m) {
        m = g_new0(GMutex, 1);
        g_mutex_init(m);
        g_hash_table_insert(xenops.locks, g_strdup(uuid), m);
    }
    g_mutex_unlock(&xenops.locks_lock);
    return m;
}

void xenops_lock_vm(const char *uuid) { g_mutex_lock(vm_mutex(uuid)); }
void xenops_unlock_vm(const char *uuid) { g_mutex_unlock(vm_mutex(uuid)); }

void xenops_wait_unlocked_begin(const char *uuid)
{
    g_mutex_lock(&xenops.locks_lock);
    g_hash_table_add(xenops.waiting, g_strdup(uuid));
    g_mutex_unlock(&xenops.locks_lock);
    xenops_unlock_vm(uuid);
}

void xenops_wait_unlocked_end(const char *uuid)
{
    xenops_lock_vm(uuid);
    g_mutex_lock(&xenops.locks_lock);
    g_hash_table_remove(xenops.waiting, uuid);
    g_mutex_unlock(&xenops.locks_lock);
}

static bool is_waiting(const char *uuid)
{
    g_mutex_lock(&xenops.locks_lock);
    bool waiting = g_hash_table_contains(xenops.waiting, uuid);
    g_mutex_unlock(&xenops.locks_lock);
    return waiting;
}

/* ---- memory ------------------------------------------------------------ */

int64_t xenops_vm_memory_need(const DbRow *vm)
{
    int64_t static_max = db_get(vm, "memory_static_max")->i;
    return static_max + vm_memory_overhead(static_max, db_get(vm, "VCPUs_max")->i);
}

typedef struct {
    const char *host;
    const char *except; /* a VM not counted (the one asking), or NULL */
    int64_t used;
} MemorySum;

/* What a VM takes of host: running there, or scheduled to (XAPI's
 * scheduled_to_be_resident_on: a start in flight reserves its memory). */
static bool add_resident(DbRow *vm, void *ctx)
{
    MemorySum *sum = ctx;
    if (db_get(vm, "is_control_domain")->b || (sum->except && strcmp(vm->ref, sum->except) == 0))
        return true;
    const char *state = xv_str(db_get(vm, "power_state"));
    bool runs = strcmp(state, "Halted") != 0 && strcmp(state, "Suspended") != 0;
    bool resident = runs && strcmp(xv_str(db_get(vm, "resident_on")), sum->host) == 0;
    bool scheduled = strcmp(xv_str(db_get(vm, "scheduled_to_be_resident_on")), sum->host) == 0;
    if (resident || scheduled)
        sum->used += xenops_vm_memory_need(vm);
    return true;
}

static int64_t host_total_memory(const DbRow *host)
{
    DbRow *metrics = db_lookup(dm_class_by_name("host_metrics"), xv_str(db_get(host, "metrics")));
    return metrics ? db_get(metrics, "memory_total")->i : 0;
}

int64_t xenops_host_free_memory_of(const char *host_ref)
{
    DbRow *host = db_lookup(dm_class_by_name("host"), host_ref);
    if (!host)
        return 0;
    MemorySum sum = {host_ref, NULL, 0};
    db_foreach(dm_class_by_name("VM"), add_resident, &sum);
    int64_t free_bytes = host_total_memory(host) - db_get(host, "memory_overhead")->i - sum.used;
    return free_bytes > 0 ? free_bytes : 0;
}

int64_t xenops_host_free_memory(void) { return xenops_host_free_memory_for(NULL); }

int64_t xenops_host_free_memory_for(const char *vm_ref)
{
    g_autofree char *host_ref = bootstrap_this_host();
    DbRow *host = db_lookup(dm_class_by_name("host"), host_ref);
    if (!host)
        return 0;
    MemorySum sum = {host_ref, vm_ref, 0};
    db_foreach(dm_class_by_name("VM"), add_resident, &sum);
    int64_t free_bytes = host_total_memory(host) - xenops.host_reserve - sum.used;
    return free_bytes > 0 ? free_bytes : 0;
}

/* host_metrics.memory_free follows every start and stop where the
 * datamodel still has the field (it is "Removed" in current XenAPI, whose
 * clients use host.compute_free_memory); write lock held. */
static void update_host_memory(void)
{
    g_autofree char *host_ref = bootstrap_this_host();
    DbRow *host = db_lookup(dm_class_by_name("host"), host_ref);
    DbRow *metrics = host ? db_lookup(dm_class_by_name("host_metrics"),
                                      xv_str(db_get(host, "metrics")))
                          : NULL;
    if (!metrics)
        return;
    const Xv *memory_free = db_get(metrics, "memory_free");
    if (memory_free) { /* computing it walks every VM: only when stored */
        int64_t free_bytes = xenops_host_free_memory();
        if (memory_free->i != free_bytes)
            db_set_by_name(metrics, "memory_free", xv_new_int(free_bytes), NULL);
    }
    db_set_by_name(metrics, "last_updated",
                   xv_new_datetime(g_get_real_time() / G_USEC_PER_SEC), NULL);
}

/* ---- database updates --------------------------------------------------- */

static int64_t next_domid(XapiError **err)
{
    g_autofree char *text = db_meta_get("next_domid");
    int64_t domid = text ? g_ascii_strtoll(text, NULL, 10) : 1;
    if (domid < 1)
        domid = 1;
    g_autofree char *next = g_strdup_printf("%" G_GINT64_FORMAT, domid + 1);
    if (db_meta_put("next_domid", next, err) < 0)
        return -1;
    return domid;
}

/* The VM's metrics object, made on first start (write lock held). */
static DbRow *ensure_metrics(DbRow *vm, XapiError **err)
{
    const DmClass *cls = dm_class_by_name("VM_metrics");
    DbRow *metrics = db_lookup(cls, xv_str(db_get(vm, "metrics")));
    if (metrics)
        return metrics;
    metrics = db_row_new(cls);
    char *ref = g_strdup(metrics->ref);
    if (db_insert(metrics, err) < 0 ||
        db_set_by_name(vm, "metrics", xv_new_string_take(ref), err) < 0)
        return NULL;
    return db_lookup(cls, xv_str(db_get(vm, "metrics")));
}

typedef struct {
    bool paused;
    bool new_domid;
} RunningUpdate;

/* What the guest's agent said goes with the domain, as in XAPI (a
 * reboot's new domain has to be heard again). */
static int drop_guest_metrics(DbRow *vm, XapiError **err)
{
    DbRow *guest = db_lookup(dm_class_by_name("VM_guest_metrics"),
                             xv_str(db_get(vm, "guest_metrics")));
    if (guest && (db_delete(guest, err) < 0 ||
                  db_set_by_name(vm, "guest_metrics", xv_new_string("OpaqueRef:NULL"), err) < 0))
        return -1;
    return 0;
}

/* A VM update that may change what the host has free. */
typedef struct {
    ObjectWriteFn fn;
    const void *arg;
} HostMemoryUpdate;

static int update_with_host_memory(DbRow *vm, const void *arg, XapiError **err)
{
    const HostMemoryUpdate *u = arg;
    if (u->fn(vm, u->arg, err) < 0)
        return -1;
    update_host_memory();
    return 0;
}

static int with_vm(const char *vm_ref, ObjectWriteFn fn, const void *arg, XapiError **err)
{
    HostMemoryUpdate u = {fn, arg};
    return operations_write(&vm_operations, vm_ref, update_with_host_memory, &u, err);
}

static int set_running(DbRow *vm, const void *arg, XapiError **err)
{
    const RunningUpdate *u = arg;
    const char *before = xv_str(db_get(vm, "power_state"));
    bool was_halted = strcmp(before, "Halted") == 0 || strcmp(before, "Suspended") == 0;
    if (db_set_by_name(vm, "power_state", xv_new_static_string(u->paused ? "Paused" : "Running"),
                       err) < 0)
        return -1;
    g_autofree char *host = bootstrap_this_host();
    if (db_set_by_name(vm, "resident_on", xv_new_string(host), err) < 0 ||
        db_set_by_name(vm, "scheduled_to_be_resident_on", xv_new_string("OpaqueRef:NULL"),
                       err) < 0 ||
        db_set_by_name(vm, "suspend_VDI", xv_new_string("OpaqueRef:NULL"), err) < 0)
        return -1;
    if (u->new_domid) {
        int64_t domid = next_domid(err);
        if (domid < 0 || db_set_by_name(vm, "domid", xv_new_int(domid), err) < 0 ||
            drop_guest_metrics(vm, err) < 0)
            return -1;
    }
    DbRow *metrics = ensure_metrics(vm, err);
    if (!metrics)
        return -1;
    int64_t now = g_get_real_time() / G_USEC_PER_SEC;
    if (u->new_domid) {
        db_set_by_name(metrics, "start_time", xv_new_datetime(now), NULL);
        db_set_by_name(metrics, "VCPUs_number", xv_new_int(db_get(vm, "VCPUs_at_startup")->i),
                       NULL);
        /* what the domain was given: its RAM, ballooned to memory_dynamic_max */
        int64_t static_max = db_get(vm, "memory_static_max")->i;
        int64_t dynamic_max = db_get(vm, "memory_dynamic_max")->i;
        int64_t target = dynamic_max > 0 && dynamic_max < static_max ? dynamic_max : static_max;
        db_set_by_name(metrics, "memory_actual", xv_new_int(target), NULL);
        db_set_by_name(vm, "memory_target", xv_new_int(target), NULL);
        db_set_by_name(vm, "memory_overhead",
                       xv_new_int(vm_memory_overhead(static_max, db_get(vm, "VCPUs_max")->i)),
                       NULL);
        db_set_by_name(metrics, "current_domain_type", xv_new_static_string("hvm"), NULL);
    }
    db_set_by_name(metrics, "state", xv_new_array(), NULL);
    db_set_by_name(metrics, "last_updated", xv_new_datetime(now), NULL);
    if (was_halted && (vm_vbds_set_attached(vm, true, err) < 0 ||
                       vm_vifs_set_attached(vm, true, err) < 0 ||
                       vm_consoles_sync(vm, err) < 0))
        return -1;
    return 0;
}

int xenops_mark_running(const char *vm_ref, bool paused, bool new_domid, XapiError **err)
{
    RunningUpdate u = {paused, new_domid};
    return with_vm(vm_ref, set_running, &u, err);
}

static int set_paused(DbRow *vm, const void *arg, XapiError **err)
{
    bool paused = *(const bool *)arg;
    return db_set_by_name(vm, "power_state", xv_new_static_string(paused ? "Paused" : "Running"),
                          err);
}

int xenops_mark_paused(const char *vm_ref, bool paused, XapiError **err)
{
    return with_vm(vm_ref, set_paused, &paused, err);
}

static int set_halted(DbRow *vm, const void *arg, XapiError **err)
{
    if (vm_nvram_capture(vm, err) < 0)
        return -1;
    vm_consoles_destroy(vm);
    if (drop_guest_metrics(vm, err) < 0)
        return -1;
    if (db_set_by_name(vm, "suspend_VDI", xv_new_string("OpaqueRef:NULL"), err) < 0)
        return -1;
    if (vm_vbds_set_attached(vm, false, err) < 0 || vm_vifs_set_attached(vm, false, err) < 0)
        return -1;
    if (db_set_by_name(vm, "power_state", xv_new_static_string("Halted"), err) < 0 ||
        db_set_by_name(vm, "domid", xv_new_int(-1), err) < 0 ||
        db_set_by_name(vm, "resident_on", xv_new_string("OpaqueRef:NULL"), err) < 0)
        return -1;
    DbRow *metrics = db_lookup(dm_class_by_name("VM_metrics"), xv_str(db_get(vm, "metrics")));
    if (metrics) {
        db_set_by_name(metrics, "VCPUs_number", xv_new_int(0), NULL);
        db_set_by_name(metrics, "memory_actual", xv_new_int(0), NULL);
        db_set_by_name(metrics, "last_updated",
                       xv_new_datetime(g_get_real_time() / G_USEC_PER_SEC), NULL);
    }
    return 0;
}

int xenops_mark_halted(const char *vm_ref, XapiError **err)
{
    return with_vm(vm_ref, set_halted, NULL, err);
}

static int set_suspended(DbRow *vm, const void *arg, XapiError **err)
{
    if (set_halted(vm, NULL, err) < 0)
        return -1;
    return db_set_by_name(vm, "power_state", xv_new_static_string("Suspended"), err) < 0 ||
                   db_set_by_name(vm, "suspend_VDI", xv_new_string(arg), err) < 0
               ? -1 : 0;
}

int xenops_mark_suspended(const char *vm_ref, const char *suspend_vdi, XapiError **err)
{
    return with_vm(vm_ref, set_suspended, suspend_vdi, err);
}

/* ---- reconciliation ----------------------------------------------------- */

typedef struct {
    char *ref;
    char *power_state;
    char *after_shutdown, *after_reboot, *after_crash;
    char *suspend_vdi; /* NULL unless its memory image was saved */
    bool resident_here; /* resident_on is this host (not a VM migrated away) */
} VmView;

static bool read_view(const char *uuid, VmView *view)
{
    db_read_begin();
    DbRow *vm = db_lookup_uuid(dm_class_by_name("VM"), uuid);
    if (vm) {
        view->ref = g_strdup(vm->ref);
        view->power_state = g_strdup(xv_str(db_get(vm, "power_state")));
        view->after_shutdown = g_strdup(xv_str(db_get(vm, "actions_after_shutdown")));
        view->after_reboot = g_strdup(xv_str(db_get(vm, "actions_after_reboot")));
        view->after_crash = g_strdup(xv_str(db_get(vm, "actions_after_crash")));
        const char *image = xv_str(db_get(vm, "suspend_VDI"));
        if (db_lookup(dm_class_by_name("VDI"), image))
            view->suspend_vdi = g_strdup(image);
        g_autofree char *here = bootstrap_this_host();
        view->resident_here = strcmp(xv_str(db_get(vm, "resident_on")), here) == 0;
    }
    db_read_end();
    return vm != NULL;
}

static void view_clear(VmView *v)
{
    g_free(v->ref);
    g_free(v->power_state);
    g_free(v->after_shutdown);
    g_free(v->after_reboot);
    g_free(v->after_crash);
    g_free(v->suspend_vdi);
}

static void log_failure(const char *uuid, const char *what, XapiError *err)
{
    if (err)
        g_warning("VM %s: %s failed: %s %s", uuid, what, err->code,
                  err->params->len ? (char *)err->params->pdata[0] : "");
}

/* A stopped guest: restart it in place or end the domain. */
static void apply_stop_action(const char *uuid, const VmView *vm, HvStopReason reason)
{
    const char *action = reason == HV_STOP_REBOOT ? vm->after_reboot
                         : reason == HV_STOP_CRASH ? vm->after_crash
                                                   : vm->after_shutdown;
    g_autoptr(XapiError) err = NULL;
    if (reason == HV_STOP_CRASH && vm_crashdump_wanted(action))
        vm_crashdump_take(uuid, vm->ref);
    if (strcmp(action, "restart") == 0 || strcmp(action, "coredump_and_restart") == 0 ||
        strcmp(action, "rename_restart") == 0) {
        if (xenops.driver->reset(uuid, &err) == 0 &&
            xenops_mark_running(vm->ref, false, true, &err) == 0)
            return;
        log_failure(uuid, "restart", err);
        g_clear_pointer(&err, xapi_error_free);
    } else if (strcmp(action, "preserve") == 0) {
        if (xenops_mark_paused(vm->ref, true, &err) < 0)
            log_failure(uuid, "preserve", err);
        return;
    }
    if (xenops.driver->destroy(uuid, &err) < 0) {
        log_failure(uuid, "destroy", err);
        return;
    }
    if (xenops_mark_halted(vm->ref, &err) < 0)
        log_failure(uuid, "halt", err);
}

guint xenops_fence_domains(const char *const *uuids, guint n)
{
    guint stopped = 0;
    for (guint i = 0; i < n; i++) {
        if (xenops.driver->status(uuids[i]).state == HV_ABSENT)
            continue;
        g_autoptr(XapiError) err = NULL;
        if (xenops.driver->destroy(uuids[i], &err) < 0)
            g_warning("ha: the domain of VM %s could not be stopped: %s", uuids[i],
                      err ? err->code : "?");
        else
            stopped++;
    }
    return stopped;
}

void xenops_reconcile(const char *uuid)
{
    if (ha_fenced()) { /* HA's fence: nothing runs here, nothing is written */
        g_autoptr(XapiError) ignored = NULL;
        if (xenops.driver->status(uuid).state != HV_ABSENT)
            xenops.driver->destroy(uuid, &ignored);
        return;
    }
    if (is_waiting(uuid))
        return; /* the waiting operation decides; it reconciles when done */
    VmView vm = {0};
    if (!read_view(uuid, &vm)) {
        g_autoptr(XapiError) err = NULL;
        xenops.driver->destroy(uuid, &err); /* a domain without a VM */
        return;
    }
    HvStatus st = xenops.driver->status(uuid);
    g_autoptr(XapiError) err = NULL;
    /* A VM that runs on another host (migrated away) is not this host's
     * to mark: only its leftover domain here is forgotten. */
    bool live_state = strcmp(vm.power_state, "Running") == 0 || strcmp(vm.power_state, "Paused") == 0;
    bool db_live = vm.resident_here && live_state;
    bool elsewhere = !vm.resident_here && live_state;
    switch (st.state) {
    case HV_SHUTDOWN:
        apply_stop_action(uuid, &vm, st.reason);
        break;
    case HV_ABSENT:
        xenops.driver->destroy(uuid, &err); /* forget a vanished process */
        /* A suspend that saved the memory image (suspend_VDI recorded)
         * before xapid died is finished: the VM is Suspended. */
        if (db_live && vm.suspend_vdi && xenops_mark_suspended(vm.ref, vm.suspend_vdi, &err) < 0)
            log_failure(uuid, "suspend", err);
        else if (db_live && !vm.suspend_vdi && xenops_mark_halted(vm.ref, &err) < 0)
            log_failure(uuid, "halt", err);
        break;
    case HV_RUNNING:
    case HV_PAUSED: {
        if (elsewhere) { /* a migration's copy that must not claim the VM */
            g_warning("VM %s: a domain here, but the VM runs on another host: left alone", uuid);
            break;
        }
        if (st.rebooted) { /* the guest rebooted itself: a new domain, or the end */
            xenops.driver->clear_rebooted(uuid);
            if (strcmp(vm.after_reboot, "restart") == 0) {
                if (xenops_mark_running(vm.ref, st.state == HV_PAUSED, true, &err) < 0)
                    log_failure(uuid, "reboot", err);
            } else {
                apply_stop_action(uuid, &vm, HV_STOP_REBOOT);
            }
            break;
        }
        bool paused = st.state == HV_PAUSED;
        /* A suspend that recorded the saved image but died before it
         * stopped the paused domain is finished the same way. */
        if (db_live && paused && vm.suspend_vdi) {
            if (xenops.driver->destroy(uuid, &err) < 0 ||
                xenops_mark_suspended(vm.ref, vm.suspend_vdi, &err) < 0)
                log_failure(uuid, "suspend", err);
            break;
        }
        if (!db_live)
            xenops_mark_running(vm.ref, paused, false, &err);
        else if (paused != (strcmp(vm.power_state, "Paused") == 0))
            xenops_mark_paused(vm.ref, paused, &err);
        log_failure(uuid, "update", err);
        break;
    }
    }
    view_clear(&vm);
}

static void react(gpointer data, gpointer unused)
{
    char *uuid = data;
    xenops_lock_vm(uuid);
    xenops_reconcile(uuid);
    xenops_unlock_vm(uuid);
    g_free(uuid);
}

/* From driver threads: queue the reconciliation, never block them. */
static void on_domain_change(const char *uuid)
{
    g_thread_pool_push(xenops.reactions, g_strdup(uuid), NULL);
}

void xenops_queue_reconcile(const char *uuid) { on_domain_change(uuid); }

/* ---- start-up ----------------------------------------------------------- */

static int sync_live_consoles(DbRow *vm, const void *arg, XapiError **err)
{
    const char *state = xv_str(db_get(vm, "power_state"));
    if (strcmp(state, "Running") != 0 && strcmp(state, "Paused") != 0)
        return 0;
    return vm_consoles_sync(vm, err);
}

/* A domain found again keeps its consoles, unless an older xapid made them
 * (another location, no serial socket) or the host's address changed. */
static void resync_consoles(const char *uuid)
{
    db_read_begin();
    DbRow *vm = db_lookup_uuid(dm_class_by_name("VM"), uuid);
    g_autofree char *ref = vm ? g_strdup(vm->ref) : NULL;
    db_read_end();
    g_autoptr(XapiError) err = NULL;
    if (ref && operations_write(&vm_operations, ref, sync_live_consoles, NULL, &err) < 0)
        log_failure(uuid, "console update", err);
}

typedef struct {
    const char *host;
    GPtrArray *uuids;
    GPtrArray *scheduled; /* refs of VMs whose start here a crash interrupted */
} Resident;

static bool collect_resident(DbRow *vm, void *ctx)
{
    Resident *r = ctx;
    const char *state = xv_str(db_get(vm, "power_state"));
    if (db_get(vm, "is_control_domain")->b)
        return true;
    if (strcmp(xv_str(db_get(vm, "scheduled_to_be_resident_on")), r->host) == 0)
        g_ptr_array_add(r->scheduled, g_strdup(vm->ref));
    if (strcmp(state, "Halted") != 0 && strcmp(state, "Suspended") != 0 &&
        strcmp(xv_str(db_get(vm, "resident_on")), r->host) == 0)
        g_ptr_array_add(r->uuids, g_strdup(xv_str(db_get(vm, "uuid"))));
    return true;
}

static int record_hypervisor(GPtrArray *scheduled, XapiError **err)
{
    if (db_write_begin(err) < 0)
        return -1;
    for (guint i = 0; i < scheduled->len; i++) { /* no start is in flight yet */
        DbRow *vm = db_lookup(dm_class_by_name("VM"), scheduled->pdata[i]);
        if (vm)
            db_set_by_name(vm, "scheduled_to_be_resident_on", xv_new_string("OpaqueRef:NULL"),
                           NULL);
    }
    g_autofree char *host_ref = bootstrap_this_host();
    DbRow *host = db_lookup(dm_class_by_name("host"), host_ref);
    if (host) {
        Xv *version = xv_dup(db_get(host, "software_version"));
        xv_struct_set_string(version, "hypervisor", xenops.driver->name);
        xv_struct_set_string(version, "accel", xenops.driver->accel);
        db_set_by_name(host, "software_version", version, NULL);
        Xv *caps = xv_new_array();
        xv_array_append_string(caps, "hvm-3.0-x86_64");
        g_autofree char *accel = g_strdup_printf("accel-%s", xenops.driver->accel);
        xv_array_append_string(caps, accel);
        db_set_by_name(host, "capabilities", caps, NULL);
        /* What XAPI's host.compute_memory_overhead answers: here, what
         * the host keeps back from guests. */
        db_set_by_name(host, "memory_overhead", xv_new_int(xenops.host_reserve), NULL);
    }
    operations_reset_all();
    update_host_memory();
    return db_write_commit(err);
}

int xenops_init(const char *state_dir, const char *runtime_dir, const char *hypervisor,
                XapiError **err)
{
    operations_register(&vm_operations);
    operations_register(&vtpm_operations);
    operations_register(&host_operations);
    vbd_init();
    vm_nics_init();
    xenops.locks = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    xenops.waiting = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    xenops.reactions = g_thread_pool_new(react, NULL, 2, FALSE, NULL);
    if (!hypervisor || strcmp(hypervisor, "qemu") == 0)
        xenops.driver = hv_qemu_driver(runtime_dir, on_domain_change, err);
    else if (strcmp(hypervisor, "sim") == 0) {
        xenops.driver = hv_sim_driver(on_domain_change);
        g_autofree char *dir = g_build_filename(state_dir, "sim-domains", NULL);
        hv_sim_record_domains(dir);
    } else
        return xapi_error_internal(err, "unknown hypervisor driver \"%s\" (qemu or sim)",
                                   hypervisor);
    if (!xenops.driver || vm_nvram_init(state_dir, err) < 0 || vm_vtpm_init(state_dir, err) < 0 ||
        vm_bootloader_init(state_dir, err) < 0)
        return -1;
    /* What the host itself uses now stays out of the guests' share. */
    xenops.host_reserve = bootstrap_meminfo_bytes("MemTotal") - bootstrap_meminfo_bytes("MemAvailable");
    if (xenops.host_reserve < 256 << 20)
        xenops.host_reserve = 256 << 20;
    Resident r = {NULL, g_ptr_array_new_with_free_func(g_free),
                  g_ptr_array_new_with_free_func(g_free)};
    db_read_begin();
    g_autofree char *host = bootstrap_this_host();
    r.host = host;
    db_foreach(dm_class_by_name("VM"), collect_resident, &r);
    db_read_end();
    int recorded = record_hypervisor(r.scheduled, err);
    g_ptr_array_unref(r.scheduled);
    if (recorded < 0) {
        g_ptr_array_unref(r.uuids);
        return -1;
    }
    for (guint i = 0; i < r.uuids->len; i++) {
        const char *uuid = r.uuids->pdata[i];
        bool found = xenops.driver->reattach(uuid);
        g_message("VM %s: %s", uuid, found ? "domain found again" : "no domain: halted");
        xenops_lock_vm(uuid);
        xenops_reconcile(uuid);
        if (found)
            resync_consoles(uuid);
        xenops_unlock_vm(uuid);
    }
    g_ptr_array_unref(r.uuids);
    storage_finish_live_forks(); /* a guest that was moving onto new leaves */
    if (xenops.driver->stop_unattached)
        xenops.driver->stop_unattached();
    vm_drop_unowned_suspend_images();
    /* The rules of the NICs running here, and no others; then bridges
     * left by VMs that stopped while xapid was away. */
    if (strcmp(xenops.driver->name, "qemu") == 0) {
        g_autoptr(XapiError) rules_err = NULL;
        if (vm_nics_restore_rules(&rules_err) < 0)
            g_warning("cannot restore the guests' nftables rules: %s",
                      rules_err->params->len ? (char *)rules_err->params->pdata[0]
                                             : rules_err->code);
        network_bridges_gc();
    }
    guest_agent_start_polling();
    return 0;
}
