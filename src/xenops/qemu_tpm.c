/* qemu_tpm.c: swtpm for a domain's vTPM.
 *
 * xapid makes a socket pair: one end is swtpm's control channel
 * (--ctrl type=unixio,clientfd=3), the other QEMU's tpm-emulator chardev,
 * over which QEMU hands swtpm its data channel. Nothing listens on a
 * path. swtpm writes the TPM's state into its VTPM's state file
 * (vm_vtpm.c; swtpm's linear file backend) as it changes and exits when QEMU's end closes
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

int qemu_tpm_start(const char *state_file, const char *log_path, XapiError **err)
{
    g_autofree char *binary = g_find_program_in_path(SWTPM_BINARY);
    if (!binary)
        return xapi_error_set(err, "VALUE_NOT_SUPPORTED", "VTPMs", "swtpm",
                              "the vTPM needs swtpm (Debian's swtpm package) on this host",
                              NULL);
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
        return xapi_error_internal(err, "socketpair: %s", g_strerror(errno));
    /* swtpm runs as QEMU's user, who cannot reach xapid's state
     * directory: it gets the file open and reopens /proc/self/fd/4 */
    int state_fd = open(state_file, O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (state_fd < 0) {
        xapi_error_internal(err, "cannot open %s: %s", state_file, g_strerror(errno));
        close(pair[0]);
        close(pair[1]);
        return -1;
    }
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) {
        xapi_error_internal(err, "cannot open %s: %s", log_path, g_strerror(errno));
        close(state_fd);
        close(pair[0]);
        close(pair[1]);
        return -1;
    }
    /* its errors go to stderr, the log (swtpm 0.7's --log fd= refuses to start) */
    char *argv[] = {binary, "socket", "--tpm2", "--tpmstate",
                    "backend-uri=file:///proc/self/fd/4", "--ctrl", "type=unixio,clientfd=3",
                    "--terminate", NULL};
    int fds[] = {pair[1], state_fd}, targets[] = {3, 4};
    int64_t pid = qemu_process_spawn(argv, NULL, fds, targets, 2, log_fd, err);
    close(log_fd);
    close(state_fd);
    close(pair[1]);
    if (pid < 0) {
        close(pair[0]);
        return -1;
    }
    return pair[0];
}
