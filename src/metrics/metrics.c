/* metrics.c: the sampler and the archives it keeps (see metrics.h). */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "bootstrap.h"
#include "db.h"
#include "disk_stats.h"
#include "host_sample.h"
#include "message_store.h"
#include "metrics_db.h"
#include "perfmon.h"
#include "rrd_archive.h"
#include "xenops.h"

/* Archives are written this often besides at a clean stop. */
#define FLUSH_EVERY_S 300

typedef struct {
    char *uuid, *ref;
    int64_t vcpus, memory, memory_target;
    unsigned n_disks, n_nics;
    int disk_slots[HV_SAMPLE_MAX_DEVICES];
    char *disk_srs[HV_SAMPLE_MAX_DEVICES]; /* SR uuid of each disk's VDI */
    char *perfmon;                         /* other_config:perfmon */
    int nic_devices[HV_SAMPLE_MAX_DEVICES];
} VmPlan;

typedef struct {
    char *uuid, *perfmon;
    int64_t utilisation, size; /* physical_utilisation, physical_size */
    DiskRates rates;           /* summed over the disks on it */
} SrPlan;

static struct {
    char *dir;           /* STATE_DIR/rrd */
    GMutex lock;         /* the archives */
    char *host_uuid;
    Rrd *host;
    GHashTable *vms;     /* uuid -> Rrd*, running VMs */
    GHashTable *srs;     /* uuid -> Rrd*, SRs plugged here */
    GThread *thread;
    GMutex stop_lock;
    GCond stop_cond;
    bool stopping;
    HostSampler *hs;
    DiskStats *disks;    /* the sampler thread's alone, as is perfmon */
    Perfmon *perfmon;
} m;

static char *archive_path(const char *uuid)
{
    g_autofree char *file = g_strconcat(uuid, ".rrd", NULL);
    return g_build_filename(m.dir, file, NULL);
}

static Rrd *archive_load(const char *uuid)
{
    g_autofree char *path = archive_path(uuid);
    return rrda_load(path);
}

static Rrd *archive_new(const char *uuid, bool min_max, int64_t now)
{
    g_autofree char *path = archive_path(uuid);
    return rrda_new(path, min_max, now);
}

/* The archives are librrd's files, written at every update; as XAPI's
 * rrdd backs its archives up every few minutes and at a clean stop, they
 * are made durable (fsync) then. The paths are taken under the lock and
 * synced after it: readers of the archives do not wait for the disk. */
static void save_all(void)
{
    g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
    g_mutex_lock(&m.lock);
    if (m.host)
        g_ptr_array_add(paths, g_strdup(rrda_path(m.host)));
    GHashTable *tables[] = {m.vms, m.srs};
    for (size_t k = 0; k < G_N_ELEMENTS(tables); k++) {
        GHashTableIter it;
        gpointer uuid, rrd;
        g_hash_table_iter_init(&it, tables[k]);
        while (g_hash_table_iter_next(&it, &uuid, &rrd))
            g_ptr_array_add(paths, g_strdup(rrda_path(rrd)));
    }
    g_mutex_unlock(&m.lock);
    for (guint i = 0; i < paths->len; i++)
        rrda_sync_path(paths->pdata[i]);
}

/* ---- what to sample (read from the database) ----------------------------- */

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

static int64_t int_field(const DbRow *row, const char *name) { return db_get(row, name)->i; }

typedef struct {
    const char *host;
    GPtrArray *pifs;  /* char*: devices whose counters to read */
    GArray *vms;      /* VmPlan */
    GArray *srs;      /* SrPlan: the SRs plugged here */
    char *perfmon;    /* the host's other_config:perfmon */
    MetricsFigures figures; /* for the metrics objects */
    bool min_max;     /* pool other_config:create_min_max_in_new_VM_RRDs */
} Plan;

/* other_config:perfmon of row, or NULL. */
static char *perfmon_of(const DbRow *row)
{
    const Xv *v = xv_struct_get(db_get(row, "other_config"), "perfmon");
    return v ? g_strdup(xv_str(v)) : NULL;
}

