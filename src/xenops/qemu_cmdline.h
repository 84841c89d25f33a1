/* qemu_cmdline.h: the qemu-system-x86_64 command line for a VM record. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "hv_driver.h"
#include "image_chain.h"
#include "xapi_error.h"
#include "xv.h"

typedef struct {
    const char *binary; /* qemu-system-x86_64 */
    const char *accel;  /* "kvm" or "tcg" */
    const char *dir;    /* the domain's runtime directory (sockets, logs, pid) */
    const ImageChain *chains; /* parallel to the disks: their images, opened */
    int64_t now;        /* seconds since the epoch (platform:timeoffset counts from it) */
} QemuHost;

/* QEMU's option syntax doubles commas inside a value (caller frees). */
char *qemu_escape_commas(const char *s);

/* The balloon (memory_dynamic_*, memory_target) and its PCI slot, between
 * the VGA (2) and the disks (8). */
#define QEMU_BALLOON_ID "balloon0"
#define QEMU_BALLOON_PCI_SLOT 0x04
/* The virtio-serial controller with the guest agent's port. */
#define QEMU_SERIAL_PCI_SLOT 0x05
#define QEMU_AGENT_PORT "org.qemu.guest_agent.0"

/* The paths inside a domain's directory. */
#define QEMU_PIDFILE "qemu.pid"          /* written by xapid right after the spawn */
#define QEMU_START_INTENT "start-intent"  /* written by xapid before the spawn */
#define QEMU_MONITOR_SOCKET "monitor.sock" /* xapid's persistent QMP connection */
#define QEMU_QMP_SOCKET "qmp.sock"         /* a second monitor, free for operators */
#define QEMU_CONSOLE_LOG "console.log"
#define QEMU_STDERR_LOG "qemu.log"
#define QEMU_VNC_SOCKET "vnc.sock"
#define QEMU_SERIAL_SOCKET "serial.sock"   /* the serial port, for the vt100 console */
#define QEMU_AGENT_SOCKET "qga.sock"       /* the guest agent's port (xapid listens, QEMU accepts) */

/* The descriptors xapid opens and hands to QEMU (their numbers in QEMU):
 * the two monitor sockets, listening already, the console log, and the
 * serial port's socket, listening already. */
#define QEMU_FD_MONITOR 3
#define QEMU_FD_QMP 4
#define QEMU_FD_CONSOLE 5
#define QEMU_FD_SERIAL 6
#define QEMU_N_FDS 4
/* PV_kernel and PV_ramdisk, opened by xapid (QEMU reads /proc/self/fd/N). */
#define QEMU_FD_KERNEL 7
#define QEMU_FD_RAMDISK 8
/* The guest agent's port: a socket xapid listens on (QEMU_AGENT_SOCKET). */
#define QEMU_FD_AGENT 9
/* UEFI: OVMF's code (read-only) and the VM's variable store, as fdsets. */
#define QEMU_FD_OVMF_CODE 10
#define QEMU_FD_NVRAM 11
/* The vTPM: QEMU's end of swtpm's control channel (qemu_tpm.c). */
#define QEMU_FD_TPM 12
#define QEMU_FDSET_OVMF_CODE 2
#define QEMU_FDSET_NVRAM 3

/* What QEMU may not do (seccomp): no obsolete system calls, no set*id, no
 * fork or exec, no changing its scheduling or affinity. */
#define QEMU_SANDBOX "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"

/* argv (NULL-terminated, caller frees with g_strfreev) for booting vm, an
 * XV_STRUCT as VM.get_record gives it. QEMU runs in the foreground of its
 * own session (xapid detaches it: -daemonize forks, which the sandbox
 * forbids). With resume_image it waits for the saved state, which xapid
 * hands over the monitor (-incoming defer). Fields that cannot be honoured give
 * an error rather than being ignored. */
char **qemu_cmdline(const QemuHost *host, const char *uuid, const Xv *vm, const HvDisk *disks,
                    size_t n_disks, const HvNic *nics, size_t n_nics, const char *resume_image,
                    bool paused, XapiError **err);

/* NIC i's tap is handed to QEMU as this fd (the spawn maps it there). */
#define QEMU_TAP_FD(i) (100 + (i))
/* A NIC's PCI slot on the root bus, after the disks' (VIF devices 0-15). */
#define QEMU_NIC_SLOTS 16
#define QEMU_NIC_PCI_SLOT(device) (0x10 + (device))

/* Disk images reach QEMU as descriptors in fdsets (QEMU opens
 * "/dev/fdset/N"), one set per image of a chain holding its read-write
 * (top of a writable disk only) and read-only descriptors, the set's
 * opaque naming the disk's slot so that the sets go with the disk. On the
 * command line the sets are numbered from QEMU_FDSET_IMAGES and the
 * descriptors from QEMU_IMAGE_FD(0), in the order qemu_image_fds lists
 * them; hot-plugged ones get the numbers QMP's add-fd gives. */
#define QEMU_FDSET_IMAGES 10
#define QEMU_IMAGE_FD(i) (200 + (int)(i))
#define QEMU_DISK_FDSET_FMT "vbd%d"
/* The descriptors of chains (one per disk) and where QEMU gets them; fds
 * and targets have room for two per image. Returns how many. */
size_t qemu_image_fds(const ImageChain *chains, size_t n_disks, int *fds, int *targets);

/* QMP arguments (JSON object text, caller frees) for hot-plugging disk:
 * its block nodes (an image of chain on each fdsets[i]), then its device. */
char *qemu_disk_blockdev_json(const HvDisk *disk, const ImageChain *chain, const int64_t *fdsets);
char *qemu_disk_device_json(const HvDisk *disk);
/* QMP arguments for hot-plugging nic whose tap QEMU holds as the fd
 * named like its netdev ("vif<device>"): the netdev, then the device. */
char *qemu_nic_netdev_json(const HvNic *nic);
char *qemu_nic_device_json(const HvNic *nic);
#define QEMU_NIC_NETDEV_FMT "vif%d"
/* A switchable NIC (HvNic.switchable): the device's netdev vif<N> is a hub
 * port, and the backend (its tap or macvtap, by fd) the hub's other port. */
#define QEMU_NIC_BACKEND_FMT "vif%d.b"
#define QEMU_NIC_BACKEND_PORT_FMT "vif%d.h"
/* QMP netdev_add arguments: a switchable NIC's backend (its fd passed as
 * getfd with the backend's id as fdname), and the hub ports (the
 * backend's, or the device's). */
char *qemu_nic_backend_json(const HvNic *nic);
char *qemu_nic_hubport_json(const HvNic *nic, bool backend_side);
/* A hub port with no peer, in the hub while it has no backend: it takes
 * (and drops) what the device sends. A hub whose only other port is the
 * device's can receive nothing, so QEMU would queue the device's next frame
 * on the device's port, where nothing ever flushes it, and the device
 * would send nothing more (net_hub_port_can_receive, virtio-net's async
 * TX). */
#define QEMU_NIC_SINK_FMT "vif%d.s"
char *qemu_nic_sink_json(const HvNic *nic);
#define QEMU_NIC_ID_FMT "vif%d-dev"

/* A slot's device id; its block node is "vbd<slot>" (and its successors
 * after live snapshots). */
#define QEMU_DISK_ID_FMT "vbd%d-dev"
/* A disk slot's PCI slot on the root bus, clear of the host bridge (0),
 * the PIIX3 (1) and the VGA (2) whatever else is added later. */
#define QEMU_DISK_PCI_SLOT(slot) (0x08 + (slot))
