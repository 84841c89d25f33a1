/* vm_lifecycle.c: VM.start, shutdown, reboot, pause, destroy and friends.
 *
 * Every operation is checked and recorded in current_operations first
 * (vm_operations.c), then runs holding the VM's lock against the driver,
 * and the database follows what the domain did (xenops.c). */
#include <string.h>

#include "boot_files.h"
#include "bootstrap.h"
#include "dm_handlers.h"
#include "guest_agent.h"
#include "ha.h"
#include "ha_fence.h"
#include "message_store.h"
#include "task.h"
#include "vm_bootloader.h"
#include "vm_crashdump.h"
#include "vm_disks.h"
#include "vm_fields.h"
#include "vm_nics.h"
#include "vm_lifecycle.h"
#include "vm_nvram.h"
#include "vm_operations.h"
#include "vm_vtpm.h"
#include "xenops.h"

#define DEFAULT_CLEAN_SHUTDOWN_TIMEOUT 1200 /* seconds, as XAPI's */
#define AGENT_SHUTDOWN_TIMEOUT_MS 3000 /* the agent may be busy with the poller */
#define MIN_MEMORY (16 << 20)

static const char *record_str(const VmOp *o, const char *field)
{
    const Xv *v = xv_struct_get(o->record, field);
    return v ? xv_str(v) : "";
}

/* Operations that attach the VM's disks: they take the VDIs' attach
 * locks with the VM's own, in one transaction, so that a VDI operation
 * racing them either sees the attach or is seen (VDI_IN_USE). */
static bool attaches_disks(const char *op)
{
    static const char *const ops[] = {"start", "start_on", "resume", "resume_on", NULL};
    for (const char *const *o = ops; *o; o++)
        if (strcmp(*o, op) == 0)
            return true;
    return false;
}

typedef struct {
    const char *op, *task_ref;
} VmLock;

static int lock_vm_and_disks(DbRow *vm, const void *arg, XapiError **err)
{
    const VmLock *l = arg;
    /* every check before the first change: a failed transaction is
     * aborted, not undone */
    if (vm_operations.check(vm, l->op, err) < 0 ||
        (attaches_disks(l->op) && bootstrap_check_host_enabled(err) < 0) ||
        vm_disks_check(vm, err) < 0 ||
        operations_add(&vm_operations, vm, l->op, l->task_ref, err) < 0)
        return -1;
    return vm_disks_lock(vm, l->task_ref, err);
}

static int unlock_vm_and_disks(DbRow *vm, const void *arg, XapiError **err)
{
    const VmLock *l = arg;
    if (vm_disks_unlock(vm, l->task_ref, err) < 0)
        return -1;
    return operations_remove(vm, l->task_ref, err);
}

static int operation_begin(const char *vm_ref, const char *op, const char *task_ref,
                           XapiError **err)
{
    if (!attaches_disks(op))
        return operations_begin(&vm_operations, vm_ref, op, task_ref, err);
    VmLock l = {op, task_ref};
    return operations_write(&vm_operations, vm_ref, lock_vm_and_disks, &l, err);
}

static void operation_end(const char *vm_ref, const char *op, const char *task_ref)
{
    if (!attaches_disks(op)) {
        operations_end(&vm_operations, vm_ref, task_ref);
        return;
    }
    VmLock l = {op, task_ref};
    g_autoptr(XapiError) err = NULL;
    if (operations_write(&vm_operations, vm_ref, unlock_vm_and_disks, &l, &err) < 0 &&
        strcmp(err->code, "HANDLE_INVALID") != 0)
        g_warning("VM %s: could not clear operation %s: %s", vm_ref, task_ref, err->code);
}

