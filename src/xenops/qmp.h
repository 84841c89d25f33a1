/* qmp.h: a domain's monitor: one persistent QMP connection to its QEMU
 * (JSON lines on a unix socket), commands queued and matched to their
 * replies, events handed to the driver as they come. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "xapi_error.h"

typedef struct QmpMonitor QmpMonitor;

/* Both are called on the monitor's reader thread, never with a lock of
 * the monitor held; they must not close the monitor. */
typedef struct {
    /* An asynchronous event: its name and "data" (NULL when absent). */
    void (*event)(void *opaque, const char *name, json_object *data);
    /* The connection ended (QEMU quit or died); called once, unless
     * qmp_monitor_close came first. */
    void (*eof)(void *opaque);
} QmpCallbacks;

/* Connects, reads the greeting, negotiates capabilities and starts the
 * reader thread. NULL with err set if QEMU does not answer within
 * timeout_ms. */
QmpMonitor *qmp_monitor_open(const char *socket_path, int timeout_ms, const QmpCallbacks *cb,
                             void *opaque, XapiError **err);

/* Ends the connection and joins the reader thread; pending commands fail. */
void qmp_monitor_close(QmpMonitor *m);

/* Sends a command (args: an object, taken; or NULL) and waits for its
 * reply. With fd >= 0 the descriptor travels with the command (SCM_RIGHTS:
 * what getfd and add-fd take). Returns the "return" value (caller puts)
 * or NULL with err set (QMP errors become INTERNAL_ERROR with QEMU's
 * text). Safe from several threads at once; replies are matched by id. */
json_object *qmp_monitor_command(QmpMonitor *m, const char *command, json_object *args, int fd,
                                 XapiError **err);
