/* pool_client.h: calls from one host of a pool to another: plain HTTP/1.1
 * requests (the change stream, shipped commits) and XenAPI calls over
 * XML-RPC. One connection per request, closed after the reply. */
#pragma once

#include <stddef.h>

#include "xapi_error.h"
#include "xv.h"

/* The pool secret's header on internal routes. */
#define POOL_SECRET_HEADER "X-Xapid-Pool-Secret"
/* On a call the master forwards to a member: the master's generation when
 * it forwarded (the member's replica catches up first) and the caller's
 * task (XAPI's task-id). */
#define POOL_GENERATION_HEADER "X-Xapid-Pool-Generation"
#define POOL_TASK_HEADER "X-Xapid-Task"

typedef struct PoolHttpReply {
    int status;
    char *body; /* g_malloc'd, NUL-terminated */
    size_t len;
} PoolHttpReply;
void pool_http_reply_clear(PoolHttpReply *r);

/* endpoint "HOST:PORT"; headers "Name: value" strings, NULL-terminated (or
 * NULL). -1 with an INTERNAL_ERROR text when the host cannot be reached or
 * the reply does not come within timeout_s seconds. */
int pool_http(const char *endpoint, const char *method, const char *path,
              const char *const *headers, const char *body, size_t len, unsigned timeout_s,
              PoolHttpReply *reply, XapiError **err);
/* The same with a connect timeout of its own (connect_s; timeout_s then
 * for each send and read). */
int pool_http_connect_within(const char *endpoint, const char *method, const char *path,
                             const char *const *headers, const char *body, size_t len,
                             unsigned connect_s, unsigned timeout_s, PoolHttpReply *reply,
                             XapiError **err);

/* A XenAPI call (XML-RPC, POST /): 0 with *value (the Value), -1 with the
 * XenAPI error the host answered, -2 when it could not be reached (err
 * then holds the reason as INTERNAL_ERROR text). */
int pool_rpc(const char *endpoint, const char *method, const Xv *params, unsigned timeout_s,
             Xv **value, XapiError **err);
/* The same with extra headers ("Name: value", NULL-terminated). */
int pool_rpc_with_headers(const char *endpoint, const char *method, const Xv *params,
                          const char *const *headers, unsigned timeout_s, Xv **value,
                          XapiError **err);
/* Sends an RPC body as it came and returns the reply's body (forwarding). */
int pool_rpc_raw(const char *endpoint, const char *path, const char *content_type,
                 const char *const *headers, const char *body, size_t len, unsigned timeout_s,
                 PoolHttpReply *reply, XapiError **err);
