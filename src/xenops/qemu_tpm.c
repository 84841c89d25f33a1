/* qemu_tpm.c: swtpm for a domain's vTPM.
 *
 * xapid makes a socket pair: one end is swtpm's control channel
 * (--ctrl type=unixio,clientfd=3), the other QEMU's tpm-emulator chardev,
 * over which QEMU hands swtpm its data channel. Nothing listens on a
 * path. swtpm writes the TPM's state into its VTPM's directory
 * (vm_vtpm.c) as it changes and exits when QEMU's end closes
 * (--terminate), so it outlives a restart of xapid with its QEMU and ends
 * with it. A suspended or migrated domain's TPM state travels in QEMU's
 * stream (the tpm-emulator device saves swtpm's blobs). */
#include "qemu_tpm.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qemu_process.h"

int qemu_tpm_start(const char *state_dir, const char *log_path, XapiError **err)
{
    g_autofree char *binary = g_find_program_in_path(SWTPM_BINARY);
    if (!binary)
        return xapi_error_set(err, "VALUE_NOT_SUPPORTED", "VTPMs", "swtpm",
                              "the vTPM needs swtpm (Debian's swtpm package) on this host",
                              NULL);
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
        return xapi_error_internal(err, "socketpair: %s", g_strerror(errno));
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) {
        xapi_error_internal(err, "cannot open %s: %s", log_path, g_strerror(errno));
        close(pair[0]);
        close(pair[1]);
        return -1;
    }
    g_autofree char *tpmstate = g_strdup_printf("dir=%s,mode=0600", state_dir);
    char *argv[] = {binary, "socket", "--tpm2", "--tpmstate", tpmstate, "--ctrl",
                    "type=unixio,clientfd=3", "--terminate", "--log", "fd=2,level=1", NULL};
    int fds[] = {pair[1]}, targets[] = {3};
    int64_t pid = qemu_process_spawn(argv, fds, targets, 1, log_fd, err);
    close(log_fd);
    close(pair[1]);
    if (pid < 0) {
        close(pair[0]);
        return -1;
    }
    return pair[0];
}
