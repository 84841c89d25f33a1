/* hv_driver.h: the hypervisor driver interface.
 *
 * A driver runs domains (one per running VM, named by the VM's uuid) and
 * reports their state; the power-state machine, operation locking and the
 * database live above it (vm_lifecycle.c). Two drivers: qemu (a
 * qemu-system-x86_64 process per domain, driven over QMP) and sim
 * (simulated domains with the same state machine, for scale tests). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "xapi_error.h"
#include "vif_policy.h"
#include "xv.h"

typedef enum {
    HV_ABSENT,   /* no domain */
    HV_RUNNING,
    HV_PAUSED,
    HV_SHUTDOWN, /* the guest stopped itself; the domain waits for a decision */
} HvState;

/* Why a domain is in HV_SHUTDOWN. */
typedef enum {
    HV_STOP_POWEROFF,
    HV_STOP_REBOOT,
    HV_STOP_CRASH,
} HvStopReason;

typedef struct {
    HvState state;
    HvStopReason reason; /* HV_SHUTDOWN only */
    bool rebooted;       /* the guest rebooted itself since clear_rebooted */
} HvStatus;

/* A disk of a domain: a VBD and the image behind it. Devices are named
 * after the slot (the VBD's userdevice). The machine is an i440fx PC, as a
 * Xen HVM guest's is: disks are virtio-blk devices on the root PCI bus
 * (hot-pluggable through ACPI), CD drives the four IDE units (slot 3 is
 * the secondary slave, hdd), floppy VBDs the two units of the PC's floppy
 * controller (not hot-pluggable). */
#define HV_DISK_SLOTS 8
#define HV_FLOPPY_UNITS 2
#define HV_CD_SLOTS 4
typedef struct {
    int slot;
    bool cdrom;
    int floppy;          /* a floppy drive: its unit + 1 (A: 1, B: 2); 0: not one */
    char *path;          /* the image; NULL: an empty CD drive */
    const char *format;  /* "qcow2" or "raw" (static) */
    bool read_only;
    int64_t size;        /* virtual size in bytes */
    int bootindex;       /* boot order position, or -1 */
    int ioprio;          /* the VBD's ionice as a Linux I/O priority (vbd_qos.h); 0: none */
    int64_t rate_bps;    /* the VBD's ratelimit (vbd_qos.h): bytes/s, 0: none */
    int64_t rate_iops;   /* operations/s, 0: none */
    char rate_group[40]; /* the QEMU throttle group the limits are shared in */
} HvDisk;
void hv_disks_free(HvDisk *disks, size_t n);

/* A NIC of a domain: a VIF and the bridge its tap goes on. The qemu
 * driver makes the bridge when it is an internal network's (none yet),
 * creates the tap on it (with its rules set first, and off the bridge
 * when its locking mode is disabled) and hands it to QEMU by fd; the sim
 * driver only records it. */
typedef struct {
    int device;        /* the VIF's device number */
    char *mac;
    char *bridge;
    int mtu;
    bool internal;     /* a network without PIFs: xapid may make its bridge */
    VifPolicy *policy; /* locking and QoS, enforced on the tap (owned) */
    const char *model; /* QEMU device: virtio-net-pci, e1000, rtl8139 (static) */
    char *tap;         /* the tap's name (the macvtap link's, with macvtap_parent) */
    int bootindex;     /* boot order position, or -1 */
    /* A network whose PIF is a NIC not on its bridge (PIF unplugged): the
     * NIC is a macvtap link in bridge mode on that device instead of a tap
     * on the bridge (NULL: a tap). */
    char *macvtap_parent;
    /* The NIC's backend can be swapped under the running guest (a PIF
     * that is a NIC: macvtap <-> bridge): QEMU joins the device and its
     * backend through a hub, so the device never changes. */
    bool switchable;
    /* During a switch: no backend at all (nic_update only). */
    bool detached;
} HvNic;
void hv_nics_free(HvNic *nics, size_t n);

/* A domain's counters for the metrics sampler. The caller names the disks
 * (by slot) and NICs (by VIF device) it wants; the driver fills in the
 * figures, leaving -1 where it has none. */
#define HV_SAMPLE_MAX_VCPUS 64
#define HV_SAMPLE_MAX_DEVICES 16
typedef struct {
    unsigned n_vcpus;                        /* filled by the driver */
    double vcpu_seconds[HV_SAMPLE_MAX_VCPUS]; /* CPU time each vCPU used, in total */
    int64_t memory;                          /* bytes the domain has */
    int64_t memory_internal_free;            /* KiB the guest says it has free, -1: unknown */
    unsigned n_disks;
    /* bytes, requests completed, and nanoseconds those requests took */
    struct {
        int slot;
        int64_t read_bytes, write_bytes, read_ops, write_ops, read_ns, write_ns;
    } disks[HV_SAMPLE_MAX_DEVICES];
    unsigned n_nics;
    struct { int device; int64_t rx_bytes, tx_bytes; } nics[HV_SAMPLE_MAX_DEVICES]; /* as the guest sees them */
} HvSample;

