/* dqlite_wire.c: encoding, decoding and one blocking connection of
 * dqlite's client protocol (see dqlite_wire.h). */
#include "dqlite_wire.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- encoding ------------------------------------------------------------ */

static void put_u64(GByteArray *out, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    g_byte_array_append(out, b, 8);
}

static void pad_to_word(GByteArray *out, guint from)
{
    static const uint8_t zeros[8];
    guint len = out->len - from;
    if (len % 8)
        g_byte_array_append(out, zeros, 8 - len % 8);
}

static void put_text(GByteArray *out, const char *s)
{
    guint from = out->len;
    g_byte_array_append(out, (const uint8_t *)s, (guint)strlen(s) + 1);
    pad_to_word(out, from);
}

/* Starts a message: a header whose length is filled by end_message. */
static guint begin_message(GByteArray *out, uint8_t type, uint8_t schema)
{
    guint at = out->len;
    uint8_t header[8] = {0, 0, 0, 0, type, schema, 0, 0};
    g_byte_array_append(out, header, 8);
    return at;
}

static void end_message(GByteArray *out, guint at)
{
    uint32_t words = (out->len - at - 8) / 8;
    for (int i = 0; i < 4; i++)
        out->data[at + i] = (uint8_t)(words >> (8 * i));
}

void dqlite_wire_handshake(GByteArray *out) { put_u64(out, DQLITE_WIRE_PROTOCOL); }

static void encode_u64_request(GByteArray *out, uint8_t type, uint64_t v)
{
    guint at = begin_message(out, type, 0);
    put_u64(out, v);
    end_message(out, at);
}

void dqlite_wire_encode_leader(GByteArray *out) { encode_u64_request(out, DQLITE_WIRE_LEADER, 0); }
void dqlite_wire_encode_client(GByteArray *out, uint64_t id) { encode_u64_request(out, DQLITE_WIRE_CLIENT, id); }
void dqlite_wire_encode_remove(GByteArray *out, uint64_t id) { encode_u64_request(out, DQLITE_WIRE_REMOVE, id); }
void dqlite_wire_encode_transfer(GByteArray *out, uint64_t id) { encode_u64_request(out, DQLITE_WIRE_TRANSFER, id); }
/* Format 1: id, address and role of each server. */
void dqlite_wire_encode_cluster(GByteArray *out) { encode_u64_request(out, DQLITE_WIRE_CLUSTER, 1); }

void dqlite_wire_encode_open(GByteArray *out, const char *name)
{
    guint at = begin_message(out, DQLITE_WIRE_OPEN, 0);
    put_text(out, name);
    put_u64(out, 0);          /* flags: the server's defaults */
    put_text(out, "volatile"); /* the VFS name, which the server ignores */
    end_message(out, at);
}

void dqlite_wire_encode_sql(GByteArray *out, uint8_t type, uint64_t db, const char *sql,
                            const char *const *params, unsigned n_params)
{
    g_return_if_fail(n_params <= DQLITE_WIRE_MAX_PARAMS);
    guint at = begin_message(out, type, 0);
    put_u64(out, db);
    put_text(out, sql);
    if (n_params > 0) {
        guint from = out->len;
        uint8_t count = (uint8_t)n_params;
        g_byte_array_append(out, &count, 1);
        for (unsigned i = 0; i < n_params; i++) {
            uint8_t t = params[i] ? DQLITE_WIRE_TEXT : DQLITE_WIRE_NULL;
            g_byte_array_append(out, &t, 1);
        }
        pad_to_word(out, from);
        for (unsigned i = 0; i < n_params; i++) {
            if (params[i])
                put_text(out, params[i]);
            else
                put_u64(out, 0);
        }
    }
    end_message(out, at);
}

void dqlite_wire_encode_add(GByteArray *out, uint64_t id, const char *address)
{
    guint at = begin_message(out, DQLITE_WIRE_ADD, 0);
    put_u64(out, id);
    put_text(out, address);
    end_message(out, at);
}

