/* vm_fields.c: the VM's memory and vCPU rules, and the fields VM.start
 * refuses rather than ignore (one table, also printed in docs/compat.md). */
#include "vm_fields.h"

#include "cpu_cgroup.h"

#include <string.h>

#include "qemu_platform.h"
#include "vm_nvram.h"
#include "xenops.h"

#define MiB (INT64_C(1) << 20)

static int64_t int_field(const Xv *record, const char *name)
{
    const Xv *v = xv_struct_get(record, name);
    return v && v->kind == XV_INT ? v->i : 0;
}

static const char *str_field(const Xv *record, const char *name)
{
    const Xv *v = xv_struct_get(record, name);
    const char *s = v ? xv_str(v) : NULL;
    return s ? s : "";
}

VmMemory vm_memory_of(const Xv *record)
{
    return (VmMemory){int_field(record, "memory_static_min"),
                      int_field(record, "memory_dynamic_min"),
                      int_field(record, "memory_target"),
                      int_field(record, "memory_dynamic_max"),
                      int_field(record, "memory_static_max")};
}

int vm_memory_check_order(const VmMemory *m, XapiError **err)
{
    if (m->static_min <= m->dynamic_min && m->dynamic_min <= m->dynamic_max &&
        m->dynamic_max <= m->static_max)
        return 0;
    return xapi_error_set(err, "MEMORY_CONSTRAINT_VIOLATION_ORDER", NULL);
}

int64_t vm_memory_overhead(int64_t static_max, int64_t vcpus_max)
{
    int64_t base = 32 * MiB, vga = 16 * MiB, per_vcpu = 1 * MiB;
    /* page tables and dirty tracking: 1/512 of the RAM, in whole MiB */
    int64_t tracking = (static_max / 512 + MiB - 1) / MiB * MiB;
    return base + vga + per_vcpu * MAX(vcpus_max, 1) + tracking;
}

#define VCPU_RULE "VCPU values must satisfy: 0 < VCPUs_at_startup ≤ VCPUs_max"

int vm_vcpus_check(int64_t at_startup, int64_t max, int64_t value, XapiError **err)
{
    if (at_startup >= 1 && at_startup <= max)
        return 0;
    char text[32];
    g_snprintf(text, sizeof text, "%" G_GINT64_FORMAT, value);
    return xapi_error_set(err, "INVALID_VALUE", VCPU_RULE, text, NULL);
}

/* ---- VM.start ------------------------------------------------------------ */

/* XAPI's validate_vcpus, with its field spellings. */
static int check_vcpus(const Xv *record, XapiError **err)
{
    int64_t max = int_field(record, "VCPUs_max"), at_startup = int_field(record, "VCPUs_at_startup");
    char text[32];
    if (max < 1) {
        g_snprintf(text, sizeof text, "%" G_GINT64_FORMAT, max);
        return xapi_error_set(err, "INVALID_VALUE", "VCPUs_max", text, NULL);
    }
    g_snprintf(text, sizeof text, "%" G_GINT64_FORMAT, at_startup);
    if (at_startup < 1)
        return xapi_error_set(err, "INVALID_VALUE", "VCPUs-at-startup", text, NULL);
    if (at_startup > max)
        return xapi_error_set(err, "VALUE_NOT_SUPPORTED", "VCPUs-at-startup", text,
                              "value greater than VCPUs-max", NULL);
    return 0;
}

/* XAPI's validate_memory: constraints that its transform cannot make
 * valid (a maximum below its minimum). */
static int check_memory(const Xv *record, XapiError **err)
{
    VmMemory m = vm_memory_of(record);
    if (m.static_max < m.static_min || m.dynamic_max < m.dynamic_min)
        return xapi_error_set(err, "MEMORY_CONSTRAINT_VIOLATION", NULL);
    return 0;
}

/* XAPI's validate_actions_after_crash, but for coredump_*: XAPI writes
 * dumps of PV domains only, QEMU of every domain (vm_crashdump.c checks
 * what a dump needs). */
static int check_actions_after_crash(const Xv *record, XapiError **err)
{
    const char *action = str_field(record, "actions_after_crash");
    const char *field = "VM.actions_after_crash";
    if (strcmp(action, "rename_restart") == 0)
        return xapi_error_set(err, "VALUE_NOT_SUPPORTED", field, action,
                              "option would leak a domain; VMs and not domains are managed "
                              "by this API", NULL);
    return 0;
}

