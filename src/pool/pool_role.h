/* pool_role.h: this host's place in a pool. STATE_DIR/pool-role holds
 * "master" or "member <master address>" (absent: standalone, a pool of one
 * that is its own master); STATE_DIR/pool-host holds a member's own host
 * ref. Both are written durably before the role takes effect and read at
 * start. Also the host's management address (from --listen) and port. */
#pragma once

#include <stdbool.h>

#include "xapi_error.h"

/* Reads the role files of state_dir (kept for the pool layer's later use). */
int pool_role_load(const char *state_dir, XapiError **err);
const char *pool_state_dir(void);

bool pool_is_member(void);
/* A member's master as the role file names it ("ADDRESS" or
 * "ADDRESS:PORT"), NULL on a master. */
const char *pool_master_address(void);
/* The master's "HOST:PORT" to connect to: without a port, this host's own
 * (the hosts of a pool listen on the same port, as XAPI's on 443). */
char *pool_master_endpoint(void);
/* A member's own host ref (NULL on a master: pool.master is this host). */
const char *pool_this_host(void);
/* This host's ref from pool-host on a member or a dqlite master (NULL
 * when the file is absent). */
const char *pool_own_host(void);

/* Writes the member role durably (pool-host, then pool-role). */
int pool_role_write_member(const char *master_address, const char *host_ref, XapiError **err);
/* A member follows another master (a failover): pool-role rewritten
 * durably, in-process, no restart. */
int pool_role_follow(const char *master_address, XapiError **err);
/* This host is the master now (a failover in-process): pool-host, then
 * pool-role "master", durably. */
int pool_role_write_master(const char *host_ref, XapiError **err);
/* Removes both files: standalone again (pool.eject). */
int pool_role_clear(XapiError **err);

/* The role files were rewritten since start (a join or an eject): this
 * process's database is no longer the host's, and it only waits for its
 * restart into the new role. */
bool pool_role_changed(void);
/* While set, pool_role_changed() is true too: every call is refused with
 * HOST_STILL_BOOTING (before the start is done, and during a change of
 * role made in-process, so that no call is served from the old role's
 * state). */
void pool_role_set_booting(bool on);
bool pool_role_booting(void);

/* The management address: set from the first --listen that names a
 * specific address; NULL when none does. And the port of that listener. */
void pool_set_local_address(const char *address, int port);
const char *pool_local_address(void);
int pool_local_port(void);
/* "ADDRESS:PORT" of a host reached at address (a host record's address):
 * this host's port unless address has its own. */
char *pool_endpoint_of(const char *address);

/* Seconds of silence after which the master marks a member not live. */
void pool_set_member_timeout(unsigned seconds);
unsigned pool_member_timeout(void);
