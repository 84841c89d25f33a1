/* host.h: what the host messages of host.c may do to the machine. */
#pragma once

#include <stdbool.h>

typedef struct {
    /* Run as "CMD reboot" or "CMD poweroff" by host.reboot/shutdown;
     * NULL: they refuse (xapid does not power the machine off unasked). */
    const char *power_command;
    /* host.set_hostname_live may set the machine's hostname, and
     * host.dmesg_clear clear the kernel's log. */
    bool allow_host_changes;
} HostOpsConfig;

void host_ops_configure(const HostOpsConfig *config);

/* Whether host.management_disable is in force for the state directory
 * (read at start, before the listeners: http_server_set_management_at_start). */
bool host_management_disabled(const char *state_dir);
