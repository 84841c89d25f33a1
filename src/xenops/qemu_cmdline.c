/* qemu_cmdline.c: from a VM record to QEMU's arguments.
 *
 * The domain runs detached so that it outlives xapid; xapid finds it
 * again through the pid file and the QMP sockets in the domain's
 * directory. A guest's poweroff stops the domain (-action) and its reboot
 * resets it; xapid decides what follows from actions_after_shutdown,
 * actions_after_reboot and actions_after_crash. */
#include "qemu_cmdline.h"

#include <json-c/json.h>
#include <string.h>

#include "qemu_platform.h"
#include "vm_nvram.h"
#include "vm_vtpm.h"

/* The CPU under TCG: QEMU's default model with what x86-64-v2 adds
 * (SSSE3, SSE4.1, SSE4.2, POPCNT), the baseline of today's distributions.
 * "max" would also offer AVX2 and 5-level paging, which TCG emulates at a
 * cost: the test guest boots 2-5% slower with it (docs/bench.md). */
#define TCG_CPU_MODEL "qemu64,+ssse3,+sse4.1,+sse4.2,+popcnt"

static const char *field_str(const Xv *vm, const char *name)
{
    const Xv *v = xv_struct_get(vm, name);
    const char *s = v ? xv_str(v) : NULL;
    return s ? s : "";
}

static int64_t field_int(const Xv *vm, const char *name)
{
    const Xv *v = xv_struct_get(vm, name);
    return v && v->kind == XV_INT ? v->i : 0;
}

static const char *map_get(const Xv *vm, const char *map, const char *key)
{
    const Xv *m = xv_struct_get(vm, map);
    const Xv *v = m && m->kind == XV_STRUCT ? xv_struct_get(m, key) : NULL;
    return v ? xv_str(v) : NULL;
}

char *qemu_escape_commas(const char *s)
{
    GString *out = g_string_new(NULL);
    for (; *s; s++) {
        if (*s == ',')
            g_string_append_c(out, ',');
        g_string_append_c(out, *s);
    }
    return g_string_free(out, FALSE);
}

static void add(GPtrArray *argv, const char *arg) { g_ptr_array_add(argv, g_strdup(arg)); }