int vm_run_operation(Call *call, const char *vm_ref, const char *op, int (*work)(VmOp *o),
                     const void *arg)
{
    g_autofree char *op_task = call->task_ref ? g_strdup(call->task_ref) : db_new_ref();
    if (operation_begin(vm_ref, op, op_task, &call->error) < 0)
        return -1;
    VmOp o = {call, vm_ref, NULL, NULL, arg};
    db_read_begin();
    DbRow *vm = db_lookup(dm_class_by_name("VM"), vm_ref);
    if (vm) {
        o.uuid = g_strdup(xv_str(db_get(vm, "uuid")));
        o.record = db_row_record(vm);
    }
    db_read_end();
    int rc = -1;
    if (!vm) {
        xapi_error_set(&call->error, "HANDLE_INVALID", "VM", vm_ref, NULL);
    } else {
        xenops_lock_vm(o.uuid);
        task_set_progress(call->task_ref, 0.1);
        rc = work(&o);
        xenops_reconcile(o.uuid); /* what the guest did meanwhile */
        xenops_unlock_vm(o.uuid);
    }
    operation_end(vm_ref, op, op_task);
    g_free(o.uuid);
    xv_free(o.record);
    return rc;
}

static const HvDriver *driver(void) { return xenops_driver(); }

/* ---- start ----------------------------------------------------------- */

/* This host's cpu_info:cpu_count (lock held), 0 if unknown. */
static int64_t host_cpu_count(void)
{
    g_autofree char *host_ref = bootstrap_this_host();
    DbRow *host = db_lookup(dm_class_by_name("host"), host_ref);
    const Xv *count = host ? xv_struct_get(db_get(host, "cpu_info"), "cpu_count") : NULL;
    return count ? g_ascii_strtoll(xv_str(count), NULL, 10) : 0;
}

/* XAPI's assert_enough_pcpus: no more vCPUs than the host has CPUs,
 * unless platform:vcpu-unrestricted is true. */
static int check_pcpus(const Xv *record, int64_t pcpus, XapiError **err)
{
    int64_t vcpus = xv_struct_get(record, "VCPUs_max")->i;
    const Xv *platform = xv_struct_get(record, "platform");
    const Xv *unrestricted = platform ? xv_struct_get(platform, "vcpu-unrestricted") : NULL;
    if (pcpus <= 0 || vcpus <= pcpus ||
        (unrestricted && (strcmp(xv_str(unrestricted), "true") == 0 ||
                          strcmp(xv_str(unrestricted), "1") == 0)))
        return 0;
    char want[32], have[32];
    g_snprintf(want, sizeof want, "%" G_GINT64_FORMAT, vcpus);
    g_snprintf(have, sizeof have, "%" G_GINT64_FORMAT, pcpus);
    return xapi_error_set(err, "HOST_NOT_ENOUGH_PCPUS", want, have, NULL);
}

int vm_check_record(const char *vm_ref, const Xv *record, XapiError **err)
{
    if (vm_fields_check_start(record, err) < 0 || vm_crashdump_check(vm_ref, record, err) < 0)
        return -1;
    if (xv_struct_get(record, "memory_static_max")->i < MIN_MEMORY)
        return xapi_error_set(err, "VM_MEMORY_SIZE_TOO_LOW", vm_ref, NULL);
    if (xv_struct_get(record, "VCPUs_at_startup")->i < 1)
        return xapi_error_set(err, "VM_NO_VCPUS", vm_ref, NULL);
    for (const char *const *f = (const char *const[]){"PV_kernel", "PV_ramdisk", NULL}; *f; f++) {
        const Xv *path = xv_struct_get(record, *f);
        if (path && *xv_str(path) && boot_files_check(*f, xv_str(path), err) < 0)
            return -1;
    }
    return 0;
}

/* HOST_NOT_ENOUGH_FREE_MEMORY unless vm fits here beside what runs and
 * what other starts reserved (lock held). */
