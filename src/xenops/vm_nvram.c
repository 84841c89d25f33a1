/* vm_nvram.c: a UEFI VM's EFI variables between its NVRAM field and the
 * OVMF variable store QEMU writes (a pflash image per domain).
 *
 * The field is the truth, as in XAPI: each start writes the store from
 * it, and each end of the domain (halt, suspend, crash) copies the store
 * back. The store file stays until the next start overwrites it, so an
 * end seen only after a kill -9 of xapid (at the next start-up's
 * reconciliation) still finds what the firmware wrote. XAPI's varstored
 * keeps its own format under the same key; here it is OVMF's image. */
#include "vm_nvram.h"

#include <errno.h>
#include <string.h>

static char *nvram_dir;

int vm_nvram_init(const char *state_dir, XapiError **err)
{
    g_autofree char *cwd = g_get_current_dir();
    g_autofree char *dir = g_build_filename(state_dir ? state_dir : ".", "nvram", NULL);
    g_free(nvram_dir);
    nvram_dir = g_path_is_absolute(dir) ? g_strdup(dir) : g_build_filename(cwd, dir, NULL);
    /* QEMU writes the stores through the DAC override it keeps */
    if (g_mkdir_with_parents(nvram_dir, 0700) < 0)
        return xapi_error_internal(err, "cannot create %s: %s", nvram_dir, g_strerror(errno));
    return 0;
}

static bool params_uefi(const Xv *params)
{
    const Xv *firmware = params && params->kind == XV_STRUCT ? xv_struct_get(params, "firmware")
                                                             : NULL;
    return firmware && strcmp(xv_str(firmware), "uefi") == 0;
}

bool vm_nvram_uefi(const Xv *record)
{
    return params_uefi(xv_struct_get(record, "HVM_boot_params"));
}

bool vm_nvram_secureboot_available(void)
{
    return g_file_test(OVMF_SECBOOT_CODE, G_FILE_TEST_EXISTS) &&
           g_file_test(OVMF_SECBOOT_VARS, G_FILE_TEST_EXISTS);
}

static bool secureboot_of(const Xv *boot_params, const Xv *platform)
{
    if (!params_uefi(boot_params))
        return false;
    const Xv *v = platform && platform->kind == XV_STRUCT ? xv_struct_get(platform, "secureboot")
                                                          : NULL;
    const char *s = v ? xv_str(v) : "";
    if (strcmp(s, "auto") == 0)
        return vm_nvram_secureboot_available();
    return strcmp(s, "true") == 0 || strcmp(s, "1") == 0;
}

bool vm_nvram_secureboot(const Xv *record)
{
    return secureboot_of(xv_struct_get(record, "HVM_boot_params"),
                         xv_struct_get(record, "platform"));
}

bool vm_nvram_secureboot_row(const DbRow *vm)
{
    return secureboot_of(db_get(vm, "HVM_boot_params"), db_get(vm, "platform"));
}

int vm_nvram_check_hotplug(const DbRow *vm, XapiError **err)
{
    if (!vm_nvram_secureboot_row(vm))
        return 0;
    return xapi_error_set(err, "OPERATION_NOT_ALLOWED",
                          "a Secure Boot VM is a q35 machine whose devices are on its PCI "
                          "Express root bus, which has no hot-plug: change its devices while "
                          "it is halted", NULL);
}

const char *vm_nvram_code(const Xv *record)
{
    return vm_nvram_secureboot(record) ? OVMF_SECBOOT_CODE : OVMF_CODE;
}

const char *vm_nvram_template(const Xv *record)
{
    return vm_nvram_secureboot(record) ? OVMF_SECBOOT_VARS : OVMF_VARS;
}

char *vm_nvram_path(const char *uuid)
{
    g_autofree char *name = g_strconcat(uuid, ".fd", NULL);
    return g_build_filename(nvram_dir ? nvram_dir : ".", name, NULL);
}

int vm_nvram_prepare(const char *uuid, const Xv *record, XapiError **err)
{
    if (!vm_nvram_uefi(record))
        return 0;
    g_autofree char *template = NULL;
    gsize template_len = 0;
    g_autoptr(GError) error = NULL;
    const char *template_path = vm_nvram_template(record);
    if (!g_file_get_contents(template_path, &template, &template_len, &error))
        return xapi_error_internal(err, "cannot read %s: %s", template_path, error->message);
    const Xv *nvram = xv_struct_get(record, "NVRAM");
    const Xv *saved = nvram && nvram->kind == XV_STRUCT ? xv_struct_get(nvram, NVRAM_EFI_KEY)
                                                        : NULL;
    g_autofree guchar *decoded = NULL;
    gsize len = template_len;
    const void *data = template;
    if (saved && *xv_str(saved)) {
        decoded = g_base64_decode(xv_str(saved), &len);
        if (len != template_len)
            return xapi_error_set(err, "INVALID_VALUE", "NVRAM:" NVRAM_EFI_KEY,
                                  vm_nvram_secureboot(record)
                                      ? "not a store of the Secure Boot firmware (4 MiB "
                                        "flash): remove NVRAM:EFI-variables to start afresh"
                                      : "not an OVMF variable store of this host's size",
                                  NULL);
        data = decoded;
    }
    g_autofree char *path = vm_nvram_path(uuid);
    if (!g_file_set_contents(path, data, (gssize)len, &error))
        return xapi_error_internal(err, "cannot write %s: %s", path, error->message);
    return 0;
}

int vm_nvram_capture(DbRow *vm, XapiError **err)
{
    if (!params_uefi(db_get(vm, "HVM_boot_params")))
        return 0;
    g_autofree char *path = vm_nvram_path(xv_str(db_get(vm, "uuid")));
    g_autofree char *data = NULL;
    gsize len;
    if (!g_file_get_contents(path, &data, &len, NULL))
        return 0; /* never started under UEFI here */
    g_autoptr(Xv) nvram = xv_dup(db_get(vm, "NVRAM"));
    xv_struct_set(nvram, NVRAM_EFI_KEY, xv_new_string_take(g_base64_encode((guchar *)data, len)));
    return db_set_by_name(vm, "NVRAM", g_steal_pointer(&nvram), err);
}
