/* vm_consoles.h: a running VM's consoles as XAPI records them, rfb (its
 * VNC display) and vt100 (its serial port), and what a connection to one
 * (CONNECT or WebSocket /console) reaches. */
#pragma once

#include "db.h"
#include "xapi_error.h"

/* Write lock held: the console records of a VM running here become one
 * per console its domain serves, located at
 * https://<host address>/console?uuid=<console uuid> as XAPI's are:
 * records that are so stay (their uuids with them), others go (an older
 * xapid's, an address that changed), missing ones are made. */
int vm_consoles_sync(DbRow *vm, XapiError **err);
/* Write lock held: they go when it stops. */
void vm_consoles_destroy(DbRow *vm);

typedef struct {
    char *console;  /* its ref */
    char *vm;       /* its VM's ref */
    char *protocol; /* "rfb", "vt100" or "rdp" */
    char *vm_uuid;
    bool served;    /* whether its domain serves it */
} VmConsoleTarget;

/* The console a request names as XAPI's console.ml finds it: ref= a
 * console, or a VM and then its rfb console; else uuid= a VM's, else a
 * console's. Its VM must be Running and resident here. -1 with
 * HANDLE_INVALID, UUID_INVALID, VM_BAD_POWER_STATE or VM_NOT_RESIDENT_HERE;
 * 0 with served false when the driver serves no such console. */
int vm_console_target(const char *ref, const char *uuid, VmConsoleTarget *t, XapiError **err);
void vm_console_target_clear(VmConsoleTarget *t);
/* A socket connected to the console (caller closes), or -1 with err. */
int vm_console_connect(const VmConsoleTarget *t, XapiError **err);