void dqlite_wire_encode_assign(GByteArray *out, uint64_t id, uint64_t role)
{
    guint at = begin_message(out, DQLITE_WIRE_ASSIGN, 0);
    put_u64(out, id);
    put_u64(out, role);
    end_message(out, at);
}

/* ---- decoding ------------------------------------------------------------ */

typedef struct {
    const uint8_t *p;
    size_t left;
} Cursor;

static int get_u64(Cursor *c, uint64_t *v)
{
    if (c->left < 8)
        return -1;
    uint64_t r = 0;
    for (int i = 7; i >= 0; i--)
        r = (r << 8) | c->p[i];
    *v = r;
    c->p += 8;
    c->left -= 8;
    return 0;
}

static int peek_u64(const Cursor *c, uint64_t *v)
{
    Cursor copy = *c;
    return get_u64(&copy, v);
}

/* Points *s into the body (NUL-terminated there), skips the padding. */
static int get_text(Cursor *c, const char **s)
{
    const uint8_t *nul = memchr(c->p, 0, c->left);
    if (!nul)
        return -1;
    size_t len = (size_t)(nul - c->p) + 1;
    size_t padded = (len + 7) & ~(size_t)7;
    if (padded > c->left)
        return -1;
    *s = (const char *)c->p;
    c->p += padded;
    c->left -= padded;
    return 0;
}

static int skip(Cursor *c, size_t n)
{
    if (n > c->left)
        return -1;
    c->p += n;
    c->left -= n;
    return 0;
}

int dqlite_wire_decode_failure(const uint8_t *body, size_t len, uint64_t *code, char **message)
{
    Cursor c = {body, len};
    const char *m;
    if (get_u64(&c, code) < 0 || get_text(&c, &m) < 0)
        return -1;
    *message = g_strdup(m);
    return 0;
}

int dqlite_wire_decode_server(const uint8_t *body, size_t len, uint64_t *id, char **address)
{
    Cursor c = {body, len};
    const char *a;
    if (get_u64(&c, id) < 0 || get_text(&c, &a) < 0)
        return -1;
    *address = g_strdup(a);
    return 0;
}

int dqlite_wire_decode_db(const uint8_t *body, size_t len, uint32_t *db)
{
    Cursor c = {body, len};
    uint64_t v;
    if (get_u64(&c, &v) < 0)
        return -1;
    *db = (uint32_t)v; /* the id, then 32 bits of padding */
    return 0;
}

int dqlite_wire_decode_result(const uint8_t *body, size_t len, uint64_t *last_id,
                              uint64_t *rows_affected)
{
    Cursor c = {body, len};
    return get_u64(&c, last_id) < 0 || get_u64(&c, rows_affected) < 0 ? -1 : 0;
}

void dqlite_server_info_free(gpointer info)
{
    DqliteServerInfo *s = info;
    if (!s)
        return;
    g_free(s->address);
    g_free(s);
}

GPtrArray *dqlite_wire_decode_servers(const uint8_t *body, size_t len)
{
    Cursor c = {body, len};
    uint64_t n;
    if (get_u64(&c, &n) < 0 || n > len / 16)
        return NULL;
    GPtrArray *servers = g_ptr_array_new_with_free_func(dqlite_server_info_free);
    for (uint64_t i = 0; i < n; i++) {
        DqliteServerInfo *s = g_new0(DqliteServerInfo, 1);
        const char *address;
        g_ptr_array_add(servers, s);
        if (get_u64(&c, &s->id) < 0 || get_text(&c, &address) < 0 || get_u64(&c, &s->role) < 0) {
            g_ptr_array_free(servers, TRUE);
            return NULL;
        }
        s->address = g_strdup(address);
    }
    return servers;
}

/* One value of a row, rendered as text into *out (NULL for NULL); scratch
 * holds the rendering of numbers. */
