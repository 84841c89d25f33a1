/* field_checks.h: XAPI's rules for the writes the generic engine serves
 * (its overrides of the database setters and destructors), class by class:
 * a write that XAPI refuses is refused with its code and changes nothing. */
#pragma once

#include "db.h"

/* Before row.field becomes value (the whole new value, also for add_to_ /
 * remove_from_): 0, or -1 with XAPI's error. May make the writes XAPI
 * makes with it (VM_metrics.install_time when a template becomes a VM).
 * Write lock held; the caller aborts the transaction on failure. */
int field_checks_write(DbRow *row, const DmField *field, const Xv *value, XapiError **err);

/* Before the generic <class>.destroy deletes row. Write lock held. */
int field_checks_destroy(DbRow *row, XapiError **err);
