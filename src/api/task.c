/* task.c: task objects as XAPI keeps them (pending, success, failure,
 * cancelling, cancelled), Async calls run on a pool of worker threads
 * with a bounded queue, the task messages clients use, and task GC.
 *
 * The pool: TASK_WORKERS threads run Async calls; at most TASK_QUEUE_MAX
 * calls wait for one, and a call past that is refused with XAPI's
 * TOO_MANY_PENDING_TASKS before any task exists. A call that waits on a
 * guest (task_wait_begin: a clean shutdown the guest may ignore for 20
 * minutes) hands its place over: the pool grows by one thread while it
 * waits, so such waits never hold back hard_shutdown or short calls.
 * They are few by construction: one per VM, its operation lock held. */
#include "task.h"

#include <string.h>

#include "db.h"
#include "dm_handlers.h"
#include "implicit.h"
#include "rbac.h"
#include "session.h"
#include "xmlrpc.h"

#define TASK_WORKERS 8
#define TASK_QUEUE_MAX 100 /* XAPI refuses past 100 queueing threads */
#define TASK_KEEP_FINISHED 200
#define TASK_FINISHED_TTL (65 * 60)
#define TASK_PENDING_TTL (24 * 3600)

static const DmClass *task_class(void) { return dm_class_by_name("task"); }
static const DmClass *session_class(void) { return dm_class_by_name("session"); }

static int64_t now_seconds(void) { return g_get_real_time() / G_USEC_PER_SEC; }

static Xv *string_set(const char *first, ...)
{
    Xv *set = xv_new_array();
    va_list ap;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        xv_array_append_string(set, s);
    va_end(ap);
    return set;
}

/* Creates a pending task owned by the session (write lock held); returns
 * its ref. */
static char *task_insert(const char *session_ref, const char *label, const char *description,
                         XapiError **err)
{
    DbRow *session = db_lookup(session_class(), session_ref);
    DbRow *row = db_row_new(task_class());
    db_row_put(row, "name_label", xv_new_string(label));
    db_row_put(row, "name_description", xv_new_string(description));
    db_row_put(row, "status", xv_new_string("pending"));
    db_row_put(row, "progress", xv_new_float(0));
    db_row_put(row, "created", xv_new_datetime(now_seconds()));
    db_row_put(row, "allowed_operations", string_set("cancel", NULL));
    if (session)
        db_row_put(row, "resident_on", xv_dup(db_get(session, "this_host")));
    char *ref = g_strdup(row->ref);
    if (db_insert(row, err) < 0) {
        g_free(ref);
        return NULL;
    }
    if (session) {
        Xv *tasks = xv_dup(db_get(session, "tasks"));
        xv_array_append_string(tasks, ref);
        db_set_by_name(session, "tasks", tasks, NULL);
    }
    return ref;
}

/* ---- Async ---------------------------------------------------------- */

typedef struct AsyncJob {
    Call call;
    char *task_ref;
} AsyncJob;

static struct {
    GMutex lock;
    GThreadPool *workers;
    unsigned n_workers;  /* threads for calls that do not wait on guests */
    unsigned queue_max;
    unsigned queued;     /* submitted, not started */
    unsigned waiting;    /* started, waiting on a guest (handed over) */
} pool = {.n_workers = TASK_WORKERS, .queue_max = TASK_QUEUE_MAX};

/* Set in a worker thread while it runs a job: task_wait_begin hands over
 * only a worker's place. */
static GPrivate in_worker;

void task_pool_configure(unsigned workers, unsigned queue_max)
{
    pool.n_workers = workers;
    pool.queue_max = queue_max;
}

void task_wait_begin(void)
{
    if (!g_private_get(&in_worker))
        return;
    g_mutex_lock(&pool.lock);
    pool.waiting++;
    g_thread_pool_set_max_threads(pool.workers, (gint)(pool.n_workers + pool.waiting), NULL);
    g_mutex_unlock(&pool.lock);
}

void task_wait_end(void)
{
    if (!g_private_get(&in_worker))
        return;
    g_mutex_lock(&pool.lock);
    pool.waiting--;
    /* A thread beyond the new maximum leaves when its job is done. */
    g_thread_pool_set_max_threads(pool.workers, (gint)(pool.n_workers + pool.waiting), NULL);
    g_mutex_unlock(&pool.lock);
}