static bool plan_pif(DbRow *pif, void *ctx)
{
    Plan *p = ctx;
    if (strcmp(xv_str(db_get(pif, "host")), p->host) != 0 || int_field(pif, "VLAN") >= 0)
        return true;
    const char *device = xv_str(db_get(pif, "device"));
    g_ptr_array_add(p->pifs, g_strdup(device));
    /* XAPI's monitor keeps the metrics of physical PIFs and bond masters */
    if (db_get(pif, "physical")->b || xv_len(db_get(pif, "bond_master_of")) > 0) {
        MetricsPifFigures f = {.pif = g_strdup(pif->ref), .device = g_strdup(device)};
        g_array_append_val(p->figures.pifs, f);
    }
    return true;
}

static void plan_devices(const DbRow *vm, VmPlan *v)
{
    const Xv *vbds = db_get(vm, "VBDs");
    for (guint i = 0; i < xv_len(vbds) && v->n_disks < HV_SAMPLE_MAX_DEVICES; i++) {
        DbRow *vbd = db_lookup(cls("VBD"), xv_str(xv_at(vbds, i)));
        if (!vbd || !db_get(vbd, "currently_attached")->b ||
            strcmp(xv_str(db_get(vbd, "type")), "Disk") != 0)
            continue;
        gint64 slot = g_ascii_strtoll(xv_str(db_get(vbd, "userdevice")), NULL, 10);
        if (slot < 0 || slot >= 26)
            continue;
        DbRow *vdi = db_lookup(cls("VDI"), xv_str(db_get(vbd, "VDI")));
        DbRow *sr = vdi ? db_lookup(cls("SR"), xv_str(db_get(vdi, "SR"))) : NULL;
        v->disk_srs[v->n_disks] = sr ? g_strdup(xv_str(db_get(sr, "uuid"))) : NULL;
        v->disk_slots[v->n_disks++] = (int)slot;
    }
    const Xv *vifs = db_get(vm, "VIFs");
    for (guint i = 0; i < xv_len(vifs) && v->n_nics < HV_SAMPLE_MAX_DEVICES; i++) {
        DbRow *vif = db_lookup(cls("VIF"), xv_str(xv_at(vifs, i)));
        if (vif && db_get(vif, "currently_attached")->b)
            v->nic_devices[v->n_nics++] =
                (int)g_ascii_strtoll(xv_str(db_get(vif, "device")), NULL, 10);
    }
}

static bool plan_vm(DbRow *vm, void *ctx)
{
    Plan *p = ctx;
    const char *state = xv_str(db_get(vm, "power_state"));
    if (strcmp(xv_str(db_get(vm, "resident_on")), p->host) != 0 ||
        (strcmp(state, "Running") != 0 && strcmp(state, "Paused") != 0))
        return true;
    /* VM_metrics.VCPUs_number follows set_VCPUs_number_live: hot-plugged
     * vCPUs get their cpuN (the qemu driver counts QEMU's own). */
    DbRow *metrics = db_lookup(cls("VM_metrics"), xv_str(db_get(vm, "metrics")));
    int64_t vcpus = metrics ? int_field(metrics, "VCPUs_number") : 0;
    if (vcpus <= 0)
        vcpus = int_field(vm, "VCPUs_at_startup");
    VmPlan v = {.uuid = g_strdup(xv_str(db_get(vm, "uuid"))), .ref = g_strdup(vm->ref),
                .perfmon = perfmon_of(vm),
                .vcpus = MIN(vcpus, HV_SAMPLE_MAX_VCPUS),
                .memory = int_field(vm, "memory_static_max"),
                .memory_target = int_field(vm, "memory_target")};
    plan_devices(vm, &v);
    g_array_append_val(p->vms, v);
    return true;
}

