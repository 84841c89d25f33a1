/* vm_operations.h: which VM operations may run now, as XAPI decides it
 * (xapi_vm_lifecycle.ml check_operation_error), and the operation locks
 * kept in VM.current_operations / VM.allowed_operations. */
#pragma once

#include "call.h"
#include "db.h"

/* 0 if op (a vm_operations name) may start on vm now; otherwise the error
 * XAPI gives, first failure first: OPERATION_BLOCKED, VM_BAD_POWER_STATE,
 * OTHER_OPERATION_IN_PROGRESS, VM_IS_TEMPLATE. Lock held. */
int vm_check_operation(const DbRow *vm, const char *op, XapiError **err);

/* Fills allowed_operations of a VM not yet inserted (VM.create). */
void vm_fill_allowed_operations(DbRow *vm);

/* Recomputes vm.allowed_operations from its state (write lock held). */
int vm_update_allowed_operations(DbRow *vm, XapiError **err);

/* Runs fn on the VM named vm_ref in a write transaction (HANDLE_INVALID
 * if there is none), recomputes its allowed_operations and commits; on
 * failure nothing changes. */
typedef int (*VmWriteFn)(DbRow *vm, const void *arg, XapiError **err);
int vm_write(const char *vm_ref, VmWriteFn fn, const void *arg, XapiError **err);

/* Checks op, then records task_ref -> op in current_operations, in one
 * write transaction. */
int vm_operation_begin(const char *vm_ref, const char *op, const char *task_ref,
                       XapiError **err);
/* Removes task_ref's entry again (its own transaction; errors logged). */
void vm_operation_end(const char *vm_ref, const char *task_ref);
