/* pool_migrate_http.c: VM.pool_migrate's route between two hosts, both
 * sides (see pool_migrate_http.h). */
#include "pool_migrate_http.h"

#include <errno.h>
#include <glib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "db.h"
#include "pool_client.h"
#include "pool_role.h"
#include "pool_secret.h"
#include "pool_tunnel.h"
#include "vm_migrate.h"

#define NONCE_WINDOW_S 60
#define CATCH_UP_WAIT_S 30
/* The destination's checks may wait for its database (CATCH_UP_WAIT_S). */
#define ANSWER_WAIT_MS 60000

static struct {
    GMutex lock;
    GHashTable *seen; /* nonce -> its unix time */
} nonces;

bool pool_migrate_route(const char *method, const char *url)
{
    (void)method;
    return strcmp(url, "/pool/migrate") == 0;
}

static char *mac(const char *secret, const char *role, const char *nonce, const char *uuid)
{
    g_autofree char *text = g_strdup_printf("migrate-%s %s %s", role, nonce, uuid);
    return g_compute_hmac_for_string(G_CHECKSUM_SHA256, (const guchar *)secret, strlen(secret),
                                     text, -1);
}

static gboolean expired(gpointer key, gpointer value, gpointer now)
{
    (void)key;
    return *(gint64 *)now - GPOINTER_TO_SIZE(value) > NONCE_WINDOW_S;
}

/* 0 when nonce is fresh and unseen and auth right (then remembered). */
static int check_auth(const char *secret, const char *nonce, const char *uuid, const char *auth)
{
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;
    gint64 at = g_ascii_strtoll(nonce, NULL, 10);
    if (at <= 0 || ABS(now - at) > NONCE_WINDOW_S || !strchr(nonce, '-') || strlen(nonce) > 64)
        return -1;
    g_autofree char *want = mac(secret, "client", nonce, uuid);
    if (!pool_secret_equal(want, auth))
        return -1;
    g_mutex_lock(&nonces.lock);
    if (!nonces.seen)
        nonces.seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_hash_table_foreach_remove(nonces.seen, expired, &now);
    bool replay = g_hash_table_contains(nonces.seen, nonce);
    if (!replay)
        g_hash_table_insert(nonces.seen, g_strdup(nonce), GSIZE_TO_POINTER((gsize)at));
    g_mutex_unlock(&nonces.lock);
    return replay ? -1 : 0;
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
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

typedef struct {
    int fd;
    const char *secret, *nonce, *uuid;
    bool accepted;
} Accept;

static int send_accept(void *ctx)
{
    Accept *a = ctx;
    g_autofree char *proof = mac(a->secret, "server", a->nonce, a->uuid);
    g_autofree char *head = g_strdup_printf("HTTP/1.1 101 Switching Protocols\r\n"
                                            "Connection: Upgrade\r\nUpgrade: xapid-migrate\r\n"
                                            "X-Pool-Proof: %s\r\n\r\n", proof);
    a->accepted = true; /* whatever happens now, the link tells the source */
    return send_all(a->fd, head, strlen(head));
}

static char *error_text(const XapiError *e)
{
    GString *s = g_string_new(e->code);
    for (guint i = 0; i < e->params->len; i++)
        g_string_append_printf(s, "\n%s", (char *)e->params->pdata[i]);
    g_string_append_c(s, '\n');
    return g_string_free(s, FALSE);
}

enum MHD_Result pool_migrate_serve(struct MHD_Connection *conn)
{
    if (MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION))
        return answer(conn, MHD_HTTP_NOT_IMPLEMENTED,
                      g_strdup("Migrations run on the plain HTTP port\n"));
    const char *upgrade = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Upgrade");
    const char *uuid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Pool-VM");
    const char *nonce = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Pool-Nonce");
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Pool-Auth");
    const char *gen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, POOL_GENERATION_HEADER);
    if (!upgrade || g_ascii_strcasecmp(upgrade, "xapid-migrate") != 0)
        return answer(conn, MHD_HTTP_UPGRADE_REQUIRED, g_strdup("Upgrade: xapid-migrate required\n"));
    g_autofree char *secret = pool_secret_get(pool_state_dir(), NULL);
    if (!secret || !uuid || !nonce || !auth || check_auth(secret, nonce, uuid, auth) < 0)
        return answer(conn, MHD_HTTP_FORBIDDEN, g_strdup("Forbidden\n"));
    uint64_t generation = gen ? g_ascii_strtoull(gen, NULL, 10) : 0;
    if (generation && !db_wait_for_generation(generation, g_get_monotonic_time() +
                                                           CATCH_UP_WAIT_S * G_USEC_PER_SEC))
        g_warning("pool: a migration starts before the database reached generation %s", gen);
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!info)
        return MHD_NO;
    int on = 1;
    setsockopt(info->connect_fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    Accept a = {info->connect_fd, secret, nonce, uuid, false};
    g_autoptr(XapiError) err = NULL;
    if (vm_migrate_receive(uuid, info->connect_fd, send_accept, &a, &err) < 0) {
        g_message("pool: migration of VM %s here failed: %s %s", uuid, err ? err->code : "",
                  err && err->params->len ? (char *)err->params->pdata[0] : "");
        if (!a.accepted)
            return answer(conn, MHD_HTTP_CONFLICT, error_text(err));
    }
    return MHD_NO; /* MHD closes the connection */
}

