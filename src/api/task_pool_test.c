/* task_pool_test.c: the Async pool with a small size: a full queue refuses
 * with TOO_MANY_PENDING_TASKS and creates no task; a job waiting on a
 * guest (task_wait_begin) leaves its place to queued short jobs. Jobs
 * block on conditions, so nothing here depends on timing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "bootstrap.h"
#include "db.h"
#include "task.h"

#define WORKERS 2
#define QUEUE 3

static struct {
    GMutex lock;
    GCond changed;
    unsigned started, finished;
    bool release; /* lets blocking jobs end */
} jobs;

static void bump(unsigned *counter)
{
    g_mutex_lock(&jobs.lock);
    (*counter)++;
    g_cond_broadcast(&jobs.changed);
    g_mutex_unlock(&jobs.lock);
}

static void wait_for(unsigned *counter, unsigned n)
{
    g_mutex_lock(&jobs.lock);
    while (*counter < n)
        g_cond_wait(&jobs.changed, &jobs.lock);
    g_mutex_unlock(&jobs.lock);
}

static void block_until_released(void)
{
    g_mutex_lock(&jobs.lock);
    while (!jobs.release)
        g_cond_wait(&jobs.changed, &jobs.lock);
    g_mutex_unlock(&jobs.lock);
}

/* A job that occupies its worker until released. */
static int busy_glue(Call *call, Xv **result)
{
    bump(&jobs.started);
    block_until_released();
    bump(&jobs.finished);
    return 0;
}

/* A job that waits on a "guest" until released, its place handed over. */
static int guest_wait_glue(Call *call, Xv **result)
{
    bump(&jobs.started);
    task_wait_begin();
    block_until_released();
    task_wait_end();
    bump(&jobs.finished);
    return 0;
}

static int short_glue(Call *call, Xv **result)
{
    bump(&jobs.started);
    bump(&jobs.finished);
    return 0;
}

static void impl_marker(void) {}

static const DmMessage busy = {.wire_name = "test.busy", .glue = busy_glue, .impl = impl_marker};
static const DmMessage guest_wait = {.wire_name = "test.guest_wait", .glue = guest_wait_glue,
                                     .impl = impl_marker};
static const DmMessage quick = {.wire_name = "test.short", .glue = short_glue,
                                .impl = impl_marker};

static char *submit(const DmMessage *msg, char **code)
{
    Call call = {.msg = msg, .args = xv_new_array()};
    XapiError *err = NULL;
    char *task = task_submit(&call, &err);
    *code = err ? g_strdup(err->code) : NULL;
    xapi_error_free(err);
    xv_free(call.args);
    return task;
}

static guint task_count(void)
{
    db_read_begin();
    guint n = db_count(dm_class_by_name("task"));
    db_read_end();
    return n;
}

static void release_all(void)
{
    g_mutex_lock(&jobs.lock);
    jobs.release = true;
    g_cond_broadcast(&jobs.changed);
    g_mutex_unlock(&jobs.lock);
}

/* Two jobs wait on guests, two more occupy both workers, three fill the
 * queue; the next is refused, creating nothing. The guest waits took no
 * worker's place: the busy jobs run beside them. */
static void test_bounded_queue_and_guest_waits(void **state)
{
    g_autofree char *code = NULL;
    for (int i = 0; i < 2; i++)
        g_free(submit(&guest_wait, &code));
    wait_for(&jobs.started, 2);
    for (int i = 0; i < WORKERS; i++)
        g_free(submit(&busy, &code));
    wait_for(&jobs.started, 2 + WORKERS); /* both ran although two jobs wait on guests */
    for (int i = 0; i < QUEUE; i++) {
        g_autofree char *task = submit(&quick, &code);
        assert_non_null(task);
        assert_null(code);
    }
    guint before = task_count();
    g_autofree char *refused = submit(&quick, &code);
    assert_null(refused);
    assert_string_equal(code, "TOO_MANY_PENDING_TASKS");
    assert_int_equal(task_count(), before);
    release_all();
    wait_for(&jobs.finished, 2 + WORKERS + QUEUE);
    /* Places are given back: the queue takes calls again. */
    g_free(code);
    code = NULL;
    g_autofree char *again = submit(&quick, &code);
    assert_non_null(again);
    wait_for(&jobs.finished, 2 + WORKERS + QUEUE + 1);
}

static int setup(void **state)
{
    task_pool_configure(WORKERS, QUEUE);
    return db_open(NULL, NULL) < 0 || bootstrap_database(NULL, NULL) < 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounded_queue_and_guest_waits),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
