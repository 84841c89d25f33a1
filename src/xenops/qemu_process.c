/* qemu_process.c: QEMU processes: detached and unprivileged spawns, finding
 * them again after a restart of xapid, waiting for them to end.
 *
 * QEMU runs as QEMU_USER with no capability but CAP_DAC_OVERRIDE (kept
 * across exec as an ambient capability): the disk images, their backing
 * chains and /dev/kvm stay root's files that QEMU still opens by name
 * (blockdev-add with a filename, hot-plug and live snapshots included).
 * What xapid can hand over as descriptors it does (the monitor sockets,
 * the console log, saved states): see qemu_cmdline.c and driver_qemu.c. */
#include "qemu_process.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct {
    bool drop;   /* xapid is root: QEMU runs as QEMU_USER */
    uid_t uid;
    gid_t gid;
} user;

bool qemu_process_user_init(void)
{
    if (geteuid() != 0)
        return false;
    struct passwd *pw = getpwnam(QEMU_USER);
    if (!pw) {
        const char *argv[] = {"useradd", "--system", "--no-create-home", "--home-dir",
                              "/nonexistent", "--shell", "/usr/sbin/nologin", QEMU_USER, NULL};
        int status = 0;
        g_autoptr(GError) gerr = NULL;
        if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                          &status, &gerr) ||
            !g_spawn_check_wait_status(status, &gerr)) {
            g_warning("cannot create the user %s (%s): QEMU runs as root", QEMU_USER,
                      gerr ? gerr->message : "useradd failed");
            return false;
        }
        pw = getpwnam(QEMU_USER);
        if (!pw)
            return false;
    }
    user.drop = true;
    user.uid = pw->pw_uid;
    user.gid = pw->pw_gid;
    return true;
}

/* In the child, between fork and exec: only async-signal-safe calls. */
static void child_setup(gpointer unused)
{
    setsid();
    if (!user.drop)
        return;
    /* Keep the capabilities over setuid, then keep only DAC override. */
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 || setgroups(0, NULL) < 0 ||
        setgid(user.gid) < 0 || setuid(user.uid) < 0)
        _exit(127);
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {{0}};
    data[0].effective = data[0].permitted = data[0].inheritable = 1u << CAP_DAC_OVERRIDE;
    if (syscall(SYS_capset, &hdr, data) < 0 ||
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_DAC_OVERRIDE, 0, 0) < 0)
        _exit(127);
}

int64_t qemu_process_spawn(char **argv, const int *fds, const int *targets, size_t n_fds,
                           int stderr_fd, XapiError **err)
{
    GPid pid = 0;
    g_autoptr(GError) gerr = NULL;
    /* Without G_SPAWN_DO_NOT_REAP_CHILD GLib forks twice: QEMU's parent is
     * init, never a zombie of ours, and a kill -9 of xapid leaves it be. */
    if (!g_spawn_async_with_pipes_and_fds(NULL, (const char *const *)argv, NULL,
                                          G_SPAWN_STDIN_FROM_DEV_NULL |
                                              G_SPAWN_STDOUT_TO_DEV_NULL,
                                          child_setup, NULL, -1, -1, stderr_fd, fds, targets,
                                          n_fds, &pid, NULL, NULL, NULL, &gerr)) {
        xapi_error_internal(err, "QEMU did not start: %s", gerr->message);
        return -1;
    }
    return pid;
}

bool qemu_process_alive(int64_t pid)
{
    if (pid <= 0 || kill((pid_t)pid, 0) < 0)
        return false;
    g_autofree char *stat_path = g_strdup_printf("/proc/%" G_GINT64_FORMAT "/stat", pid);
    g_autofree char *stat = NULL;
    if (!g_file_get_contents(stat_path, &stat, NULL, NULL))
        return false;
    const char *close_paren = strrchr(stat, ')');
    return close_paren && close_paren[1] == ' ' && close_paren[2] != 'Z' && close_paren[2] != 'X';
}

bool qemu_process_is_domain(int64_t pid, const char *uuid)
{
    g_autofree char *path = g_strdup_printf("/proc/%" G_GINT64_FORMAT "/cmdline", pid);
    g_autofree char *cmdline = NULL;
    gsize len = 0;
    if (!g_file_get_contents(path, &cmdline, &len, NULL))
        return false;
    bool after_uuid_flag = false;
    for (const char *arg = cmdline; arg < cmdline + len; arg += strlen(arg) + 1) {
        if (after_uuid_flag)
            return strcmp(arg, uuid) == 0;
        after_uuid_flag = strcmp(arg, "-uuid") == 0;
    }
    return false;
}

int64_t qemu_process_find(const char *uuid)
{
    DIR *proc = opendir("/proc");
    if (!proc)
        return 0;
    int64_t found = 0;
    for (struct dirent *e; !found && (e = readdir(proc));) {
        char *end;
        int64_t pid = g_ascii_strtoll(e->d_name, &end, 10);
        if (pid > 0 && !*end && qemu_process_is_domain(pid, uuid) && qemu_process_alive(pid))
            found = pid;
    }
    closedir(proc);
    return found;
}

bool qemu_process_wait_exit(int64_t pid, int timeout_ms)
{
    int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
    if (fd < 0)
        return !qemu_process_alive(pid);
    /* A pidfd turns readable when the process ends (a zombie counts). */
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;
    do
        r = poll(&p, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    close(fd);
    return r > 0 || !qemu_process_alive(pid);
}

int64_t qemu_process_uid(int64_t pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%" G_GINT64_FORMAT "/status", pid);
    g_autofree char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return -1;
    const char *line = strstr(text, "\nUid:");
    return line ? g_ascii_strtoll(line + 5, NULL, 10) : -1;
}
