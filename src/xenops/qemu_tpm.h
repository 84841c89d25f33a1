/* qemu_tpm.h: a VM's vTPM served by swtpm, one process per running
 * domain with a VTPM. */
#pragma once

#include "xapi_error.h"

#define SWTPM_BINARY "swtpm"
#define QEMU_TPM_LOG "swtpm.log" /* in the domain's directory */

/* Spawns swtpm on the TPM state in state_file (TPM 2.0), detached and as
 * QEMU's user, logging to log_path. Returns xapid's end of swtpm's control
 * channel, for QEMU (-chardev socket,fd=): swtpm ends when QEMU closes
 * it, so the TPM stops with the domain whatever ends it, and a swtpm whose
 * QEMU never started ends when xapid closes its copy. -1 with err set. */
int qemu_tpm_start(const char *state_file, const char *log_path, XapiError **err);
