/* login_throttle.h: the penalty for failed logins, per source address.
 *
 * XAPI sleeps 5 s after every failed login. Here the delay grows with the
 * failures of one address in a row (base, 2×base, 4×base, … capped at
 * 20×base: 250 ms to 5 s by default) and is served in the failing
 * request's own connection thread, holding no lock: other addresses, and
 * the unix socket (never checked), are not delayed at all. A success
 * clears the address's count; a count is forgotten after 15 minutes
 * without failures. So that parallel connections cannot multiply one
 * address's guessing rate or pile up sleeping threads, at most
 * LOGIN_THROTTLE_WAITING answers per address wait at once: a further
 * attempt while they wait is refused at once, its password unchecked.
 * Every penalty is logged ("login failure N in a row from ADDR: answering
 * in D ms"), which is how tests see it without timing anything. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define LOGIN_THROTTLE_WAITING 4
#define LOGIN_THROTTLE_FORGET_MS (15 * 60 * 1000)
#define LOGIN_THROTTLE_MAX_ADDRESSES 4096

typedef struct LoginThrottle LoginThrottle;

LoginThrottle *login_throttle_new(int64_t base_delay_ms);
void login_throttle_free(LoginThrottle *t);

/* The process's throttle (login_throttle_configure sets its base before
 * the first login; 250 ms otherwise). */
LoginThrottle *login_throttle_default(void);
void login_throttle_configure(int64_t base_delay_ms);

/* Whether an attempt from addr may check its password now: false while
 * LOGIN_THROTTLE_WAITING of its failures are waiting out their delay. */
bool login_throttle_admit(LoginThrottle *t, const char *addr);

/* Records a failure from addr at now_ms: the delay before answering it.
 * The caller waits it out, holding no lock, then calls
 * login_throttle_answered. *in_a_row is set to the address's count. */
int64_t login_throttle_failure(LoginThrottle *t, const char *addr, int64_t now_ms,
                               unsigned *in_a_row);
void login_throttle_answered(LoginThrottle *t, const char *addr);

/* A success from addr clears its count. */
void login_throttle_success(LoginThrottle *t, const char *addr);

/* How many addresses are remembered (tests). */
unsigned login_throttle_size(LoginThrottle *t);
