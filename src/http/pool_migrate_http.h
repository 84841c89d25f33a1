/* pool_migrate_http.h: the connection of VM.pool_migrate between two
 * hosts of a pool, on xapid's HTTP port (QEMU never has a port). The
 * source host sends
 *   GET /pool/migrate HTTP/1.1, Connection: Upgrade, Upgrade: xapid-migrate,
 *   X-Pool-VM: <the VM's uuid>, X-Xapid-Pool-Generation: <its database's>,
 *   X-Pool-Nonce: <unix seconds>-<32 random hex>,
 *   X-Pool-Auth: hex HMAC-SHA256(secret, "migrate-client " nonce " " uuid)
 * The destination, once the nonce is fresh (60 s, never seen) and the HMAC
 * right, waits until its database has that generation, checks that the VM
 * may come (vm_migrate_receive), and answers
 *   101, X-Pool-Proof: hex HMAC-SHA256(secret, "migrate-server " nonce " " uuid)
 * then the socket carries the migration link (migrate_link.h). A refusal
 * is 409 with the XenAPI error as its body, one field a line (code, then
 * parameters); 403 for a bad or replayed authenticator. Plain HTTP only:
 * the TLS port answers 501 (the splice needs the raw socket). */
#pragma once

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "xapi_error.h"

bool pool_migrate_route(const char *method, const char *url);
/* In the connection's thread: a refusal is queued (MHD_YES), or the
 * connection carried the migration and MHD_NO lets MHD close it. */
enum MHD_Result pool_migrate_serve(struct MHD_Connection *conn);

/* Source side: the connection to endpoint ("HOST:PORT") once the
 * destination accepted the VM; -1 with the destination's refusal (its
 * XenAPI error), or INTERNAL_ERROR when it cannot be reached. */
int pool_migrate_dial(const char *endpoint, const char *vm_uuid, uint64_t generation,
                      XapiError **err);
