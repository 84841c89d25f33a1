/* event_watchers.c: event latency measured from C, so that the client is
 * not the bottleneck. N threads each keep one connection blocked in
 * event.from on class "vm"; the main thread sets a VM's name_label R times
 * and, for each write, records (watcher reply time - writer reply time) for
 * every watcher. Prints "p50_ms p99_ms samples".
 *   event_watchers HOST PORT SESSION VM WATCHERS ROUNDS */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *host, *session, *vm;
static int port;
static atomic_int round_no;           /* the write being waited for */
static double arrivals[256][1024];    /* [watcher][round] */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int connect_to(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("connect");
        exit(1);
    }
    return fd;
}

/* Sends one XML-RPC call and reads the whole reply into buf (NUL-ended). */
static void rpc(int fd, const char *body, char *buf, size_t cap)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", strlen(body));
    if (write(fd, head, (size_t)n) != n || write(fd, body, strlen(body)) != (ssize_t)strlen(body)) {
        perror("write");
        exit(1);
    }
    size_t have = 0;
    for (;;) {
        ssize_t r = read(fd, buf + have, cap - have - 1);
        if (r <= 0) {
            fprintf(stderr, "event_watchers: connection closed\n");
            exit(1);
        }
        have += (size_t)r;
        buf[have] = 0;
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        char *cl = strcasestr(buf, "content-length:");
        if (cl && have >= (size_t)(end + 4 - buf) + strtoul(cl + 15, NULL, 10))
            return;
        if (!cl && strstr(end, "0\r\n\r\n")) /* chunked: the last chunk arrived */
            return;
    }
}

/* The token member of an event.from reply. */
static void take_token(const char *reply, char *token, size_t cap)
{
    const char *t = strstr(reply, "<name>token</name><value>");
    if (!t)
        return;
    t += strlen("<name>token</name><value>");
    const char *e = strchr(t, '<');
    snprintf(token, cap, "%.*s", (int)(e - t), t);
}

static void *watcher(void *arg)
{
    long me = (long)arg;
    int fd = connect_to();
    char *buf = malloc(4 << 20);
    char token[64] = "";
    char body[1024];
    for (;;) {
        snprintf(body, sizeof body,
                 "<methodCall><methodName>event.from</methodName><params><param><value>%s"
                 "</value></param><param><value><array><data><value>vm</value></data></array>"
                 "</value></param><param><value>%s</value></param><param><value><double>5"
                 "</double></value></param></params></methodCall>",
                 session, token);
        rpc(fd, body, buf, 4 << 20);
        double t = now();
        int r = atomic_load(&round_no);
        if (strstr(buf, "<name>events</name><value><array><data><value>") && r >= 0 &&
            arrivals[me][r] == 0)
            arrivals[me][r] = t;
        take_token(buf, token, sizeof token);
    }
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: event_watchers HOST PORT SESSION VM WATCHERS ROUNDS\n");
        return 2;
    }
    host = argv[1];
    port = atoi(argv[2]);
    session = argv[3];
    vm = argv[4];
    int watchers = atoi(argv[5]), rounds = atoi(argv[6]);
    if (watchers > 256 || rounds > 1024)
        return 2;
    atomic_store(&round_no, -1);
    pthread_t tid;
    for (long i = 0; i < watchers; i++)
        pthread_create(&tid, NULL, watcher, (void *)i);
    usleep(500000); /* every watcher is blocked by now */
    int fd = connect_to();
    char *buf = malloc(1 << 20);
    double *lat = calloc((size_t)watchers * rounds, sizeof *lat);
    int n = 0;
    for (int r = 0; r < rounds; r++) {
        atomic_store(&round_no, r);
        char body[1024];
        snprintf(body, sizeof body,
                 "<methodCall><methodName>VM.set_name_label</methodName><params><param><value>"
                 "%s</value></param><param><value>%s</value></param><param><value>w%d</value>"
                 "</param></params></methodCall>",
                 session, vm, r);
        rpc(fd, body, buf, 1 << 20);
        double written = now();
        double deadline = written + 5;
        for (;;) {
            int got = 0;
            for (int w = 0; w < watchers; w++)
                got += arrivals[w][r] != 0;
            if (got == watchers || now() > deadline)
                break;
            usleep(200);
        }
        for (int w = 0; w < watchers; w++)
            if (arrivals[w][r] != 0)
                lat[n++] = arrivals[w][r] - written;
        usleep(20000); /* let every watcher block again */
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp);
    printf("%.3f %.3f %d\n", lat[n / 2] * 1000, lat[(int)((n - 1) * 0.99)] * 1000, n);
    return 0;
}
