/* metrics_db.h: the sampler's figures kept current in the database's
 * metrics objects, as XAPI's monitor threads keep them (monitor_mem.ml,
 * monitor_master.ml): host_metrics memory_total and live, VM_metrics
 * memory_actual, PIF_metrics carrier, speed, duplex and PCI identity
 * (ids, bus path, and the vendor and device names pci.ids gives them).
 * Only what changed is written, in one write transaction per round, and
 * none when nothing changed. (VM_metrics.VCPUs_utilisation,
 * host_metrics.memory_free, the io_*_kbs fields and VBD/VIF_metrics'
 * figures are Removed from the datamodel: there is nothing to keep.) */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

typedef struct {
    char *vm;              /* VM ref */
    int64_t memory_actual; /* bytes, -1 when the driver gave none */
} MetricsVmFigures;

typedef struct {
    char *pif;             /* PIF ref */
    char *device;
    bool read;             /* the link was there to read */
    bool carrier, duplex;
    int64_t speed;
    char *vendor_id, *device_id, *pci_bus_path;
    char *vendor_name, *device_name; /* from pci.ids (pci_ids.h) */
} MetricsPifFigures;

typedef struct {
    int64_t memory_total;  /* bytes, -1 when unread */
    GArray *vms;           /* MetricsVmFigures */
    GArray *pifs;          /* MetricsPifFigures */
} MetricsFigures;

void metrics_figures_init(MetricsFigures *f);
void metrics_figures_clear(MetricsFigures *f);
/* Reads each PIF's link facts from the host into f->pifs. */
void metrics_figures_read_links(MetricsFigures *f);
/* Writes what differs from the database for this host (ref), taking the
 * write lock only then. */
void metrics_db_write(const MetricsFigures *f, const char *host);
