/* sd_notify.c: the sd_notify(3) protocol without libsystemd: one
 * unix datagram holding "KEY=VALUE" lines, sent to $NOTIFY_SOCKET. Written
 * here rather than linking libsystemd for one sendto(): the daemon keeps
 * running where systemd is absent and the tests play the receiving end. */
#include "sd_notify.h"

#include <errno.h>
#include <glib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

bool sd_notify_send(const char *state)
{
    const char *path = g_getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return true;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof addr.sun_path) {
        g_warning("sd_notify: NOTIFY_SOCKET=%s is neither a path nor an abstract name", path);
        return false;
    }
    memcpy(addr.sun_path, path, len);
    if (path[0] == '@')
        addr.sun_path[0] = 0; /* the abstract namespace */
    socklen_t addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ssize_t sent = -1;
    if (fd >= 0) {
        sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr,
                      addr_len);
        if (sent < 0)
            g_warning("sd_notify: cannot send %s to %s: %s", state, path, g_strerror(errno));
        close(fd);
    } else {
        g_warning("sd_notify: socket: %s", g_strerror(errno));
    }
    return sent >= 0;
}
