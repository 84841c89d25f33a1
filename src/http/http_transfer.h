/* http_transfer.h: the VDI transfer handlers, PUT /import_raw_vdi and GET
 * /export_raw_vdi, on a libmicrohttpd connection (one thread each). */
#pragma once

#include <microhttpd.h>
#include <stdbool.h>

typedef struct HttpTransfer HttpTransfer;

/* Whether method and url (with or without a trailing slash) are ours. */
bool http_transfer_route(const char *method, const char *url);

/* The access handler for a routed request: called as MHD calls it, with
 * *state NULL the first time. trusted: the unix socket (root). */
enum MHD_Result http_transfer_request(struct MHD_Connection *conn, bool trusted, const char *url,
                                      const char *upload_data, size_t *upload_data_size,
                                      HttpTransfer **state);

/* The request is over (MHD_OPTION_NOTIFY_COMPLETED): settles the task if
 * nothing did (a cut upload or download fails it), unlocks, frees. */
void http_transfer_completed(HttpTransfer *t, enum MHD_RequestTerminationCode toe);