/* Live migration between the drivers of two hosts (migrate_link.h has
 * the connection's protocol). Shared storage only: both sides open the
 * same images, the destination takes them only once the source has let
 * them go (QEMU's inactivation), so no two QEMUs ever have one read-write. */
typedef struct {
    char status[24];              /* QEMU's: setup, active, completed, failed, ... */
    int64_t total_ms;             /* from the start to now, or to the end */
    int64_t setup_ms;
    int64_t downtime_ms;          /* the guest's pause at the switch (-1 before the end) */
    int64_t expected_downtime_ms; /* QEMU's estimate while it runs (-1 if none) */
    int64_t ram_total, ram_transferred, ram_remaining; /* bytes */
    int64_t dirty_sync_count;     /* passes over the dirty bitmap */
    int64_t dirty_pages_rate;     /* pages per second */
    int64_t link_sent, link_received; /* QEMU's stream bytes over the connection */
    bool live;                    /* the guest ran during the transfer */
} HvMigrateStats;

typedef struct {
    /* The guest is paused for the whole transfer (downtime: all of it).
     * The qemu driver also migrates so when live migration would lose
     * memory: under TCG with a QEMU older than 9.0 (docs/migration.md). */
    bool non_live;
    int64_t max_bandwidth;     /* bytes per second; 0: QEMU's default */
    int64_t downtime_limit_ms; /* 0: QEMU's default (300 ms) */
    int64_t idle_timeout_ms;   /* the connection still this long fails it; 0: 30 s */
    /* Called from the migrating thread about every 200 ms (may be NULL). */
    void (*progress)(void *opaque, const HvMigrateStats *stats);
    void *opaque;
} HvMigrateOptions;

/* Called from a driver thread when a domain changes state by itself
 * (guest poweroff or reboot, QEMU gone). Must not block for long. */
typedef void (*HvChangeNotify)(const char *uuid);

