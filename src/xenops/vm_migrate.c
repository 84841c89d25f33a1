/* vm_migrate.c: VM.pool_migrate's checks, its source side and its
 * destination side (see vm_migrate.h). */
#include "ha_fence.h"
#include "vm_migrate.h"

#include <string.h>
#include <unistd.h>

#include "bootstrap.h"
#include "dm_handlers.h"
#include "message_store.h"
#include "pool_migrate_http.h"
#include "pool_role.h"
#include "task.h"
#include "vm_bootloader.h"
#include "vm_disks.h"
#include "vm_lifecycle.h"
#include "vm_nics.h"
#include "vm_nvram.h"
#include "vm_operations.h"
#include "xenops.h"

/* How long the source waits for the destination's record of the VM to
 * reach its database once the domain runs there. */
#define RECORDED_WAIT_S 30

static const char *ref_field(const DbRow *row, const char *field)
{
    const Xv *v = row ? db_get(row, field) : NULL;
    return v && xv_str(v) && strcmp(xv_str(v), "OpaqueRef:NULL") != 0 ? xv_str(v) : NULL;
}

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

/* ---- checks ------------------------------------------------------------------ */

static bool host_sees_sr(const char *host, const char *sr_ref)
{
    DbRow *sr = db_lookup(cls("SR"), sr_ref);
    const Xv *pbds = sr ? db_get(sr, "PBDs") : NULL;
    for (guint i = 0; pbds && i < xv_len(pbds); i++) {
        DbRow *pbd = db_lookup(cls("PBD"), xv_str(xv_at(pbds, i)));
        if (pbd && db_get(pbd, "currently_attached")->b &&
            g_strcmp0(ref_field(pbd, "host"), host) == 0)
            return true;
    }
    return false;
}

/* A network is there when it has a PIF on host, or no PIF at all (an
 * internal network: a bridge every host makes). */
static bool host_sees_network(const char *host, const char *network_ref)
{
    DbRow *net = db_lookup(cls("network"), network_ref);
    const Xv *pifs = net ? db_get(net, "PIFs") : NULL;
    if (!pifs || !xv_len(pifs))
        return net != NULL;
    for (guint i = 0; i < xv_len(pifs); i++) {
        DbRow *pif = db_lookup(cls("PIF"), xv_str(xv_at(pifs, i)));
        if (pif && g_strcmp0(ref_field(pif, "host"), host) == 0)
            return true;
    }
    return false;
}

int vm_host_can_run_ignoring_memory(const DbRow *vm, const char *host_ref, XapiError **err)
{
    DbRow *host = db_lookup(cls("host"), host_ref);
    if (!host)
        return xapi_error_set(err, "HANDLE_INVALID", "host", host_ref, NULL);
    DbRow *metrics = db_lookup(cls("host_metrics"), xv_str(db_get(host, "metrics")));
    if (!metrics || !db_get(metrics, "live")->b)
        return xapi_error_set(err, "HOST_OFFLINE", host_ref, NULL);
    if (!db_get(host, "enabled")->b)
        return xapi_error_set(err, "HOST_DISABLED", host_ref, NULL);
    const Xv *vbds = db_get(vm, "VBDs");
    for (guint i = 0; i < xv_len(vbds); i++) {
        DbRow *vbd = db_lookup(cls("VBD"), xv_str(xv_at(vbds, i)));
        if (!vbd || db_get(vbd, "empty")->b)
            continue;
        DbRow *vdi = db_lookup(cls("VDI"), ref_field(vbd, "VDI"));
        const char *sr = ref_field(vdi, "SR");
        if (sr && !host_sees_sr(host_ref, sr))
            return xapi_error_set(err, "VM_REQUIRES_SR", vm->ref, sr, NULL);
    }
    const Xv *vifs = db_get(vm, "VIFs");
    for (guint i = 0; i < xv_len(vifs); i++) {
        DbRow *vif = db_lookup(cls("VIF"), xv_str(xv_at(vifs, i)));
        const char *net = ref_field(vif, "network");
        if (net && !host_sees_network(host_ref, net))
            return xapi_error_set(err, "VM_REQUIRES_NETWORK", vm->ref, net, NULL);
    }
    return 0;
}

int vm_host_can_run(const DbRow *vm, const char *host_ref, XapiError **err)
{
    if (vm_host_can_run_ignoring_memory(vm, host_ref, err) < 0)
        return -1;
    int64_t need = xenops_vm_memory_need(vm);
    int64_t free_bytes = xenops_host_free_memory_of(host_ref);
    if (need > free_bytes) {
        char needed[32], available[32];
        g_snprintf(needed, sizeof needed, "%" G_GINT64_FORMAT, need);
        g_snprintf(available, sizeof available, "%" G_GINT64_FORMAT, free_bytes);
        return xapi_error_set(err, "HOST_NOT_ENOUGH_FREE_MEMORY", needed, available, NULL);
    }
    return 0;
}

