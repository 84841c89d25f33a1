/* vm_operations.h: which VM operations may run now, as XAPI decides it
 * (xapi_vm_lifecycle.ml check_operation_error), and the operation locks
 * kept in VM.current_operations / VM.allowed_operations. */
#pragma once

#include "call.h"
#include "db.h"
#include "operations.h"

/* 0 if op (a vm_operations name) may start on vm now; otherwise the error
 * XAPI gives, first failure first: OPERATION_BLOCKED, VM_BAD_POWER_STATE,
 * OTHER_OPERATION_IN_PROGRESS, VM_IS_TEMPLATE. Lock held. */
int vm_check_operation(const DbRow *vm, const char *op, XapiError **err);

/* The VM's operation locks (operations.h). */
extern const ObjectOperations vm_operations;
