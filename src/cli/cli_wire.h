/* cli_wire.h: XAPI's thin CLI protocol (ocaml/xapi-cli-protocol/
 * cli_protocol.ml), the server's side: the greeting, then int32-LE framed
 * messages (Command 9, Response 10, Blob 11), strings as int32 length and
 * bytes. */
#pragma once

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CLI_PROTOCOL_PREFIX "XenSource thin CLI protocol"
#define CLI_PROTOCOL_MAJOR 0
#define CLI_PROTOCOL_MINOR 2

enum {
    CLI_MSG_COMMAND = 9,
    CLI_MSG_RESPONSE = 10,
    CLI_MSG_BLOB = 11,
};

enum {
    CLI_CMD_PRINT = 0,
    CLI_CMD_LOAD = 1,
    CLI_CMD_PROMPT = 3,
    CLI_CMD_EXIT = 4,
    CLI_CMD_HTTP_GET = 12,
    CLI_CMD_HTTP_PUT = 13,
    CLI_CMD_ERROR = 14,
    CLI_CMD_DEBUG = 15,
    CLI_CMD_PRINT_STDERR = 16,
    CLI_CMD_HTTP_CONNECT = 17,
};

enum { CLI_RESPONSE_OK = 5, CLI_RESPONSE_FAILED = 6, CLI_RESPONSE_WAIT = 18 };
enum { CLI_BLOB_CHUNK = 7, CLI_BLOB_END = 8 };

/* The client's connection: its socket (non-blocking, MHD's) and its TLS
 * session or NULL. A write or read error sets broken; later calls fail. */
typedef struct CliWire {
    int fd;
    gnutls_session_t tls;
    bool broken;
    int idle_ms; /* > 0: a read or write waiting longer breaks the connection */
} CliWire;

/* Writes the greeting, reads the client's and checks its major version.
 * 0, or -1 (not a CLI client, or another major version). */
int cli_wire_handshake(CliWire *w);

int cli_print(CliWire *w, const char *text);
int cli_print_stderr(CliWire *w, const char *text);
int cli_exit(CliWire *w, int code);
/* Error(code, params): the client shows "Error code:" and "Error parameters:". */
int cli_error(CliWire *w, const char *code, const char *const *params, unsigned n);
int cli_http_put(CliWire *w, const char *filename, const char *url);
int cli_http_get(CliWire *w, const char *filename, const char *url);
int cli_prompt(CliWire *w);
int cli_http_connect(CliWire *w, const char *url);
int cli_load(CliWire *w, const char *filename);

/* The next Response: CLI_RESPONSE_OK or _FAILED (Wait, a heartbeat, is
 * skipped); -1 on a broken connection or another message. */
int cli_read_response(CliWire *w);

/* After Prompt or an OK to Load: the client's Blob chunks up to End,
 * appended to out (at most limit bytes). 0, or -1. */
struct _GString;
int cli_read_blob(CliWire *w, struct _GString *out, size_t limit);

/* Raw bytes, for tests of framing and for the handshake. */
int cli_wire_write(CliWire *w, const void *buf, size_t len);
int cli_wire_read(CliWire *w, void *buf, size_t len);
/* Up to len bytes: > 0, 0 at the peer's end, -1 on error. */
ssize_t cli_wire_read_some(CliWire *w, void *buf, size_t len);