static void addf(GPtrArray *argv, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void addf(GPtrArray *argv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_ptr_array_add(argv, g_strdup_vprintf(fmt, ap));
    va_end(ap);
}

/* HVM_boot_params "order": c disk, d CD, n network (XAPI's letters are
 * QEMU's too). */
static bool valid_boot_order(const char *order)
{
    if (!*order || strlen(order) > 8)
        return false;
    for (const char *c = order; *c; c++)
        if (!strchr("cdn", *c))
            return false;
    return true;
}

/* CD drives on the PIIX IDE channels: slot 0 is the primary master, 3 the
 * secondary slave (hdd, where XAPI's templates put the CD). On q35 they
 * are on the ICH9 AHCI's ports (ide.0-ide.5, one drive each). */
static int ide_channel(int slot) { return slot / 2; }
static int ide_unit(int slot) { return slot % 2; }

/* The root bus: i440fx's PCI, or q35's PCI Express root complex. */
static const char *root_bus(bool q35) { return q35 ? "pcie.0" : "pci.0"; }

static char *device_option(const HvDisk *disk, bool q35)
{
    GString *dev = g_string_new(NULL);
    if (disk->floppy)
        g_string_append_printf(dev, "floppy,unit=%d,id=" QEMU_DISK_ID_FMT, disk->floppy - 1,
                               disk->slot);
    else if (disk->cdrom && q35)
        g_string_append_printf(dev, "ide-cd,bus=ide.%d,unit=0,id=" QEMU_DISK_ID_FMT, disk->slot,
                               disk->slot);
    else if (disk->cdrom)
        g_string_append_printf(dev, "ide-cd,bus=ide.%d,unit=%d,id=" QEMU_DISK_ID_FMT,
                               ide_channel(disk->slot), ide_unit(disk->slot), disk->slot);
    else
        g_string_append_printf(dev, "virtio-blk-pci,bus=%s,addr=0x%x,id=" QEMU_DISK_ID_FMT,
                               root_bus(q35), QEMU_DISK_PCI_SLOT(disk->slot), disk->slot);
    if (disk->path)
        g_string_append_printf(dev, ",drive=vbd%d", disk->slot);
    if (disk->bootindex >= 0)
        g_string_append_printf(dev, ",bootindex=%d", disk->bootindex);
    return g_string_free(dev, FALSE);
}

static char *json_text(json_object *o);

/* Each disk's images on fdsets numbered from QEMU_FDSET_IMAGES, their
 * descriptors at QEMU_IMAGE_FD(0).. in qemu_image_fds' order. */
static int add_disks(GPtrArray *argv, const HvDisk *disks, const ImageChain *chains, size_t n,
                     bool q35, XapiError **err)
{
    int64_t fdset = QEMU_FDSET_IMAGES;
    size_t fd = 0;
    for (size_t i = 0; i < n; i++) {
        const HvDisk *d = &disks[i];
        /* q35 has no floppy controller (vm_lifecycle.c refuses them first) */
        if (d->slot < 0 || d->slot >= (d->cdrom ? HV_CD_SLOTS : HV_DISK_SLOTS) ||
            (q35 && d->floppy) ||
            (!d->path && !d->cdrom && !d->floppy) || (d->path && chains[i].n == 0)) {
            char slot[16];
            g_snprintf(slot, sizeof slot, "%d", d->slot);
            return xapi_error_set(err, "INVALID_DEVICE", slot, NULL);
        }
        if (d->path) {
            g_autofree int64_t *sets = g_new(int64_t, chains[i].n);
            for (size_t l = 0; l < chains[i].n; l++) {
                sets[l] = fdset++;
                for (int copies = chains[i].layers[l].fd_rw >= 0 ? 2 : 1; copies > 0; copies--) {
                    add(argv, "-add-fd");
                    addf(argv, "fd=%d,set=%" G_GINT64_FORMAT ",opaque=" QEMU_DISK_FDSET_FMT,
                         QEMU_IMAGE_FD(fd), sets[l], d->slot);
                    fd++;
                }
            }
            add(argv, "-blockdev");
            g_ptr_array_add(argv, qemu_disk_blockdev_json(d, &chains[i], sets));
        }
        add(argv, "-device");
        g_ptr_array_add(argv, device_option(d, q35));
    }
    return 0;
}

/* Each NIC: its tap by fd, and the device with the VIF's MAC. */
static int add_nics(GPtrArray *argv, const HvNic *nics, size_t n, bool q35, XapiError **err)
{
    for (size_t i = 0; i < n; i++) {
        const HvNic *nic = &nics[i];
        /* q35's slot 0x1f is the ICH9's (LPC, AHCI, SMBus) */
        if (nic->device < 0 || nic->device >= QEMU_NIC_SLOTS ||
            (q35 && QEMU_NIC_PCI_SLOT(nic->device) >= 0x1f)) {
            char device[16];
            g_snprintf(device, sizeof device, "%d", nic->device);
            return xapi_error_set(err, "INVALID_DEVICE", device, NULL);
        }
        add(argv, "-netdev");
        if (nic->switchable) {
            /* tap <-> hub port | hub port <-> device: the backend can be
             * replaced later without the device noticing. */
            addf(argv, "tap,id=" QEMU_NIC_BACKEND_FMT ",fd=%d", nic->device, QEMU_TAP_FD((int)i));
            add(argv, "-netdev");
            addf(argv, "hubport,id=" QEMU_NIC_BACKEND_PORT_FMT ",hubid=%d,netdev=" QEMU_NIC_BACKEND_FMT,
                 nic->device, nic->device, nic->device);
            add(argv, "-netdev");
            addf(argv, "hubport,id=vif%d,hubid=%d", nic->device, nic->device);
        } else {
            addf(argv, "tap,id=vif%d,fd=%d", nic->device, QEMU_TAP_FD((int)i));
        }
        add(argv, "-device");
        g_autofree char *mac = qemu_escape_commas(nic->mac);
        GString *dev = g_string_new(NULL);
        g_string_append_printf(dev, "%s,netdev=vif%d,mac=%s,bus=%s,addr=0x%x,id=vif%d-dev",
                               nic->model, nic->device, mac, root_bus(q35),
                               QEMU_NIC_PCI_SLOT(nic->device), nic->device);
        if (nic->bootindex >= 0)
            g_string_append_printf(dev, ",bootindex=%d", nic->bootindex);
        /* virtio-net tells the guest the network's MTU. */
        if (strcmp(nic->model, "virtio-net-pci") == 0 && nic->mtu > 0 && nic->mtu != 1500)
            g_string_append_printf(dev, ",host_mtu=%d", nic->mtu);
        g_ptr_array_add(argv, g_string_free(dev, FALSE));
    }
    return 0;
}

static char *json_text(json_object *o)
{
    char *text = g_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return text;
}

/* Layer i of a disk's images and the layers under it, each a file node
 * on its fdset ("/dev/fdset/N": QEMU opens no image by name). A qcow2
 * layer's backing is the node below it, or none at the bottom. */
static json_object *image_layer(const ImageChain *chain, size_t i, const int64_t *fdsets,
                                bool read_only)
{
    g_autofree char *filename = g_strdup_printf("/dev/fdset/%" G_GINT64_FORMAT, fdsets[i]);
    json_object *file = json_object_new_object();
    json_object_object_add(file, "driver", json_object_new_string("file"));
    json_object_object_add(file, "filename", json_object_new_string(filename));
    json_object *o = json_object_new_object();
    const char *format = chain->layers[i].format;
    json_object_object_add(o, "driver", json_object_new_string(format));
    json_object_object_add(o, "read-only", json_object_new_boolean(read_only));
    json_object_object_add(o, "file", file);
    if (strcmp(format, "qcow2") == 0)
        json_object_object_add(o, "backing",
                               i + 1 < chain->n ? image_layer(chain, i + 1, fdsets, true)
                                                : NULL);
    return o;
}

char *qemu_disk_blockdev_json(const HvDisk *disk, const ImageChain *chain, const int64_t *fdsets)
{
    g_autofree char *node = g_strdup_printf("vbd%d", disk->slot);
    json_object *o = image_layer(chain, 0, fdsets, disk->read_only);
    json_object_object_add(o, "node-name", json_object_new_string(node));
    return json_text(o);
}

size_t qemu_image_fds(const ImageChain *chains, size_t n_disks, int *fds, int *targets)
{
    size_t n = 0;
    for (size_t d = 0; d < n_disks; d++)
        for (size_t i = 0; i < chains[d].n; i++) {
            const ImageLayer *l = &chains[d].layers[i];
            if (l->fd_rw >= 0) {
                fds[n] = l->fd_rw;
                targets[n] = QEMU_IMAGE_FD(n);
                n++;
            }
            fds[n] = l->fd_ro;
            targets[n] = QEMU_IMAGE_FD(n);
            n++;
        }
    return n;
}

char *qemu_disk_device_json(const HvDisk *disk)
{
    g_autofree char *id = g_strdup_printf(QEMU_DISK_ID_FMT, disk->slot);
    g_autofree char *addr = g_strdup_printf("0x%x", QEMU_DISK_PCI_SLOT(disk->slot));
    g_autofree char *node = g_strdup_printf("vbd%d", disk->slot);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "driver", json_object_new_string("virtio-blk-pci"));
    json_object_object_add(o, "bus", json_object_new_string("pci.0"));
    json_object_object_add(o, "addr", json_object_new_string(addr));
    json_object_object_add(o, "drive", json_object_new_string(node));
    json_object_object_add(o, "id", json_object_new_string(id));
    return json_text(o);
}

