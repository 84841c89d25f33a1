/* implicit.h: the generic engine that serves every implicit message of
 * every class from the datamodel tables: field getters and setters, map
 * and set updates, records, lookups, filters, create and destroy. */
#pragma once

#include "call.h"
#include "db.h"

int implicit_execute(Call *call, Xv **result);

/* Lets a module fill runtime fields of a new object of cls (created by
 * <class>.create) before it is inserted, e.g. VM.allowed_operations;
 * several hooks of one class run in the order they were added. */
typedef void (*ImplicitCreateHook)(DbRow *row);
void implicit_on_create(const DmClass *cls, ImplicitCreateHook hook);

/* Shared with hand-written handlers. */
/* The row a <class>.create call's record describes (not inserted; the
 * class's create hook applied), or NULL with the call's error set (wrong
 * types, unknown refs). Write lock held. */
DbRow *implicit_row_from_record(Call *call, const Xv *record);
int implicit_handle_invalid(Call *call, const DmClass *cls, const char *ref);
/* The uuid of the object ref of class class_name (caller frees), or NULL
 * with HANDLE_INVALID. Takes the read lock. */
char *implicit_uuid_of(Call *call, const char *class_name, const char *ref);
/* HANDLE_INVALID unless each ref in value (a ref or ref set field) names an
 * existing object of its class, OpaqueRef:NULL or "" (XAPI stores "" as
 * given and treats it as no reference). Lock held. */
int implicit_check_refs(Call *call, const DmField *field, const Xv *value);
