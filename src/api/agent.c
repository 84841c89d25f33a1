/* agent.c: restarting and stopping xapid from the API. A restart is an
 * exec of the same binary with the same command line: the listening
 * sockets are inherited (clients queue instead of being refused), every
 * other descriptor is closed, and the database is as after a kill -9 with
 * no write in flight. QEMU domains outlive xapid anyway and are found
 * again at start-up; the sim driver hands its table over. */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "child_run.h"
#include "db.h"
#include "xenops.h"

static struct {
    GMainLoop *loop;
    char **argv;
    char *exe; /* the binary's path at start: a rebuilt binary there is the one restarted */
    gint end; /* AgentEnd, atomic */
} agent;

void agent_init(GMainLoop *loop, char **argv)
{
    agent.loop = loop;
    agent.argv = g_strdupv(argv);
    agent.exe = g_file_read_link("/proc/self/exe", NULL);
}

static gboolean end_now(gpointer unused)
{
    g_main_loop_quit(agent.loop);
    return G_SOURCE_REMOVE;
}

void agent_schedule_end(AgentEnd end)
{
    if (!g_atomic_int_compare_and_exchange(&agent.end, AGENT_RUN, (gint)end))
        return; /* one end already on its way */
    g_message("agent %s requested: in 1 s", end == AGENT_RESTART ? "restart" : "shutdown");
    g_timeout_add_seconds(1, end_now, NULL);
}

AgentEnd agent_end(void) { return (AgentEnd)g_atomic_int_get(&agent.end); }

/* Every descriptor but stdin/out/err and the listeners is closed at exec
 * (most are close-on-exec already; this catches any that is not). */
static void close_on_exec_all_but(HttpServer *server)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    int own = dirfd(d);
    for (struct dirent *e; (e = readdir(d));) {
        int fd = atoi(e->d_name);
        if (fd > 2 && fd != own && !http_server_is_listener_fd(server, fd))
            fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    closedir(d);
}

void agent_reexec(HttpServer *server)
{
    g_message("agent restart: re-executing %s", agent.exe ? agent.exe : agent.argv[0]);
    /* No write half-done: the lock is held until the exec drops it; the
     * domains handed over are those the database has settled on. */
    bool locked = db_write_begin(NULL) == 0;
    if (!locked)
        g_warning("agent restart: the write lock could not be taken");
    xenops_prepare_reexec();
    child_run_kill_all();
    http_server_prepare_reexec(server);
    close_on_exec_all_but(server);
    fflush(stdout);
    fflush(stderr);
    if (agent.exe && g_file_test(agent.exe, G_FILE_TEST_IS_EXECUTABLE))
        execv(agent.exe, agent.argv);
    execv("/proc/self/exe", agent.argv); /* the binary is gone: the same one again */
    g_critical("agent restart: exec failed: %s", g_strerror(errno));
    if (locked)
        db_write_abort();
}

int agent_power_command(const char *command, const char *action, XapiError **err)
{
    char *argv[] = {(char *)command, (char *)action, NULL};
    g_autoptr(GError) gerr = NULL;
    if (!g_spawn_async(NULL, argv, NULL, G_SPAWN_STDIN_FROM_DEV_NULL, NULL, NULL, NULL, &gerr))
        return xapi_error_internal(err, "%s %s: %s", command, action, gerr->message);
    g_message("host power: ran %s %s", command, action);
    return 0;
}