/* bios_strings and platform keys, as the driver in use would give them. */
static int check_platform(const Xv *record, XapiError **err)
{
    const HvDriver *driver = xenops_driver();
    return qemu_platform_check(record, driver ? driver->accel : "tcg", err);
}

static int check_vendor_device(const Xv *record, XapiError **err)
{
    const Xv *v = xv_struct_get(record, "has_vendor_device");
    if (v && v->kind == XV_BOOL && v->b)
        return xapi_error_set(err, "VALUE_NOT_SUPPORTED", "has_vendor_device", "true",
                              "the XenServer vendor device is a Xen platform device", NULL);
    return 0;
}

/* UEFI is OVMF (Debian's ovmf package) with the VM's variable store. */
static int check_firmware(const Xv *record, XapiError **err)
{
    const Xv *params = xv_struct_get(record, "HVM_boot_params");
    const Xv *firmware = params ? xv_struct_get(params, "firmware") : NULL;
    if (!firmware || !*xv_str(firmware) || strcmp(xv_str(firmware), "bios") == 0)
        return 0;
    if (strcmp(xv_str(firmware), "uefi") != 0)
        return xapi_error_set(err, "INVALID_VALUE", "HVM_boot_params:firmware",
                              xv_str(firmware), NULL);
    if (!g_file_test(OVMF_CODE, G_FILE_TEST_EXISTS) || !g_file_test(OVMF_VARS, G_FILE_TEST_EXISTS))
        return xapi_error_set(err, "VALUE_NOT_SUPPORTED", "HVM_boot_params:firmware", "uefi",
                              "OVMF is not installed on this host (Debian package ovmf)", NULL);
    return 0;
}

/* A PV-style domain is its kernel booted directly here: PV_kernel, or
 * with PV_bootloader "pygrub" the default kernel of the guest's disk
 * (vm_bootloader.c), which wins over PV_kernel as in XAPI. A VM of
 * unspecified type boots PV in XAPI when HVM_boot_policy is empty. */
static int check_domain_type(const Xv *record, XapiError **err)
{
    const char *type = str_field(record, "domain_type");
    const char *bootloader = str_field(record, "PV_bootloader");
    bool pv = strcmp(type, "pv") == 0 || strcmp(type, "pvh") == 0 ||
              strcmp(type, "pv_in_pvh") == 0;
    /* an unspecified one without a policy boots its BIOS order here,
     * unless it names a bootloader, which would then go unheard */
    bool pv_by_policy = (!*type || strcmp(type, "unspecified") == 0) &&
                        !*str_field(record, "HVM_boot_policy") && *bootloader;
    if (!(pv || pv_by_policy))
        return 0;
    if (*bootloader && strcmp(bootloader, "pygrub") != 0)
        return xapi_error_set(err, "VALUE_NOT_SUPPORTED", "PV_bootloader", bootloader,
                              "the bootloader here is pygrub (a kernel read out of the "
                              "guest's disk); or set PV_kernel and an empty PV_bootloader",
                              NULL);
    const char *bootloader_args = str_field(record, "PV_bootloader_args");
    if (*bootloader && *bootloader_args)
        return xapi_error_set(err, "VALUE_NOT_SUPPORTED", "PV_bootloader_args", bootloader_args,
                              "pygrub boots its configuration's default entry and takes no "
                              "options here", NULL);
    if (*bootloader || *str_field(record, "PV_kernel"))
        return 0;
    return xapi_error_set(err, "VALUE_NOT_SUPPORTED", "domain_type", *type ? type : "pv",
                          "a PV domain boots its PV_kernel directly here, and PV_kernel is "
                          "empty", NULL);
}

/* XAPI's mask: the host CPUs the vCPUs may run on, "0,2,3". */
bool vm_fields_parse_mask(const char *mask, int64_t ncpus, GArray *cpus)
{
    g_auto(GStrv) parts = g_strsplit(mask, ",", -1);
    for (char **p = parts; *p; p++) {
        g_strstrip(*p);
        char *end;
        gint64 cpu = g_ascii_strtoll(*p, &end, 10);
        if (!**p || *end || cpu < 0 || cpu >= ncpus)
            return false;
        if (cpus) {
            int c = (int)cpu;
            g_array_append_val(cpus, c);
        }
    }
    return parts[0] != NULL;
}