static int get_value(Cursor *c, unsigned type, const char **out, char scratch[32])
{
    uint64_t v;
    switch (type) {
    case DQLITE_WIRE_INTEGER:
    case DQLITE_WIRE_UNIXTIME:
    case DQLITE_WIRE_BOOLEAN:
        if (get_u64(c, &v) < 0)
            return -1;
        g_snprintf(scratch, 32, "%" G_GINT64_FORMAT, (gint64)v);
        *out = scratch;
        return 0;
    case DQLITE_WIRE_FLOAT: {
        if (get_u64(c, &v) < 0)
            return -1;
        double d;
        memcpy(&d, &v, sizeof d);
        g_ascii_dtostr(scratch, 32, d);
        *out = scratch;
        return 0;
    }
    case DQLITE_WIRE_TEXT:
    case DQLITE_WIRE_ISO8601:
        return get_text(c, out);
    case DQLITE_WIRE_NULL:
        *out = NULL;
        return get_u64(c, &v);
    case DQLITE_WIRE_BLOB: /* we store no blobs; skipped as NULL */
        if (get_u64(c, &v) < 0 || v > c->left)
            return -1;
        *out = NULL;
        return skip(c, (v + 7) & ~(uint64_t)7);
    default:
        return -1;
    }
}

int dqlite_wire_decode_rows(const uint8_t *body, size_t len, DqliteRowFn fn, void *ctx,
                            bool *more)
{
    Cursor c = {body, len};
    uint64_t n;
    if (get_u64(&c, &n) < 0 || n == 0 || n > len)
        return -1;
    for (uint64_t i = 0; i < n; i++) {
        const char *name;
        if (get_text(&c, &name) < 0)
            return -1;
    }
    g_autofree const char **values = g_new0(const char *, n);
    g_autofree char *scratch = g_malloc0(32 * n);
    size_t header = ((n + 1) / 2 + 7) & ~(size_t)7;
    for (;;) {
        uint64_t marker;
        if (peek_u64(&c, &marker) < 0)
            return -1;
        if (marker == DQLITE_WIRE_ROWS_DONE || marker == DQLITE_WIRE_ROWS_PART) {
            *more = marker == DQLITE_WIRE_ROWS_PART;
            return 0;
        }
        const uint8_t *types = c.p;
        if (skip(&c, header) < 0)
            return -1;
        for (uint64_t i = 0; i < n; i++) {
            unsigned type = (i % 2 == 0) ? (types[i / 2] & 0x0f) : (types[i / 2] >> 4);
            if (get_value(&c, type, &values[i], scratch + 32 * i) < 0)
                return -1;
        }
        if (fn && fn(ctx, (unsigned)n, values) != 0)
            return -2;
    }
}

/* ---- the connection ------------------------------------------------------ */

struct DqliteConn {
    int fd;
    char *address;
    int timeout_ms;
    uint32_t db;
    bool broken;
    uint64_t failure_code;
    GByteArray *out;
    GByteArray *in;
};

const char *dqlite_conn_address(const DqliteConn *c) { return c->address; }
uint64_t dqlite_conn_failure_code(const DqliteConn *c) { return c->failure_code; }
bool dqlite_conn_usable(const DqliteConn *c) { return !c->broken; }

static int conn_fail(DqliteConn *c, XapiError **err, const char *what, int errnum)
{
    c->broken = true;
    return xapi_error_internal(err, "dqlite: %s %s: %s", what, c->address,
                               errnum ? g_strerror(errnum) : "connection closed");
}

static int wait_fd(DqliteConn *c, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = (deadline - g_get_monotonic_time()) / 1000;
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd p = {c->fd, events, 0};
        int rc = poll(&p, 1, (int)left);
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

static int send_all(DqliteConn *c, const uint8_t *p, size_t n, int64_t deadline)
{
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_fd(c, POLLOUT, deadline) < 0)
                return -1;
        } else {
            return -1;
        }
    }
    return 0;
}

static int recv_all(DqliteConn *c, uint8_t *p, size_t n, int64_t deadline)
{
    while (n > 0) {
        ssize_t r = recv(c->fd, p, n, MSG_DONTWAIT);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
        } else if (r == 0) {
            errno = 0;
            return -1;
        } else if (errno == EAGAIN || errno == EINTR) {
            if (wait_fd(c, POLLIN, deadline) < 0)
                return -1;
        } else {
            return -1;
        }
    }
    return 0;
}