char *qemu_nic_netdev_json(const HvNic *nic)
{
    g_autofree char *id = g_strdup_printf(QEMU_NIC_NETDEV_FMT, nic->device);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string("tap"));
    json_object_object_add(o, "id", json_object_new_string(id));
    json_object_object_add(o, "fd", json_object_new_string(id));
    return json_text(o);
}

char *qemu_nic_backend_json(const HvNic *nic)
{
    g_autofree char *id = g_strdup_printf(QEMU_NIC_BACKEND_FMT, nic->device);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string("tap"));
    json_object_object_add(o, "id", json_object_new_string(id));
    json_object_object_add(o, "fd", json_object_new_string(id));
    return json_text(o);
}

static char *hubport_json(const char *id, int hubid, const char *peer)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string("hubport"));
    json_object_object_add(o, "id", json_object_new_string(id));
    json_object_object_add(o, "hubid", json_object_new_int(hubid));
    if (peer)
        json_object_object_add(o, "netdev", json_object_new_string(peer));
    return json_text(o);
}

char *qemu_nic_hubport_json(const HvNic *nic, bool backend_side)
{
    g_autofree char *id = backend_side ? g_strdup_printf(QEMU_NIC_BACKEND_PORT_FMT, nic->device)
                                       : g_strdup_printf(QEMU_NIC_NETDEV_FMT, nic->device);
    g_autofree char *backend = g_strdup_printf(QEMU_NIC_BACKEND_FMT, nic->device);
    return hubport_json(id, nic->device, backend_side ? backend : NULL);
}

