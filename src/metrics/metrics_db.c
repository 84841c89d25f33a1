/* metrics_db.c: the sampler's figures into the metrics objects (see
 * metrics_db.h). */
#include "metrics_db.h"

#include <string.h>

#include "db.h"
#include "host_net.h"
#include "pci_ids.h"
#include "xv.h"

static void vm_figures_clear(gpointer p) { g_free(((MetricsVmFigures *)p)->vm); }

static void pif_figures_clear(gpointer p)
{
    MetricsPifFigures *f = p;
    g_free(f->pif);
    g_free(f->device);
    g_free(f->vendor_id);
    g_free(f->device_id);
    g_free(f->vendor_name);
    g_free(f->device_name);
    g_free(f->pci_bus_path);
}

void metrics_figures_init(MetricsFigures *f)
{
    f->memory_total = -1;
    f->vms = g_array_new(FALSE, TRUE, sizeof(MetricsVmFigures));
    g_array_set_clear_func(f->vms, vm_figures_clear);
    f->pifs = g_array_new(FALSE, TRUE, sizeof(MetricsPifFigures));
    g_array_set_clear_func(f->pifs, pif_figures_clear);
}

void metrics_figures_clear(MetricsFigures *f)
{
    g_clear_pointer(&f->vms, g_array_unref);
    g_clear_pointer(&f->pifs, g_array_unref);
}

/* sysfs gives "0x8086"; the PIF_metrics made at discovery hold "8086". */
static char *bare_hex(const char *id)
{
    return g_strdup(g_str_has_prefix(id, "0x") ? id + 2 : id);
}

static bool full_duplex(const char *dev)
{
    g_autofree char *path = g_build_filename("/sys/class/net", dev, "duplex", NULL);
    g_autofree char *text = NULL;
    return g_file_get_contents(path, &text, NULL, NULL) && g_str_has_prefix(text, "full");
}

void metrics_figures_read_links(MetricsFigures *f)
{
    for (guint i = 0; i < f->pifs->len; i++) {
        MetricsPifFigures *p = &g_array_index(f->pifs, MetricsPifFigures, i);
        g_autoptr(HostLink) l = hostnet_link(p->device);
        if (!l)
            continue;
        p->read = true;
        p->carrier = l->carrier;
        p->speed = l->speed;
        p->duplex = full_duplex(p->device);
        p->vendor_id = bare_hex(l->vendor_id);
        p->device_id = bare_hex(l->device_id);
        p->vendor_name = pci_ids_vendor_name(p->vendor_id);
        p->device_name = pci_ids_device_name(p->vendor_id, p->device_id);
        p->pci_bus_path = g_strdup(l->pci_bus_path);
    }
}

/* ---- comparing and writing ------------------------------------------------ */

/* Each helper below compares; with write set it also stores the new value
 * (write lock held) and returns whether anything differed. */

static bool put(DbRow *row, const char *field, Xv *value, bool write)
{
    const Xv *now = db_get(row, field);
    bool differs = now && !xv_equal(now, value);
    if (differs && write)
        db_set_by_name(row, field, value, NULL);
    else
        xv_free(value);
    return differs;
}

static DbRow *metrics_of(const char *class_name, const char *owner_class, const char *owner)
{
    DbRow *row = db_lookup(dm_class_by_name(owner_class), owner);
    return row ? db_lookup(dm_class_by_name(class_name), xv_str(db_get(row, "metrics"))) : NULL;
}

static bool host_changes(DbRow *host_metrics, const MetricsFigures *f, bool write)
{
    bool c = put(host_metrics, "live", xv_new_bool(true), write);
    if (f->memory_total > 0)
        c |= put(host_metrics, "memory_total", xv_new_int(f->memory_total), write);
    return c;
}

