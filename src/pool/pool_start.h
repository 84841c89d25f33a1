/* pool_start.h: xapid's start and stop as the role files say: a master
 * (or standalone host) opens its own database and watches its members'
 * liveness; a member opens a memory-only replica fed by the master's
 * change stream, and ships its writes there. */
#pragma once

#include "xapi_error.h"

#define POOL_DEFAULT_MEMBER_TIMEOUT 30
/* A member's own settings in its state dir (db_open_member_settings):
 * its root password hash, next domid, storage crash notes. */
#define POOL_MEMBER_SETTINGS "member-settings.db"

#include <stdbool.h>
/* Reads the role, sets the management address (the first of listen that
 * names a specific address) and the member timeout. */
int pool_start_prepare(const char *state_dir, const char *const *listen,
                       unsigned member_timeout, XapiError **err);
/* Whether this host's database is the pool's dqlite (its node holds data):
 * then the listeners open before pool_start_database, since the node's
 * peers reach it through them, and every call is refused with
 * HOST_STILL_BOOTING until pool_start_services. */
bool pool_start_listens_first(void);
/* Opens the database: the state dir's; a member's replica (waiting for
 * the master's first batch); or, on a dqlite host, after its node knows
 * the leader, the pool's database as the master when this node leads,
 * else a replica of the leader's host (the role files follow). */
int pool_start_database(XapiError **err);
/* A listener bound at port (the management port when it was asked as 0). */
void pool_start_listening(const char *host_port, int port);
/* Once serving: the master's liveness watch. */
void pool_start_services(void);
/* Before the database closes: the member's stream stops. */
void pool_start_stop(void);