static void finish(const char *task_ref, const Xv *result, const XapiError *error)
{
    if (db_write_begin(NULL) < 0)
        return;
    DbRow *task = db_lookup(task_class(), task_ref);
    if (!task) { /* destroyed meanwhile (its session went away) */
        db_write_commit(NULL);
        return;
    }
    bool cancelled = error && strcmp(error->code, "TASK_CANCELLED") == 0;
    db_set_by_name(task, "status",
                   xv_new_string(cancelled ? "cancelled" : error ? "failure" : "success"), NULL);
    db_set_by_name(task, "progress", xv_new_float(1.0), NULL);
    db_set_by_name(task, "finished", xv_new_datetime(now_seconds()), NULL);
    db_set_by_name(task, "allowed_operations", xv_new_array(), NULL);
    if (error) {
        Xv *info = string_set(error->code, NULL);
        for (guint i = 0; i < error->params->len; i++)
            xv_array_append_string(info, error->params->pdata[i]);
        db_set_by_name(task, "error_info", info, NULL);
    } else {
        /* XAPI keeps the XML-RPC text of the value, whatever the client's
         * protocol: "<value>OpaqueRef:...</value>", or "" for void. */
        GString *text = g_string_new(NULL);
        if (result && !(result->kind == XV_STRING && !*xv_str(result)))
            xmlrpc_append_value(text, result);
        db_set_by_name(task, "result", xv_new_string_take(g_string_free(text, FALSE)), NULL);
    }
    db_write_commit(NULL);
}

static void run_job(gpointer data, gpointer unused)
{
    AsyncJob *job = data;
    Call *call = &job->call;
    Xv *result = NULL;
    g_mutex_lock(&pool.lock);
    pool.queued--;
    g_mutex_unlock(&pool.lock);
    g_private_set(&in_worker, GINT_TO_POINTER(1));
    if (task_cancel_requested(job->task_ref)) {
        xapi_error_set(&call->error, "TASK_CANCELLED", job->task_ref, NULL);
    } else {
        int rc = call_run(call, &result);
        if (rc < 0 && !call->error)
            xapi_error_internal(&call->error, "%s failed without saying why",
                                call->msg->wire_name);
    }
    if (result && result->kind == XV_LAZY) { /* materialise for the text form */
        Xv *concrete = xv_dup(result);
        xv_free(result);
        result = concrete;
    }
    g_private_set(&in_worker, NULL);
    finish(job->task_ref, result, call->error);
    xv_free(result);
    xapi_error_free(call->error);
    g_free(call->session_ref);
    g_free(call->task_ref);
    xv_free(call->args);
    g_free(job->task_ref);
    g_free(job);
}

/* Takes a place in the queue (creating the pool on first use), or
 * refuses with TOO_MANY_PENDING_TASKS. */
static int take_queue_place(XapiError **err)
{
    g_mutex_lock(&pool.lock);
    if (!pool.workers)
        pool.workers = g_thread_pool_new(run_job, NULL, (gint)pool.n_workers, FALSE, NULL);
    bool full = pool.queued >= pool.queue_max;
    if (!full)
        pool.queued++;
    g_mutex_unlock(&pool.lock);
    return full ? xapi_error_set(err, "TOO_MANY_PENDING_TASKS", NULL) : 0;
}

static void give_back_queue_place(void)
{
    g_mutex_lock(&pool.lock);
    pool.queued--;
    g_mutex_unlock(&pool.lock);
}

char *task_submit(Call *call, XapiError **err)
{
    if (take_queue_place(err) < 0)
        return NULL;
    g_autofree char *label = g_strconcat("Async.", call->msg->wire_name, NULL);
    if (db_write_begin(err) < 0) {
        give_back_queue_place();
        return NULL;
    }
    char *task_ref = task_insert(call->session_ref, label, "", err);
    if (!task_ref) {
        db_write_abort();
        give_back_queue_place();
        return NULL;
    }
    if (db_write_commit(err) < 0) {
        g_free(task_ref);
        give_back_queue_place();
        return NULL;
    }
    AsyncJob *job = g_new0(AsyncJob, 1);
    job->call = *call;
    job->call.task_ref = g_strdup(task_ref);
    job->task_ref = g_strdup(task_ref);
    memset(call, 0, sizeof *call); /* the job owns the arguments now */
    job->call.error = NULL;
    job->call.peer = NULL; /* the request's buffer: gone when it is answered */
    g_thread_pool_push(pool.workers, job, NULL);
    return task_ref;
}

bool task_cancel_requested(const char *task_ref)
{
    db_read_begin();
    const DbRow *task = db_lookup(task_class(), task_ref);
    bool cancelling = task && strcmp(xv_str(db_get(task, "status")), "cancelling") == 0;
    db_read_end();
    return cancelling;
}

