/* vdi_fork.h: snapshots and clones of VDIs, several at once (vdi_fork.c). */
#pragma once

#include <stdbool.h>

#include "call.h"

/* Snapshots (or clones) each of vdis as one operation: one database write
 * records them all, and the disks that a running guest writes to move onto
 * their new leaves at one instant per guest. out[i] receives the new VDI
 * of vdis[i] (caller frees). On error nothing of it is left. */
int storage_fork_vdis(Call *call, const char *const *vdis, guint n, bool snapshot, char **out);

/* At start-up, once the domains are found again: the moves of running
 * guests that a crash interrupted are made (or the guest stopped). */
void storage_finish_live_forks(void);
