/* qemu_cmdline_test.c: VM records (golden/NAME.vm.json) give exactly the
 * QEMU arguments in golden/NAME.argv, one per line. A record member
 * "xapid_test_paused": true asks for a paused start, "xapid_test_resume_image"
 * a resume from a saved state. Set
 * XAPID_UPDATE_GOLDEN=1 to rewrite the expected files (then review them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "jsonrpc.h"
#include "qemu_cmdline.h"

static char *golden_path(const char *name)
{
    const char *root = g_getenv("SOURCE_ROOT");
    return g_build_filename(root ? root : ".", "src", "xenops", "golden", name, NULL);
}

static Xv *load_record(const char *name)
{
    g_autofree char *path = golden_path(name);
    g_autofree char *text = NULL;
    gsize len;
    if (!g_file_get_contents(path, &text, &len, NULL))
        fail_msg("missing %s", path);
    g_autofree char *why = NULL;
    Xv *record = jsonrpc_value_from_json(text, len, &why);
    if (!record)
        fail_msg("%s: %s", path, why);
    return record;
}

/* The images of each test disk as qemu_cmdline sees them: its own, then
 * one per format in its "backing" list; descriptors numbered from 50. */
static ImageChain *test_chains(const Xv *vm, const HvDisk *disks, size_t n)
{
    const Xv *list = xv_struct_get(vm, "xapid_test_disks");
    ImageChain *chains = g_new0(ImageChain, n + 1);
    int fd = 50;
    for (size_t i = 0; i < n; i++) {
        if (!disks[i].path)
            continue;
        const Xv *backing = xv_struct_get(xv_at(list, i), "backing");
        size_t layers = 1 + (backing ? xv_len(backing) : 0);
        chains[i].layers = g_new0(ImageLayer, layers);
        chains[i].n = layers;
        for (size_t l = 0; l < layers; l++) {
            ImageLayer *layer = &chains[i].layers[l];
            layer->format = g_strdup(l == 0 ? disks[i].format : xv_str(xv_at(backing, l - 1)));
            layer->fd_rw = l == 0 && !disks[i].read_only ? fd++ : -1;
            layer->fd_ro = fd++;
        }
    }
    return chains;
}

static void test_chains_free(ImageChain *chains, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t l = 0; l < chains[i].n; l++)
            g_free(chains[i].layers[l].format);
        g_free(chains[i].layers);
    }
    g_free(chains);
}

/* The record member "xapid_test_disks": [{slot, cdrom, path, format,
 * read_only, bootindex, backing, floppy (unit + 1, optional)}] stands for the VM's VBDs. */
static HvDisk *test_disks(const Xv *vm, size_t *n)
{
    const Xv *list = xv_struct_get(vm, "xapid_test_disks");
    *n = list ? xv_len(list) : 0;
    HvDisk *disks = g_new0(HvDisk, *n + 1);
    for (size_t i = 0; i < *n; i++) {
        const Xv *d = xv_at(list, i);
        const Xv *path = xv_struct_get(d, "path");
        disks[i].slot = (int)xv_struct_get(d, "slot")->i;
        disks[i].cdrom = xv_struct_get(d, "cdrom")->b;
        disks[i].path = path ? g_strdup(xv_str(path)) : NULL;
        disks[i].format = g_intern_string(xv_str(xv_struct_get(d, "format")));
        disks[i].read_only = xv_struct_get(d, "read_only")->b;
        disks[i].bootindex = (int)xv_struct_get(d, "bootindex")->i;
        const Xv *floppy = xv_struct_get(d, "floppy");
        disks[i].floppy = floppy ? (int)floppy->i : 0;
    }
    return disks;
}

/* "xapid_test_nics": [{device, mac, model, bootindex, mtu, switchable}] stands for the
 * VM's VIFs (their taps are fds QEMU_TAP_FD(i)). */
static HvNic *test_nics(const Xv *vm, size_t *n)
{
    const Xv *list = xv_struct_get(vm, "xapid_test_nics");
    *n = list ? xv_len(list) : 0;
    HvNic *nics = g_new0(HvNic, *n + 1);
    for (size_t i = 0; i < *n; i++) {
        const Xv *d = xv_at(list, i);
        nics[i].device = (int)xv_struct_get(d, "device")->i;
        nics[i].mac = g_strdup(xv_str(xv_struct_get(d, "mac")));
        nics[i].model = g_intern_string(xv_str(xv_struct_get(d, "model")));
        nics[i].bootindex = (int)xv_struct_get(d, "bootindex")->i;
        const Xv *mtu = xv_struct_get(d, "mtu");
        nics[i].mtu = mtu ? (int)mtu->i : 1500;
        const Xv *switchable = xv_struct_get(d, "switchable");
        nics[i].switchable = switchable && switchable->b;
    }
    return nics;
}

