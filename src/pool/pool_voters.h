/* pool_voters.h: the pool keeps its dqlite voters when a host dies. The
 * master counts a member dead after --member-timeout of silence
 * (pool_master.c); if that host's node votes, a live standby takes its
 * vote (pool_db_replace_voter), so that a pool of four or more hosts
 * still has three live voters and survives one more death. */
#pragma once

/* On the master, when host_ref has just been counted not live: the
 * replacement runs in a thread of its own (dqlite requests block). */
void pool_voters_host_dead(const char *host_ref);