static int check_memory(const DbRow *vm, const char *vm_ref, XapiError **err)
{
    int64_t need = vm ? xenops_vm_memory_need(vm) : 0;
    int64_t free_bytes = xenops_host_free_memory_for(vm_ref);
    if (need <= free_bytes)
        return 0;
    char needed[32], available[32];
    g_snprintf(needed, sizeof needed, "%" G_GINT64_FORMAT, need);
    g_snprintf(available, sizeof available, "%" G_GINT64_FORMAT, free_bytes);
    return xapi_error_set(err, "HOST_NOT_ENOUGH_FREE_MEMORY", needed, available, NULL);
}

int vm_check_bootable(const char *vm_ref, const Xv *record, XapiError **err)
{
    if (vm_check_record(vm_ref, record, err) < 0)
        return -1;
    db_read_begin();
    DbRow *vm = db_lookup(dm_class_by_name("VM"), vm_ref);
    int rc = check_memory(vm, vm_ref, err);
    int64_t pcpus = host_cpu_count();
    db_read_end();
    return rc < 0 ? -1 : check_pcpus(record, pcpus, err);
}

/* XAPI's scheduled_to_be_resident_on: the start's memory is this host's
 * from the check on (one write: two starts cannot both take the last of
 * it) until the domain runs (set_running clears it) or the start fails. */
static int reserve(const char *vm_ref, XapiError **err)
{
    DbRow *vm = db_write_begin_on("VM", vm_ref, err);
    if (!vm)
        return -1;
    g_autofree char *here = bootstrap_this_host();
    if (check_memory(vm, vm_ref, err) < 0 ||
        db_set_by_name(vm, "scheduled_to_be_resident_on", xv_new_string(here), err) < 0) {
        db_write_abort();
        return -1;
    }
    return db_write_commit(err);
}

static void unreserve(const char *vm_ref)
{
    db_update("VM", vm_ref, "scheduled_to_be_resident_on", xv_new_string("OpaqueRef:NULL"),
              NULL);
}

static int check_startable(VmOp *o)
{
    return vm_check_bootable(o->ref, o->record, &o->call->error) < 0 ||
                   reserve(o->ref, &o->call->error) < 0
               ? -1
               : 0;
}

/* A Secure Boot domain is a q35 machine, which has no floppy controller. */
static int check_q35_disks(VmOp *o, const HvDisk *disks, size_t n)
{
    if (!vm_nvram_secureboot(o->record))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (disks[i].floppy)
            return xapi_error_set(&o->call->error, "VALUE_NOT_SUPPORTED", "VBD:type", "Floppy",
                                  "a Secure Boot VM (platform:secureboot) is a q35 machine, "
                                  "which has no floppy drive", NULL);
    return 0;
}

int vm_boot(VmOp *o, const char *resume_image, bool paused)
{
    if (check_startable(o) < 0)
        return -1;
    HvDisk *disks = NULL;
    size_t n_disks = 0;
    HvNic *nics = NULL;
    size_t n_nics = 0;
    db_read_begin();
    DbRow *vm = db_lookup(dm_class_by_name("VM"), o->ref);
    int rc = vm ? vm_disks_for_start(vm, &disks, &n_disks, &o->call->error)
                : xapi_error_set(&o->call->error, "HANDLE_INVALID", "VM", o->ref, NULL);
    if (rc == 0) {
        rc = vm_nics_for_start(vm, &nics, &n_nics, &o->call->error);
        vm_nics_boot_order(vm, nics, n_nics, disks, n_disks);
    }
    db_read_end();
    if (rc == 0)
        rc = check_q35_disks(o, disks, n_disks);
    if (rc == 0)
        rc = hv_disks_check_chains(disks, n_disks, &o->call->error);
    if (rc == 0)
        rc = vm_nvram_prepare(o->uuid, o->record, &o->call->error);
    if (rc == 0)
        rc = vm_vtpm_prepare(o->ref, o->record, &o->call->error);
    /* pygrub: the kernel out of the guest's disk, booted as PV_kernel */
    g_autoptr(Xv) pv_boot = NULL;
    if (rc == 0 && vm_bootloader_wanted(o->record))
        rc = vm_bootloader_run(o->ref, o->uuid, o->record, disks, n_disks, &pv_boot,
                               &o->call->error);
    if (rc == 0)
        ha_fence_track(o->uuid); /* a fence destroys it too, cache or not */
    if (rc == 0)
        rc = driver()->start(o->uuid, pv_boot ? pv_boot : o->record, disks, n_disks, nics,
                             n_nics, resume_image, paused, &o->call->error);
    if (pv_boot)
        vm_bootloader_done(o->uuid); /* QEMU holds its kernel and initrd */
    hv_disks_free(disks, n_disks);
    hv_nics_free(nics, n_nics);
    if (rc < 0) {
        unreserve(o->ref);
        return -1;
    }
    task_set_progress(o->call->task_ref, 0.8);
    if (xenops_mark_running(o->ref, paused, true, &o->call->error) < 0) {
        g_autoptr(XapiError) ignored = NULL;
        driver()->destroy(o->uuid, &ignored);
        unreserve(o->ref);
        return -1;
    }
    if (driver()->start_recorded)
        driver()->start_recorded(o->uuid);
    return 0;
}