static const QemuHost host = {.binary = "qemu-system-x86_64", .accel = "tcg"};

static void test_goldens(void **state)
{
    static const char *const names[] = {"direct-kernel", "hvm-boot-order", "defaults", "disks",
                                        "resume", "nics", "nic-boot", "nics-switchable",
                                        "platform", "uefi", "floppy", "vtpm-uefi",
                                        "vtpm-bios", "secureboot"};
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autofree char *json = g_strdup_printf("%s.vm.json", names[i]);
        g_autoptr(Xv) vm = load_record(json);
        const Xv *paused = xv_struct_get(vm, "xapid_test_paused");
        const Xv *resume = xv_struct_get(vm, "xapid_test_resume_image");
        XapiError *err = NULL;
        size_t n_disks;
        HvDisk *disks = test_disks(vm, &n_disks);
        size_t n_nics;
        HvNic *nics = test_nics(vm, &n_nics);
        ImageChain *chains = test_chains(vm, disks, n_disks);
        QemuHost with_images = host;
        with_images.chains = chains;
        g_auto(GStrv) argv = qemu_cmdline(&with_images, "6f2e0f39-0000-4000-8000-000000000001",
                                          vm, disks, n_disks, nics, n_nics,
                                          resume ? xv_str(resume) : NULL, paused && paused->b,
                                          &err);
        test_chains_free(chains, n_disks);
        hv_disks_free(disks, n_disks);
        hv_nics_free(nics, n_nics);
        if (!argv)
            fail_msg("%s: %s", names[i], err->code);
        g_autofree char *joined = g_strjoinv("\n", argv);
        g_autofree char *actual = g_strconcat(joined, "\n", NULL);
        g_autofree char *argv_name = g_strdup_printf("%s.argv", names[i]);
        g_autofree char *path = golden_path(argv_name);
        if (g_getenv("XAPID_UPDATE_GOLDEN")) {
            g_file_set_contents(path, actual, -1, NULL);
            continue;
        }
        g_autofree char *expected = NULL;
        if (!g_file_get_contents(path, &expected, NULL, NULL))
            fail_msg("missing golden file %s", path);
        assert_string_equal(actual, expected);
    }
}

static void test_bad_boot_order_is_refused(void **state)
{
    g_autoptr(Xv) vm = load_record("hvm-boot-order.vm.json");
    Xv *params = xv_struct_get(vm, "HVM_boot_params");
    xv_struct_set_string(params, "order", "c,d");
    XapiError *err = NULL;
    char **argv = qemu_cmdline(&host, "u", vm, NULL, 0, NULL, 0, NULL, false, &err);
    assert_null(argv);
    assert_string_equal(err->code, "INVALID_VALUE");
    xapi_error_free(err);
}

/* q35's slot 0x1f is the ICH9's, and it has no floppy controller. */
static void test_secureboot_q35_limits(void **state)
{
    g_autoptr(Xv) vm = load_record("secureboot.vm.json");
    HvNic nic = {.device = 15, .mac = (char *)"02:00:00:00:00:01", .model = "e1000",
                 .bootindex = -1};
    XapiError *err = NULL;
    char **argv = qemu_cmdline(&host, "u", vm, NULL, 0, &nic, 1, NULL, false, &err);
    assert_null(argv);
    assert_string_equal(err->code, "INVALID_DEVICE");
    xapi_error_free(err);
    err = NULL;
    HvDisk floppy = {.slot = 0, .floppy = 1, .bootindex = -1};
    argv = qemu_cmdline(&host, "u", vm, &floppy, 1, NULL, 0, NULL, false, &err);
    assert_null(argv);
    assert_string_equal(err->code, "INVALID_DEVICE");
    xapi_error_free(err);
}

static void test_nic_device_out_of_range_is_refused(void **state)
{
    g_autoptr(Xv) vm = load_record("nics.vm.json");
    HvNic nic = {.device = 16, .mac = (char *)"02:00:00:00:00:01", .model = "e1000",
                 .bootindex = -1};
    XapiError *err = NULL;
    char **argv = qemu_cmdline(&host, "u", vm, NULL, 0, &nic, 1, NULL, false, &err);
    assert_null(argv);
    assert_string_equal(err->code, "INVALID_DEVICE");
    xapi_error_free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_goldens),
        cmocka_unit_test(test_secureboot_q35_limits),
        cmocka_unit_test(test_bad_boot_order_is_refused),
        cmocka_unit_test(test_nic_device_out_of_range_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