static bool plan_pbd(DbRow *pbd, void *ctx)
{
    Plan *p = ctx;
    DbRow *sr = db_lookup(cls("SR"), xv_str(db_get(pbd, "SR")));
    if (!sr || !db_get(pbd, "currently_attached")->b ||
        strcmp(xv_str(db_get(pbd, "host")), p->host) != 0)
        return true;
    SrPlan s = {.uuid = g_strdup(xv_str(db_get(sr, "uuid"))), .perfmon = perfmon_of(sr),
                .utilisation = int_field(sr, "physical_utilisation"),
                .size = int_field(sr, "physical_size")};
    g_array_append_val(p->srs, s);
    return true;
}

static bool plan_pool(DbRow *pool, void *ctx)
{
    const Xv *v = xv_struct_get(db_get(pool, "other_config"), "create_min_max_in_new_VM_RRDs");
    ((Plan *)ctx)->min_max = v && strcmp(xv_str(v), "true") == 0;
    return false;
}

static void vm_plan_clear(gpointer p)
{
    VmPlan *v = p;
    g_free(v->uuid);
    g_free(v->ref);
    g_free(v->perfmon);
    for (unsigned i = 0; i < v->n_disks; i++)
        g_free(v->disk_srs[i]);
}

static void sr_plan_clear(gpointer p)
{
    g_free(((SrPlan *)p)->uuid);
    g_free(((SrPlan *)p)->perfmon);
}

/* ---- one sampling round -------------------------------------------------- */

static void add_sample(GPtrArray *names, GArray *samples, RrdDsType type, double value,
                       const char *format, ...) G_GNUC_PRINTF(5, 6);
static void add_sample(GPtrArray *names, GArray *samples, RrdDsType type, double value,
                       const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    char *name = g_strdup_vprintf(format, ap);
    va_end(ap);
    g_ptr_array_add(names, name);
    RrdSample s = {name, type, value};
    g_array_append_val(samples, s);
}

/* The archive of uuid in table (lock held): in memory, else the one
 * saved, else a new one. */
static Rrd *archive_get(GHashTable *table, const char *uuid, bool min_max, int64_t now)
{
    Rrd *rrd = g_hash_table_lookup(table, uuid);
    if (!rrd) {
        rrd = archive_load(uuid);
        if (!rrd)
            rrd = archive_new(uuid, min_max, now - RRD_STEP);
        g_hash_table_insert(table, g_strdup(uuid), rrd);
    }
    return rrd;
}

/* A disk's I/O rates into the VM's sources and its SR's sum (sr_rates:
 * uuid -> SrPlan*, of the SRs plugged here). */
static void sample_disk_io(const VmPlan *v, unsigned i, const HvSample *hs, int64_t now,
                           const char *dev, GPtrArray *names, GArray *samples,
                           GHashTable *sr_rates)
{
    DiskCounters c = {hs->disks[i].read_bytes, hs->disks[i].write_bytes, hs->disks[i].read_ops,
                      hs->disks[i].write_ops, hs->disks[i].read_ns, hs->disks[i].write_ns};
    g_autofree char *key = g_strdup_printf("%s/%d", v->uuid, hs->disks[i].slot);
    DiskRates r;
    if (!disk_stats_update(m.disks, key, now, &c, &r))
        return;
    g_autofree char *prefix = g_strdup_printf("vbd_%s_", dev);
    disk_rates_samples(&r, prefix, "", names, samples);
    SrPlan *sr = v->disk_srs[i] ? g_hash_table_lookup(sr_rates, v->disk_srs[i]) : NULL;
    if (sr)
        disk_rates_add(&sr->rates, &r);
}

/* Samples one VM into its archive; returns the memory it holds (-1 when
 * the driver could not say). */
