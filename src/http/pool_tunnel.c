/* pool_tunnel.c: the pool's dqlite tunnel over the HTTP port, both the
 * route and the dialling side (see pool_tunnel.h). */
#include "pool_tunnel.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dqlite_node.h"
#include "pool_secret.h"

#define NONCE_WINDOW_S 60

static struct {
    GMutex lock;
    char *state_dir;
    char *bind;
    GHashTable *seen; /* nonce -> its unix time */
} tunnel;

void pool_tunnel_configure(const char *state_dir, const char *node_bind_address)
{
    g_mutex_lock(&tunnel.lock);
    g_free(tunnel.state_dir);
    g_free(tunnel.bind);
    tunnel.state_dir = g_strdup(state_dir);
    tunnel.bind = g_strdup(node_bind_address);
    g_mutex_unlock(&tunnel.lock);
}

bool pool_tunnel_route(const char *method, const char *url)
{
    return strcmp(url, "/pool/dqlite") == 0;
}

char *pool_tunnel_mac(const char *secret, const char *role, const char *nonce)
{
    g_autofree char *text = g_strdup_printf("dqlite-%s %s", role, nonce);
    return g_compute_hmac_for_string(G_CHECKSUM_SHA256, (const guchar *)secret, strlen(secret),
                                     text, -1);
}

static gboolean expired(gpointer key, gpointer value, gpointer now)
{
    return *(gint64 *)now - GPOINTER_TO_SIZE(value) > NONCE_WINDOW_S;
}

int pool_tunnel_check(const char *secret, const char *nonce, const char *auth, gint64 now)
{
    if (!nonce || !auth)
        return -1;
    gint64 at = g_ascii_strtoll(nonce, NULL, 10);
    if (at <= 0 || ABS(now - at) > NONCE_WINDOW_S || !strchr(nonce, '-') || strlen(nonce) > 64)
        return -1;
    g_autofree char *want = pool_tunnel_mac(secret, "client", nonce);
    if (!pool_secret_equal(want, auth))
        return -1;
    g_mutex_lock(&tunnel.lock);
    if (!tunnel.seen)
        tunnel.seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_hash_table_foreach_remove(tunnel.seen, expired, &now);
    bool replay = g_hash_table_contains(tunnel.seen, nonce);
    if (!replay)
        g_hash_table_insert(tunnel.seen, g_strdup(nonce), GSIZE_TO_POINTER((gsize)at));
    g_mutex_unlock(&tunnel.lock);
    return replay ? -1 : 0;
}

static enum MHD_Result refuse(struct MHD_Connection *conn, unsigned status, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Copies both ways until either side ends (then both are shut down). */
static void splice_both(int a, int b)
{
    char buf[64 * 1024];
    struct pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    for (;;) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        for (int i = 0; i < 2; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t r = recv(p[i].fd, buf, sizeof buf, 0);
            if (r <= 0 || send_all(p[1 - i].fd, buf, (size_t)r) < 0) {
                shutdown(a, SHUT_RDWR);
                shutdown(b, SHUT_RDWR);
                return;
            }
        }
    }
}

enum MHD_Result pool_tunnel_serve(struct MHD_Connection *conn)
{
    if (MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION))
        return refuse(conn, MHD_HTTP_NOT_IMPLEMENTED, "The dqlite tunnel runs on the plain HTTP port\n");
    const char *upgrade = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Upgrade");
    const char *nonce = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Pool-Nonce");
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Pool-Auth");
    if (!upgrade || g_ascii_strcasecmp(upgrade, "dqlite") != 0)
        return refuse(conn, MHD_HTTP_UPGRADE_REQUIRED, "Upgrade: dqlite required\n");
    g_mutex_lock(&tunnel.lock);
    g_autofree char *state_dir = g_strdup(tunnel.state_dir);
    g_autofree char *bind = g_strdup(tunnel.bind);
    g_mutex_unlock(&tunnel.lock);
    if (!state_dir || !bind)
        return refuse(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "No dqlite node runs on this host\n");
    g_autofree char *secret = pool_secret_get(state_dir, NULL);
    if (!secret || pool_tunnel_check(secret, nonce, auth, g_get_real_time() / G_USEC_PER_SEC) < 0)
        return refuse(conn, MHD_HTTP_FORBIDDEN, "Forbidden\n");
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!info)
        return MHD_NO;
    int node = pool_dqlite_dial_abstract(bind);
    if (node < 0)
        return refuse(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "The dqlite node does not answer\n");
    int fd = info->connect_fd;
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    g_autofree char *proof = pool_tunnel_mac(secret, "server", nonce);
    g_autofree char *answer = g_strdup_printf("HTTP/1.1 101 Switching Protocols\r\n"
                                              "Connection: Upgrade\r\nUpgrade: dqlite\r\n"
                                              "X-Pool-Proof: %s\r\n\r\n", proof);
    if (send_all(fd, answer, strlen(answer)) == 0)
        splice_both(fd, node);
    close(node);
    return MHD_NO; /* MHD closes the connection */
}

