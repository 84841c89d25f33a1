/* qemu_platform.c: platform keys and bios_strings as QEMU options.
 *
 * One table names every platform key XAPI (xenopsd) gives a meaning, with
 * what QEMU gets for it; a key QEMU cannot express is refused at VM.start
 * with its name, never dropped. bios_strings become SMBIOS tables (types
 * 0, 1, 2, 3 and 11), which SeaBIOS and OVMF hand to the guest as QEMU
 * builds them; xenstore_data fw_cfg files under opt/xenstore/. */
#include "qemu_platform.h"

#include <string.h>

#include "qemu_cmdline.h"
#include "vm_nvram.h"

void qemu_platform_clear(QemuPlatform *p)
{
    if (p->machine)
        g_string_free(p->machine, TRUE);
    if (p->cpu)
        g_string_free(p->cpu, TRUE);
    g_free(p->vga);
    if (p->args)
        g_ptr_array_free(p->args, TRUE);
    memset(p, 0, sizeof *p);
}

typedef struct {
    const char *key;
    const char *value;
    const char *accel;
    int64_t vcpus_max;
    int64_t now;
    bool viridian; /* platform:viridian is true */
    bool uefi;     /* HVM_boot_params:firmware is uefi */
    bool q35;      /* the domain is a q35 machine (Secure Boot) */
    QemuPlatform *out;
} Ctx;

static int invalid(const Ctx *c, XapiError **err)
{
    g_autofree char *field = g_strdup_printf("platform:%s", c->key);
    return xapi_error_set(err, "INVALID_VALUE", field, c->value, NULL);
}

static int unsupported(const Ctx *c, const char *why, XapiError **err)
{
    g_autofree char *field = g_strdup_printf("platform:%s", c->key);
    return xapi_error_set(err, "VALUE_NOT_SUPPORTED", field, c->value, why, NULL);
}

/* xenopsd's booleans: "true"/"1" and "false"/"0". 1, 0, or -1 (error set). */
static int boolean(const Ctx *c, XapiError **err)
{
    if (strcmp(c->value, "true") == 0 || strcmp(c->value, "1") == 0)
        return 1;
    if (strcmp(c->value, "false") == 0 || strcmp(c->value, "0") == 0)
        return 0;
    invalid(c, err);
    return -1;
}