/* ---- task messages -------------------------------------------------- */

int xapi_task_create(Call *call, const char *label, const char *description, Xv **result)
{
    if (db_write_begin(&call->error) < 0)
        return -1;
    char *ref = task_insert(call->session_ref, label, description, &call->error);
    if (!ref) {
        db_write_abort();
        return -1;
    }
    *result = xv_new_string_take(ref);
    return db_write_commit(&call->error);
}

/* The session whose tasks hold task_ref, or NULL (lock held). */
typedef struct {
    const char *task_ref;
    const DbRow *owner;
} OwnerSearch;

static bool find_owner(DbRow *session, void *ctx)
{
    OwnerSearch *search = ctx;
    const Xv *tasks = db_get(session, "tasks");
    for (guint i = 0; i < xv_len(tasks); i++) {
        if (strcmp(xv_str(xv_at(tasks, i)), search->task_ref) == 0) {
            search->owner = session;
            return false;
        }
    }
    return true;
}

/* XAPI's TaskHelper.assert_op_valid (lock held): a task is the caller's
 * when its session's user is the caller's (the same auth_user_sid);
 * another's needs task.destroy/any, which pool operators and admins hold
 * and the local superuser bypasses. No session: an internal caller or
 * the unix socket. */
static int check_task_access(const char *session_ref, bool trusted, const DbRow *task,
                             XapiError **err)
{
    if (trusted || !session_ref)
        return 0;
    const DbRow *caller = db_lookup(session_class(), session_ref);
    OwnerSearch search = {task->ref, NULL};
    db_foreach(session_class(), find_owner, &search);
    if (caller && search.owner &&
        (caller == search.owner || strcmp(xv_str(db_get(caller, "auth_user_sid")),
                                          xv_str(db_get(search.owner, "auth_user_sid"))) == 0))
        return 0;
    unsigned any = rbac_roles_of_permission("task.destroy/any");
    if (caller && session_has_any_role(caller, any))
        return 0;
    return rbac_deny(err, "task.destroy/any", any);
}

int task_check_use(const char *session_ref, bool trusted, const char *task_ref, XapiError **err)
{
    db_read_begin();
    const DbRow *task = db_lookup(task_class(), task_ref);
    int rc = task ? check_task_access(session_ref, trusted, task, err)
                  : xapi_error_set(err, "HANDLE_INVALID", "task", task_ref, NULL);
    db_read_end();
    return rc;
}

/* Runs op on the task named self in a write transaction, if it is the
 * caller's to change. */
static int with_task(Call *call, const char *self, int (*op)(Call *, DbRow *, const void *),
                     const void *arg)
{
    if (db_write_begin(&call->error) < 0)
        return -1;
    DbRow *task = db_lookup(task_class(), self);
    int rc = !task ? implicit_handle_invalid(call, task_class(), self)
             : check_task_access(call->session_ref, call->trusted, task, &call->error) < 0
                 ? -1
                 : op(call, task, arg);
    if (rc < 0) {
        db_write_abort();
        return -1;
    }
    return db_write_commit(&call->error);
}

/* session.tasks is kept by hand: the task's owner is not a datamodel field. */
static bool drop_from_session(DbRow *session, void *ctx)
{
    const char *task_ref = ctx;
    const Xv *tasks = db_get(session, "tasks");
    for (guint i = 0; i < xv_len(tasks); i++) {
        if (strcmp(xv_str(xv_at(tasks, i)), task_ref) == 0) {
            Xv *updated = xv_dup(tasks);
            xv_array_remove_at(updated, i);
            db_set_by_name(session, "tasks", updated, NULL);
            return false;
        }
    }
    return true;
}

static int delete_task(DbRow *task, XapiError **err)
{
    g_autofree char *ref = g_strdup(task->ref);
    if (db_delete(task, err) < 0)
        return -1;
    db_foreach(session_class(), drop_from_session, ref);
    return 0;
}

static int destroy_op(Call *call, DbRow *task, const void *unused)
{
    return delete_task(task, &call->error);
}

int xapi_task_destroy(Call *call, const char *self)
{
    return with_task(call, self, destroy_op, NULL);
}

