/* host_evacuate.h: host.evacuate: every VM resident on a host migrated
 * (VM.pool_migrate, one at a time) to a host that can run it, picked on
 * the database with the memory of the VMs planned before it counted. */
#pragma once

#include "call.h"
#include "db.h"
#include "operations.h"

/* The host's operations: only "evacuate" (HOST_EVACUATE_IN_PROGRESS while
 * one runs). */
extern const ObjectOperations host_operations;

typedef struct {
    char *vm;
    char *target;   /* NULL when it cannot go anywhere */
    XapiError *why; /* then: the reason (the first host's refusal) */
} EvacuationStep;

/* The plan for every VM resident on host but its control domain (read
 * lock not held). */
GPtrArray *host_evacuation_plan(const char *host_ref);

/* Runs the plan here (the VMs' host), in the call's task; the first
 * failure ends it (VMs moved so far stay moved). */
int host_evacuate(Call *call, const char *host_ref);
