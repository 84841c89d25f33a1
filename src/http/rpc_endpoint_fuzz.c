/* rpc_endpoint_fuzz.c: libFuzzer target for the request path after HTTP:
 * body -> codec -> dispatch -> engine -> reply, on a memory-only database.
 * The first byte picks the protocol (even: XML-RPC, odd: JSON-RPC). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrap.h"
#include "db.h"
#include "rpc_endpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        XapiError *err = NULL;
        if (db_open(NULL, &err) < 0 || bootstrap_database(NULL, &err) < 0)
            abort();
        ready = true;
    }
    if (size < 1)
        return 0;
    /* event.from/next block for as long as the caller asks: not for here. */
    if (memmem(data, size, "event", 5))
        return 0;
    RpcProtocol protocol = (data[0] & 1) ? RPC_JSON : RPC_XML;
    DispatchOrigin origin = {.trusted = (data[0] & 2) != 0};
    RpcReply reply;
    rpc_endpoint_handle(protocol, (const char *)data + 1, size - 1, &origin, &reply);
    if (reply.http_status != 200 && reply.http_status != 400)
        abort();
    if (reply.stream) {
        GString *out = g_string_new(NULL);
        while (rpc_stream_next(reply.stream, out))
            ;
        g_string_free(out, TRUE);
        rpc_stream_free(reply.stream);
    }
    g_free(reply.body);
    return 0;
}
