/* serial_hub.c: one serial console shared by every client that opens it.
 *
 * QEMU's serial chardev socket serves one client at a time (a second one
 * waits unanswered in its listen queue). On XenServer several viewers can
 * watch a VM's text console at once, so xapid holds that single
 * connection for as long as anyone watches: a hub thread per console
 * copies what the guest writes to every client and what any client types
 * to the guest. Each client gets one end of a socket pair; the hub ends,
 * closing every client's end, when the guest's side closes (its QEMU
 * exited), and closes its connection to QEMU when the last client leaves.
 *
 * A client that does not keep up (its socket pair full, about 200 KiB of
 * console text unread) is dropped rather than let it stall the others. */
#include "serial_hub.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define HUB_BUFFER 16384

typedef struct {
    char *key;
    int upstream;       /* the connection to QEMU's serial socket */
    int wake;           /* eventfd: clients are waiting in joining */
    GArray *clients;    /* int: the hub's ends of the pairs (hub thread only) */
    GArray *joining;    /* int: handed over under hubs_lock */
} Hub;

static GMutex hubs_lock;
static GHashTable *hubs; /* key -> Hub*, the hubs running now */

static void close_all(GArray *fds)
{
    for (guint i = 0; i < fds->len; i++)
        close(g_array_index(fds, int, i));
    g_array_set_size(fds, 0);
}

static void hub_free(Hub *h)
{
    close_all(h->clients);
    close_all(h->joining);
    g_array_free(h->clients, TRUE);
    g_array_free(h->joining, TRUE);
    close(h->upstream);
    close(h->wake);
    g_free(h->key);
    g_free(h);
}

static int send_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Under hubs_lock: the clients that joined since the last look. */
static void take_joining(Hub *h)
{
    uint64_t count;
    if (read(h->wake, &count, sizeof count) < 0 && errno != EAGAIN)
        return;
    g_array_append_vals(h->clients, h->joining->data, h->joining->len);
    g_array_set_size(h->joining, 0);
}

static void drop_client(Hub *h, guint i)
{
    close(g_array_index(h->clients, int, i));
    g_array_remove_index(h->clients, i);
}

/* What the guest wrote, to every client; false when the guest's side ended. */
static bool from_guest(Hub *h, char *buf)
{
    ssize_t n = recv(h->upstream, buf, HUB_BUFFER, 0);
    if (n < 0 && errno == EINTR)
        return true;
    if (n <= 0)
        return false;
    for (guint i = h->clients->len; i-- > 0;) {
        ssize_t sent = send(g_array_index(h->clients, int, i), buf, (size_t)n,
                            MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent != n)
            drop_client(h, i); /* gone, or too slow to keep up */
    }
    return true;
}

/* What client i typed, to the guest; false when the guest's side failed. */
static bool from_client(Hub *h, guint i, char *buf)
{
    ssize_t n = recv(g_array_index(h->clients, int, i), buf, HUB_BUFFER, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (n <= 0) {
        drop_client(h, i);
        return true;
    }
    return send_all(h->upstream, buf, (size_t)n) == 0;
}

/* Under hubs_lock: the hub leaves the table when nobody is left or
 * joining, or when its guest ended; later joins start a new one. */
static bool leave_table(Hub *h, bool guest_ended)
{
    if (!guest_ended && (h->clients->len || h->joining->len))
        return false;
    if (g_hash_table_lookup(hubs, h->key) == h)
        g_hash_table_remove(hubs, h->key);
    return true;
}

static gpointer hub_run(gpointer data)
{
    Hub *h = data;
    g_autofree char *buf = g_malloc(HUB_BUFFER);
    g_autoptr(GArray) polled = g_array_new(FALSE, FALSE, sizeof(struct pollfd));
    bool guest_ended = false;
    for (;;) {
        g_mutex_lock(&hubs_lock);
        take_joining(h);
        bool done = leave_table(h, guest_ended);
        g_mutex_unlock(&hubs_lock);
        if (done)
            break;
        g_array_set_size(polled, 0);
        struct pollfd head[2] = {{.fd = h->upstream, .events = POLLIN}, {.fd = h->wake, .events = POLLIN}};
        g_array_append_vals(polled, head, 2);
        for (guint i = 0; i < h->clients->len; i++) {
            struct pollfd p = {.fd = g_array_index(h->clients, int, i), .events = POLLIN};
            g_array_append_val(polled, p);
        }
        struct pollfd *pf = (struct pollfd *)polled->data;
        if (poll(pf, polled->len, -1) < 0) {
            if (errno == EINTR)
                continue;
            guest_ended = true;
            continue;
        }
        guint polled_clients = polled->len - 2;
        if (pf[0].revents && !from_guest(h, buf)) {
            guest_ended = true;
            continue;
        }
        if (h->clients->len != polled_clients)
            continue; /* some were dropped: pf no longer lines up; poll again */
        /* From the last: dropping client i leaves the indices below it. */
        for (guint i = polled_clients; i-- > 0;)
            if (pf[2 + i].revents && !from_client(h, i, buf))
                guest_ended = true;
    }
    hub_free(h);
    return NULL;
}

int serial_hub_join(const char *key, SerialHubConnect connect_guest, void *ctx, XapiError **err)
{
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
        return xapi_error_internal(err, "socketpair: %s", g_strerror(errno));
    g_mutex_lock(&hubs_lock);
    if (!hubs)
        hubs = g_hash_table_new(g_str_hash, g_str_equal);
    Hub *h = g_hash_table_lookup(hubs, key);
    if (!h) {
        int upstream = connect_guest(ctx, err);
        if (upstream < 0) {
            g_mutex_unlock(&hubs_lock);
            close(pair[0]);
            close(pair[1]);
            return -1;
        }
        h = g_new0(Hub, 1);
        h->key = g_strdup(key);
        h->upstream = upstream;
        h->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        h->clients = g_array_new(FALSE, FALSE, sizeof(int));
        h->joining = g_array_new(FALSE, FALSE, sizeof(int));
        g_hash_table_insert(hubs, h->key, h);
        g_thread_unref(g_thread_new("serial-hub", hub_run, h));
    }
    g_array_append_val(h->joining, pair[1]);
    uint64_t one = 1;
    if (write(h->wake, &one, sizeof one) < 0) {
        /* an eventfd's counter cannot overflow here; the hub polls it anyway */
    }
    g_mutex_unlock(&hubs_lock);
    return pair[0];
}
