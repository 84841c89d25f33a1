/* cli_server.h: POST /cli, xe's thin CLI protocol (ocaml/xapi-cli-server/
 * xapi_cli.ml): the body names the command and its parameters; the
 * connection is then the protocol's. */
#pragma once

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

/* The body's limit, XAPI's http_limit_max_cli_size. */
#define CLI_BODY_LIMIT ((size_t)200 * 1024)

bool cli_route(const char *method, const char *url);

/* Runs the command in the connection's own thread once the body is in:
 * the greeting, the command's output, its exit code. Returns MHD_NO, upon
 * which MHD closes the connection. trusted: the unix socket. */
enum MHD_Result cli_serve(struct MHD_Connection *conn, bool trusted, const char *body,
                          size_t len);
