/* child_run.c: one helper process: spawned in its own process group (so
 * that a kill reaches whatever it started), fed its input, its stdout and
 * stderr read together by poll(), killed at the time limit or the output
 * cap, and reaped. */
#include "child_run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Between fork and exec: async-signal-safe calls only. */
static void child_setup(gpointer unused)
{
    setpgid(0, 0);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    signal(SIGPIPE, SIG_DFL);
}

#define POLL_SLICE_MS 100

/* A write to a pipe the child closed must not raise SIGPIPE in xapid
 * (which does not ignore it): blocked in this thread for the write, and a
 * signal it raised taken back before unblocking. */
static ssize_t write_without_sigpipe(int fd, const char *buf, size_t n)
{
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t w = write(fd, buf, n);
    int saved = errno;
    if (w < 0 && saved == EPIPE) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return w;
}

static void append_capped(GString *buf, const char *data, size_t n, size_t cap, bool *over)
{
    if (cap && buf->len + n > cap) {
        *over = true;
        n = buf->len < cap ? cap - buf->len : 0;
    }
    g_string_append_len(buf, data, (gssize)n);
}

/* Reads what fd has; false at its end (or an error). */
static bool drain(int fd, GString *buf, size_t cap, bool *over)
{
    char chunk[16384];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (n <= 0)
        return false;
    append_capped(buf, chunk, (size_t)n, cap, over);
    return true;
}

/* The process groups running now, for child_run_kill_all. */
static GMutex running_lock;
static GHashTable *running;

static void note_running(GPid pid, bool add)
{
    g_mutex_lock(&running_lock);
    if (!running)
        running = g_hash_table_new(NULL, NULL);
    if (add)
        g_hash_table_add(running, GINT_TO_POINTER(pid));
    else
        g_hash_table_remove(running, GINT_TO_POINTER(pid));
    g_mutex_unlock(&running_lock);
}

void child_run_kill_all(void)
{
    g_mutex_lock(&running_lock);
    GHashTableIter it;
    gpointer pid;
    if (running) {
        g_hash_table_iter_init(&it, running);
        while (g_hash_table_iter_next(&it, &pid, NULL))
            kill(-GPOINTER_TO_INT(pid), SIGKILL);
    }
    g_mutex_unlock(&running_lock);
}

