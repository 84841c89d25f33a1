/* guest_agent.h: the QEMU guest agent (qemu-ga) in each domain, spoken to
 * over the virtio-serial port xapid gives every domain, and the
 * VM_guest_metrics it fills. */
#pragma once

#include <stddef.h>

#include "xapi_error.h"
#include "xv.h"

/* What the agent reported (each an XV_STRUCT of strings, owned). */
typedef struct {
    Xv *os_version;         /* XAPI's keys: name, uname, distro, major, minor */
    Xv *pv_drivers_version; /* major, minor, micro, build: the agent's version */
    Xv *interfaces;         /* MAC (lower case) -> struct {"ipv4": [..], "ipv6": [..]} */
} GuestAgentReport;

void guest_agent_report_clear(GuestAgentReport *r);

/* Asks the agent behind the unix socket path (QGA: guest-sync-delimited,
 * then guest-info, guest-get-osinfo, guest-network-get-interfaces), each
 * answer within timeout_ms. -1 with err set when it does not answer. */
int guest_agent_query(const char *path, int timeout_ms, GuestAgentReport *out, XapiError **err);

/* Asks the agent of the running domain uuid to power the guest off
 * (guest-shutdown, mode powerdown), the resync answered within timeout_ms.
 * 0 once it took the request (it does not reply on success); -1 with err
 * when the agent does not answer or reports a failure. */
int guest_agent_shutdown(const char *uuid, int timeout_ms, XapiError **err);

/* The report from the agent's answers (the "return" values of guest-info,
 * guest-get-osinfo and guest-network-get-interfaces, as JSON text). */
void guest_agent_report_parse(const char *info, const char *os, const char *nics,
                              GuestAgentReport *out);

/* VM_guest_metrics.networks for the VIFs (MAC, device) of a VM: "D/ip"
 * (the first IPv4), "D/ipv4/K", "D/ipv6/K". */
Xv *guest_agent_networks(const Xv *interfaces, const char *const *macs,
                         const char *const *devices, size_t n);

/* Every few seconds, the agents of the running domains refresh their VMs'
 * VM_guest_metrics (on a thread of their own). */
void guest_agent_start_polling(void);
