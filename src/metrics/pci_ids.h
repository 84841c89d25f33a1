/* pci_ids.h: vendor and device names from the PCI ID database (Debian's
 * pci.ids at /usr/share/misc/pci.ids, or hwdata's), as XAPI fills
 * PIF_metrics vendor_name and device_name from pcilib. Without the file
 * the names are empty. */
#pragma once

/* Names for bare hex ids ("8086", "100e"); "" when unknown (caller
 * frees). Each id's answer is kept after its first lookup. */
char *pci_ids_vendor_name(const char *vendor);
char *pci_ids_device_name(const char *vendor, const char *device);
/* For tests: read this file instead (NULL: the default places). */
void pci_ids_set_path(const char *path);
