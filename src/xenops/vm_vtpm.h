/* vm_vtpm.h: XAPI's VTPM objects (VTPM.create, VTPM.destroy, VM.VTPMs)
 * and where each one's TPM state lives on this host. */
#pragma once

#include <stdbool.h>

#include "db.h"
#include "operations.h"
#include "xapi_error.h"
#include "xv.h"

/* The record member vm_vtpm_prepare adds for the driver: the state file
 * of the VM's vTPM (the driver starts swtpm on it). */
#define VM_VTPM_STATE_MEMBER "xapid_vtpm_state"
/* swtpm's linear state file, in the VTPM's directory */
#define VM_VTPM_STATE_FILE "tpm2-state"

/* The states live in STATE_DIR/vtpm/<VTPM uuid>. */
int vm_vtpm_init(const char *state_dir, XapiError **err);

/* VTPM's operation locks: destroy offered while its VM is halted. */
extern const ObjectOperations vtpm_operations;

/* XAPI's Xapi_vtpm.create (write lock held): vm must have no VTPM yet
 * (VTPM_MAX_AMOUNT_REACHED [amount]) and be halted (VM_BAD_POWER_STATE);
 * templates too. Returns the new VTPM's ref (caller frees). */
char *vm_vtpm_create_locked(DbRow *vm, bool is_unique, XapiError **err);

/* VM.clone, copy and snapshot (write lock held): copy_ref gets a VTPM
 * for each of vm's, with the same TPM state unless is_unique (then a new
 * TPM), as XAPI's Xapi_vtpm.copy. */
int vm_vtpm_copy(const DbRow *vm, const char *copy_ref, XapiError **err);

/* XAPI's Xapi_vtpm.destroy: its VM halted or suspended; the TPM's state
 * goes with it. */
int vm_vtpm_destroy(const char *ref, XapiError **err);

/* Removes the state directories of the VTPMs in refs' uuids (after they
 * were deleted with their VM). */
void vm_vtpm_remove_states(const Xv *uuids);

/* At VM.start, before the driver runs: a VM with platform:vtpm=true and
 * no VTPM gets one, as XAPI's start does; then record (VM.get_record's
 * struct) gets VTPMs as they are now and VM_VTPM_STATE_MEMBER when there
 * is one. More than one is NOT_IMPLEMENTED, as in XAPI. */
int vm_vtpm_prepare(const char *vm_ref, Xv *record, XapiError **err);

/* The VM's VTPMs' allowed_operations follow its power state (write lock
 * held). */
int vm_vtpm_refresh_for_vm(DbRow *vm, XapiError **err);

/* The vTPM section of docs/compat.md. */
void vm_vtpm_markdown(GString *out);