static int check_vcpus_params(const Xv *record, XapiError **err)
{
    const Xv *params = xv_struct_get(record, "VCPUs_params");
    const Xv *mask = params ? xv_struct_get(params, "mask") : NULL;
    if (mask && *xv_str(mask) && !vm_fields_parse_mask(xv_str(mask), g_get_num_processors(), NULL))
        return xapi_error_set(err, "INVALID_VALUE", "VCPUs_params:mask", xv_str(mask), NULL);
    const Xv *weight = params ? xv_struct_get(params, "weight") : NULL;
    const Xv *cap = params ? xv_struct_get(params, "cap") : NULL;
    return cpu_cgroup_check(weight ? xv_str(weight) : NULL, cap ? xv_str(cap) : NULL,
                            int_field(record, "VCPUs_max"), err);
}

static int check_nothing(const Xv *record, XapiError **err)
{
    (void)record, (void)err;
    return 0;
}

static const struct {
    const char *fields;  /* as docs/compat.md names them */
    const char *meaning; /* what the QEMU driver does with them */
    int (*check)(const Xv *record, XapiError **err);
} start_checks[] = {
    {"`VCPUs_max`, `VCPUs_at_startup`",
     "honoured: `-smp VCPUs_at_startup,maxcpus=VCPUs_max`; XAPI's checks (`INVALID_VALUE`, "
     "`VALUE_NOT_SUPPORTED` when at_startup > max); `VCPUs_max` above the host's CPUs is "
     "`HOST_NOT_ENOUGH_PCPUS` unless `platform:vcpu-unrestricted` is true", check_vcpus},
    {"`VCPUs_params`",
     "`mask` honoured: every vCPU thread (also hot-plugged ones, also after a restart of xapid: "
     "the mask is kept in the domain's directory) is pinned to those host CPUs "
     "(`sched_setaffinity`; a CPU the host lacks is `INVALID_VALUE`); `weight` (1..65535, "
     "Xen's credit weight, 256 the default) and `cap` (percent of one host CPU, 0..100 per "
     "vCPU, 0 no cap) honoured at VM.start through a cgroup of the domain's own, "
     "`xapid/<uuid>`: cgroup v2's `cpu.weight` (weight x 100 / 256) and `cpu.max`, or where "
     "the unified hierarchy has no cpu controller cgroup v1's `cpu.shares` (weight x 4) and "
     "`cpu.cfs_quota_us` over a 100 ms period (`INVALID_VALUE` out of range, "
     "`VALUE_NOT_SUPPORTED` on a host with neither); "
     "`set_VCPUs_number_live` hot-plugs vCPUs up to `VCPUs_max` (QMP `device_add`) and "
     "unplugs hot-plugged ones (the booted ones stay; a domain with hot-plugged vCPUs is not "
     "saved: `OPERATION_NOT_ALLOWED`)", check_vcpus_params},
    {"`memory_static_max`, `memory_static_min`, `memory_dynamic_min/max`, `memory_target`",
     "honoured: `memory_static_max` is the machine's RAM (`-m`; no memory hot-plug, so it "
     "changes only while halted, as XAPI's static range does); every domain has a "
     "virtio-balloon, set to `memory_dynamic_max` at the start when that is below "
     "`memory_static_max` (0, VM.create's value when left out, means no range); "
     "`VM.set_memory_dynamic_range` on a running VM moves the balloon to the new maximum and "
     "`set_memory_target_live` to a target inside the range (QMP `balloon`; `memory_target` "
     "records it), `wait_memory_target_live` waits for the guest (QMP `query-balloon`); "
     "there is no squeezer, so a running guest is never ballooned below its target to make "
     "room; a maximum below its minimum is `MEMORY_CONSTRAINT_VIOLATION`. VM.start admits a "
     "VM when `memory_static_max` plus its overhead (`VM.compute_memory_overhead`, recorded "
     "in `memory_overhead`) fits the host's free memory, else `HOST_NOT_ENOUGH_FREE_MEMORY`",
     check_memory},
    {"`actions_after_crash`",
     "`destroy`, `restart`, `preserve` honoured; `coredump_and_destroy` and "
     "`coredump_and_restart` honoured for every domain (XAPI dumps PV domains only): the "
     "crashed guest's memory (QMP `dump-guest-memory`, an ELF core for the crash utility or "
     "gdb) becomes a VDI of type `crashdump` (a raw file) in this host's `crash_dump_sr`, "
     "else the pool's `crash_dump_SR`, with a `crashdump` record naming the VM and the VDI "
     "(`crashdump.destroy` removes both; VM.destroy removes the records, the VDIs stay, as "
     "XAPI's GC does); VM.start refuses them without a crash dump SR (`VM_NO_CRASHDUMP_SR`); "
     "a guest crash is seen through the `pvpanic` device; `rename_restart` refused "
     "(`VALUE_NOT_SUPPORTED`, XAPI's words)", check_actions_after_crash},
    {"`domain_type`, `HVM_boot_policy`, `PV_bootloader`",
     "every domain is a QEMU PC; `pv`, `pvh` and `pv_in_pvh` (and `unspecified` with an "
     "empty `HVM_boot_policy`, which XAPI boots PV) boot a kernel directly (`-kernel`, "
     "`-initrd`, `-append`): with `PV_bootloader` `pygrub` (which wins over `PV_kernel`, as "
     "in XAPI) the default entry of the bootable disk's `grub.cfg` (`set default` as an "
     "index, `N>M`, a title or an id; else the first entry), `menu.lst` or "
     "`extlinux.conf`/`syslinux.cfg`, read at every boot without mounting anything (a qcow2 "
     "disk is first copied to a sparse raw file by `qemu-img convert`; MBR primary or GPT "
     "partitions, or a whole-disk filesystem; ext2/3/4 through e2fsprogs' `debugfs`, FAT "
     "through mtools' `mcopy`) into `STATE_DIR/bootloader/UUID`, removed once QEMU holds "
     "the files (and at the next start if a crash left it); its arguments are the entry's "
     "then `PV_args`; a guest's reboot resets the domain in place with the same kernel (XAPI "
     "runs pygrub again: here a kernel the guest installed is read at the next VM.start), a "
     "migration's destination reads the disk again; nothing bootable is `BOOTLOADER_FAILED` "
     "[vm, why]; the bootable disk "
     "is the first Disk VBD in boot order (`bootable` first), never a CD; no script in the "
     "configuration is run, no variable expanded; other bootloaders (`eliloader`) and any "
     "`PV_bootloader_args` are `VALUE_NOT_SUPPORTED`; without a bootloader `PV_kernel` "
     "(`VALUE_NOT_SUPPORTED` naming `domain_type` when empty); `hvm` and `unspecified` boot "
     "from `HVM_boot_params:order`, or from `PV_kernel` when set",
     check_domain_type},
    {"`platform`, `bios_strings`",
     "as the next sections say: each key XAPI gives a meaning is given to QEMU or refused "
     "(`VALUE_NOT_SUPPORTED` naming `platform:KEY`); `bios_strings` are SMBIOS tables",
     check_platform},
    {"`has_vendor_device`", "refused when true (`VALUE_NOT_SUPPORTED`)", check_vendor_device},
    {"`suspend_VDI` (`VM.set_suspend_VDI`)",
     "a suspended VM's image may be replaced by another VDI whose contents are identical, as "
     "XAPI checks: the MD5 of both virtual disks (read through qemu-nbd), else "
     "`SUSPEND_VDI_REPLACEMENT_IS_NOT_IDENTICAL` [`uuid : md5` of each]; the resume then "
     "loads the new one", check_nothing},
    {"`xenstore_data`", "fw_cfg files `opt/xenstore/KEY` (see the platform section)",
     check_nothing},
    {"`affinity`",
     "honoured as XAPI's placement hint: in a pool, VM.start on the master goes to that host "
     "while it is live, enabled and sees the VM's disks; an empty or null ref is no affinity",
     check_nothing},
    {"VBDs: `type`, `qos_algorithm_type`",
     "`Disk` virtio-blk, `CD` IDE (AHCI on a Secure Boot VM's q35), `Floppy` the PC's "
     "floppy drives A: and B: (a third is `INVALID_DEVICE`; not hot-plugged: `VBD.plug` is "
     "`OPERATION_NOT_ALLOWED`; on a Secure Boot VM `VALUE_NOT_SUPPORTED` [`VBD:type`, "
     "`Floppy`, why] at VM.start: q35 has no floppy controller); `qos_algorithm_type` "
     "`ionice` honoured as XAPI's: `qos_algorithm_params` `sched` (`real-time`/`rt`, "
     "`best-effort` the default, `idle`) and `class` (`highest` 0, `high` 2, `normal` 4 the "
     "default, `low` 6, `lowest` 7, or 0..7) become the Linux I/O priority (`ioprio_set`) of "
     "every thread of the VM's QEMU at start and at a hot-plug (where XAPI sets its "
     "backend's); one QEMU serves all of a VM's disks, so disks whose ionice differ are "
     "`VALUE_NOT_SUPPORTED` (at VM.start and VBD.plug); a bad `sched` or `class` is "
     "`INVALID_VALUE`; the kernel's I/O scheduler decides what the priority does (BFQ and "
     "mq-deadline honour it, `none` does not). `ratelimit` (xapid's, named after XAPI's VIF "
     "QoS; XAPI's VBDs have no rate limit): `qos_algorithm_params` `kbps` (KiB/s) and/or "
     "`iops`, totals of reads and writes, and `group` (letters, digits, `-`, `_`): a VM's "
     "disks naming one group share its limits (QEMU's throttle groups, "
     "`block_set_io_throttle`), by default each disk has its own; at start and hot-plug; "
     "`INVALID_VALUE` for a bad or missing number, `VALUE_NOT_SUPPORTED` on a CD or floppy. "
     "Any other type is `VALUE_NOT_SUPPORTED`", check_nothing},
    {"`guest_metrics` (VM_guest_metrics)",
     "filled from the QEMU guest agent: every domain has a virtio-serial port "
     "`org.qemu.guest_agent.0`; every 3 s xapid asks the agent (QGA `guest-info`, "
     "`guest-get-osinfo`, `guest-network-get-interfaces`) and records `os_version` (name, "
     "uname, distro, major, minor), `PV_drivers_version` (the agent's version), `networks` "
     "(`D/ip`, `D/ipv4/K`, `D/ipv6/K` for the VIF with device D, matched by MAC), "
     "`PV_drivers_detected`, `live`, `last_updated` when they change; the record goes when "
     "the domain ends (a reboot's new domain is heard again); a guest without an agent has "
     "none. `VM.clean_shutdown`, `clean_reboot` and `shutdown` ask a guest whose agent was "
     "heard (`PV_drivers_detected`) with QGA `guest-shutdown` (mode `powerdown`; a reboot is "
     "a power-off then a fresh boot, as with the power button), as XAPI asks through PV "
     "tools; when the agent does not answer within 3 s or reports an error, xapid presses "
     "the ACPI power button instead. `memory` stays empty (its getter is removed), as in XAPI "
     "(\"use the memory and "
     "memory_internal_free RRD data-sources\"): the VM's `memory_internal_free` source (KiB) "
     "is what the guest's balloon driver reports available (virtio-balloon statistics every "
     "5 s: QOM `guest-stats`, MemAvailable, else MemFree), next to `memory` (what the balloon "
     "leaves the guest, also `VM_metrics.memory_actual`)", check_nothing},
    {"`force` of VM.start and VM.resume",
     "accepted: XAPI's force skips the check of the host CPU against the VM's last boot, "
     "which xapid does not make", check_nothing},
    {"`HVM_boot_params:firmware`, `NVRAM`",
     "`bios` or unset: SeaBIOS; `uefi`: OVMF (`" OVMF_CODE "`, read-only pflash) with the "
     "VM's own variable store (second pflash), written at each start from "
     "`NVRAM:EFI-variables` (base64 of OVMF's store; OVMF's empty store when unset) and "
     "copied back there whenever the domain ends; refused (`VALUE_NOT_SUPPORTED`) without "
     "the ovmf package; other values `INVALID_VALUE`. With `platform:secureboot` (see the "
     "platform keys) the firmware is `" OVMF_SECBOOT_CODE "` on a q35 machine with SMM and "
     "the store starts as `" OVMF_SECBOOT_VARS "` (Microsoft's keys); a store of the other "
     "build's size is `INVALID_VALUE` (remove `NVRAM:EFI-variables` to start afresh)",
     check_firmware},
};

int vm_fields_check_start(const Xv *record, XapiError **err)
{
    for (size_t i = 0; i < G_N_ELEMENTS(start_checks); i++)
        if (start_checks[i].check(record, err) < 0)
            return -1;
    return 0;
}

void vm_fields_markdown(GString *out)
{
    g_string_append(out, "## VM fields at VM.start\n\n"
                         "Checked by VM.start and VM.assert_can_boot_here before the "
                         "domain is made (`src/xenops/vm_fields.c`); a field the driver "
                         "would not honour is refused, never ignored.\n\n"
                         "| Fields | At VM.start |\n|---|---|\n");
    for (size_t i = 0; i < G_N_ELEMENTS(start_checks); i++)
        g_string_append_printf(out, "| %s | %s |\n", start_checks[i].fields,
                               start_checks[i].meaning);
    g_string_append(out, "\n");
    qemu_platform_markdown(out);
}
