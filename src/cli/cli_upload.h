/* cli_upload.h: the upload of `xe vdi-import`. XenServer's xe sends a PUT's
 * headers, waits for the status line, and only then the body (XAPI answers
 * before reading it); a request of libmicrohttpd is answered after its
 * body. So the command registers a one-time path, /cli_upload/<token>,
 * whose request is taken over at its headers: "200 OK", then the body,
 * read raw from the socket into the VDI. The token, 128 random bits, is
 * known only to the CLI connection that asked, and only while it waits. */
#pragma once

#include <microhttpd.h>
#include <stdbool.h>

#include "vdi_transfer.h"
#include "xapi_error.h"

typedef struct CliUpload CliUpload;

CliUpload *cli_upload_register(const char *vdi_ref, VdiStreamFormat format, const char *task_ref);
/* "/cli_upload/<token>" (owned by the upload). */
const char *cli_upload_path(const CliUpload *up);
/* After the client's answer: waits for the upload's end when it came (or
 * comes: the client answers once its last byte is sent), then forgets the
 * token. 0, or -1 with *err (the import's error, or none came). */
int cli_upload_finish(CliUpload *up, bool client_ok, XapiError **err);

bool cli_upload_route(const char *method, const char *url);
/* On the first call of the access handler; MHD_NO: MHD closes. */
enum MHD_Result cli_upload_serve(struct MHD_Connection *conn, const char *url);