static int64_t sample_vm(const VmPlan *v, int64_t now, bool min_max, GHashTable *sr_rates)
{
    HvSample hs = {.n_vcpus = (unsigned)v->vcpus, .memory = v->memory,
                   .memory_internal_free = -1, .n_disks = v->n_disks, .n_nics = v->n_nics};
    for (unsigned i = 0; i < v->n_disks; i++)
        hs.disks[i].slot = v->disk_slots[i];
    for (unsigned i = 0; i < v->n_nics; i++)
        hs.nics[i].device = v->nic_devices[i];
    const HvDriver *driver = xenops_driver();
    if (!driver->sample)
        return -1;
    xenops_lock_vm(v->uuid);
    int rc = driver->sample(v->uuid, &hs);
    /* what the balloon holds (XAPI's "memory" source and memory_actual) */
    int64_t actual = rc == 0 && driver->memory_actual ? driver->memory_actual(v->uuid, NULL) : -1;
    xenops_unlock_vm(v->uuid);
    if (rc < 0)
        return -1;
    if (actual > 0)
        hs.memory = actual;
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GArray) samples = g_array_new(FALSE, FALSE, sizeof(RrdSample));
    for (unsigned i = 0; i < hs.n_vcpus; i++)
        if (hs.vcpu_seconds[i] >= 0)
            add_sample(names, samples, RRD_DERIVE, hs.vcpu_seconds[i], "cpu%u", i);
    add_sample(names, samples, RRD_GAUGE, (double)hs.memory, "memory");
    add_sample(names, samples, RRD_GAUGE, (double)v->memory_target, "memory_target");
    /* what the guest says it has free (its balloon's statistics), as XAPI's
     * source from the guest's tools */
    if (hs.memory_internal_free >= 0)
        add_sample(names, samples, RRD_GAUGE, (double)hs.memory_internal_free,
                   "memory_internal_free");
    for (unsigned i = 0; i < hs.n_disks; i++) {
        char dev[8];
        g_snprintf(dev, sizeof dev, "xvd%c", 'a' + hs.disks[i].slot);
        if (hs.disks[i].read_bytes >= 0)
            add_sample(names, samples, RRD_DERIVE, (double)hs.disks[i].read_bytes, "vbd_%s_read", dev);
        if (hs.disks[i].write_bytes >= 0)
            add_sample(names, samples, RRD_DERIVE, (double)hs.disks[i].write_bytes, "vbd_%s_write", dev);
        sample_disk_io(v, i, &hs, now, dev, names, samples, sr_rates);
    }
    for (unsigned i = 0; i < hs.n_nics; i++) {
        if (hs.nics[i].rx_bytes >= 0)
            add_sample(names, samples, RRD_DERIVE, (double)hs.nics[i].rx_bytes, "vif_%d_rx", hs.nics[i].device);
        if (hs.nics[i].tx_bytes >= 0)
            add_sample(names, samples, RRD_DERIVE, (double)hs.nics[i].tx_bytes, "vif_%d_tx", hs.nics[i].device);
    }
    g_mutex_lock(&m.lock);
    Rrd *rrd = archive_get(m.vms, v->uuid, min_max, now);
    rrda_update(rrd, now, (const RrdSample *)samples->data, samples->len);
    g_mutex_unlock(&m.lock);
    return actual;
}

/* Archives of table not in kept (VMs that stopped running here, SRs
 * unplugged) go to disk (lock held). */
static void retire(GHashTable *table, GHashTable *kept)
{
    GHashTableIter it;
    gpointer uuid, rrd;
    g_hash_table_iter_init(&it, table);
    while (g_hash_table_iter_next(&it, &uuid, &rrd))
        if (!g_hash_table_contains(kept, uuid)) {
            rrda_sync_path(rrda_path(rrd));
            g_hash_table_iter_remove(&it);
        }
}

static void retire_stopped(const GArray *vms, GHashTable *sr_rates)
{
    g_autoptr(GHashTable) running = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < vms->len; i++)
        g_hash_table_add(running, g_array_index(vms, VmPlan, i).uuid);
    g_mutex_lock(&m.lock);
    retire(m.vms, running);
    retire(m.srs, sr_rates);
    g_mutex_unlock(&m.lock);
}