static bool pif_changes(DbRow *m, const MetricsPifFigures *p, bool write)
{
    bool c = put(m, "carrier", xv_new_bool(p->carrier), write);
    c |= put(m, "speed", xv_new_int(p->speed), write);
    c |= put(m, "duplex", xv_new_bool(p->duplex), write);
    c |= put(m, "vendor_id", xv_new_string(p->vendor_id), write);
    c |= put(m, "device_id", xv_new_string(p->device_id), write);
    c |= put(m, "vendor_name", xv_new_string(p->vendor_name), write);
    c |= put(m, "device_name", xv_new_string(p->device_name), write);
    c |= put(m, "pci_bus_path", xv_new_string(p->pci_bus_path), write);
    return c;
}

static bool vm_changes(const MetricsVmFigures *v, const char *host, bool write)
{
    DbRow *vm = db_lookup(dm_class_by_name("VM"), v->vm);
    /* a VM that stopped or left since it was sampled keeps what its
     * stop wrote */
    if (!vm || v->memory_actual < 0 || strcmp(xv_str(db_get(vm, "resident_on")), host) != 0)
        return false;
    DbRow *m = db_lookup(dm_class_by_name("VM_metrics"), xv_str(db_get(vm, "metrics")));
    return m && put(m, "memory_actual", xv_new_int(v->memory_actual), write);
}

static void stamp(DbRow *row, int64_t now)
{
    db_set_by_name(row, "last_updated", xv_new_datetime(now), NULL);
}

typedef struct {
    const MetricsFigures *f;
    bool write, any;
} BondPass;

/* -1 when the PIF was not read this round. */
static int carrier_of(const MetricsFigures *f, const char *pif)
{
    for (guint i = 0; i < f->pifs->len; i++) {
        const MetricsPifFigures *p = &g_array_index(f->pifs, MetricsPifFigures, i);
        if (p->read && strcmp(p->pif, pif) == 0)
            return p->carrier;
    }
    return -1;
}

/* Bond.links_up: its members with carrier, as XAPI's monitor counts them. */
static bool bond_changes(DbRow *bond, void *ctx)
{
    BondPass *b = ctx;
    const Xv *slaves = db_get(bond, "slaves");
    int64_t up = 0;
    for (guint i = 0; i < xv_len(slaves); i++) {
        int c = carrier_of(b->f, xv_str(xv_at(slaves, i)));
        if (c < 0)
            return true; /* another host's bond, or a member not read */
        up += c;
    }
    b->any |= put(bond, "links_up", xv_new_int(up), b->write);
    return true;
}

/* One pass over every object; returns whether any differed. */
static bool pass(const MetricsFigures *f, const char *host, bool write)
{
    int64_t now = g_get_real_time() / G_USEC_PER_SEC;
    bool any = false;
    DbRow *hm = metrics_of("host_metrics", "host", host);
    if (hm && host_changes(hm, f, write)) {
        any = true;
        if (write)
            stamp(hm, now);
    }
    for (guint i = 0; i < f->pifs->len; i++) {
        const MetricsPifFigures *p = &g_array_index(f->pifs, MetricsPifFigures, i);
        DbRow *pm = p->read ? metrics_of("PIF_metrics", "PIF", p->pif) : NULL;
        if (pm && pif_changes(pm, p, write)) {
            any = true;
            if (write)
                stamp(pm, now);
        }
    }
    for (guint i = 0; i < f->vms->len; i++)
        any |= vm_changes(&g_array_index(f->vms, MetricsVmFigures, i), host, write);
    BondPass bonds = {.f = f, .write = write};
    db_foreach(dm_class_by_name("Bond"), bond_changes, &bonds);
    return any || bonds.any;
}

void metrics_db_write(const MetricsFigures *f, const char *host)
{
    db_read_begin();
    bool any = pass(f, host, false);
    db_read_end();
    if (!any)
        return;
    g_autoptr(XapiError) err = NULL;
    if (db_write_begin(&err) < 0) {
        g_warning("metrics: %s", err->code);
        return;
    }
    pass(f, host, true);
    if (db_write_commit(&err) < 0)
        g_warning("metrics: %s", err->code);
}
