/* header_deadline.h: closes connections whose request line and headers
 * take longer than a deadline (slowloris), which libmicrohttpd cannot do:
 * its only timeout is one of inactivity, reset by every byte. */
#pragma once

#include <stdbool.h>

typedef struct HeaderDeadlines HeaderDeadlines;
typedef struct HeaderWatch HeaderWatch;

/* A watchdog thread for timeout_s; NULL (and every call a no-op) for 0. */
HeaderDeadlines *header_deadlines_new(unsigned timeout_s);
/* Stops the watchdog; every watch must have been removed. */
void header_deadlines_free(HeaderDeadlines *d);

/* A new connection on socket fd: its first request is due from now. */
HeaderWatch *header_watch_add(HeaderDeadlines *d, int fd);
/* A request line is in: its headers are due from now, or earlier if
 * already due. */
void header_watch_arm(HeaderWatch *w);
/* A request is done: the next request line (on a kept-alive connection)
 * is due within within_s seconds, however slowly its bytes trickle in
 * (the idle timeout alone is reset by every byte). 0: none due. */
void header_watch_await_next(HeaderWatch *w, unsigned within_s);
/* Its headers are in: no deadline until the next request begins. */
void header_watch_disarm(HeaderWatch *w);
/* The connection is closed (before its socket is): forget it. */
void header_watch_remove(HeaderWatch *w);