static bool integer(const char *text, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    gint64 v = g_ascii_strtoll(text, &end, 10);
    if (!*text || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static int machine_off_when_false(const Ctx *c, const char *option, XapiError **err)
{
    int on = boolean(c, err);
    if (on == 0)
        g_string_append_printf(c->out->machine, ",%s=off", option);
    return on < 0 ? -1 : 0;
}

static int cpu_flag_off_when_false(const Ctx *c, const char *flag, XapiError **err)
{
    int on = boolean(c, err);
    if (on == 0)
        g_string_append_printf(c->out->cpu, ",-%s", flag);
    return on < 0 ? -1 : 0;
}

static int do_acpi(const Ctx *c, XapiError **err) { return machine_off_when_false(c, "acpi", err); }
static int do_hpet(const Ctx *c, XapiError **err) { return machine_off_when_false(c, "hpet", err); }
static int do_apic(const Ctx *c, XapiError **err) { return cpu_flag_off_when_false(c, "apic", err); }
static int do_pae(const Ctx *c, XapiError **err) { return cpu_flag_off_when_false(c, "pae", err); }
static int do_nx(const Ctx *c, XapiError **err) { return cpu_flag_off_when_false(c, "nx", err); }

static int do_usb(const Ctx *c, XapiError **err)
{
    int on = boolean(c, err);
    if (on >= 0)
        g_string_append_printf(c->out->machine, ",usb=%s", on ? "on" : "off");
    return on < 0 ? -1 : 0;
}

/* The tablet needs the USB controller, which platform:usb=true adds. */
static int do_usb_tablet(const Ctx *c, XapiError **err)
{
    int on = boolean(c, err);
    if (on == 1) {
        g_ptr_array_add(c->out->args, g_strdup("-device"));
        g_ptr_array_add(c->out->args, g_strdup("usb-tablet,bus=usb-bus.0"));
    }
    return on < 0 ? -1 : 0;
}

static int do_vga(const Ctx *c, XapiError **err)
{
    if (strcmp(c->value, "std") && strcmp(c->value, "cirrus"))
        return unsupported(c, "QEMU's adapters here are std and cirrus", err);
    g_free(c->out->vga);
    c->out->vga = g_strdup(c->value);
    return 0;
}

/* In MiB, as xenopsd takes it; the adapter's own memory. */
static int do_videoram(const Ctx *c, XapiError **err)
{
    int64_t mib;
    if (!integer(c->value, 1, 256, &mib))
        return invalid(c, err);
    /* platform:vga comes first in the table: the adapter is known */
    const char *device = strcmp(c->out->vga, "cirrus") == 0 ? "cirrus-vga" : "VGA";
    g_ptr_array_add(c->out->args, g_strdup("-global"));
    g_ptr_array_add(c->out->args,
                    g_strdup_printf("%s.vgamem_mb=%" G_GINT64_FORMAT, device, mib));
    return 0;
}

/* Seconds the guest's RTC runs ahead of UTC: the RTC starts at now+offset
 * and keeps that distance (a saved state carries the RTC with it). */
static int do_timeoffset(const Ctx *c, XapiError **err)
{
    int64_t offset;
    if (!integer(c->value, -G_GINT64_CONSTANT(100) * 365 * 86400,
                 G_GINT64_CONSTANT(100) * 365 * 86400, &offset))
        return invalid(c, err);
    if (offset == 0)
        return 0;
    g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc(c->now + offset);
    if (!t)
        return invalid(c, err);
    g_autofree char *base = g_date_time_format(t, "%Y-%m-%dT%H:%M:%S");
    g_ptr_array_add(c->out->args, g_strdup("-rtc"));
    g_ptr_array_add(c->out->args, g_strdup_printf("base=%s", base));
    return 0;
}

static int do_acpi_sleep(const Ctx *c, const char *state, XapiError **err)
{
    int on = boolean(c, err);
    if (on < 0)
        return -1;
    g_ptr_array_add(c->out->args, g_strdup("-global"));
    g_ptr_array_add(c->out->args, g_strdup_printf("%s.disable_%s=%d",
                                                  c->q35 ? "ICH9-LPC" : "PIIX4_PM", state, !on));
    return 0;
}
static int do_acpi_s3(const Ctx *c, XapiError **err) { return do_acpi_sleep(c, "s3", err); }
static int do_acpi_s4(const Ctx *c, XapiError **err) { return do_acpi_sleep(c, "s4", err); }

/* XAPI's validate_platform: a divisor of VCPUs_max. */
static int do_cores_per_socket(const Ctx *c, XapiError **err)
{
    int64_t cores;
    if (!integer(c->value, 1, 4096, &cores) || c->vcpus_max % cores)
        return invalid(c, err);
    c->out->cores_per_socket = cores;
    return 0;
}

/* Hyper-V enlightenments are KVM's: TCG has no Hyper-V CPUID leaves. The
 * base set is what XAPI's viridian=true gives a guest (relaxed timing,
 * APIC assist, spinlock retries, vCPU index, run time, reference time). */
#define VIRIDIAN_BASE ",hv-relaxed=on,hv-vapic=on,hv-spinlocks=0x1fff,hv-vpindex=on," \
                      "hv-runtime=on,hv-time=on"

static int do_viridian(const Ctx *c, XapiError **err)
{
    int on = boolean(c, err);
    if (on == 1 && strcmp(c->accel, "kvm") != 0)
        return unsupported(c, "Hyper-V enlightenments need KVM; this host runs guests under TCG",
                           err);
    if (on == 1)
        g_string_append(c->out->cpu, VIRIDIAN_BASE);
    return on < 0 ? -1 : 0;
}

/* viridian_* add one enlightenment to the base set (XAPI's own defaults
 * for them are in the base already). */
static int viridian_extra(const Ctx *c, const char *flags, XapiError **err)
{
    int on = boolean(c, err);
    if (on != 1)
        return on < 0 ? -1 : 0;
    if (!c->viridian)
        return unsupported(c, "needs platform:viridian=true", err);
    g_string_append(c->out->cpu, flags);
    return 0;
}
static int do_viridian_time(const Ctx *c, XapiError **err) { return viridian_extra(c, "", err); }
static int do_viridian_tlb(const Ctx *c, XapiError **err)
{
    return viridian_extra(c, ",hv-tlbflush=on", err);
}
static int do_viridian_crash(const Ctx *c, XapiError **err)
{
    return viridian_extra(c, ",hv-crash=on", err);
}
static int do_viridian_stimer(const Ctx *c, XapiError **err)
{
    return viridian_extra(c, ",hv-synic=on,hv-stimer=on", err);
}

static int do_device_model(const Ctx *c, XapiError **err)
{
    if (g_str_has_prefix(c->value, "qemu-upstream"))
        return 0;
    return unsupported(c, "domains are upstream QEMU (qemu-upstream-compat)", err);
}

/* Keys honoured elsewhere (vm_nics.c, vm_lifecycle.c) or in their default. */
static int do_nothing(const Ctx *c, XapiError **err) { (void)c, (void)err; return 0; }

static int do_false_only(const Ctx *c, XapiError **err)
{
    int on = boolean(c, err);
    if (on == 1)
        return unsupported(c, "not offered by xapid's QEMU domains", err);
    return on < 0 ? -1 : 0;
}

/* Debian's OVMF enforces Secure Boot with its keys out of the guest's
 * reach only in the build that requires SMM (OVMF_CODE_4M.secboot.fd),
 * and OVMF's SMM needs the q35 machine's TSEG: such a domain is a q35
 * machine (qemu_cmdline.c) with Microsoft's keys in its store
 * (vm_nvram.c). XAPI's "auto" is Secure Boot where the pool has
 * certificates: here where the host has the enrolled store. */
static int do_secureboot(const Ctx *c, XapiError **err)
{
    if (strcmp(c->value, "auto") == 0)
        return 0;
    int on = boolean(c, err);
    if (on != 1)
        return on;
    if (!c->uefi)
        return xapi_error_set(err, "INVALID_VALUE", "platform:secureboot", c->value,
                              "Secure Boot is not supported with BIOS firmware "
                              "(HVM_boot_params:firmware is not uefi)", NULL);
    if (!vm_nvram_secureboot_available())
        return unsupported(c, "this host lacks OVMF's Secure Boot build and its enrolled "
                              "store (" OVMF_SECBOOT_CODE ", " OVMF_SECBOOT_VARS
                              "; Debian package ovmf)", err);
    return 0;
}

/* XAPI's vTPM is a VTPM object: true gives a VM without one a VTPM at
 * VM.start (vm_vtpm.c), as XAPI's start does; the VTPM is what QEMU is
 * given. */
static int do_vtpm(const Ctx *c, XapiError **err) { return boolean(c, err) < 0 ? -1 : 0; }

static int do_tsc_mode(const Ctx *c, XapiError **err)
{
    if (strcmp(c->value, "0") == 0 || strcmp(c->value, "default") == 0)
        return 0;
    return unsupported(c, "QEMU's TSC follows the host's (tsc_mode 0)", err);
}

static int do_parallel(const Ctx *c, XapiError **err)
{
    if (!*c->value || strcmp(c->value, "none") == 0)
        return 0;
    return unsupported(c, "domains have no parallel port", err);
}

static int do_hvm_serial(const Ctx *c, XapiError **err)
{
    if (strcmp(c->value, "pty") == 0)
        return 0; /* the serial port is the vt100 console */
    return unsupported(c, "the serial port is the VM's vt100 console (pty)", err);
}

static int do_device_id(const Ctx *c, XapiError **err)
{
    return unsupported(c, "domains have no Xen platform PCI device", err);
}

static const struct {
    const char *key;
    int (*apply)(const Ctx *c, XapiError **err);
    const char *meaning; /* for docs/compat.md */
} keys[] = {
    {"acpi", do_acpi, "false/0: `-machine acpi=off`"},
    {"apic", do_apic, "false/0: `-cpu …,-apic`"},
    {"pae", do_pae, "false/0: `-cpu …,-pae`"},
    {"nx", do_nx, "false/0: `-cpu …,-nx`"},
    {"hpet", do_hpet, "false/0: `-machine hpet=off`"},
    {"acpi_s3", do_acpi_s3, "`-global PIIX4_PM.disable_s3=0/1` (q35: `ICH9-LPC`)"},
    {"acpi_s4", do_acpi_s4, "`-global PIIX4_PM.disable_s4=0/1` (q35: `ICH9-LPC`)"},
    {"usb", do_usb, "`-machine usb=on/off`"},
    {"usb_tablet", do_usb_tablet, "true: `-device usb-tablet` (with usb=true)"},
    {"vga", do_vga, "`std` or `cirrus` (`-vga`); others refused"},
    {"videoram", do_videoram, "MiB 1-256: the adapter's `vgamem_mb`"},
    {"timeoffset", do_timeoffset, "seconds: `-rtc base=` now plus the offset"},
    {"cores-per-socket", do_cores_per_socket,
     "`-smp …,cores=N,sockets=VCPUs_max/N`; not a divisor of VCPUs_max: `INVALID_VALUE`"},
    {"viridian", do_viridian,
     "true: Hyper-V enlightenments `hv-relaxed,hv-vapic,hv-spinlocks,hv-vpindex,hv-runtime,"
     "hv-time` under KVM; refused under TCG"},
    {"viridian_time_ref_count", do_viridian_time, "in the base set (`hv-time`)"},
    {"viridian_reference_tsc", do_viridian_time, "in the base set (`hv-time`)"},
    {"viridian_hcall_remote_tlb_flush", do_viridian_tlb, "true: `hv-tlbflush`"},
    {"viridian_apic_assist", do_viridian_time, "in the base set (`hv-vapic`)"},
    {"viridian_crash_ctl", do_viridian_crash, "true: `hv-crash`"},
    {"viridian_stimer", do_viridian_stimer, "true: `hv-synic,hv-stimer`"},
    {"device-model", do_device_model, "`qemu-upstream*`; `qemu-trad` refused"},
    {"nic_type", do_nothing, "the NICs' model (e1000, rtl8139, virtio-net)"},
    {"vcpu-unrestricted", do_nothing, "VCPUs_max above the host's CPUs allowed"},
    {"secureboot", do_secureboot,
     "`true`/`1` under UEFI: Secure Boot (OVMF's SMM build `" OVMF_SECBOOT_CODE "` on a "
     "`q35,smm=on` machine with secure pflash, the VM's store first a copy of `"
     OVMF_SECBOOT_VARS "`, Microsoft's keys enrolled); `auto` on a UEFI VM: VM.start "
     "records `true` when this host has those files, else `false` (XAPI's rewrite, by the "
     "pool's certificates), on a BIOS VM it stays and means off; `true` on a BIOS VM "
     "`INVALID_VALUE`. A Secure Boot VM's devices "
     "are on q35's `pcie.0` (no hot-plug: `VBD.plug`/`VIF.plug` while running are "
     "`OPERATION_NOT_ALLOWED`), its CDs on the AHCI controller, and it has no floppy "
     "drive (a Floppy VBD is refused at VM.start)"},
    {"nested-virt", do_false_only, "true refused"},
    {"exp-nested-hvm", do_false_only, "true refused"},
    {"vtpm", do_vtpm, "true: a VM without a VTPM gets one at VM.start (is_unique false), as "
                      "in XAPI; the VM's VTPM is a TPM 2.0 served by swtpm (see VTPM)"},
    {"igd_passthru", do_false_only, "true refused"},
    {"tsc_mode", do_tsc_mode, "`0`/`default` only"},
    {"parallel", do_parallel, "`none` only"},
    {"hvm_serial", do_hvm_serial, "`pty` only (the vt100 console)"},
    {"device_id", do_device_id, "refused: no Xen platform PCI device"},
};

/* ---- bios_strings ------------------------------------------------------- */

static const struct {
    const char *key;
    int type;
    const char *option;
} smbios_fields[] = {
    {"bios-vendor", 0, "vendor"},
    {"bios-version", 0, "version"},
    {"system-manufacturer", 1, "manufacturer"},
    {"system-product-name", 1, "product"},
    {"system-version", 1, "version"},
    {"system-serial-number", 1, "serial"},
    {"baseboard-manufacturer", 2, "manufacturer"},
    {"baseboard-product-name", 2, "product"},
    {"baseboard-version", 2, "version"},
    {"baseboard-serial-number", 2, "serial"},
    {"baseboard-asset-tag", 2, "asset"},
    {"baseboard-location-in-chassis", 2, "location"},
    {"enclosure-asset-tag", 3, "asset"},
};

/* oem-N: type 11 strings, in N's order. */
static int64_t oem_index(const char *key)
{
    int64_t n;
    return g_str_has_prefix(key, "oem-") && integer(key + 4, 1, 255, &n) ? n : 0;
}

static int smbios_options(const Xv *strings, QemuPlatform *out, XapiError **err)
{
    GString *types[4] = {NULL};
    const char *oem[256] = {NULL};
    int rc = 0;
    for (size_t i = 0; strings && i < xv_len(strings) && rc == 0; i++) {
        const XvMember *m = xv_member_at(strings, i);
        const char *value = xv_str(&m->value);
        if (!*value)
            continue; /* XAPI's generic empty strings: QEMU's own then */
        int64_t n = oem_index(m->key);
        if (n) {
            oem[n] = value;
            continue;
        }
        size_t f = 0;
        while (f < G_N_ELEMENTS(smbios_fields) && strcmp(smbios_fields[f].key, m->key))
            f++;
        if (f == G_N_ELEMENTS(smbios_fields)) {
            rc = xapi_error_set(err, "VALUE_NOT_SUPPORTED", "bios_strings", m->key,
                                "no SMBIOS field for it (hp-rombios is Xen's ROMBIOS)", NULL);
            break;
        }
        int t = smbios_fields[f].type;
        if (!types[t])
            types[t] = g_string_new(NULL);
        g_autofree char *escaped = qemu_escape_commas(value);
        g_string_append_printf(types[t], ",%s=%s", smbios_fields[f].option, escaped);
    }
    for (int t = 0; t < 4; t++) {
        if (types[t] && rc == 0) {
            g_ptr_array_add(out->args, g_strdup("-smbios"));
            g_ptr_array_add(out->args, g_strdup_printf("type=%d%s", t, types[t]->str));
        }
        if (types[t])
            g_string_free(types[t], TRUE);
    }
    GString *strings11 = g_string_new(NULL);
    for (size_t n = 1; n < G_N_ELEMENTS(oem); n++)
        if (oem[n]) {
            g_autofree char *escaped = qemu_escape_commas(oem[n]);
            g_string_append_printf(strings11, ",value=%s", escaped);
        }
    if (strings11->len && rc == 0) {
        g_ptr_array_add(out->args, g_strdup("-smbios"));
        g_ptr_array_add(out->args, g_strdup_printf("type=11%s", strings11->str));
    }
    g_string_free(strings11, TRUE);
    return rc;
}

/* ---- xenstore_data ------------------------------------------------------ */

/* Each key becomes the fw_cfg file opt/xenstore/KEY holding its value (the
 * guest reads /sys/firmware/qemu_fw_cfg/by_name/opt/xenstore/KEY/raw); fw_cfg
 * names are at most 55 bytes. */
#define FW_CFG_PREFIX "opt/xenstore/"
#define FW_CFG_NAME_MAX 55

static int xenstore_options(const Xv *data, QemuPlatform *out, XapiError **err)
{
    for (size_t i = 0; data && data->kind == XV_STRUCT && i < xv_len(data); i++) {
        const XvMember *m = xv_member_at(data, i);
        if (!*m->key || strlen(FW_CFG_PREFIX) + strlen(m->key) > FW_CFG_NAME_MAX ||
            m->key[0] == '/' || strstr(m->key, "//"))
            return xapi_error_set(err, "VALUE_NOT_SUPPORTED", "xenstore_data", m->key,
                                  "not a fw_cfg name (opt/xenstore/KEY in at most 55 bytes)",
                                  NULL);
        g_autofree char *key = qemu_escape_commas(m->key);
        g_autofree char *value = qemu_escape_commas(xv_str(&m->value));
        g_ptr_array_add(out->args, g_strdup("-fw_cfg"));
        /* QEMU takes no empty string=: an empty file then */
        g_ptr_array_add(out->args, *value ? g_strdup_printf("name=" FW_CFG_PREFIX "%s,string=%s",
                                                            key, value)
                                          : g_strdup_printf("name=" FW_CFG_PREFIX
                                                            "%s,file=/dev/null", key));
    }
    return 0;
}

static const char *map_value(const Xv *map, const char *key)
{
    const Xv *v = map ? xv_struct_get(map, key) : NULL;
    return v ? xv_str(v) : NULL;
}

int qemu_platform_options(const Xv *vm, const char *accel, int64_t now, QemuPlatform *out,
                          XapiError **err)
{
    out->machine = g_string_new(NULL);
    out->cpu = g_string_new(NULL);
    out->vga = g_strdup("std");
    out->args = g_ptr_array_new_with_free_func(g_free);
    out->cores_per_socket = 0;
    const Xv *platform = xv_struct_get(vm, "platform");
    if (platform && platform->kind != XV_STRUCT)
        platform = NULL;
    const Xv *vcpus = xv_struct_get(vm, "VCPUs_max");
    const char *viridian = map_value(platform, "viridian");
    Ctx c = {.accel = accel, .vcpus_max = vcpus && vcpus->kind == XV_INT ? vcpus->i : 1,
             .now = now, .out = out,
             .viridian = viridian && (!strcmp(viridian, "true") || !strcmp(viridian, "1")),
             .uefi = vm_nvram_uefi(vm), .q35 = vm_nvram_secureboot(vm)};
    if (c.vcpus_max < 1)
        c.vcpus_max = 1;
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        c.key = keys[i].key;
        c.value = map_value(platform, keys[i].key);
        if (c.value && keys[i].apply(&c, err) < 0)
            return -1;
    }
    if (smbios_options(xv_struct_get(vm, "bios_strings"), out, err) < 0)
        return -1;
    return xenstore_options(xv_struct_get(vm, "xenstore_data"), out, err);
}

int qemu_platform_check(const Xv *vm, const char *accel, XapiError **err)
{
    g_auto(QemuPlatform) p = {0};
    return qemu_platform_options(vm, accel, 0, &p, err);
}

void qemu_platform_markdown(GString *out)
{
    g_string_append(out, "## VM platform keys\n\n"
                         "Given to QEMU at VM.start (`src/xenops/qemu_platform.c`); a key "
                         "QEMU is not given is refused with `VALUE_NOT_SUPPORTED "
                         "[platform:KEY, value, why]`, a bad value is `INVALID_VALUE`. Keys "
                         "XAPI gives no meaning are ignored, as XAPI's xenopsd does.\n\n"
                         "| Key | QEMU |\n|---|---|\n");
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++)
        g_string_append_printf(out, "| `%s` | %s |\n", keys[i].key, keys[i].meaning);
    g_string_append(out, "\n`bios_strings` become SMBIOS tables: `bios-*` type 0, `system-*` "
                         "type 1, `baseboard-*` type 2, `enclosure-asset-tag` type 3, "
                         "`oem-N` type 11 strings; empty strings leave QEMU's own; "
                         "`hp-rombios` (Xen's ROMBIOS) is refused when not empty.\n\n"
                         "`xenstore_data` is given to the guest as fw_cfg files: key K with "
                         "value V is `-fw_cfg name=opt/xenstore/K,string=V`, which Linux shows "
                         "as `/sys/firmware/qemu_fw_cfg/by_name/opt/xenstore/K/raw` "
                         "(module qemu_fw_cfg); a key longer than fw_cfg's 55-byte names "
                         "allow is refused (`VALUE_NOT_SUPPORTED`). There is no xenstore: "
                         "the guest reads, it cannot write back.\n\n");
}
