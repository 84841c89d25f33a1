/* rpc_endpoint.h: turns one XML-RPC or JSON-RPC request body into the
 * reply body, independent of the HTTP server (and fuzzed without it). */
#pragma once

#include <stddef.h>

#include "dispatch.h"

typedef enum { RPC_XML, RPC_JSON } RpcProtocol;

/* A reply written in pieces: large results (lazy structs) are never held
 * whole in memory. */
typedef struct RpcStream RpcStream;
/* Appends the next piece of the reply; false when nothing is left. */
bool rpc_stream_next(RpcStream *s, GString *out);
void rpc_stream_free(RpcStream *s);

typedef struct RpcReply {
    int http_status;          /* 200, or 400 for an unparsable body */
    const char *content_type; /* "text/xml", "application/json", "text/plain" */
    char *body;               /* g_malloc'd; NULL when stream is set */
    size_t len;
    RpcStream *stream;        /* the reply in pieces, or NULL */
} RpcReply;

void rpc_endpoint_handle(RpcProtocol protocol, const char *body, size_t len,
                         const DispatchOrigin *origin, RpcReply *reply);
/* /json is legacy: XAPI parses it as XML-RPC; clients may send JSON. */
RpcProtocol rpc_protocol_sniff(const char *body, size_t len);