char *qemu_nic_sink_json(const HvNic *nic)
{
    g_autofree char *id = g_strdup_printf(QEMU_NIC_SINK_FMT, nic->device);
    return hubport_json(id, nic->device, NULL);
}

char *qemu_nic_device_json(const HvNic *nic)
{
    g_autofree char *netdev = g_strdup_printf(QEMU_NIC_NETDEV_FMT, nic->device);
    g_autofree char *id = g_strdup_printf(QEMU_NIC_ID_FMT, nic->device);
    g_autofree char *addr = g_strdup_printf("0x%x", QEMU_NIC_PCI_SLOT(nic->device));
    json_object *o = json_object_new_object();
    json_object_object_add(o, "driver", json_object_new_string(nic->model));
    json_object_object_add(o, "netdev", json_object_new_string(netdev));
    json_object_object_add(o, "mac", json_object_new_string(nic->mac));
    json_object_object_add(o, "bus", json_object_new_string("pci.0"));
    json_object_object_add(o, "addr", json_object_new_string(addr));
    json_object_object_add(o, "id", json_object_new_string(id));
    if (strcmp(nic->model, "virtio-net-pci") == 0 && nic->mtu > 0 && nic->mtu != 1500)
        json_object_object_add(o, "host_mtu", json_object_new_int(nic->mtu));
    return json_text(o);
}

