/* pool_forward.h: the master sends host-bound work to the host that owns
 * it (XAPI's message_forwarding.ml): VM operations to the VM's resident
 * host, VM.start_on/resume_on to the chosen host, a halted VM's start to
 * a host that sees its disks, host.* to that host, SR/VDI/PBD/PIF work to
 * a host with the SR plugged (or the PBD's, PIF's host), VBD/VIF hotplug
 * to their VM's host. The call goes in the member's pool session
 * (session.slave_login), with the caller's task and the master's
 * generation; HOST_OFFLINE [host] when the host is not live,
 * CANNOT_CONTACT_HOST [host] when it cannot be reached. */
#pragma once

#include <stdbool.h>

#include "call.h"
#include "db.h"
#include "xapi_error.h"

/* Runs nothing and returns 1 when call is this host's to run; else sends
 * it and returns 0 with *result (typed as the message's result) or -1
 * with call->error. No lock held. */
int pool_forward_call(Call *call, Xv **result);

/* This host's call of method(arg) to host (pool.eject's leg on the
 * member). */
int pool_forward_internal(const char *host, const char *method, const char *arg,
                          XapiError **err);

/* On a member: method(args...) at the master, in this host's pool session
 * there (the calls whose data lives only on the master: messages). 0 with
 * *value, -1 with the master's error or CANNOT_CONTACT_HOST [master]. */
int pool_forward_to_master(const char *method, const Xv *args, Xv **value, XapiError **err);

/* Read lock held: the host an SR's work goes to (this one, here, when it
 * has the SR plugged; else a live host that has, else any that has). */
const char *pool_forward_sr_host(const char *sr_ref, const char *here);

/* Read lock held: the host a VM's work goes to: its resident host while
 * it is not halted, else this one or another that sees all its disks. */
const char *pool_forward_vm_host(const DbRow *vm, const char *here);

/* Forgets what is kept of host (its pool session), once it left. */
void pool_forget_host(const char *host);

/* Whether session_ref is a pool session (session.slave_login); read
 * lock not held. */
bool pool_forward_is_pool_session(const char *session_ref);
