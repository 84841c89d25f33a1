/* bond_programs.h: the tc BPF programs of xapid's own bonds (bond_bpf.c
 * puts them in place): what leaves the bond's hidden end and what the
 * members take, written out instruction by instruction. Each returns a
 * program's fd or -errno. */
#pragma once

#include <stdbool.h>

#define BONDPROG_MAX_MEMBERS 16

typedef enum { BONDPROG_ACTIVE_BACKUP, BONDPROG_BALANCE_SLB } BondProgMode;

/* balance-slb's map of the source MACs the bond sent, with the time
 * each last left (an fd or -errno). */
int bondprog_sent_map_new(void);
/* On the hidden end's ingress, for members up (the ifindexes of those
 * with carrier) of which active (0: none) carries active-backup's
 * traffic and balance-slb's broadcasts; map is balance-slb's. */
int bondprog_send(BondProgMode mode, int map, int active, const int *up, int n_up);
/* On a member's ingress: into hidden, or dropped. */
int bondprog_receive(BondProgMode mode, int map, bool active, int hidden);
