/* qemu_process.c: QEMU processes: detached and unprivileged spawns, finding
 * them again after a restart of xapid, waiting for them to end.
 *
 * QEMU runs as QEMU_USER with no capability at all, in no group but kvm:
 * every file it uses xapid opens and hands over as a descriptor (disk
 * images and their backing files as fdsets, boot files, the monitor and
 * serial sockets, the console log, saved states, VNC clients, taps): see
 * qemu_cmdline.c, driver_qemu.c and qemu_fdsets.c. /dev/kvm it opens by
 * name, as a member of the kvm group (the device is made the group's, as
 * Debian's udev rules make it, when it is root's alone). */
#include "qemu_process.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <sys/stat.h>
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
    gid_t kvm;   /* its one supplementary group, or (gid_t)-1 */
} user;

static bool run_quietly(const char *const *argv, GError **gerr)
{
    int status = 0;
    return g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                        &status, gerr) &&
           g_spawn_check_wait_status(status, gerr);
}

/* The kvm group (made if missing), owning /dev/kvm with group rw. */
static gid_t kvm_group(void)
{
    struct group *gr = getgrnam("kvm");
    if (!gr) {
        const char *argv[] = {"groupadd", "--system", "kvm", NULL};
        g_autoptr(GError) gerr = NULL;
        if (!run_quietly(argv, &gerr) || !(gr = getgrnam("kvm"))) {
            g_warning("cannot create the group kvm (%s): QEMU cannot use /dev/kvm",
                      gerr ? gerr->message : "groupadd failed");
            return (gid_t)-1;
        }
    }
    gid_t gid = gr->gr_gid;
    struct stat st;
    if (stat("/dev/kvm", &st) == 0 && st.st_uid == 0 &&
        (st.st_gid != gid || (st.st_mode & 0060) != 0060)) {
        if (chown("/dev/kvm", 0, gid) < 0 || chmod("/dev/kvm", (st.st_mode & 07777) | 0060) < 0)
            g_warning("cannot give /dev/kvm to the group kvm: %s", g_strerror(errno));
        else
            g_message("/dev/kvm now belongs to the group kvm (mode %o), as udev makes it",
                      (st.st_mode & 07777) | 0060);
    }
    return gid;
}

bool qemu_process_user_init(void)
{
    if (geteuid() != 0)
        return false;
    struct passwd *pw = getpwnam(QEMU_USER);
    if (!pw) {
        const char *argv[] = {"useradd", "--system", "--no-create-home", "--home-dir",
                              "/nonexistent", "--shell", "/usr/sbin/nologin", QEMU_USER, NULL};
        g_autoptr(GError) gerr = NULL;
        if (!run_quietly(argv, &gerr)) {
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
    user.kvm = kvm_group();
    return true;
}

int qemu_process_give_to_user(const char *path, XapiError **err)
{
    if (user.drop && chown(path, user.uid, user.gid) < 0)
        return xapi_error_internal(err, "cannot give %s to %s: %s", path, QEMU_USER,
                                   g_strerror(errno));
    return 0;
}

/* In the child, between fork and exec: only async-signal-safe calls. */
static void child_setup(gpointer unused)
{
    setsid();
    if (!user.drop)
        return;
    /* setuid from root without PR_SET_KEEPCAPS clears every capability;
     * no_new_privs keeps exec from granting any back. */
    if (setgroups(user.kvm != (gid_t)-1 ? 1 : 0, &user.kvm) < 0 || setgid(user.gid) < 0 ||
        setuid(user.uid) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        _exit(127);
}

int64_t qemu_process_spawn(char **argv, const char *dir, const int *fds, const int *targets,
                           size_t n_fds, int stderr_fd, XapiError **err)
{
    GPid pid = 0;
    g_autoptr(GError) gerr = NULL;
    /* Without G_SPAWN_DO_NOT_REAP_CHILD GLib forks twice: QEMU's parent is
     * init, never a zombie of ours, and a kill -9 of xapid leaves it be. */
    if (!g_spawn_async_with_pipes_and_fds(dir, (const char *const *)argv, NULL,
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

/* Whether pid runs in dir (the domain directory QEMU was started in: the
 * -uuid alone does not tell two hosts of one machine apart). */
static bool runs_in(int64_t pid, const char *dir)
{
    g_autofree char *link = g_strdup_printf("/proc/%" G_GINT64_FORMAT "/cwd", pid);
    g_autofree char *cwd = g_file_read_link(link, NULL);
    g_autofree char *canonical = realpath(dir, NULL);
    return cwd && canonical && strcmp(cwd, canonical) == 0;
}

int64_t qemu_process_find(const char *uuid, const char *dir)
{
    DIR *proc = opendir("/proc");
    if (!proc)
        return 0;
    int64_t found = 0;
    for (struct dirent *e; !found && (e = readdir(proc));) {
        char *end;
        int64_t pid = g_ascii_strtoll(e->d_name, &end, 10);
        if (pid > 0 && !*end && qemu_process_is_domain(pid, uuid) && runs_in(pid, dir) &&
            qemu_process_alive(pid))
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
