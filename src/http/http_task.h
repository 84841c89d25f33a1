/* http_task.h: the task of an HTTP transfer handler (VDI and VM import and
 * export): the caller's task_id, which gets the progress and the outcome,
 * else a task of our own, destroyed at the end (XAPI's with_context). */
#pragma once

#include <microhttpd.h>
#include <stdbool.h>

#include "http_auth.h"
#include "xapi_error.h"

typedef struct {
    char *ref;    /* carries progress and outcome */
    bool own;     /* made here: destroyed by http_task_release */
    bool settled; /* the outcome is recorded */
} HttpTask;

/* The request's task_id (the caller's own task only), else a new task
 * named label. 0, or -1 with *err set. */
int http_task_take(struct MHD_Connection *conn, const HttpCaller *caller, const char *label,
                   HttpTask *task, XapiError **err);
/* Records the outcome on the caller's task (ours is destroyed instead):
 * error, else success with result, the XML-RPC text of the value. */
void http_task_settle(HttpTask *task, const XapiError *error, const char *result);
/* Destroys a task of our own; frees the fields. */
void http_task_release(HttpTask *task);

/* Queues r with the headers of every transfer reply (the caller's task
 * as task-id, CORS, Connection: close). */
enum MHD_Result http_task_queue(struct MHD_Connection *conn, const HttpTask *task, unsigned status,
                                struct MHD_Response *r);
/* The outcome as a line of text, "OK" or the error's code and parameters,
 * with status (a 401 asks for basic auth). */
enum MHD_Result http_task_reply(struct MHD_Connection *conn, const HttpTask *task,
                                const XapiError *error, unsigned status);
