/* qemu_dump.h: a domain's memory as an ELF core file (QMP dump-guest-memory),
 * for actions_after_crash coredump_and_destroy / coredump_and_restart. */
#pragma once

#include "qmp.h"
#include "xapi_error.h"

/* Writes the guest's memory to fd (handed to QEMU with getfd) as an ELF
 * core, the crash utility's and gdb's input; waits until QEMU is done. */
int qemu_dump_guest_memory(QmpMonitor *mon, int fd, XapiError **err);