/* XAPI's update_platform_secureboot: VM.start records what "auto" meant,
 * "true" where the keys are (the pool's certificates there, this host's
 * enrolled store here). A BIOS VM keeps "auto", which means off for it. */
static int resolve_secureboot_auto(VmOp *o)
{
    const Xv *platform = xv_struct_get(o->record, "platform");
    const Xv *v = platform && platform->kind == XV_STRUCT ? xv_struct_get(platform, "secureboot")
                                                          : NULL;
    if (!v || strcmp(xv_str(v), "auto") != 0 || !vm_nvram_uefi(o->record))
        return 0;
    Xv *resolved = xv_dup(platform);
    xv_struct_set_string(resolved, "secureboot",
                         vm_nvram_secureboot_available() ? "true" : "false");
    if (db_update("VM", o->ref, "platform", xv_dup(resolved), &o->call->error) < 0) {
        xv_free(resolved);
        return -1;
    }
    xv_struct_set(o->record, "platform", resolved);
    return 0;
}

static int start_work(VmOp *o)
{
    if (resolve_secureboot_auto(o) < 0)
        return -1;
    return vm_boot(o, NULL, *(const bool *)o->arg);
}

/* XAPI's message after a start succeeded (message_forwarding.ml). */
static int started(Call *call, const char *vm, int rc)
{
    if (rc == 0) {
        g_autofree char *host = message_this_host();
        message_raise_vm("VM_STARTED", vm, "started on host: %s", host);
    }
    return rc;
}

/* The message after another operation succeeded. */
static int raised(const char *vm, int rc, const char *name, const char *what)
{
    if (rc == 0)
        message_raise_vm(name, vm, "%s", what);
    return rc;
}

/* HA (src/pool/ha.c): a start must not break the failover plan, unless
 * forced (HA's own restarts); a started VM to protect is protected. */
static int start_here(Call *call, const char *vm, const char *op, bool start_paused, bool force)
{
    if (!force && ha_vm_before_start(vm, &call->error) < 0)
        return -1;
    int rc = vm_run_operation(call, vm, op, start_work, &start_paused);
    if (rc == 0)
        ha_vm_started(vm);
    return started(call, vm, rc);
}

int xapi_VM_start(Call *call, const char *vm, bool start_paused, bool force)
{
    return start_here(call, vm, "start", start_paused, force);
}

int xapi_VM_start_on(Call *call, const char *vm, const char *host, bool start_paused, bool force)
{
    if (bootstrap_check_this_host(host, &call->error) < 0)
        return -1;
    return start_here(call, vm, "start_on", start_paused, force);
}

/* ---- pause ----------------------------------------------------------- */