/* What the destination must offer (read lock held). */
static int check_target(const DbRow *vm, const char *host_ref, XapiError **err)
{
    if (g_strcmp0(ref_field(vm, "resident_on"), host_ref) == 0)
        return xapi_error_set(err, "OPERATION_NOT_ALLOWED",
                              "The VM is already resident on the destination host", NULL);
    return vm_host_can_run(vm, host_ref, err);
}

int vm_migrate_check(const char *vm_ref, const char *host_ref, XapiError **err)
{
    db_read_begin();
    DbRow *vm = db_lookup(cls("VM"), vm_ref);
    int rc = !vm ? xapi_error_set(err, "HANDLE_INVALID", "VM", vm_ref, NULL)
             : vm_operations.check(vm, "pool_migrate", err) < 0 ? -1
                                                               : check_target(vm, host_ref, err);
    db_read_end();
    return rc;
}

/* ---- the source ------------------------------------------------------------------ */

typedef struct {
    const char *host;
    bool live;
} MigrateArgs;

static void on_progress(void *opaque, const HvMigrateStats *s)
{
    const char *task = opaque;
    if (task && s->ram_total > 0)
        task_set_progress(task, 0.1 + 0.8 * (double)s->ram_transferred / (double)s->ram_total);
}

/* Until the destination's write (resident_on) is in this host's database. */
static bool wait_recorded(const char *vm_ref, const char *host_ref)
{
    int64_t deadline = g_get_monotonic_time() + RECORDED_WAIT_S * G_USEC_PER_SEC;
    for (;;) {
        db_read_begin();
        DbRow *vm = db_lookup(cls("VM"), vm_ref);
        bool there = vm && g_strcmp0(ref_field(vm, "resident_on"), host_ref) == 0;
        uint64_t generation = db_generation();
        db_read_end();
        if (there)
            return true;
        if (!db_wait_for_change(generation, deadline))
            return false;
    }
}

/* Whether host is the pool's master (read lock held). */
static bool first_pool(DbRow *row, void *ctx)
{
    *(DbRow **)ctx = row;
    return false;
}

static bool is_master(const char *host)
{
    DbRow *pool = NULL;
    db_foreach(cls("pool"), first_pool, &pool);
    return pool && g_strcmp0(ref_field(pool, "master"), host) == 0;
}

static int migrate_failed(VmOp *o, const char *host, const char *why)
{
    db_read_begin();
    g_autofree char *here = bootstrap_this_host();
    db_read_end();
    return xapi_error_set(&o->call->error, "VM_MIGRATE_FAILED", o->ref, here, host, why, NULL);
}

static int migrate_work(VmOp *o)
{
    const MigrateArgs *a = o->arg;
    g_autofree char *endpoint = NULL;
    db_read_begin();
    DbRow *vm = db_lookup(cls("VM"), o->ref);
    int rc = vm ? check_target(vm, a->host, &o->call->error)
                : xapi_error_set(&o->call->error, "HANDLE_INVALID", "VM", o->ref, NULL);
    DbRow *host = db_lookup(cls("host"), a->host);
    if (rc == 0 && host)
        endpoint = is_master(a->host) && pool_is_member()
                       ? pool_master_endpoint() /* where this member reaches it */
                       : pool_endpoint_of(xv_str(db_get(host, "address")));
    uint64_t generation = db_generation();
    db_read_end();
    if (rc < 0)
        return -1;
    g_autoptr(XapiError) e = NULL;
    int fd = pool_migrate_dial(endpoint, o->uuid, generation, &e);
    if (fd < 0) {
        if (e && strcmp(e->code, "INTERNAL_ERROR") != 0) { /* the destination's refusal */
            o->call->error = g_steal_pointer(&e);
            return -1;
        }
        return migrate_failed(o, a->host, e && e->params->len ? e->params->pdata[0]
                                                               : "cannot reach the host");
    }
    HvMigrateOptions opts = {.non_live = !a->live, .progress = on_progress,
                             .opaque = (void *)o->call->task_ref};
    HvMigrateStats stats;
    rc = xenops_driver()->migrate_send(o->uuid, fd, &opts, &stats, &e);
    if (rc < 0) {
        close(fd);
        return migrate_failed(o, a->host, e && e->params->len ? e->params->pdata[0] : e->code);
    }
    g_message("VM %s: migrated to %s in %" G_GINT64_FORMAT " ms (downtime %" G_GINT64_FORMAT
              " ms, %s)", o->uuid, a->host, stats.total_ms, stats.downtime_ms,
              stats.live ? "live" : "paused for the transfer");
    bool recorded = wait_recorded(o->ref, a->host);
    close(fd);
    if (!recorded)
        g_warning("VM %s: runs on %s, whose record of it has not arrived in %d s", o->uuid,
                  a->host, RECORDED_WAIT_S);
    task_set_progress(o->call->task_ref, 0.95);
    return 0;
}

