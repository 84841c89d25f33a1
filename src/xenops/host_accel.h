/* host_accel.h: which accelerator QEMU gets on this host. */
#pragma once

#include <stdbool.h>

/* Whether /proc/cpuinfo text shows hardware virtualization: a "flags" line
 * with vmx (Intel VT-x) or svm (AMD-V), as kvm-ok decides. */
bool cpuinfo_has_virtualization(const char *cpuinfo);

/* "kvm" when /dev/kvm opens read-write and the CPU has VT-x or AMD-V,
 * "tcg" otherwise. A /dev/kvm without them (a nested host's software
 * flavour such as kvm-pvm) runs only guests built for it: a stock kernel
 * under QEMU hangs there. Static string. */
const char *host_accel(void);
