/* pci_ids_test.c: names from a small pci.ids of the file's layout
 * (comments, vendors, devices, subsystems, then the device classes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "pci_ids.h"

static const char sample[] =
    "#\n# List of PCI ID's\n#\n"
    "1af4  Red Hat, Inc.\n"
    "\t1000  Virtio network device\n"
    "\t\t01de fffb  Propolis Virtio network device\n"
    "# a comment among the devices\n"
    "\t1041  Virtio 1.0 network device\n"
    "8086  Intel Corporation\n"
    "\t100e  82540EM Gigabit Ethernet Controller\n"
    "\n"
    "C 02  Network controller\n"
    "\t00  Ethernet controller\n";

static void expect(char *got, const char *want)
{
    assert_string_equal(got, want);
    g_free(got);
}

static void test_names(void **state)
{
    g_autofree char *path = NULL;
    int fd = g_file_open_tmp("pci-ids-XXXXXX", &path, NULL);
    assert_true(fd >= 0);
    close(fd);
    assert_true(g_file_set_contents(path, sample, -1, NULL));
    pci_ids_set_path(path);
    expect(pci_ids_vendor_name("1af4"), "Red Hat, Inc.");
    expect(pci_ids_device_name("1af4", "1041"), "Virtio 1.0 network device");
    expect(pci_ids_device_name("8086", "100E"), "82540EM Gigabit Ethernet Controller");
    /* a subsystem line is no device; nor is another vendor's device */
    expect(pci_ids_device_name("1af4", "01de"), "");
    expect(pci_ids_device_name("1af4", "100e"), "");
    /* unknown, malformed, and the classes section */
    expect(pci_ids_vendor_name("ffff"), "");
    expect(pci_ids_vendor_name("0x8086"), "");
    expect(pci_ids_device_name("8086", ""), "");
    expect(pci_ids_vendor_name("C 02"), "");
    /* answers are kept: the file gone, they stay */
    g_unlink(path);
    expect(pci_ids_vendor_name("1af4"), "Red Hat, Inc.");
    expect(pci_ids_device_name("8086", "100e"), "82540EM Gigabit Ethernet Controller");
    expect(pci_ids_vendor_name("1af5"), "");
    /* no file at all: empty names */
    pci_ids_set_path("/nonexistent/pci.ids");
    expect(pci_ids_vendor_name("8086"), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_names)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
