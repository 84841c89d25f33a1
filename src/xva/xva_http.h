/* xva_http.h: GET /export, GET /export_metadata, PUT /import and PUT
 * /import_metadata on a libmicrohttpd connection (one thread each), as
 * XAPI serves them. */
#pragma once

#include <microhttpd.h>
#include <stdbool.h>

typedef struct XvaHttp XvaHttp;

/* Whether method and url are ours (XO's "/import/" too). */
bool xva_http_route(const char *method, const char *url);
/* The access handler, called as MHD calls it (*state NULL the first time);
 * trusted: the unix socket (root). */
enum MHD_Result xva_http_request(struct MHD_Connection *conn, bool trusted, const char *url,
                                 const char *upload_data, size_t *upload_data_size,
                                 XvaHttp **state);
/* The request is over: settles the task if nothing did, frees. */
void xva_http_completed(XvaHttp *h, enum MHD_RequestTerminationCode toe);
