/* qmp.h: a client for QEMU's machine protocol (JSON lines on a unix socket). */
#pragma once

#include <json-c/json.h>

#include "xapi_error.h"

/* A connection that has passed the greeting and qmp_capabilities. */
typedef struct QmpConn QmpConn;

QmpConn *qmp_connect(const char *socket_path, int timeout_ms, XapiError **err);
void qmp_close(QmpConn *q);

/* Sends a command (args: a JSON object text, or NULL) and waits for its
 * reply, skipping events. Returns the "return" value (caller puts) or NULL
 * with err set (QMP errors become INTERNAL_ERROR with QEMU's text). */
json_object *qmp_execute(QmpConn *q, const char *command, const char *args, XapiError **err);

/* The next message (event or reply) or NULL at EOF/error; blocks up to
 * the connection's timeout (0: forever). Caller puts. */
json_object *qmp_read(QmpConn *q);

/* One command on a fresh connection. */
json_object *qmp_run(const char *socket_path, const char *command, const char *args,
                     XapiError **err);

/* qmp_execute that also passes fd (SCM_RIGHTS), as getfd and add-fd want;
 * QEMU keeps it for this connection, so the commands that use it go on
 * the same one. */
json_object *qmp_execute_with_fd(QmpConn *q, const char *command, const char *args, int fd,
                                 XapiError **err);