char **qemu_cmdline(const QemuHost *host, const char *uuid, const Xv *vm, const HvDisk *disks,
                    size_t n_disks, const HvNic *nics, size_t n_nics, const char *resume_image,
                    bool paused, XapiError **err)
{
    int64_t memory = field_int(vm, "memory_static_max");
    int64_t mib = memory / (1024 * 1024);
    if (mib < 1) { /* vm_lifecycle.c checks the sizes with the VM's ref in hand */
        xapi_error_internal(err, "memory_static_max %" G_GINT64_FORMAT " is below 1 MiB", memory);
        return NULL;
    }
    int64_t vcpus = field_int(vm, "VCPUs_at_startup");
    int64_t vcpus_max = field_int(vm, "VCPUs_max");
    if (vcpus < 1)
        vcpus = 1;
    if (vcpus_max < vcpus)
        vcpus_max = vcpus;
    const char *kernel = field_str(vm, "PV_kernel");
    const char *order = map_get(vm, "HVM_boot_params", "order");
    if (!*kernel && order && !valid_boot_order(order)) {
        xapi_error_set(err, "INVALID_VALUE", "HVM_boot_params:order", order, NULL);
        return NULL;
    }
    g_auto(QemuPlatform) platform = {0};
    if (qemu_platform_options(vm, host->accel, host->now, &platform, err) < 0)
        return NULL;

    GPtrArray *argv = g_ptr_array_new();
    g_autofree char *name = qemu_escape_commas(field_str(vm, "name_label"));
    add(argv, host->binary);
    add(argv, "-name");
    addf(argv, "guest=%s", name);
    add(argv, "-uuid");
    add(argv, uuid);
    add(argv, "-machine");
    bool uefi = vm_nvram_uefi(vm);
    /* Secure Boot: OVMF's SMM build, which needs q35's TSEG; its flash
     * is writable only from SMM, so the guest's OS cannot change the keys */
    bool q35 = vm_nvram_secureboot(vm);
    addf(argv, "%s,accel=%s%s%s", q35 ? "q35,smm=on" : "pc", host->accel,
         platform.machine->str, uefi ? ",pflash0=ovmf-code,pflash1=ovmf-vars" : "");
    if (q35) {
        add(argv, "-global");
        add(argv, "driver=cfi.pflash01,property=secure,value=on");
    }
    if (uefi) { /* OVMF, and the VM's variable store (vm_nvram.c), opened by xapid */
        add(argv, "-add-fd");
        addf(argv, "fd=%d,set=%d", QEMU_FD_OVMF_CODE, QEMU_FDSET_OVMF_CODE);
        add(argv, "-add-fd");
        addf(argv, "fd=%d,set=%d", QEMU_FD_NVRAM, QEMU_FDSET_NVRAM);
        add(argv, "-blockdev");
        addf(argv, "driver=file,filename=/dev/fdset/%d,node-name=ovmf-code,read-only=on",
             QEMU_FDSET_OVMF_CODE);
        add(argv, "-blockdev");
        addf(argv, "driver=file,filename=/dev/fdset/%d,node-name=ovmf-vars", QEMU_FDSET_NVRAM);
    }
    add(argv, "-cpu");
    addf(argv, "%s%s", strcmp(host->accel, "kvm") == 0 ? "host" : TCG_CPU_MODEL,
         platform.cpu->str);
    add(argv, "-m");
    addf(argv, "%" G_GINT64_FORMAT, mib);
    add(argv, "-smp");
    if (platform.cores_per_socket)
        addf(argv, "%" G_GINT64_FORMAT ",maxcpus=%" G_GINT64_FORMAT ",sockets=%" G_GINT64_FORMAT
             ",cores=%" G_GINT64_FORMAT ",threads=1", vcpus, vcpus_max,
             vcpus_max / platform.cores_per_socket, platform.cores_per_socket);
    else
        addf(argv, "%" G_GINT64_FORMAT ",maxcpus=%" G_GINT64_FORMAT, vcpus, vcpus_max);
    add(argv, "-nodefaults");
    add(argv, "-no-user-config");
    add(argv, "-display");
    add(argv, "none");
    add(argv, "-vga");
    add(argv, platform.vga);
    /* A VNC server with no listener: xapid hands it each client's
     * connected socket (QMP add_client), so QEMU opens nothing by name. */
    add(argv, "-vnc");
    add(argv, "none");
    /* Files QEMU gets from xapid as descriptors (the sockets are bound and
     * listening before QEMU exists, so xapid connects without waiting). */
    add(argv, "-add-fd");
    addf(argv, "fd=%d,set=1", QEMU_FD_CONSOLE);
    /* The serial port is a socket that xapid connects to for the vt100
     * console (QEMU takes one client at a time: serial_hub.c shares it); QEMU logs all the guest writes to
     * console.log whether or not one is connected (since QEMU 5.2). */
    add(argv, "-chardev");
    addf(argv, "socket,id=console0,fd=%d,server=on,wait=off,logfile=/dev/fdset/1,logappend=on",
         QEMU_FD_SERIAL);
    add(argv, "-serial");
    add(argv, "chardev:console0");
    add(argv, "-chardev");
    addf(argv, "socket,id=monitor,fd=%d,server=on,wait=off", QEMU_FD_MONITOR);
    add(argv, "-mon");
    add(argv, "chardev=monitor,mode=control");
    add(argv, "-chardev");
    addf(argv, "socket,id=qmp,fd=%d,server=on,wait=off", QEMU_FD_QMP);
    add(argv, "-mon");
    add(argv, "chardev=qmp,mode=control");
    add(argv, "-sandbox");
    add(argv, QEMU_SANDBOX);
    /* The guest's poweroff and panic stop the domain and its reboot resets
     * it in place; xapid then applies actions_after_*. */
    add(argv, "-action");
    add(argv, "shutdown=pause,panic=shutdown");
    add(argv, "-device");
    add(argv, "pvpanic");
    /* Every domain has its balloon, so memory_dynamic_* can change live. */
    add(argv, "-device");
    addf(argv, "virtio-balloon-pci,id=" QEMU_BALLOON_ID ",bus=%s,addr=0x%x", root_bus(q35),
         QEMU_BALLOON_PCI_SLOT);
    /* The guest agent's port on a socket xapid listens on already and
     * hands over; xapid's poller connects (guest_agent.c). */
    add(argv, "-device");
    addf(argv, "virtio-serial-pci,id=vser0,bus=%s,addr=0x%x", root_bus(q35),
         QEMU_SERIAL_PCI_SLOT);
    add(argv, "-chardev");
    addf(argv, "socket,id=qga0,fd=%d,server=on,wait=off", QEMU_FD_AGENT);
    add(argv, "-device");
    add(argv, "virtserialport,bus=vser0.0,chardev=qga0,name=" QEMU_AGENT_PORT);
    if (xv_struct_get(vm, VM_VTPM_STATE_MEMBER)) {
        /* TPM 2.0: the CRB interface under UEFI (OVMF's TPM 2 driver), TIS
         * under SeaBIOS, which knows only TIS */
        add(argv, "-chardev");
        addf(argv, "socket,id=tpm0-chr,fd=%d", QEMU_FD_TPM);
        add(argv, "-tpmdev");
        add(argv, "emulator,id=tpm0,chardev=tpm0-chr");
        add(argv, "-device");
        add(argv, uefi ? "tpm-crb,tpmdev=tpm0" : "tpm-tis,tpmdev=tpm0");
    }
    for (guint i = 0; i < platform.args->len; i++)
        add(argv, g_ptr_array_index(platform.args, i));
    if (add_disks(argv, disks, host->chains, n_disks, q35, err) < 0 ||
        add_nics(argv, nics, n_nics, q35, err) < 0) {
        g_ptr_array_add(argv, NULL);
        g_strfreev((char **)g_ptr_array_free(argv, FALSE));
        return NULL;
    }
    if (*kernel) {
        /* Opened by xapid: QEMU reads them through its descriptors. */
        add(argv, "-kernel");
        addf(argv, "/proc/self/fd/%d", QEMU_FD_KERNEL);
        const char *ramdisk = field_str(vm, "PV_ramdisk");
        if (*ramdisk) {
            add(argv, "-initrd");
            addf(argv, "/proc/self/fd/%d", QEMU_FD_RAMDISK);
        }
        const char *args = field_str(vm, "PV_args");
        if (*args) {
            add(argv, "-append");
            add(argv, args);
        }
    } else {
        add(argv, "-boot");
        addf(argv, "order=%s", order ? order : "cd");
    }
    if (resume_image) { /* xapid passes the open image over the monitor */
        add(argv, "-incoming");
        add(argv, "defer");
    }
    if (paused)
        add(argv, "-S");
    g_ptr_array_add(argv, NULL);
    return (char **)g_ptr_array_free(argv, FALSE);
}