static int pause_work(VmOp *o)
{
    if (driver()->pause(o->uuid, &o->call->error) < 0)
        return -1;
    return xenops_mark_paused(o->ref, true, &o->call->error);
}

static int unpause_work(VmOp *o)
{
    if (driver()->unpause(o->uuid, &o->call->error) < 0)
        return -1;
    return xenops_mark_paused(o->ref, false, &o->call->error);
}

int xapi_VM_pause(Call *call, const char *vm)
{
    return raised(vm, vm_run_operation(call, vm, "pause", pause_work, NULL), "VM_PAUSED",
                  "paused");
}

int xapi_VM_unpause(Call *call, const char *vm)
{
    return raised(vm, vm_run_operation(call, vm, "unpause", unpause_work, NULL), "VM_UNPAUSED",
                  "unpaused");
}

/* ---- shutdown and reboot ---------------------------------------------- */

static int64_t clean_shutdown_timeout(const VmOp *o)
{
    const Xv *other = xv_struct_get(o->record, "other_config");
    const Xv *t = other ? xv_struct_get(other, "clean_shutdown_timeout") : NULL;
    int64_t seconds = t ? g_ascii_strtoll(xv_str(t), NULL, 10) : 0;
    return seconds > 0 ? seconds : DEFAULT_CLEAN_SHUTDOWN_TIMEOUT;
}

/* Whether the guest has an agent that answered (its VM_guest_metrics say
 * PV_drivers_detected): XAPI asks a guest with PV tools through them. */
static bool agent_seen(const VmOp *o)
{
    db_read_begin();
    DbRow *m = db_lookup(dm_class_by_name("VM_guest_metrics"), record_str(o, "guest_metrics"));
    bool seen = m && db_get(m, "PV_drivers_detected")->b;
    db_read_end();
    return seen;
}

/* Asks the guest to power off: through its agent when it has one that
 * takes the request, else with the ACPI power button. */
static int request_guest_shutdown(VmOp *o)
{
    g_autoptr(XapiError) refused = NULL;
    if (agent_seen(o) && guest_agent_shutdown(o->uuid, AGENT_SHUTDOWN_TIMEOUT_MS, &refused) == 0)
        return 0;
    if (refused)
        g_message("VM %s: %s; pressing the power button", o->uuid,
                  refused->params->len ? (char *)refused->params->pdata[0] : refused->code);
    const Xv *platform = xv_struct_get(o->record, "platform");
    const Xv *acpi = platform ? xv_struct_get(platform, "acpi") : NULL;
    if (acpi && strcmp(xv_str(acpi), "0") == 0) /* no power button to press */
        return xapi_error_set(&o->call->error, "VM_LACKS_FEATURE", o->ref, NULL);
    return driver()->request_shutdown(o->uuid, &o->call->error);
}

/* Asks the guest to stop and waits for it, checking for cancellation;
 * the domain is left stopped, not destroyed. */
static int ask_guest_to_stop(VmOp *o)
{
    Call *call = o->call;
    if (request_guest_shutdown(o) < 0)
        return -1;
    task_set_progress(call->task_ref, 0.3);
    int64_t timeout = clean_shutdown_timeout(o);
    int64_t deadline = g_get_monotonic_time() + timeout * G_USEC_PER_SEC;
    int rc = 0;
    xenops_wait_unlocked_begin(o->uuid);
    task_wait_begin(); /* the guest may never answer: not on a worker's place */
    while (!driver()->wait_stopped(o->uuid, MIN(deadline, g_get_monotonic_time() +
                                                          G_USEC_PER_SEC / 5))) {
        if (call->task_ref && task_cancel_requested(call->task_ref)) {
            rc = xapi_error_set(&call->error, "TASK_CANCELLED", call->task_ref, NULL);
            break;
        }
        if (g_get_monotonic_time() >= deadline) {
            char seconds[32];
            g_snprintf(seconds, sizeof seconds, "%" G_GINT64_FORMAT, timeout);
            rc = xapi_error_set(&call->error, "VM_SHUTDOWN_TIMEOUT", o->ref, seconds, NULL);
            break;
        }
    }
    task_wait_end();
    xenops_wait_unlocked_end(o->uuid);
    return rc;
}