/* Each SR's summed I/O into its archive, with its physical_utilisation
 * and size (perfmon's SR variable reads them), and into the host's
 * samples as <key>_<uuid prefix> (XAPI's names there). */
static void sample_srs(const GArray *srs, int64_t now, bool min_max, GPtrArray *host_names,
                       GArray *host_samples)
{
    for (guint i = 0; i < srs->len; i++) {
        const SrPlan *sr = &g_array_index(srs, SrPlan, i);
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GArray) samples = g_array_new(FALSE, FALSE, sizeof(RrdSample));
        disk_rates_samples(&sr->rates, "", "", names, samples);
        add_sample(names, samples, RRD_GAUGE, (double)sr->utilisation, "physical_utilisation");
        add_sample(names, samples, RRD_GAUGE, (double)sr->size, "size");
        g_autofree char *suffix = g_strdup_printf("_%.8s", sr->uuid);
        disk_rates_samples(&sr->rates, "", suffix, host_names, host_samples);
        g_mutex_lock(&m.lock);
        rrda_update(archive_get(m.srs, sr->uuid, min_max, now), now,
                   (const RrdSample *)samples->data, samples->len);
        g_mutex_unlock(&m.lock);
    }
}

/* perfmon's step over every monitored object, then its alarms raised. */
static void perfmon_round(const Plan *p, int64_t now)
{
    g_autoptr(GPtrArray) alarms = g_ptr_array_new_with_free_func(perfmon_alarm_free);
    g_mutex_lock(&m.lock);
    perfmon_step(m.perfmon, "Host", m.host_uuid, p->perfmon, m.host, now, alarms);
    for (guint i = 0; i < p->vms->len; i++) {
        const VmPlan *v = &g_array_index(p->vms, VmPlan, i);
        perfmon_step(m.perfmon, "VM", v->uuid, v->perfmon, g_hash_table_lookup(m.vms, v->uuid),
                     now, alarms);
    }
    for (guint i = 0; i < p->srs->len; i++) {
        const SrPlan *sr = &g_array_index(p->srs, SrPlan, i);
        perfmon_step(m.perfmon, "SR", sr->uuid, sr->perfmon,
                     g_hash_table_lookup(m.srs, sr->uuid), now, alarms);
        perfmon_step_sr_for_host(m.perfmon, m.host_uuid, sr->uuid, sr->perfmon, m.host, now,
                                 alarms);
    }
    g_mutex_unlock(&m.lock);
    perfmon_expire(m.perfmon, now);
    for (guint i = 0; i < alarms->len; i++) {
        const PerfmonAlarm *a = alarms->pdata[i];
        message_raise("ALARM", a->priority, a->cls, a->uuid, "%s", a->body);
    }
}