/* Reads one response into c->in; returns its type or -1. A FAILURE sets
 * the error (and c->failure_code) and returns -1. */
static int read_response(DqliteConn *c, int64_t deadline, const char *what, XapiError **err)
{
    uint8_t header[8];
    if (recv_all(c, header, 8, deadline) < 0)
        return conn_fail(c, err, what, errno);
    uint32_t words = header[0] | header[1] << 8 | header[2] << 16 | (uint32_t)header[3] << 24;
    if (words > (64u << 20) / 8)
        return conn_fail(c, err, what, EPROTO);
    g_byte_array_set_size(c->in, words * 8);
    if (recv_all(c, c->in->data, c->in->len, deadline) < 0)
        return conn_fail(c, err, what, errno);
    if (header[4] == DQLITE_WIRE_FAILURE) {
        g_autofree char *message = NULL;
        uint64_t code = 0;
        if (dqlite_wire_decode_failure(c->in->data, c->in->len, &code, &message) < 0)
            return conn_fail(c, err, what, EPROTO);
        c->failure_code = code;
        return xapi_error_internal(err, "dqlite: %s: %s (code %" G_GUINT64_FORMAT ")", what,
                                   message, (guint64)code);
    }
    return header[4];
}

/* Sends c->out and reads the response, which must be of type expect. */
static int round_trip(DqliteConn *c, int expect, const char *what, XapiError **err)
{
    if (c->broken)
        return xapi_error_internal(err, "dqlite: %s: connection to %s is broken", what, c->address);
    c->failure_code = 0;
    int64_t deadline = g_get_monotonic_time() + (int64_t)c->timeout_ms * 1000;
    int rc = send_all(c, c->out->data, c->out->len, deadline);
    g_byte_array_set_size(c->out, 0);
    if (rc < 0)
        return conn_fail(c, err, what, errno);
    int type = read_response(c, deadline, what, err);
    if (type < 0)
        return -1;
    if (type != expect)
        return conn_fail(c, err, what, EPROTO);
    return 0;
}

DqliteConn *dqlite_conn_adopt(int fd, const char *address, int timeout_ms, XapiError **err)
{
    DqliteConn *c = g_new0(DqliteConn, 1);
    c->fd = fd;
    c->address = g_strdup(address);
    c->timeout_ms = timeout_ms;
    c->out = g_byte_array_new();
    c->in = g_byte_array_new();
    dqlite_wire_handshake(c->out);
    int64_t deadline = g_get_monotonic_time() + (int64_t)timeout_ms * 1000;
    int rc = send_all(c, c->out->data, c->out->len, deadline);
    g_byte_array_set_size(c->out, 0);
    if (rc < 0) {
        conn_fail(c, err, "handshake with", errno);
        dqlite_conn_close(c);
        return NULL;
    }
    return c;
}

DqliteConn *dqlite_conn_open(DqliteConnectFn connect, void *ctx, const char *address,
                             int timeout_ms, XapiError **err)
{
    int fd = -1;
    if (connect(ctx, address, &fd) != 0 || fd < 0) {
        xapi_error_internal(err, "dqlite: cannot connect to %s: %s", address, g_strerror(errno));
        return NULL;
    }
    return dqlite_conn_adopt(fd, address, timeout_ms, err);
}

void dqlite_conn_close(DqliteConn *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    g_free(c->address);
    g_byte_array_free(c->out, TRUE);
    g_byte_array_free(c->in, TRUE);
    g_free(c);
}

int dqlite_conn_leader(DqliteConn *c, uint64_t *id, char **address, XapiError **err)
{
    dqlite_wire_encode_leader(c->out);
    if (round_trip(c, DQLITE_WIRE_SERVER, "leader", err) < 0)
        return -1;
    if (dqlite_wire_decode_server(c->in->data, c->in->len, id, address) < 0)
        return conn_fail(c, err, "leader", EPROTO);
    return 0;
}