int vm_hard_stop(VmOp *o)
{
    if (driver()->destroy(o->uuid, &o->call->error) < 0)
        return -1;
    const Xv *image = o->record ? xv_struct_get(o->record, "suspend_VDI") : NULL;
    g_autofree char *suspend_vdi = image ? g_strdup(xv_str(image)) : NULL;
    if (xenops_mark_halted(o->ref, &o->call->error) < 0)
        return -1;
    vm_drop_suspend_image(suspend_vdi);
    return 0;
}

static int clean_shutdown_work(VmOp *o)
{
    if (ask_guest_to_stop(o) < 0)
        return -1;
    return vm_hard_stop(o);
}

static int clean_reboot_work(VmOp *o)
{
    if (ask_guest_to_stop(o) < 0)
        return -1;
    if (driver()->reset(o->uuid, &o->call->error) < 0)
        return -1;
    return xenops_mark_running(o->ref, false, true, &o->call->error);
}

static int hard_shutdown_work(VmOp *o)
{
    return vm_hard_stop(o); /* a suspended VM has no domain: only the record changes */
}

static int hard_reboot_work(VmOp *o)
{
    if (driver()->reset(o->uuid, &o->call->error) < 0)
        return -1;
    return xenops_mark_running(o->ref, false, true, &o->call->error);
}

/* VM.shutdown: clean when the guest can be asked, hard otherwise or when
 * it does not comply. */
static int shutdown_work(VmOp *o)
{
    if (strcmp(record_str(o, "power_state"), "Running") == 0) {
        g_autoptr(XapiError) clean_error = NULL;
        XapiError *saved = o->call->error;
        o->call->error = NULL;
        int rc = ask_guest_to_stop(o);
        clean_error = o->call->error;
        o->call->error = saved;
        if (rc < 0 && strcmp(clean_error->code, "TASK_CANCELLED") == 0) {
            o->call->error = g_steal_pointer(&clean_error);
            return -1;
        }
    }
    return vm_hard_stop(o);
}

int xapi_VM_clean_shutdown(Call *call, const char *vm)
{
    ha_vm_stopping(vm);
    return raised(vm, vm_run_operation(call, vm, "clean_shutdown", clean_shutdown_work, NULL), "VM_SHUTDOWN",
                  "shutdown");
}

int xapi_VM_clean_reboot(Call *call, const char *vm)
{
    return raised(vm, vm_run_operation(call, vm, "clean_reboot", clean_reboot_work, NULL), "VM_REBOOTED",
                  "rebooted cleanly");
}

int xapi_VM_hard_shutdown(Call *call, const char *vm)
{
    ha_vm_stopping(vm);
    return raised(vm, vm_run_operation(call, vm, "hard_shutdown", hard_shutdown_work, NULL), "VM_SHUTDOWN",
                  "shutdown forcibly");
}

int xapi_VM_hard_reboot(Call *call, const char *vm)
{
    return raised(vm, vm_run_operation(call, vm, "hard_reboot", hard_reboot_work, NULL), "VM_REBOOTED",
                  "rebooted forcibly");
}

int xapi_VM_shutdown(Call *call, const char *vm)
{
    ha_vm_stopping(vm);
    return raised(vm, vm_run_operation(call, vm, "shutdown", shutdown_work, NULL), "VM_SHUTDOWN",
                  "shutdown");
}

/* ---- destroy and power_state_reset ------------------------------------ */

static void delete_refs(const Xv *refs, const char *class_name)
{
    const DmClass *cls = dm_class_by_name(class_name);
    g_autoptr(Xv) copy = xv_dup(refs);
    for (guint i = 0; i < xv_len(copy); i++) {
        DbRow *row = db_lookup(cls, xv_str(xv_at(copy, i)));
        if (row)
            db_delete(row, NULL);
    }
}

