/* cli_wire.c: the thin CLI protocol's framing on the client's socket. */
#include "cli_wire.h"

#include <errno.h>
#include <glib.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

/* Longer frames than this are not from a CLI client. */
#define CLI_FRAME_LIMIT (16 * 1024 * 1024)

/* -1 on an error or after idle_ms of silence. */
static int wait_for(CliWire *w, short events)
{
    struct pollfd pf = {.fd = w->fd, .events = events};
    int n;
    while ((n = poll(&pf, 1, w->idle_ms > 0 ? w->idle_ms : -1)) < 0)
        if (errno != EINTR)
            return -1;
    return n == 0 ? -1 : 0;
}

/* One send (out) or receive of up to len bytes, waiting while the socket
 * would block: > 0 bytes moved, 0 at the peer's end, < 0 on an error (-1,
 * or GnuTLS's code), -1 once the connection is broken. */
static ssize_t transfer_some(CliWire *w, char *buf, size_t len, bool out)
{
    while (!w->broken) {
        ssize_t n;
        bool again;
        if (w->tls) {
            n = out ? gnutls_record_send(w->tls, buf, len) : gnutls_record_recv(w->tls, buf, len);
            again = n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED;
        } else {
            n = out ? send(w->fd, buf, len, MSG_NOSIGNAL) : recv(w->fd, buf, len, 0);
            again = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
        }
        if (!again)
            return n;
        if (wait_for(w, out ? POLLOUT : POLLIN) < 0)
            w->broken = true;
    }
    return -1;
}

/* All len bytes, or -1 with the connection broken (the peer's end too). */
static int transfer_all(CliWire *w, char *buf, size_t len, bool out)
{
    size_t done = 0;
    while (!w->broken && done < len) {
        ssize_t n = transfer_some(w, buf + done, len - done, out);
        if (n <= 0)
            w->broken = true;
        else
            done += (size_t)n;
    }
    return w->broken ? -1 : 0;
}

int cli_wire_write(CliWire *w, const void *buf, size_t len)
{
    /* transfer_all only reads the bytes when it sends them. */
    return transfer_all(w, (char *)buf, len, true);
}

int cli_wire_read(CliWire *w, void *buf, size_t len)
{
    return transfer_all(w, buf, len, false);
}

ssize_t cli_wire_read_some(CliWire *w, void *buf, size_t len)
{
    ssize_t n = transfer_some(w, buf, len, false);
    if (w->tls && n == GNUTLS_E_PREMATURE_TERMINATION)
        return 0;
    if (n < 0) {
        w->broken = true;
        return -1;
    }
    return n;
}

static void put_int(GString *b, int32_t v)
{
    uint32_t u = (uint32_t)v;
    char le[4] = {(char)(u & 0xff), (char)((u >> 8) & 0xff), (char)((u >> 16) & 0xff),
                  (char)((u >> 24) & 0xff)};
    g_string_append_len(b, le, 4);
}

static void put_string(GString *b, const char *s)
{
    size_t len = strlen(s);
    put_int(b, (int32_t)len);
    g_string_append_len(b, s, (gssize)len);
}

static int32_t get_int(const unsigned char *p)
{
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24);
}

/* One frame: its length, then the payload. */
static int send_frame(CliWire *w, GString *payload)
{
    g_autoptr(GString) frame = g_string_sized_new(payload->len + 4);
    put_int(frame, (int32_t)payload->len);
    g_string_append_len(frame, payload->str, (gssize)payload->len);
    return cli_wire_write(w, frame->str, frame->len);
}

static GString *command(int tag)
{
    GString *b = g_string_new(NULL);
    put_int(b, CLI_MSG_COMMAND);
    put_int(b, tag);
    return b;
}

static int send_string_command(CliWire *w, int tag, const char *s)
{
    g_autoptr(GString) b = command(tag);
    put_string(b, s);
    return send_frame(w, b);
}

int cli_print(CliWire *w, const char *text)
{
    return send_string_command(w, CLI_CMD_PRINT, text);
}

int cli_print_stderr(CliWire *w, const char *text)
{
    return send_string_command(w, CLI_CMD_PRINT_STDERR, text);
}

int cli_load(CliWire *w, const char *filename)
{
    return send_string_command(w, CLI_CMD_LOAD, filename);
}

int cli_http_connect(CliWire *w, const char *url)
{
    return send_string_command(w, CLI_CMD_HTTP_CONNECT, url);
}

