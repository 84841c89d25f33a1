/* qmp_roundtrip.c: a QMP command's round trip over the domain's persistent
 * monitor (src/xenops/qmp.c) against the connection per command xapid
 * used before (connect, greeting, qmp_capabilities, the command, close),
 * on one QEMU started here (-S, no devices). Prints both and their ratio.
 *
 * Usage: build/qmp_roundtrip [N]   (bench/run.py and docs/bench.md) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qmp.h"

static void no_event(void *o, const char *n, json_object *d) {}
static void no_eof(void *o) {}
static const QmpCallbacks cb = {no_event, no_eof};

static double now(void) { return g_get_monotonic_time() / 1e6; }

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    g_autofree char *dir = g_dir_make_tmp("qmp-bench-XXXXXX", NULL);
    g_autofree char *sock = g_build_filename(dir, "m.sock", NULL);
    g_autofree char *qmp = g_strdup_printf("unix:%s,server=on,wait=off", sock);
    pid_t pid = fork();
    if (pid == 0) {
        execlp("qemu-system-x86_64", "qemu-system-x86_64", "-machine", "pc,accel=tcg",
               "-nodefaults", "-display", "none", "-S", "-qmp", qmp, NULL);
        _exit(127);
    }
    QmpMonitor *m = NULL;
    for (int i = 0; i < 500 && !m; i++) { /* until QEMU listens */
        XapiError *err = NULL;
        m = qmp_monitor_open(sock, 5000, &cb, NULL, &err);
        if (!m) {
            xapi_error_free(err);
            g_usleep(10000);
        }
    }
    if (!m)
        return fprintf(stderr, "QEMU did not come up\n"), 1;
    double t0 = now();
    for (int i = 0; i < n; i++)
        json_object_put(qmp_monitor_command(m, "query-status", NULL, -1, NULL));
    double persistent = (now() - t0) / n;
    qmp_monitor_close(m);
    t0 = now();
    for (int i = 0; i < n; i++) {
        QmpMonitor *one = qmp_monitor_open(sock, 5000, &cb, NULL, NULL);
        json_object_put(qmp_monitor_command(one, "query-status", NULL, -1, NULL));
        qmp_monitor_close(one);
    }
    double per_command = (now() - t0) / n;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    unlink(sock);
    rmdir(dir);
    printf("QMP query-status round trip: persistent monitor %.1f us, connection per command "
           "%.1f us (ratio %.3f, %d commands each)\n",
           persistent * 1e6, per_command * 1e6, persistent / per_command, n);
    return 0;
}
