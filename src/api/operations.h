/* operations.h: operation locks, as XAPI keeps them in every class with
 * current_operations (VM, VDI, SR, VBD, ...): an operation is checked, then
 * recorded as task_ref -> op in current_operations, and allowed_operations
 * is recomputed on every change so that clients can grey out buttons.
 *
 * Each class supplies its own check (XAPI's check_operation_error) and the
 * operations xapid implements, the only ones ever offered. */
#pragma once

#include "db.h"

typedef struct ObjectOperations {
    const char *class_name;
    /* 0 if op (a name of the class's operations enum) may start on row now;
     * otherwise the error XAPI gives (err may be NULL). Lock held. */
    int (*check)(const DbRow *row, const char *op, XapiError **err);
    const char *const *offered; /* implemented operations, NULL-terminated */
    /* Optional: refreshes the rows whose operations follow this one's
     * (a VM's VTPMs); called with every refresh of an inserted row. */
    int (*refresh_dependents)(DbRow *row, XapiError **err);
} ObjectOperations;

/* Registers a class: its new rows get allowed_operations at create. */
void operations_register(const ObjectOperations *oo);

/* Recomputes row.allowed_operations if row's class is registered (write
 * lock held); for rows not yet inserted too. */
int operations_refresh(DbRow *row, XapiError **err);

/* Runs fn on the row named ref in a write transaction (HANDLE_INVALID if
 * there is none), recomputes its allowed_operations and commits; on
 * failure nothing changes. */
typedef int (*ObjectWriteFn)(DbRow *row, const void *arg, XapiError **err);
int operations_write(const ObjectOperations *oo, const char *ref, ObjectWriteFn fn,
                     const void *arg, XapiError **err);

/* Checks op, then records task_ref -> op, in one write transaction. */
int operations_begin(const ObjectOperations *oo, const char *ref, const char *op,
                     const char *task_ref, XapiError **err);
/* The same inside an open write transaction, for a row in hand. */
int operations_add(const ObjectOperations *oo, DbRow *row, const char *op, const char *task_ref,
                   XapiError **err);
/* Removes task_ref's entry again (its own transaction; errors logged; a
 * row the operation destroyed is fine). */
void operations_end(const ObjectOperations *oo, const char *ref, const char *task_ref);
/* The same inside an open write transaction. */
int operations_remove(DbRow *row, const char *task_ref, XapiError **err);

/* OTHER_OPERATION_IN_PROGRESS [class, ref, op, task] for the operations in
 * current (XAPI's "{a,b}" form when there are several). Returns -1. */
int operations_conflict_error(const DbRow *row, const Xv *current, XapiError **err);

/* At start-up, in a write transaction: operations of a previous run ended
 * with it; clears current_operations and recomputes allowed_operations of
 * every row of every registered class. */
void operations_reset_all(void);
