/* pool_secret.h: the pool secret, STATE_DIR/pool-secret (64 hex digits,
 * mode 0600). It authenticates everything between the hosts of a pool:
 * the dqlite tunnel, the change stream, forwarded calls and
 * session.slave_login. A standalone host creates one when first asked;
 * a joining host takes the master's (pool.initial_auth). */
#pragma once
#include <stdbool.h>

#include "xapi_error.h"

#define POOL_SECRET_HEX_LEN 64

/* The secret, created when missing (caller frees). */
char *pool_secret_get(const char *state_dir, XapiError **err);
/* Replaces the secret (hex of POOL_SECRET_HEX_LEN digits), durably. */
int pool_secret_set(const char *state_dir, const char *hex, XapiError **err);
/* "X-Xapid-Pool-Secret: SECRET", the header of the pool's internal
 * routes (caller frees; NULL with err). */
char *pool_secret_header(const char *state_dir, XapiError **err);
/* True when a and b are the same secret; constant time. */
bool pool_secret_equal(const char *a, const char *b);
