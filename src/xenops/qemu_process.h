/* qemu_process.h: QEMU processes: spawning one detached and unprivileged,
 * finding one again, waiting for one to end. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "xapi_error.h"

/* The unprivileged account QEMU runs as when xapid runs as root. */
#define QEMU_USER "xapid-qemu"

/* Makes QEMU_USER if missing (xapid as root only); false if QEMU must run
 * as xapid's own user (xapid is not root, or the account cannot be made). */
bool qemu_process_user_init(void);

/* Gives path to QEMU_USER (for files QEMU's helpers open by name, as
 * swtpm its state directory); nothing when QEMU runs as xapid's user. */
int qemu_process_give_to_user(const char *path, XapiError **err);

/* Spawns argv detached from xapid (its own session, reparented to init so
 * that it outlives a restart) as QEMU_USER, with fds[i] as descriptor
 * targets[i] and stderr to stderr_fd. Returns the pid or -1 with err set. */
int64_t qemu_process_spawn(char **argv, const char *dir, const int *fds, const int *targets,
                           size_t n_fds, int stderr_fd, XapiError **err);

/* Alive and not a zombie. */
bool qemu_process_alive(int64_t pid);
/* The process at pid is the QEMU of the domain named uuid (pids get reused). */
bool qemu_process_is_domain(int64_t pid, const char *uuid);
/* The pid of a QEMU running with -uuid uuid in dir (its working
 * directory, the domain's: another host on this machine may run the same
 * VM's QEMU, as a migration's source does), or 0 (a scan of /proc, for a
 * domain whose pid file was never written). */
int64_t qemu_process_find(const char *uuid, const char *dir);
/* Waits for pid to end, at most timeout_ms (< 0: for ever); true if it did. */
bool qemu_process_wait_exit(int64_t pid, int timeout_ms);
/* The real uid of pid, or -1. */
int64_t qemu_process_uid(int64_t pid);