static void sample_round(int64_t now)
{
    g_autofree char *host = bootstrap_this_host();
    Plan p = {.host = host, .pifs = g_ptr_array_new_with_free_func(g_free),
              .vms = g_array_new(FALSE, TRUE, sizeof(VmPlan)),
              .srs = g_array_new(FALSE, TRUE, sizeof(SrPlan))};
    g_array_set_clear_func(p.srs, sr_plan_clear);
    g_array_set_clear_func(p.vms, vm_plan_clear);
    metrics_figures_init(&p.figures);
    db_read_begin();
    db_foreach(cls("PIF"), plan_pif, &p);
    db_foreach(cls("VM"), plan_vm, &p);
    db_foreach(cls("PBD"), plan_pbd, &p);
    db_foreach(cls("pool"), plan_pool, &p);
    DbRow *host_row = db_lookup(cls("host"), host);
    p.perfmon = host_row ? perfmon_of(host_row) : NULL;
    db_read_end();
    g_ptr_array_add(p.pifs, NULL);
    g_autoptr(GArray) samples = g_array_new(FALSE, FALSE, sizeof(RrdSample));
    g_autoptr(GPtrArray) sr_names = g_ptr_array_new_with_free_func(g_free);
    host_sampler_read(m.hs, (const char *const *)p.pifs->pdata, samples);
    for (guint i = 0; i < samples->len; i++) {
        const RrdSample *s = &g_array_index(samples, RrdSample, i);
        if (strcmp(s->name, "memory_total_kib") == 0)
            p.figures.memory_total = (int64_t)s->value * 1024;
    }
    g_autoptr(GHashTable) sr_rates = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < p.srs->len; i++) {
        SrPlan *sr = &g_array_index(p.srs, SrPlan, i);
        g_hash_table_insert(sr_rates, sr->uuid, sr);
    }
    for (guint i = 0; i < p.vms->len; i++) {
        const VmPlan *v = &g_array_index(p.vms, VmPlan, i);
        MetricsVmFigures f = {g_strdup(v->ref), sample_vm(v, now, p.min_max, sr_rates)};
        g_array_append_val(p.figures.vms, f);
    }
    disk_stats_expire(m.disks, now);
    sample_srs(p.srs, now, p.min_max, sr_names, samples);
    g_mutex_lock(&m.lock);
    rrda_update(m.host, now, (const RrdSample *)samples->data, samples->len);
    g_mutex_unlock(&m.lock);
    retire_stopped(p.vms, sr_rates);
    perfmon_round(&p, now);
    metrics_figures_read_links(&p.figures);
    metrics_db_write(&p.figures, host);
    metrics_figures_clear(&p.figures);
    g_ptr_array_unref(p.pifs);
    g_array_unref(p.vms);
    g_hash_table_remove_all(sr_rates); /* before p.srs, which holds its keys */
    g_array_unref(p.srs);
    g_free(p.perfmon);
}

static gpointer sampler(gpointer data)
{
    int64_t last_flush = g_get_monotonic_time();
    g_mutex_lock(&m.stop_lock);
    while (!m.stopping) {
        g_mutex_unlock(&m.stop_lock);
        sample_round(g_get_real_time() / G_USEC_PER_SEC);
        if (g_get_monotonic_time() - last_flush > FLUSH_EVERY_S * G_USEC_PER_SEC) {
            save_all();
            last_flush = g_get_monotonic_time();
        }
        g_mutex_lock(&m.stop_lock);
        /* The next round at the next 5 s boundary of the wall clock, as
         * XAPI's rrdd reads on the step. */
        int64_t real = g_get_real_time();
        int64_t wait = RRD_STEP * G_USEC_PER_SEC - real % (RRD_STEP * G_USEC_PER_SEC);
        int64_t until = g_get_monotonic_time() + wait + 1000;
        while (!m.stopping && g_cond_wait_until(&m.stop_cond, &m.stop_lock, until))
            ;
    }
    g_mutex_unlock(&m.stop_lock);
    return NULL;
}

int metrics_start(const char *state_dir, XapiError **err)
{
    m.dir = g_build_filename(state_dir, "rrd", NULL);
    if (g_mkdir_with_parents(m.dir, 0700) < 0)
        return xapi_error_internal(err, "cannot make %s: %s", m.dir, g_strerror(errno));
    g_autofree char *host = bootstrap_this_host();
    db_read_begin();
    DbRow *row = db_lookup(cls("host"), host);
    m.host_uuid = g_strdup(row ? xv_str(db_get(row, "uuid")) : "");
    db_read_end();
    m.host = archive_load(m.host_uuid);
    if (!m.host)
        m.host = archive_new(m.host_uuid, true, g_get_real_time() / G_USEC_PER_SEC - RRD_STEP);
    m.vms = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)rrda_free);
    m.srs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)rrda_free);
    m.disks = disk_stats_new();
    m.perfmon = perfmon_new();
    m.hs = host_sampler_new();
    m.thread = g_thread_new("metrics", sampler, NULL);
    return 0;
}

bool metrics_running(void) { return m.host != NULL; }