/* How long a connect may take (XAPI's master_connection_default_timeout):
 * a host cut off answers no SYN, and the kernel's own limit is minutes. */
#define CONNECT_TIMEOUT_MS 10000

/* A blocking socket connected to a within CONNECT_TIMEOUT_MS, or -1. */
static int connect_within(const struct addrinfo *a)
{
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0)
        return -1;
    int rc = connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc < 0 && errno == EINPROGRESS) {
        struct pollfd p = {fd, POLLOUT, 0};
        int error = 0;
        socklen_t len = sizeof error;
        rc = poll(&p, 1, CONNECT_TIMEOUT_MS);
        if (rc == 0)
            error = ETIMEDOUT;
        else if (rc > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
            error = errno;
        rc = rc < 0 || error ? -1 : 0;
        if (error)
            errno = error;
    }
    if (rc < 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int pool_tunnel_dial_tcp(const char *address)
{
    g_autofree char *host = NULL;
    const char *colon = strrchr(address, ':');
    if (!colon) {
        errno = EINVAL;
        return -1;
    }
    host = g_strndup(address, (gsize)(colon - address));
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0) {
        errno = EHOSTUNREACH;
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next)
        fd = connect_within(a);
    freeaddrinfo(res);
    return fd;
}

/* Reads the answer's head byte by byte: nothing of dqlite's stream that
 * follows may be taken from the socket. */
static char *read_head(int fd)
{
    GString *head = g_string_new(NULL);
    struct pollfd p = {fd, POLLIN, 0};
    while (head->len < 4096 && !g_str_has_suffix(head->str, "\r\n\r\n")) {
        char c;
        if (poll(&p, 1, 5000) <= 0 || recv(fd, &c, 1, 0) != 1) {
            g_string_free(head, TRUE);
            return NULL;
        }
        g_string_append_c(head, c);
    }
    return g_string_free(head, FALSE);
}

int pool_tunnel_dial(void *state_dir, const char *address, int *out)
{
    g_autofree char *secret = pool_secret_get(state_dir, NULL);
    if (!secret) {
        errno = EACCES;
        return -1;
    }
    unsigned char raw[16];
    if (getrandom(raw, sizeof raw, 0) != sizeof raw)
        return -1;
    g_autofree char *rand_hex = g_malloc0(2 * sizeof raw + 1);
    for (size_t i = 0; i < sizeof raw; i++)
        g_snprintf(rand_hex + 2 * i, 3, "%02x", raw[i]);
    g_autofree char *nonce =
        g_strdup_printf("%" G_GINT64_FORMAT "-%s", g_get_real_time() / G_USEC_PER_SEC, rand_hex);
    g_autofree char *auth = pool_tunnel_mac(secret, "client", nonce);
    g_autofree char *proof = pool_tunnel_mac(secret, "server", nonce);
    g_autofree char *want = g_strdup_printf("\r\nX-Pool-Proof: %s\r\n", proof);
    g_autofree char *head = NULL;
    int fd = pool_tunnel_dial_tcp(address);
    if (fd < 0)
        return -1;
    g_autofree char *request = g_strdup_printf(
        "GET /pool/dqlite HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: dqlite\r\n"
        "X-Pool-Nonce: %s\r\nX-Pool-Auth: %s\r\n\r\n", address, nonce, auth);
    if (send_all(fd, request, strlen(request)) < 0 || !(head = read_head(fd)))
        goto fail;
    if (!g_str_has_prefix(head, "HTTP/1.1 101 ") || !strstr(head, want)) {
        errno = EACCES;
        goto fail;
    }
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    *out = fd;
    return 0;
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}