typedef struct HvDriver {
    const char *name;      /* "qemu" or "sim", reported in host.software_version */
    const char *accel;     /* "kvm", "tcg" or "sim" */
    /* Creates and boots a domain from the VM record (an XV_STRUCT as
     * VM.get_record gives it) with these disks and NICs; paused: left paused before
     * the first instruction. With resume_image (a file save() wrote) the
     * domain continues from that state instead of booting. */
    int (*start)(const char *uuid, const Xv *vm, const HvDisk *disks, size_t n_disks,
                 const HvNic *nics, size_t n_nics, const char *resume_image, bool paused,
                 XapiError **err);
    /* Writes a paused domain's state (memory and devices) to path; the
     * domain stays paused. */
    int (*save)(const char *uuid, const char *path, XapiError **err);
    int (*pause)(const char *uuid, XapiError **err);
    int (*unpause)(const char *uuid, XapiError **err);
    /* Presses the ACPI power button; the guest decides. */
    int (*request_shutdown)(const char *uuid, XapiError **err);
    /* Restarts the guest in place (a reboot: a fresh boot, same domain). */
    int (*reset)(const char *uuid, XapiError **err);
    /* A non-maskable interrupt to every vCPU (VM.send_trigger "nmi"). */
    int (*nmi)(const char *uuid, XapiError **err);
    /* Presses keys together on the guest's keyboard, then lets go: QEMU
     * key codes ("alt", "sysrq", "h"; VM.send_sysrq). */
    int (*send_keys)(const char *uuid, const char *const *qcodes, XapiError **err);
    /* Stops the domain at once and forgets it. Absent is not an error. */
    int (*destroy)(const char *uuid, XapiError **err);
    HvStatus (*status)(const char *uuid);
    void (*clear_rebooted)(const char *uuid);
    /* Blocks until the domain leaves HV_RUNNING/HV_PAUSED or the monotonic
     * deadline passes; true if it did. */
    bool (*wait_stopped)(const char *uuid, int64_t deadline);
    /* Finds a domain left running by an earlier xapid (after a restart)
     * and resumes watching it; false if there is none. */
    bool (*reattach)(const char *uuid);
    /* After the reattaches at start-up: stops every domain left by an
     * earlier xapid that was not reattached (its VM is Halted, gone or
     * not resident here) and forgets it. NULL: nothing outlives xapid. */
    void (*stop_unattached)(void);
    /* The database records the domain start() made (what a start-up after
     * a kill -9 in between needs to know). NULL: nothing to do. */
    void (*start_recorded)(const char *uuid);
    /* Disks of a running domain. plug adds a disk (not a CD drive);
     * unplug asks the guest to let go and returns 1 if it has not within
     * timeout_ms; change_medium puts path in a CD drive (NULL ejects);
     * snapshot moves the disk onto a new overlay at new_path over its
     * current image; resize grows it. */
    int (*disk_plug)(const char *uuid, const HvDisk *disk, XapiError **err);
    int (*disk_unplug)(const char *uuid, const HvDisk *disk, int64_t timeout_ms, XapiError **err);
    int (*disk_change_medium)(const char *uuid, const HvDisk *disk, XapiError **err);
    /* Moves the domain's disks onto the empty overlays at new_paths[i]
     * (made over the images the disks use now, naming them as their
     * backing files) in one step: the guest's next write to any of them
     * goes to the new files. A disk already on its new path is left. */
    int (*disks_switch)(const char *uuid, const HvDisk *disks, const char *const *new_paths,
                        size_t n, XapiError **err);
    int (*disk_resize)(const char *uuid, const HvDisk *disk, int64_t size, XapiError **err);
    /* NICs of a running domain: plug makes the tap on its bridge and adds
     * the device (ACPI hot-plug on the root bus); unplug asks the guest to
     * let go (1 if it has not within timeout_ms), then drops the tap. */
    int (*nic_plug)(const char *uuid, const HvNic *nic, XapiError **err);
    int (*nic_unplug)(const char *uuid, const HvNic *nic, int64_t timeout_ms, XapiError **err);
    /* A plugged NIC's tap follows nic as it is now: its bridge (VIF.move,
     * without the guest noticing), its locking rules and its rate; a
     * switchable NIC's backend is replaced when nic asks for another kind
     * (macvtap, tap on the bridge, none), the guest's device untouched. */
    int (*nic_update)(const char *uuid, const HvNic *nic, XapiError **err);
    /* xapid is about to re-execute itself (host.restart_agent): what the
     * new image needs to find the domains again. NULL: nothing (QEMU
     * domains outlive xapid). */
    void (*prepare_reexec)(void);
    /* The balloon of a running domain: asks the guest to give back all but
     * target bytes (memory_dynamic_*, memory_target); memory_actual: what
     * the guest holds now (its balloon driver's report), -1 on error. */
    int (*memory_target)(const char *uuid, int64_t target, XapiError **err);
    int64_t (*memory_actual)(const char *uuid, XapiError **err);
    /* The number of vCPUs a running domain has: hot-plugs vCPUs up to n
     * (at most the VCPUs_max it started with), or asks the guest to let go
     * of hot-plugged ones (1 if it has not within timeout_ms). The vCPUs it
     * booted with stay: fewer is VALUE_NOT_SUPPORTED. */
    int (*vcpus_set)(const char *uuid, int64_t n, int64_t timeout_ms, XapiError **err);
    /* The unix socket of a running domain's guest agent port (caller
     * frees), or NULL. NULL op: no guest agent (sim). */
    char *(*agent_socket)(const char *uuid);
    /* Whether a domain serves a console of protocol "rfb" (its VNC
     * display) or "vt100" (its serial port). No I/O that could wait. */
    bool (*console_served)(const char *uuid, const char *protocol);
    /* A socket connected to that console (caller closes), or -1 with err. */
    int (*console_connect)(const char *uuid, const char *protocol, XapiError **err);
    /* The domain's counters now (VM lock held); -1 if it has no domain.
     * NULL: the driver has none. */
    int (*sample)(const char *uuid, HvSample *sample);
    /* Live migration, source side: moves the domain (running, or paused)
     * to the peer's migrate_receive over conn, a connected stream socket
     * the caller opened and authenticated (the driver never gives it to
     * QEMU, and shuts it down if the migration fails). 0: the peer runs it
     * (or holds it paused, as it was) and it is gone here. -1: it is still
     * here as it was, except when the peer never confirmed the switch:
     * then it is left paused (HV_PAUSED) and err says so, as it may run
     * there. stats (may be NULL) gets QEMU's last figures. */
    int (*migrate_send)(const char *uuid, int conn, const HvMigrateOptions *opts,
                        HvMigrateStats *stats, XapiError **err);
    /* Destination side: creates the domain from the VM record, disks and
     * NICs as start() does (its taps on their bridges before any state
     * arrives), paused, and takes the state from conn. 0: it runs here
     * (paused if it was paused at the source); -1: there is no domain.
     * As after start(), start_recorded() once the database says the VM
     * is resident here (until then a restarted xapid stops the domain). */
    int (*migrate_receive)(const char *uuid, const Xv *vm, const HvDisk *disks, size_t n_disks,
                           const HvNic *nics, size_t n_nics, int conn,
                           const HvMigrateOptions *opts, XapiError **err);
    /* Makes the migration of uuid under way on this side fail (the domain
     * stays at the source); nothing if there is none. Any thread. */
    void (*migrate_cancel)(const char *uuid);
    /* Writes a domain's memory (a crashed guest's, stopped) to path as an
     * ELF core file. NULL: the driver cannot. */
    int (*dump_memory)(const char *uuid, const char *path, XapiError **err);
} HvDriver;

/* dir/domains holds one directory per domain (qemu). */
const HvDriver *hv_qemu_driver(const char *dir, HvChangeNotify notify, XapiError **err);
const HvDriver *hv_sim_driver(HvChangeNotify notify);
/* The sim driver keeps a file per domain in dir (its uuid, holding
 * xapid's pid) while the domain exists: what the tests check as a
 * "process" (HA's fence); dir is emptied first. */
void hv_sim_record_domains(const char *dir);
