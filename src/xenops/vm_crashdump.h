/* vm_crashdump.h: actions_after_crash coredump_and_destroy and
 * coredump_and_restart: the crashed guest's memory kept as a crashdump. */
#pragma once

#include <stdbool.h>

#include "xapi_error.h"
#include "xv.h"

/* Whether actions_after_crash asks for a dump. */
bool vm_crashdump_wanted(const char *action);

/* At VM.start (record: the VM's): a coredump_* action needs a driver
 * that can dump a domain's memory (else VALUE_NOT_SUPPORTED) and a crash
 * dump SR, this host's crash_dump_sr or the pool's crash_dump_SR (else
 * VM_NO_CRASHDUMP_SR [vm]). */
int vm_crashdump_check(const char *vm_ref, const Xv *record, XapiError **err);

/* The crashed domain of VM vm_ref (uuid), before it is destroyed or
 * restarted: its memory as an ELF core in a new VDI of type crashdump in
 * the crash dump SR, and a crashdump record naming the VM and the VDI.
 * Failures are logged: the crash action goes on. VM lock held. */
void vm_crashdump_take(const char *uuid, const char *vm_ref);