void child_run(const ChildSpec *spec, ChildResult *r)
{
    *r = (ChildResult){.out = g_string_new(NULL), .err = g_string_new(NULL)};
    int in_fd = -1, out_fd = -1, err_fd = -1;
    GPid pid = 0;
    g_autoptr(GError) gerr = NULL;
    GSpawnFlags flags = G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_FILE_AND_ARGV_ZERO;
    if (!spec->input)
        flags |= G_SPAWN_STDIN_FROM_DEV_NULL;
    /* argv[0] twice: the file to run and the name it sees. */
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_ptr_array_add(argv, spec->argv[0]);
    for (char *const *a = spec->argv; *a; a++)
        g_ptr_array_add(argv, *a);
    g_ptr_array_add(argv, NULL);
    if (!g_spawn_async_with_pipes(NULL, (char **)argv->pdata, (char **)spec->envp, flags,
                                  child_setup, NULL, &pid, spec->input ? &in_fd : NULL,
                                  &out_fd, &err_fd, &gerr)) {
        r->end = CHILD_SPAWN_FAILED;
        r->spawn_error = g_strdup(gerr->message);
        return;
    }
    /* Also here: the child may not have run setpgid yet when we kill. */
    setpgid(pid, pid);
    note_running(pid, true);
    size_t in_len = spec->input ? strlen(spec->input) : 0, in_off = 0;
    if (in_fd >= 0)
        fcntl(in_fd, F_SETFL, O_NONBLOCK);
    if (in_fd >= 0 && in_len == 0) {
        close(in_fd);
        in_fd = -1;
    }
    int64_t deadline = spec->time_limit_s
                           ? g_get_monotonic_time() + (int64_t)spec->time_limit_s * G_USEC_PER_SEC
                           : 0;
    bool out_over = false, err_over = false, reaped = false;
    int status = 0;
    ChildEnd killed = CHILD_EXITED;
    while (out_fd >= 0 || err_fd >= 0) {
        struct pollfd fds[3];
        nfds_t n = 0;
        int idx_out = -1, idx_err = -1, idx_in = -1;
        if (out_fd >= 0)
            idx_out = (int)n, fds[n++] = (struct pollfd){.fd = out_fd, .events = POLLIN};
        if (err_fd >= 0)
            idx_err = (int)n, fds[n++] = (struct pollfd){.fd = err_fd, .events = POLLIN};
        if (in_fd >= 0)
            idx_in = (int)n, fds[n++] = (struct pollfd){.fd = in_fd, .events = POLLOUT};
        int wait_ms = POLL_SLICE_MS;
        if (deadline) {
            int64_t left = (deadline - g_get_monotonic_time()) / 1000;
            if (left <= 0) {
                killed = CHILD_TIMED_OUT;
                break;
            }
            if (left < wait_ms)
                wait_ms = (int)left + 1;
        }
        if (poll(fds, n, wait_ms) < 0 && errno != EINTR)
            break;
        if (idx_out >= 0 && fds[idx_out].revents && !drain(out_fd, r->out, spec->output_limit, &out_over)) {
            close(out_fd);
            out_fd = -1;
        }
        if (idx_err >= 0 && fds[idx_err].revents && !drain(err_fd, r->err, spec->output_limit, &err_over)) {
            close(err_fd);
            err_fd = -1;
        }
        if (idx_in >= 0 && fds[idx_in].revents) {
            ssize_t w = (fds[idx_in].revents & POLLOUT)
                            ? write_without_sigpipe(in_fd, spec->input + in_off, in_len - in_off)
                            : -1;
            if (w > 0)
                in_off += (size_t)w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || in_off == in_len) {
                close(in_fd);
                in_fd = -1;
            }
        }
        if (out_over) {
            killed = CHILD_OUTPUT_CAPPED;
            break;
        }
        /* A stopped process would only wait for the time limit (XAPI:
         * "task stopped"); an ended one is reaped here, its pipes perhaps
         * still held by what it started. */
        if (!reaped && waitpid(pid, &status, WNOHANG | WUNTRACED) == pid) {
            if (WIFSTOPPED(status)) {
                killed = CHILD_STOPPED;
                break;
            }
            reaped = true;
        }
        if (spec->cancel && spec->cancel(spec->cancel_ctx)) {
            killed = CHILD_CANCELLED;
            break;
        }
    }
    if (in_fd >= 0)
        close(in_fd);
    if (out_fd >= 0)
        close(out_fd);
    if (err_fd >= 0)
        close(err_fd);
    /* The pipes are closed; the process may still be running (it closed
     * them itself): the limits still hold while it ends. */
    for (gulong pause_us = 1000; killed == CHILD_EXITED && !reaped;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR))
            break;
        if (deadline && g_get_monotonic_time() > deadline)
            killed = CHILD_TIMED_OUT;
        else if (spec->cancel && spec->cancel(spec->cancel_ctx))
            killed = CHILD_CANCELLED;
        else
            g_usleep(pause_us);
        pause_us = MIN(pause_us * 2, 50000);
    }
    if (killed != CHILD_EXITED) {
        kill(-pid, SIGKILL);
        while (!reaped && waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    note_running(pid, false);
    g_spawn_close_pid(pid);
    if (killed != CHILD_EXITED) {
        r->end = killed;
        r->code = SIGKILL;
    } else if (WIFSIGNALED(status)) {
        r->end = CHILD_SIGNALED;
        r->code = WTERMSIG(status);
    } else {
        r->end = CHILD_EXITED;
        r->code = WEXITSTATUS(status);
    }
}

void child_result_clear(ChildResult *r)
{
    if (r->out)
        g_string_free(r->out, TRUE);
    if (r->err)
        g_string_free(r->err, TRUE);
    g_free(r->spawn_error);
    *r = (ChildResult){0};
}