int cli_exit(CliWire *w, int code)
{
    g_autoptr(GString) b = command(CLI_CMD_EXIT);
    put_int(b, code);
    return send_frame(w, b);
}

int cli_prompt(CliWire *w)
{
    g_autoptr(GString) b = command(CLI_CMD_PROMPT);
    return send_frame(w, b);
}

int cli_error(CliWire *w, const char *code, const char *const *params, unsigned n)
{
    g_autoptr(GString) b = command(CLI_CMD_ERROR);
    put_string(b, code);
    put_int(b, (int32_t)n);
    for (unsigned i = 0; i < n; i++)
        put_string(b, params[i]);
    return send_frame(w, b);
}

static int send_two_strings(CliWire *w, int tag, const char *a, const char *b2)
{
    g_autoptr(GString) b = command(tag);
    put_string(b, a);
    put_string(b, b2);
    return send_frame(w, b);
}

int cli_http_put(CliWire *w, const char *filename, const char *url)
{
    return send_two_strings(w, CLI_CMD_HTTP_PUT, filename, url);
}

int cli_http_get(CliWire *w, const char *filename, const char *url)
{
    return send_two_strings(w, CLI_CMD_HTTP_GET, filename, url);
}

int cli_wire_handshake(CliWire *w)
{
    g_autoptr(GString) hello = g_string_new(CLI_PROTOCOL_PREFIX);
    put_int(hello, CLI_PROTOCOL_MAJOR);
    put_int(hello, CLI_PROTOCOL_MINOR);
    if (cli_wire_write(w, hello->str, hello->len) < 0)
        return -1;
    unsigned char answer[sizeof CLI_PROTOCOL_PREFIX - 1 + 8];
    if (cli_wire_read(w, answer, sizeof answer) < 0)
        return -1;
    if (memcmp(answer, CLI_PROTOCOL_PREFIX, sizeof CLI_PROTOCOL_PREFIX - 1) != 0)
        return -1;
    return get_int(answer + sizeof CLI_PROTOCOL_PREFIX - 1) == CLI_PROTOCOL_MAJOR ? 0 : -1;
}

/* The next frame's payload (caller frees), or NULL. */
static unsigned char *read_frame(CliWire *w, size_t *len)
{
    unsigned char head[4];
    if (cli_wire_read(w, head, 4) < 0)
        return NULL;
    int32_t n = get_int(head);
    if (n < 8 || n > CLI_FRAME_LIMIT) {
        w->broken = true;
        return NULL;
    }
    unsigned char *p = g_malloc((size_t)n);
    if (cli_wire_read(w, p, (size_t)n) < 0) {
        g_free(p);
        return NULL;
    }
    *len = (size_t)n;
    return p;
}

/* The next frame if it is a message of type (caller frees), or NULL with
 * the connection broken. */
static unsigned char *read_message(CliWire *w, int32_t type, size_t *len)
{
    unsigned char *p = read_frame(w, len);
    if (p && get_int(p) != type) {
        w->broken = true;
        g_clear_pointer(&p, g_free);
    }
    return p;
}

int cli_read_response(CliWire *w)
{
    for (;;) {
        size_t len = 0;
        g_autofree unsigned char *p = read_message(w, CLI_MSG_RESPONSE, &len);
        if (!p)
            return -1;
        int32_t r = get_int(p + 4);
        if (r == CLI_RESPONSE_WAIT)
            continue;
        if (r == CLI_RESPONSE_OK || r == CLI_RESPONSE_FAILED)
            return r;
        w->broken = true;
        return -1;
    }
}

int cli_read_blob(CliWire *w, GString *out, size_t limit)
{
    for (;;) {
        size_t len = 0;
        g_autofree unsigned char *p = read_message(w, CLI_MSG_BLOB, &len);
        if (!p)
            return -1;
        int32_t tag = get_int(p + 4);
        if (tag == CLI_BLOB_END)
            return 0;
        if (tag != CLI_BLOB_CHUNK || len < 12) {
            w->broken = true;
            return -1;
        }
        int32_t n = get_int(p + 8);
        if (n < 0 || out->len + (size_t)n > limit) {
            w->broken = true;
            return -1;
        }
        size_t at = out->len;
        g_string_set_size(out, at + (size_t)n);
        if (cli_wire_read(w, out->str + at, (size_t)n) < 0)
            return -1;
    }
}