static int cancel_op(Call *call, DbRow *task, const void *unused)
{
    const Xv *allowed = db_get(task, "allowed_operations");
    bool cancellable = false;
    for (guint i = 0; i < xv_len(allowed); i++)
        cancellable |= strcmp(xv_str(xv_at(allowed, i)), "cancel") == 0;
    if (!cancellable)
        return xapi_error_set(&call->error, "OPERATION_NOT_ALLOWED",
                              "The task cannot be cancelled in its current state", NULL);
    db_set_by_name(task, "status", xv_new_string("cancelling"), NULL);
    db_set_by_name(task, "allowed_operations", xv_new_array(), NULL);
    return 0;
}

int xapi_task_cancel(Call *call, const char *task)
{
    return with_task(call, task, cancel_op, NULL);
}

typedef struct {
    const char *field;
    const Xv *value;
} FieldUpdate;

static int set_op(Call *call, DbRow *task, const void *arg)
{
    const FieldUpdate *u = arg;
    Xv *value = xv_dup(u->value);
    if (strcmp(u->field, "status") == 0 && strcmp(xv_str(value), "pending") != 0) {
        db_set_by_name(task, "finished", xv_new_datetime(now_seconds()), NULL);
        db_set_by_name(task, "allowed_operations", xv_new_array(), NULL);
    }
    return db_set_by_name(task, u->field, value, &call->error);
}

static int set_task_field(Call *call, const char *self, const char *field)
{
    FieldUpdate u = {field, call_arg(call, 1)};
    return with_task(call, self, set_op, &u);
}

int xapi_task_set_status(Call *call, const char *self, const char *value)
{
    return set_task_field(call, self, "status");
}

int xapi_task_set_progress(Call *call, const char *self, double value)
{
    return set_task_field(call, self, "progress");
}

int xapi_task_set_result(Call *call, const char *self, const char *value)
{
    return set_task_field(call, self, "result");
}

int xapi_task_set_error_info(Call *call, const char *self, const Xv *value)
{
    return set_task_field(call, self, "error_info");
}

void task_set_progress(const char *task_ref, double progress)
{
    if (!task_ref || db_write_begin(NULL) < 0)
        return;
    DbRow *task = db_lookup(dm_class_by_name("task"), task_ref);
    if (task && db_set_by_name(task, "progress", xv_new_float(progress), NULL) == 0)
        db_write_commit(NULL);
    else
        db_write_abort();
}

/* ---- lifetime ------------------------------------------------------- */

void task_destroy_for_session(DbRow *session)
{
    const Xv *tasks = db_get(session, "tasks");
    for (guint i = 0; i < xv_len(tasks); i++) {
        DbRow *task = db_lookup(task_class(), xv_str(xv_at(tasks, i)));
        if (task)
            db_delete(task, NULL);
    }
}

typedef struct {
    int64_t now;
    GPtrArray *doomed;   /* DbRow* */
    GPtrArray *finished; /* DbRow*, still alive */
} TaskScan;

static bool scan_task(DbRow *task, void *ctx)
{
    TaskScan *scan = ctx;
    bool pending = strcmp(xv_str(db_get(task, "status")), "pending") == 0 ||
                   strcmp(xv_str(db_get(task, "status")), "cancelling") == 0;
    int64_t age = scan->now - (pending ? db_get(task, "created")->i : db_get(task, "finished")->i);
    if (age > (pending ? TASK_PENDING_TTL : TASK_FINISHED_TTL))
        g_ptr_array_add(scan->doomed, task);
    else if (!pending)
        g_ptr_array_add(scan->finished, task);
    return true;
}

static gint by_finished(gconstpointer a, gconstpointer b)
{
    int64_t x = db_get(*(DbRow *const *)a, "finished")->i;
    int64_t y = db_get(*(DbRow *const *)b, "finished")->i;
    return x < y ? -1 : x > y;
}

unsigned task_gc(int64_t now)
{
    if (db_write_begin(NULL) < 0)
        return 0;
    TaskScan scan = {now, g_ptr_array_new(), g_ptr_array_new()};
    db_foreach(task_class(), scan_task, &scan);
    if (scan.finished->len > TASK_KEEP_FINISHED) {
        g_ptr_array_sort(scan.finished, by_finished);
        for (guint i = 0; i < scan.finished->len - TASK_KEEP_FINISHED; i++)
            g_ptr_array_add(scan.doomed, scan.finished->pdata[i]);
    }
    unsigned n = scan.doomed->len;
    for (guint i = 0; i < n; i++)
        delete_task(scan.doomed->pdata[i], NULL);
    g_ptr_array_unref(scan.doomed);
    g_ptr_array_unref(scan.finished);
    db_write_commit(NULL);
    return n;
}