void metrics_stop(void)
{
    if (!m.thread)
        return;
    g_mutex_lock(&m.stop_lock);
    m.stopping = true;
    g_cond_signal(&m.stop_cond);
    g_mutex_unlock(&m.stop_lock);
    g_thread_join(g_steal_pointer(&m.thread));
    save_all();
}

/* ---- reads ---------------------------------------------------------------- */

void metrics_rrd_updates(GString *out, int64_t start, int64_t interval, int cf, bool host,
                         const char *const *vm_uuids, const char *const *sr_uuids, bool json)
{
    g_autoptr(GArray) sources = g_array_new(FALSE, FALSE, sizeof(RrdSource));
    g_mutex_lock(&m.lock);
    if (start < 0)
        start += rrda_last_update(m.host);
    if (host) {
        RrdSource s = {"host", m.host_uuid, m.host};
        g_array_append_val(sources, s);
    }
    if (vm_uuids) {
        for (const char *const *u = vm_uuids; *u; u++) {
            Rrd *rrd = g_hash_table_lookup(m.vms, *u);
            if (rrd) {
                RrdSource s = {"vm", *u, rrd};
                g_array_append_val(sources, s);
            }
        }
    } else {
        /* In a stable order: by uuid. */
        GList *keys = g_list_sort(g_hash_table_get_keys(m.vms), (GCompareFunc)strcmp);
        for (GList *k = keys; k; k = k->next) {
            RrdSource s = {"vm", k->data, g_hash_table_lookup(m.vms, k->data)};
            g_array_append_val(sources, s);
        }
        g_list_free(keys);
    }
    for (const char *const *u = sr_uuids; u && *u; u++) {
        Rrd *rrd = g_hash_table_lookup(m.srs, *u);
        if (rrd) {
            RrdSource s = {"sr", *u, rrd};
            g_array_append_val(sources, s);
        }
    }
    rrda_xport(out, (const RrdSource *)sources->data, sources->len, start, interval, cf, json);
    g_mutex_unlock(&m.lock);
}

static Rrd *archive_of(MetricsOwner owner, const char *uuid)
{
    if (!m.vms)
        return NULL;
    return owner == METRICS_HOST ? m.host
                                 : g_hash_table_lookup(owner == METRICS_VM ? m.vms : m.srs, uuid);
}

bool metrics_rrd_dump(GString *out, MetricsOwner owner, const char *uuid)
{
    g_mutex_lock(&m.lock);
    const Rrd *rrd = archive_of(owner, uuid);
    if (rrd)
        rrda_dump_xml(out, rrd);
    g_mutex_unlock(&m.lock);
    if (rrd || owner == METRICS_HOST)
        return rrd != NULL;
    g_autoptr(Rrd) saved = strchr(uuid, '/') ? NULL : archive_load(uuid);
    if (saved)
        rrda_dump_xml(out, saved);
    return saved != NULL;
}

size_t metrics_vm_bytes(const char *vm_uuid)
{
    g_mutex_lock(&m.lock);
    const Rrd *rrd = g_hash_table_lookup(m.vms, vm_uuid);
    size_t n = rrd ? rrda_bytes(rrd) : 0;
    g_mutex_unlock(&m.lock);
    return n;
}

/* ---- data sources (host.get_data_sources and friends) --------------------- */

