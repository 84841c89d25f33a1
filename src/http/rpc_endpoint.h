/* rpc_endpoint.h: turns one XML-RPC or JSON-RPC request body into the
 * reply body, independent of the HTTP server (and fuzzed without it). */
#pragma once

#include <stddef.h>

#include "dispatch.h"

typedef enum { RPC_XML, RPC_JSON } RpcProtocol;

typedef struct RpcReply {
    int http_status;          /* 200, or 400 for an unparsable body */
    const char *content_type; /* "text/xml", "application/json", "text/plain" */
    char *body;               /* g_malloc'd */
    size_t len;
} RpcReply;

void rpc_endpoint_handle(RpcProtocol protocol, const char *body, size_t len,
                         const DispatchOrigin *origin, RpcReply *reply);
/* /json is legacy: XAPI parses it as XML-RPC; clients may send JSON. */
RpcProtocol rpc_protocol_sniff(const char *body, size_t len);