static void delete_ref(const Xv *ref, const char *class_name)
{
    DbRow *row = db_lookup(dm_class_by_name(class_name), xv_str(ref));
    if (row)
        db_delete(row, NULL);
}

/* The VM with what belongs to it alone: devices, consoles, metrics. */
static int destroy_work(VmOp *o)
{
    Call *call = o->call;
    g_autoptr(XapiError) ignored = NULL;
    driver()->destroy(o->uuid, &ignored); /* a suspended VM's leftovers */
    vm_drop_suspend_image(xv_str(xv_struct_get(o->record, "suspend_VDI")));
    DbRow *vm = db_write_begin_on("VM", o->ref, &call->error);
    if (!vm)
        return -1;
    delete_refs(db_get(vm, "VBDs"), "VBD");
    delete_refs(db_get(vm, "VIFs"), "VIF");
    delete_refs(db_get(vm, "consoles"), "console");
    delete_ref(db_get(vm, "metrics"), "VM_metrics");
    delete_ref(db_get(vm, "guest_metrics"), "VM_guest_metrics");
    delete_refs(db_get(vm, "crash_dumps"), "crashdump"); /* their VDIs stay, as in XAPI */
    g_autoptr(Xv) vtpm_uuids = xv_new_array();
    for (guint i = 0; i < xv_len(db_get(vm, "VTPMs")); i++) {
        DbRow *vtpm = db_lookup(dm_class_by_name("VTPM"), xv_str(xv_at(db_get(vm, "VTPMs"), i)));
        if (vtpm)
            xv_array_append_string(vtpm_uuids, xv_str(db_get(vtpm, "uuid")));
    }
    delete_refs(db_get(vm, "VTPMs"), "VTPM"); /* with their TPM states, as in XAPI */
    vm = db_lookup(dm_class_by_name("VM"), o->ref);
    if (!vm || db_delete(vm, &call->error) < 0) {
        db_write_abort();
        return -1;
    }
    if (db_write_commit(&call->error) < 0)
        return -1;
    vm_vtpm_remove_states(vtpm_uuids);
    return 0;
}

int xapi_VM_destroy(Call *call, const char *self)
{
    return vm_run_operation(call, self, "destroy", destroy_work, NULL);
}

static int power_state_reset_work(VmOp *o)
{
    Call *call = o->call;
    const Xv *dom0 = xv_struct_get(o->record, "is_control_domain");
    if (dom0 && dom0->b)
        return xapi_error_set(&call->error, "CANNOT_RESET_CONTROL_DOMAIN", o->ref, NULL);
    HvStatus st = driver()->status(o->uuid);
    if (st.state == HV_RUNNING || st.state == HV_PAUSED)
        return xapi_error_set(&call->error, "OPERATION_NOT_ALLOWED",
                              "the VM's domain still runs on this host: use VM.hard_shutdown",
                              NULL);
    g_autoptr(XapiError) ignored = NULL;
    driver()->destroy(o->uuid, &ignored);
    return xenops_mark_halted(o->ref, &call->error);
}

int xapi_VM_power_state_reset(Call *call, const char *vm)
{
    return vm_run_operation(call, vm, "power_state_reset", power_state_reset_work, NULL);
}

/* ---- host memory -------------------------------------------------------- */

int xapi_host_compute_free_memory(Call *call, const char *host, Xv **result)
{
    db_read_begin();
    bool exists = db_lookup(dm_class_by_name("host"), host) != NULL;
    int64_t free_bytes = exists ? xenops_host_free_memory() : 0;
    db_read_end();
    if (!exists)
        return xapi_error_set(&call->error, "HANDLE_INVALID", "host", host, NULL);
    *result = xv_new_int(free_bytes);
    return 0;
}
