/* file_server.c: the peer for the VDI transfer benchmark: a plain file
 * behind the same HTTP stack as xapid (libmicrohttpd, a thread per
 * connection, 64 KiB connection memory, replies in 256 KiB blocks).
 * PUT stores the body in FILE with write() and fsyncs it at the end, as an
 * import flushes its image; GET serves FILE.
 *   file_server PORT FILE */
#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *path;

static ssize_t read_file(void *cls, uint64_t pos, char *buf, size_t max)
{
    ssize_t n = pread((int)(intptr_t)cls, buf, max, (off_t)pos);
    return n > 0 ? n : MHD_CONTENT_READER_END_OF_STREAM;
}

static void close_file(void *cls) { close((int)(intptr_t)cls); }

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    if (strcmp(method, "GET") == 0) {
        int fd = open(path, O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
            return reply(conn, MHD_HTTP_NOT_FOUND);
        struct MHD_Response *r = MHD_create_response_from_callback(
            (uint64_t)st.st_size, 256 * 1024, read_file, (void *)(intptr_t)fd, close_file);
        enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (!*con_cls) { /* PUT: open the file for this request */
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0)
            return MHD_NO;
        *con_cls = (void *)(intptr_t)(fd + 1);
        return MHD_YES;
    }
    int fd = (int)(intptr_t)*con_cls - 1;
    if (*upload_data_size) {
        size_t done = 0;
        while (done < *upload_data_size) {
            ssize_t n = write(fd, upload_data + done, *upload_data_size - done);
            if (n <= 0)
                return MHD_NO;
            done += (size_t)n;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    fsync(fd);
    close(fd);
    *con_cls = NULL;
    return reply(conn, MHD_HTTP_OK);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: file_server PORT FILE\n");
        return 2;
    }
    path = argv[2];
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)atoi(argv[1]),
        NULL, NULL, on_request, NULL, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
        MHD_OPTION_END);
    if (!d)
        return 1;
    printf("ready\n");
    fflush(stdout);
    pause();
    return 0;
}