/* ---- the source's side ---------------------------------------------------------- */

/* The answer's head, byte by byte (the link's frames follow it), or with
 * its body to the end for a refusal; NULL on silence or a short read. */
static GString *read_answer(int fd)
{
    GString *in = g_string_new(NULL);
    struct pollfd p = {fd, POLLIN, 0};
    while (in->len < 8192 && !g_str_has_suffix(in->str, "\r\n\r\n")) {
        char c;
        if (poll(&p, 1, ANSWER_WAIT_MS) <= 0 || recv(fd, &c, 1, 0) != 1) {
            g_string_free(in, TRUE);
            return NULL;
        }
        g_string_append_c(in, c);
    }
    if (g_str_has_prefix(in->str, "HTTP/1.1 101 "))
        return in;
    char buf[4096];
    ssize_t n;
    while (in->len < 65536 && poll(&p, 1, 5000) > 0 && (n = recv(fd, buf, sizeof buf, 0)) > 0)
        g_string_append_len(in, buf, n);
    return in;
}

/* A 409's body: the destination's XenAPI error. */
static int refusal(const char *answer, XapiError **err)
{
    const char *body = strstr(answer, "\r\n\r\n");
    g_auto(GStrv) lines = g_strsplit(body ? body + 4 : "", "\n", 16);
    guint n = g_strv_length(lines);
    while (n > 0 && !*lines[n - 1])
        n--;
    if (n == 0)
        return xapi_error_internal(err, "the destination refused the migration");
    return xapi_error_setv(err, lines[0], (const char *const *)lines + 1, n - 1);
}

int pool_migrate_dial(const char *endpoint, const char *vm_uuid, uint64_t generation,
                      XapiError **err)
{
    g_autofree char *secret = pool_secret_get(pool_state_dir(), err);
    if (!secret)
        return -1;
    if (!endpoint)
        return xapi_error_internal(err, "the destination host has no address");
    unsigned char raw[16];
    if (getrandom(raw, sizeof raw, 0) != sizeof raw)
        return xapi_error_internal(err, "getrandom: %s", g_strerror(errno));
    g_autofree char *hex = g_malloc0(2 * sizeof raw + 1);
    for (size_t i = 0; i < sizeof raw; i++)
        g_snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    g_autofree char *nonce =
        g_strdup_printf("%" G_GINT64_FORMAT "-%s", g_get_real_time() / G_USEC_PER_SEC, hex);
    g_autofree char *auth = mac(secret, "client", nonce, vm_uuid);
    g_autofree char *proof = mac(secret, "server", nonce, vm_uuid);
    g_autofree char *want = g_strdup_printf("\r\nX-Pool-Proof: %s\r\n", proof);
    int fd = pool_tunnel_dial_tcp(endpoint);
    if (fd < 0)
        return xapi_error_internal(err, "cannot connect to %s: %s", endpoint, g_strerror(errno));
    g_autofree char *request = g_strdup_printf(
        "GET /pool/migrate HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\n"
        "Upgrade: xapid-migrate\r\nX-Pool-VM: %s\r\n" POOL_GENERATION_HEADER
        ": %" G_GUINT64_FORMAT "\r\nX-Pool-Nonce: %s\r\nX-Pool-Auth: %s\r\n\r\n",
        endpoint, vm_uuid, (guint64)generation, nonce, auth);
    GString *in = NULL;
    if (send_all(fd, request, strlen(request)) < 0 || !(in = read_answer(fd))) {
        close(fd);
        return xapi_error_internal(err, "%s did not answer the migration's request", endpoint);
    }
    g_autofree char *text = g_string_free(in, FALSE);
    if (g_str_has_prefix(text, "HTTP/1.1 101 ") && strstr(text, want)) {
        int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        return fd;
    }
    close(fd);
    if (g_str_has_prefix(text, "HTTP/1.1 409 "))
        return refusal(text, err);
    g_autofree char *line = g_strndup(text, strcspn(text, "\r\n"));
    return xapi_error_internal(err, "%s refused the migration: %s", endpoint, line);
}