/* XAPI's descriptions and units for the sources kept here. */
static void describe(const char *name, bool vm, const char **description, const char **units)
{
    static const struct { const char *prefix, *host, *vm, *units; } known[] = {
        {"cpu_avg", "Average physical CPU usage", NULL, "(fraction)"},
        {"cpu", "Physical CPU usage", "CPU usage of a vCPU", "(fraction)"},
        {"memory_total_kib", "Total amount of memory in the host", NULL, "KiB"},
        {"memory_free_kib", "Total amount of free memory", NULL, "KiB"},
        {"memory_target", NULL, "Target of VM balloon driver", "B"},
        {"memory_internal_free", NULL, "Memory used as reported by the guest agent", "KiB"},
        {"memory", NULL, "Memory currently allocated to VM", "B"},
        {"loadavg", "Domain0 loadavg", NULL, ""},
        {"physical_utilisation", "Bytes the SR's files take", NULL, "B"}, /* SRs' */
        {"size", "Size of the SR", NULL, "B"},
        {"pif_", "Bytes per second moved by a physical interface", NULL, "B/s"},
        {"vbd_", NULL, "Bytes per second read or written by a disk", "B/s"},
        {"vif_", NULL, "Bytes per second moved by a virtual interface", "B/s"},
    };
    *description = "";
    *units = "";
    if (disk_stats_describe(name, description, units))
        return;
    for (size_t i = 0; i < G_N_ELEMENTS(known); i++)
        if (g_str_has_prefix(name, known[i].prefix) && (vm ? known[i].vm : known[i].host)) {
            *description = vm ? known[i].vm : known[i].host;
            *units = known[i].units;
            return;
        }
}

Xv *metrics_data_sources(MetricsOwner owner, const char *uuid)
{
    Xv *out = xv_new_array();
    g_mutex_lock(&m.lock);
    const Rrd *rrd = archive_of(owner, uuid);
    for (guint i = 0; rrd && i < rrda_n_sources(rrd); i++) {
        const char *name = rrda_source_name(rrd, i), *description, *units;
        describe(name, owner == METRICS_VM, &description, &units);
        bool fraction = g_str_has_prefix(name, "cpu");
        Xv *ds = xv_new_struct();
        xv_struct_set_string(ds, "name_label", name);
        xv_struct_set_string(ds, "name_description", description);
        xv_struct_set(ds, "enabled", xv_new_bool(true));
        xv_struct_set(ds, "standard", xv_new_bool(true));
        xv_struct_set_string(ds, "units", units);
        xv_struct_set(ds, "min", xv_new_float(0.0));
        xv_struct_set(ds, "max", xv_new_float(fraction ? 1.0 : INFINITY));
        xv_struct_set(ds, "value", xv_new_float(rrda_source_value(rrd, i)));
        xv_array_append(out, ds);
    }
    g_mutex_unlock(&m.lock);
    return out;
}

/* The source's index in its archive (lock held), or -1 with err. */
static int source_locked(MetricsOwner owner, const char *uuid, const char *name, Rrd **rrd,
                         XapiError **err)
{
    *rrd = archive_of(owner, uuid);
    int i = *rrd ? rrda_source_index(*rrd, name) : -1;
    if (i < 0) {
        g_autofree char *what = g_strdup_printf("Datasource_missing(%s)", name);
        xapi_error_set(err, "INTERNAL_ERROR", what, NULL);
    }
    return i;
}

int metrics_query_source(MetricsOwner owner, const char *uuid, const char *name, double *value,
                         XapiError **err)
{
    Rrd *rrd;
    g_mutex_lock(&m.lock);
    int i = source_locked(owner, uuid, name, &rrd, err);
    if (i >= 0)
        *value = rrda_source_value(rrd, (guint)i);
    g_mutex_unlock(&m.lock);
    return i < 0 ? -1 : 0;
}

int metrics_forget_source(MetricsOwner owner, const char *uuid, const char *name,
                          XapiError **err)
{
    Rrd *rrd;
    g_mutex_lock(&m.lock);
    int i = source_locked(owner, uuid, name, &rrd, err);
    if (i >= 0)
        rrda_forget_source(rrd, (guint)i);
    g_mutex_unlock(&m.lock);
    return i < 0 ? -1 : 0;
}

int metrics_record_source(MetricsOwner owner, const char *uuid, const char *name,
                          XapiError **err)
{
    Rrd *rrd;
    g_mutex_lock(&m.lock);
    int i = source_locked(owner, uuid, name, &rrd, err);
    g_mutex_unlock(&m.lock);
    return i < 0 ? -1 : 0;
}