int vm_pool_migrate(Call *call, const char *vm_ref, const char *host_ref, bool live)
{
    MigrateArgs a = {host_ref, live};
    db_read_begin();
    g_autofree char *here = bootstrap_this_host();
    DbRow *h = db_lookup(cls("host"), here);
    DbRow *d = db_lookup(cls("host"), host_ref);
    g_autofree char *from = g_strdup(h ? xv_str(db_get(h, "name_label")) : "");
    g_autofree char *to = g_strdup(d ? xv_str(db_get(d, "name_label")) : "");
    db_read_end();
    if (vm_run_operation(call, vm_ref, "pool_migrate", migrate_work, &a) < 0)
        return -1;
    message_raise_vm("VM_MIGRATED", vm_ref, "migrated from host '%s' to host '%s'", from, to);
    return 0;
}

/* ---- the destination -------------------------------------------------------------- */

typedef struct {
    char *ref;
    Xv *record;
    HvDisk *disks;
    size_t n_disks;
    HvNic *nics;
    size_t n_nics;
} Incoming;

static void incoming_clear(Incoming *in)
{
    g_free(in->ref);
    xv_free(in->record);
    hv_disks_free(in->disks, in->n_disks);
    hv_nics_free(in->nics, in->n_nics);
}

/* What may come here, and what it is made of (read lock held). */
static int prepare_incoming(const char *uuid, Incoming *in, XapiError **err)
{
    DbRow *vm = db_lookup_uuid(cls("VM"), uuid);
    if (!vm)
        return xapi_error_set(err, "UUID_INVALID", "VM", uuid, NULL);
    g_autofree char *here = bootstrap_this_host();
    const char *state = xv_str(db_get(vm, "power_state"));
    if (strcmp(state, "Running") != 0)
        return xapi_error_set(err, "VM_BAD_POWER_STATE", vm->ref, "running", state, NULL);
    if (check_target(vm, here, err) < 0)
        return -1;
    in->ref = g_strdup(vm->ref);
    in->record = db_row_record(vm);
    if (vm_disks_for_start(vm, &in->disks, &in->n_disks, err) < 0 ||
        vm_nics_for_start(vm, &in->nics, &in->n_nics, err) < 0)
        return -1;
    vm_nics_boot_order(vm, in->nics, in->n_nics, in->disks, in->n_disks);
    return 0;
}

int vm_migrate_receive(const char *vm_uuid, int fd, int (*accept)(void *ctx), void *ctx,
                       XapiError **err)
{
    const HvDriver *drv = xenops_driver();
    Incoming in = {0};
    db_read_begin();
    int rc = prepare_incoming(vm_uuid, &in, err);
    db_read_end();
    if (rc == 0)
        rc = hv_disks_check_chains(in.disks, in.n_disks, err);
    if (rc == 0)
        rc = vm_nvram_prepare(vm_uuid, in.record, err);
    /* pygrub: the destination's QEMU boots a kernel too (the source's
     * option ROM comes in the stream), read again from the disk */
    bool bootloader = rc == 0 && vm_bootloader_wanted(in.record);
    if (bootloader) {
        Xv *boot = NULL;
        rc = vm_bootloader_run(in.ref, vm_uuid, in.record, in.disks, in.n_disks, &boot, err);
        if (rc == 0) {
            xv_free(in.record);
            in.record = boot;
        }
    }
    if (rc < 0) {
        incoming_clear(&in);
        return -1;
    }
    xenops_lock_vm(vm_uuid);
    if (drv->status(vm_uuid).state != HV_ABSENT)
        rc = xapi_error_set(err, "OPERATION_NOT_ALLOWED", "The VM has a domain here already",
                            NULL);
    else if (accept(ctx) < 0)
        rc = xapi_error_internal(err, "the migration's connection failed");
    else {
        ha_fence_track(vm_uuid); /* a fence destroys it too, cache or not */
        rc = drv->migrate_receive(vm_uuid, in.record, in.disks, in.n_disks, in.nics, in.n_nics,
                                  fd, NULL, err);
    }
    if (bootloader)
        vm_bootloader_done(vm_uuid);
    if (rc == 0) {
        bool paused = drv->status(vm_uuid).state == HV_PAUSED;
        g_autoptr(XapiError) e = NULL;
        if (xenops_mark_running(in.ref, paused, true, &e) < 0)
            g_critical("VM %s: runs here after its migration, but could not be recorded: %s",
                       vm_uuid, e->code);
        else if (drv->start_recorded)
            drv->start_recorded(vm_uuid);
        g_message("VM %s: received by migration", vm_uuid);
    }
    xenops_unlock_vm(vm_uuid);
    incoming_clear(&in);
    return rc;
}
