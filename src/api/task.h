/* task.h: task objects, Async calls on a bounded worker pool, task GC. */
#pragma once

#include "call.h"
#include "db.h"

/* Runs call (already authorised) as an Async.<class>.<message>: creates
 * a pending task named after the call, queues the work and returns the
 * task's ref at once. Takes the call's contents (args, session). With
 * the queue full: NULL and TOO_MANY_PENDING_TASKS, nothing created. */
char *task_submit(Call *call, XapiError **err);

/* An Async call that is about to wait on a guest (which may never
 * answer) hands its worker's place over for the wait; no-ops outside the
 * pool. */
void task_wait_begin(void);
void task_wait_end(void);

/* The pool's size and queue bound, before the first Async call (tests). */
void task_pool_configure(unsigned workers, unsigned queue_max);

/* 0 if the caller may use the task as its own (an HTTP transfer's
 * task_id, task.cancel/destroy/set_*): HANDLE_INVALID for no such task,
 * RBAC_PERMISSION_DENIED [task.destroy/any; …] for another user's task
 * without that permission, as XAPI. trusted: the unix socket. */
int task_check_use(const char *session_ref, bool trusted, const char *task_ref, XapiError **err);

/* Has someone asked to cancel the task? Long operations check this. */
bool task_cancel_requested(const char *task_ref);

/* Records the progress (0..1) of a running task; NULL task: nothing. */
void task_set_progress(const char *task_ref, double progress);

/* Destroys finished tasks older than 65 minutes, all but the newest 200
 * finished ones, and pending ones older than 24 hours. */
unsigned task_gc(int64_t now);

/* Destroys the tasks of a session that is going away (write lock held). */
void task_destroy_for_session(DbRow *session);
