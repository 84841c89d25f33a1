/* http_load.c: a keep-alive HTTP/1.1 load generator for the benchmarks.
 * Each thread holds one connection and sends the same POST body back to
 * back for the given time; prints requests per second.
 *   http_load HOST PORT PATH BODY_FILE THREADS SECONDS */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *host, *path;
static int port;
static char *request;
static size_t request_len;
static double seconds;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Reads one response; returns 0 when it had status 200. */
static int read_response(int fd, char *buf, size_t cap)
{
    size_t have = 0;
    char *end = NULL;
    while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
        ssize_t n = read(fd, buf + have, cap - have);
        if (n <= 0)
            return -1;
        have += (size_t)n;
    }
    size_t header_len = (size_t)(end - buf) + 4;
    char *cl = strcasestr(buf, "content-length:");
    if (!cl || cl > end)
        return -1;
    size_t body = strtoul(cl + 15, NULL, 10);
    size_t total = header_len + body;
    if (total > cap)
        return -1;
    while (have < total) {
        ssize_t n = read(fd, buf + have, cap - have);
        if (n <= 0)
            return -1;
        have += (size_t)n;
    }
    return strncmp(buf + 9, "200", 3) == 0 ? 0 : -1;
}

static void *worker(void *arg)
{
    long *count = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("connect");
        exit(1);
    }
    size_t cap = 16 << 20;
    char *buf = malloc(cap);
    double end = now() + seconds;
    while (now() < end) {
        if (write(fd, request, request_len) != (ssize_t)request_len || read_response(fd, buf, cap) < 0) {
            fprintf(stderr, "http_load: request failed\n");
            exit(1);
        }
        (*count)++;
    }
    free(buf);
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: http_load HOST PORT PATH BODY_FILE THREADS SECONDS\n");
        return 2;
    }
    host = argv[1];
    port = atoi(argv[2]);
    path = argv[3];
    int threads = atoi(argv[5]);
    seconds = atof(argv[6]);
    FILE *f = fopen(argv[4], "rb");
    if (!f) {
        perror(argv[4]);
        return 1;
    }
    char body[65536];
    size_t body_len = fread(body, 1, sizeof body, f);
    fclose(f);
    request = malloc(body_len + 512);
    request_len = (size_t)sprintf(request,
                                  "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/xml\r\n"
                                  "Content-Length: %zu\r\n\r\n",
                                  path, host, body_len);
    memcpy(request + request_len, body, body_len);
    request_len += body_len;
    pthread_t tid[64];
    long counts[64] = {0};
    double start = now();
    for (int i = 0; i < threads; i++)
        pthread_create(&tid[i], NULL, worker, &counts[i]);
    long total = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        total += counts[i];
    }
    printf("%.0f\n", total / (now() - start));
    return 0;
}
