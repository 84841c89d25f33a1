/* bare_server.c: the loopback bound for the RPC benchmark: libmicrohttpd in
 * the same threading mode as xapid, answering a fixed body (200 bytes unless
 * told otherwise).
 *   bare_server PORT [BODY_BYTES] */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *body;
static size_t body_len = 200;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    if (!*con_cls) {
        *con_cls = conn;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(body_len, body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "text/xml");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

int main(int argc, char **argv)
{
    if (argc > 2)
        body_len = strtoul(argv[2], NULL, 10);
    body = malloc(body_len + 1);
    memset(body, 'x', body_len);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)atoi(argv[1]),
        NULL, NULL, on_request, NULL, MHD_OPTION_END);
    if (!d)
        return 1;
    printf("ready\n");
    fflush(stdout);
    pause();
    return 0;
}