int dqlite_conn_open_db(DqliteConn *c, const char *name, XapiError **err)
{
    dqlite_wire_encode_open(c->out, name);
    if (round_trip(c, DQLITE_WIRE_DB, "open", err) < 0)
        return -1;
    if (dqlite_wire_decode_db(c->in->data, c->in->len, &c->db) < 0)
        return conn_fail(c, err, "open", EPROTO);
    return 0;
}

int dqlite_conn_exec(DqliteConn *c, const char *sql, const char *const *params, unsigned n,
                     uint64_t *rows_affected, XapiError **err)
{
    if (n > DQLITE_WIRE_MAX_PARAMS)
        return xapi_error_internal(err, "dqlite: %u parameters in one statement", n);
    dqlite_wire_encode_sql(c->out, DQLITE_WIRE_EXEC_SQL, c->db, sql, params, n);
    if (round_trip(c, DQLITE_WIRE_RESULT, "exec", err) < 0)
        return -1;
    uint64_t last_id, affected;
    if (dqlite_wire_decode_result(c->in->data, c->in->len, &last_id, &affected) < 0)
        return conn_fail(c, err, "exec", EPROTO);
    if (rows_affected)
        *rows_affected = affected;
    return 0;
}

int dqlite_conn_query(DqliteConn *c, const char *sql, const char *const *params, unsigned n,
                      DqliteRowFn fn, void *ctx, XapiError **err)
{
    if (n > DQLITE_WIRE_MAX_PARAMS)
        return xapi_error_internal(err, "dqlite: %u parameters in one statement", n);
    dqlite_wire_encode_sql(c->out, DQLITE_WIRE_QUERY_SQL, c->db, sql, params, n);
    if (round_trip(c, DQLITE_WIRE_ROWS, "query", err) < 0)
        return -1;
    int64_t deadline = g_get_monotonic_time() + (int64_t)c->timeout_ms * 1000;
    int result = 0;
    for (;;) {
        bool more = false;
        int rc = dqlite_wire_decode_rows(c->in->data, c->in->len, result ? NULL : fn, ctx, &more);
        if (rc == -1)
            return conn_fail(c, err, "query", EPROTO);
        if (rc == -2)
            result = -1; /* fn stopped: read the rest so the connection stays in step */
        if (!more)
            return result;
        int type = read_response(c, deadline, "query", err);
        if (type < 0)
            return -1;
        if (type != DQLITE_WIRE_ROWS)
            return conn_fail(c, err, "query", EPROTO);
    }
}

static int empty_request(DqliteConn *c, const char *what, XapiError **err)
{
    return round_trip(c, DQLITE_WIRE_EMPTY, what, err);
}

int dqlite_conn_add(DqliteConn *c, uint64_t id, const char *address, XapiError **err)
{
    dqlite_wire_encode_add(c->out, id, address);
    return empty_request(c, "add", err);
}

int dqlite_conn_assign(DqliteConn *c, uint64_t id, uint64_t role, XapiError **err)
{
    dqlite_wire_encode_assign(c->out, id, role);
    return empty_request(c, "assign", err);
}

int dqlite_conn_remove(DqliteConn *c, uint64_t id, XapiError **err)
{
    dqlite_wire_encode_remove(c->out, id);
    return empty_request(c, "remove", err);
}

int dqlite_conn_transfer(DqliteConn *c, uint64_t id, XapiError **err)
{
    dqlite_wire_encode_transfer(c->out, id);
    return empty_request(c, "transfer", err);
}

GPtrArray *dqlite_conn_cluster(DqliteConn *c, XapiError **err)
{
    dqlite_wire_encode_cluster(c->out);
    if (round_trip(c, DQLITE_WIRE_SERVERS, "cluster", err) < 0)
        return NULL;
    GPtrArray *servers = dqlite_wire_decode_servers(c->in->data, c->in->len);
    if (!servers)
        conn_fail(c, err, "cluster", EPROTO);
    return servers;
}
