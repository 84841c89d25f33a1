/* xe.c: a thin client of XAPI's /cli protocol, as XenServer's xe
 * (ocaml/xe-cli/newcli.ml): the arguments go to the server, which runs the
 * command and tells this client what to print, what to read, which file to
 * send or receive over HTTP, and the exit code. The local unix socket by
 * default (XAPID_SOCKET, else XenServer's /var/lib/xcp/xapi), else TCP
 * with TLS unless --nossl. */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define PREFIX "XenSource thin CLI protocol"
#define MAJOR 0
#define MINOR 2

typedef struct {
    char *server, *username, *password, *pwfile;
    int port; /* 0: the default for the transport */
    bool nossl, debug;
} Options;

typedef struct {
    int fd;
    gnutls_session_t tls; /* NULL: plain */
    gnutls_certificate_credentials_t cred;
} Conn;

static Options opt = {.username = "root", .password = "null"};

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, fmt, arg);
    exit(1);
}

static bool is_local(const char *server)
{
    return !server || strcmp(server, "127.0.0.1") == 0 || strcmp(server, "localhost") == 0;
}

static int conn_write(Conn *c, const void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = c->tls ? gnutls_record_send(c->tls, (const char *)buf + done, len - done)
                           : write(c->fd, (const char *)buf + done, len - done);
        if (n < 0 && (c->tls ? (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) : errno == EINTR))
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

/* Up to len bytes: > 0, 0 at the end, < 0 on error. */
static ssize_t conn_read_some(Conn *c, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = c->tls ? gnutls_record_recv(c->tls, buf, len) : read(c->fd, buf, len);
        if (n < 0 && (c->tls ? (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) : errno == EINTR))
            continue;
        if (c->tls && n == GNUTLS_E_PREMATURE_TERMINATION)
            return 0;
        return n;
    }
}

static int conn_read(Conn *c, void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = conn_read_some(c, (char *)buf + done, len - done);
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

/* Ends our direction and reads until the server closes (a bounded
 * amount: what it sends after a 200 is not ours to keep). */
static void conn_finish_sending(Conn *c)
{
    if (c->tls)
        gnutls_bye(c->tls, GNUTLS_SHUT_WR);
    else
        shutdown(c->fd, SHUT_WR);
    char sink[4096];
    for (int i = 0; i < 256 && conn_read_some(c, sink, sizeof sink) > 0; i++)
        ;
}

static void conn_close(Conn *c)
{
    if (c->tls) {
        gnutls_bye(c->tls, GNUTLS_SHUT_WR);
        gnutls_deinit(c->tls);
        gnutls_certificate_free_credentials(c->cred);
    }
    close(c->fd);
}

static int connect_unix(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path)
        return -1;
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int connect_tcp(const char *host, int port)
{
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, service, &hints, &res) != 0)
        die("Host '%s' not found.\n", host);
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* XenServer's xe: the unix socket for a local server, else TCP (TLS
 * unless --nossl; never TLS on-host), port 443 or 80 unless -p. */
static int open_conn(Conn *c)
{
    memset(c, 0, sizeof *c);
    if (is_local(opt.server) && !opt.port) {
        const char *path = getenv("XAPID_SOCKET");
        c->fd = connect_unix(path ? path : "/var/lib/xcp/xapi");
        if (c->fd >= 0)
            return 0;
    }
    const char *host = opt.server ? opt.server : "127.0.0.1";
    bool tls = !opt.nossl && !is_local(opt.server);
    int port = opt.port ? opt.port : tls ? 443 : 80;
    c->fd = connect_tcp(host, port);
    if (c->fd < 0)
        return -1;
    if (!tls)
        return 0;
    /* As XenServer's xe through stunnel: the server's certificate is not
     * checked (XAPI's hosts make their own). */
    gnutls_certificate_allocate_credentials(&c->cred);
    gnutls_init(&c->tls, GNUTLS_CLIENT);
    gnutls_set_default_priority(c->tls);
    gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, c->cred);
    if (strspn(host, "0123456789.:") != strlen(host))
        gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, host, strlen(host));
    gnutls_transport_set_int(c->tls, c->fd);
    int rc;
    do
        rc = gnutls_handshake(c->tls);
    while (rc < 0 && !gnutls_error_is_fatal(rc));
    if (rc < 0) {
        fprintf(stderr, "TLS handshake failed: %s\n", gnutls_strerror(rc));
        return -1;
    }
    return 0;
}

/* ---- framing ---- */

static void put32(unsigned char *p, int32_t v)
{
    uint32_t u = (uint32_t)v;
    p[0] = u & 0xff, p[1] = (u >> 8) & 0xff, p[2] = (u >> 16) & 0xff, p[3] = (u >> 24) & 0xff;
}

static int32_t get32(const unsigned char *p)
{
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24);
}

static void send_ints(Conn *c, int n, const int32_t *v)
{
    unsigned char buf[20];
    put32(buf, n * 4);
    for (int i = 0; i < n; i++)
        put32(buf + 4 + 4 * i, v[i]);
    if (conn_write(c, buf, 4 + 4 * (size_t)n) < 0)
        die("%s", "Lost connection to the server.\n");
}

static void respond(Conn *c, int what) { send_ints(c, 2, (int32_t[]){10, what}); }

static void send_blob(Conn *c, const char *data, size_t len)
{
    send_ints(c, 3, (int32_t[]){11, 7, (int32_t)len});
    if (conn_write(c, data, len) < 0)
        die("%s", "Lost connection to the server.\n");
    send_ints(c, 2, (int32_t[]){11, 8});
}

/* A string of the payload at *at: malloc'd copy. */
static char *get_string(const unsigned char *p, size_t len, size_t *at)
{
    if (*at + 4 > len)
        die("%s", "Unexpected message from server\n");
    int32_t n = get32(p + *at);
    if (n < 0 || *at + 4 + (size_t)n > len)
        die("%s", "Unexpected message from server\n");
    char *s = strndup((const char *)p + *at + 4, (size_t)n);
    *at += 4 + (size_t)n;
    return s;
}

/* ---- HTTP transfers (HttpPut, HttpGet) on a connection of their own ---- */

/* While a transfer runs, a Response Wait on the CLI connection every 300 s
 * tells the server the client is alive (XenServer's heartbeat, protocol
 * 0.2). */
#define HEARTBEAT_SECONDS 300
static Conn *cli_conn;
static time_t last_heartbeat;

static void heartbeat(void)
{
    time_t now = time(NULL);
    if (cli_conn && now - last_heartbeat >= HEARTBEAT_SECONDS) {
        respond(cli_conn, 18);
        last_heartbeat = now;
    }
}

/* The path of url: XAPI sends https://HOST/path or the path alone; both
 * go to the server this client called. */
static const char *url_path(const char *url)
{
    const char *p = strstr(url, "://");
    if (!p)
        return url;
    p = strchr(p + 3, '/');
    return p ? p : "/";
}

/* Reads the status line and headers; returns the status code. */
static int read_head(Conn *c)
{
    char line[8192];
    size_t n = 0;
    int status = -1, lines = 0;
    for (;;) {
        char ch;
        if (conn_read(c, &ch, 1) < 0)
            return -1;
        if (ch != '\n') {
            if (n < sizeof line - 1)
                line[n++] = ch;
            continue;
        }
        line[n] = 0;
        if (n && line[n - 1] == '\r')
            line[--n] = 0;
        if (lines++ == 0) {
            const char *sp = strchr(line, ' ');
            status = sp ? atoi(sp + 1) : -1;
        } else if (n == 0) {
            return status;
        }
        n = 0;
    }
}

static int http_put(const char *filename, const char *url)
{
    int fd = open(filename, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        fprintf(stderr, "Operation failed. Error: file '%s' does not exist\n", filename);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    Conn c;
    if (open_conn(&c) < 0) {
        close(fd);
        return -1;
    }
    char head[8192];
    int n = S_ISREG(st.st_mode)
                ? snprintf(head, sizeof head, "PUT %s HTTP/1.0\r\nContent-Length: %lld\r\n\r\n",
                           url_path(url), (long long)st.st_size)
                : snprintf(head, sizeof head, "PUT %s HTTP/1.0\r\n\r\n", url_path(url));
    /* as XenServer's xe: the headers, the server's status line, then the body */
    int status = conn_write(&c, head, (size_t)n) == 0 ? read_head(&c) : -1;
    int rc = status == 200 ? 0 : -1;
    static char buf[1 << 20];
    last_heartbeat = time(NULL);
    for (ssize_t got; rc == 0 && (got = read(fd, buf, sizeof buf)) > 0; heartbeat())
        rc = conn_write(&c, buf, (size_t)got);
    close(fd);
    /* The body is sent: say so and wait for the server's close, so that it
     * reads every byte first (a unix socket closed at once is a hang-up
     * the server may see before the bytes still queued). */
    if (rc == 0 && status == 200)
        conn_finish_sending(&c);
    conn_close(&c);
    if (status != 200) {
        fprintf(stderr, "Operation failed. Error: the server answered HTTP %d\n", status);
        return -1;
    }
    return rc;
}

static int http_get(const char *filename, const char *url)
{
    Conn c;
    if (open_conn(&c) < 0)
        return -1;
    char head[8192];
    int n = snprintf(head, sizeof head, "GET %s HTTP/1.0\r\n\r\n", url_path(url));
    int status = conn_write(&c, head, (size_t)n) == 0 ? read_head(&c) : -1;
    if (status != 200) {
        conn_close(&c);
        fprintf(stderr, "Operation failed. Error: the server answered HTTP %d\n", status);
        return -1;
    }
    int fd = *filename ? open(filename, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)
                       : dup(STDOUT_FILENO);
    if (fd < 0) {
        conn_close(&c);
        fprintf(stderr, "Operation failed. Error: %s: %s\n", filename, strerror(errno));
        return -1;
    }
    static char buf[1 << 20];
    int rc = 0;
    last_heartbeat = time(NULL);
    for (ssize_t got; rc == 0 && (got = conn_read_some(&c, buf, sizeof buf)) != 0; heartbeat()) {
        if (got < 0)
            rc = -1;
        else
            for (ssize_t done = 0, w; rc == 0 && done < got; done += w)
                if ((w = write(fd, buf + done, (size_t)(got - done))) < 0)
                    rc = -1;
    }
    close(fd);
    conn_close(&c);
    return rc;
}

/* HttpConnect: CONNECT to the console, then the terminal in raw mode
 * proxied both ways until Ctrl-] (0x1d) or the console's end. */
static int http_connect(const char *url)
{
    Conn c;
    if (open_conn(&c) < 0)
        return -1;
    char head[8192];
    int n = snprintf(head, sizeof head, "CONNECT %s HTTP/1.0\r\ncontent-length: 0\r\n\r\n",
                     url_path(url));
    int status = conn_write(&c, head, (size_t)n) == 0 ? read_head(&c) : -1;
    if (status != 200) {
        conn_close(&c);
        if (status == 404)
            fprintf(stderr, "Server replied with HTTP 404: the console is not available\n");
        else
            fprintf(stderr, "Server said: HTTP %d\n", status);
        return -1;
    }
    struct termios saved;
    bool tty = tcgetattr(STDIN_FILENO, &saved) == 0;
    if (tty) {
        struct termios raw = saved;
        cfmakeraw(&raw);
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    }
    char buf[65536];
    bool done = false;
    while (!done) {
        struct pollfd pf[2] = {{.fd = STDIN_FILENO, .events = POLLIN}, {.fd = c.fd, .events = POLLIN}};
        bool pending = c.tls && gnutls_record_check_pending(c.tls) > 0;
        if (!pending && poll(pf, 2, -1) < 0 && errno != EINTR)
            break;
        if (pending || (pf[1].revents & (POLLIN | POLLHUP))) {
            ssize_t got = conn_read_some(&c, buf, sizeof buf);
            if (got <= 0)
                break;
            for (ssize_t w = 0, k; w < got; w += k)
                if ((k = write(STDOUT_FILENO, buf + w, (size_t)(got - w))) < 0)
                    done = true;
        }
        if (pf[0].revents & (POLLIN | POLLHUP)) {
            ssize_t got = read(STDIN_FILENO, buf, sizeof buf);
            if (got <= 0)
                break;
            char *quit = memchr(buf, 0x1d, (size_t)got);
            if (quit) {
                got = quit - buf;
                done = true;
            }
            if (got > 0 && conn_write(&c, buf, (size_t)got) < 0)
                break;
        }
    }
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        printf("\r\n");
    }
    conn_close(&c);
    return 0;
}

static void load(Conn *c, const char *filename)
{
    FILE *f = fopen(filename, "rb");
    if (!f) {
        respond(c, 6);
        return;
    }
    respond(c, 5);
    static char buf[1 << 20];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    send_blob(c, buf, len);
}

/* ---- the conversation ---- */

static int main_loop(Conn *c)
{
    unsigned char hello[sizeof PREFIX - 1 + 8];
    if (conn_read(c, hello, sizeof hello) < 0 || memcmp(hello, PREFIX, sizeof PREFIX - 1) != 0) {
        fprintf(stderr, "Failed to contact a running management agent.\n"
                        "Try specifying a server name and port.\n");
        return 1;
    }
    if (get32(hello + sizeof PREFIX - 1) != MAJOR) {
        fprintf(stderr, "Protocol version mismatch: Server has protocol version %d.%d. Client "
                        "has %d.%d.\n",
                get32(hello + sizeof PREFIX - 1), get32(hello + sizeof PREFIX + 3), MAJOR, MINOR);
        return 1;
    }
    unsigned char mine[sizeof PREFIX - 1 + 8];
    memcpy(mine, PREFIX, sizeof PREFIX - 1);
    put32(mine + sizeof PREFIX - 1, MAJOR);
    put32(mine + sizeof PREFIX + 3, MINOR);
    if (conn_write(c, mine, sizeof mine) < 0)
        return 1;
    for (;;) {
        unsigned char lenbuf[4];
        if (conn_read(c, lenbuf, 4) < 0)
            die("%s", "Lost connection to the server.\n");
        int32_t len = get32(lenbuf);
        if (len < 8 || len > (1 << 26))
            die("%s", "Unexpected message from server\n");
        unsigned char *p = malloc((size_t)len);
        if (!p || conn_read(c, p, (size_t)len) < 0)
            die("%s", "Lost connection to the server.\n");
        if (get32(p) != 9)
            die("%s", "Unexpected message from server\n");
        int32_t tag = get32(p + 4);
        size_t at = 8;
        char *a = NULL, *b = NULL;
        switch (tag) {
        case 0: /* Print */
            a = get_string(p, (size_t)len, &at);
            printf("%s\n", a);
            fflush(stdout);
            break;
        case 16: /* PrintStderr */
            a = get_string(p, (size_t)len, &at);
            fputs(a, stderr);
            break;
        case 15: /* Debug */
            a = get_string(p, (size_t)len, &at);
            if (opt.debug)
                fprintf(stderr, "debug from server: %s\n", a);
            break;
        case 1: /* Load */
            a = get_string(p, (size_t)len, &at);
            load(c, a);
            break;
        case 3: { /* Prompt */
            char line[4096];
            if (!fgets(line, sizeof line, stdin))
                line[0] = 0;
            line[strcspn(line, "\n")] = 0;
            send_blob(c, line, strlen(line));
            break;
        }
        case 12: /* HttpGet(filename, url) */
        case 13: /* HttpPut */
            a = get_string(p, (size_t)len, &at);
            b = get_string(p, (size_t)len, &at);
            respond(c, (tag == 13 ? http_put(a, b) : http_get(a, b)) == 0 ? 5 : 6);
            break;
        case 17: /* HttpConnect */
            a = get_string(p, (size_t)len, &at);
            respond(c, http_connect(a) == 0 ? 5 : 6);
            break;
        case 14: { /* Error(code, params) */
            a = get_string(p, (size_t)len, &at);
            fprintf(stderr, "Error code: %s\nError parameters: ", a);
            int32_t n = at + 4 <= (size_t)len ? get32(p + at) : 0;
            at += 4;
            for (int32_t i = 0; i < n; i++) {
                char *s = get_string(p, (size_t)len, &at);
                fprintf(stderr, "%s%s", i ? ", " : "", s);
                free(s);
            }
            fputc('\n', stderr);
            break;
        }
        case 4: { /* Exit */
            int code = get32(p + 8);
            free(p);
            return code;
        }
        default:
            die("%s", "Unexpected message from server\n");
        }
        free(a);
        free(b);
        free(p);
    }
}

/* ---- the command line ---- */

static bool set_keyword(const char *k, const char *v)
{
    if (strcmp(k, "server") == 0)
        opt.server = strdup(v);
    else if (strcmp(k, "port") == 0) {
        char *end = NULL;
        long p = strtol(v, &end, 10);
        if (*end || p < 0 || p > 65535)
            die("%s", "Port number must be an integer (0-65535)\n");
        opt.port = (int)p;
    } else if (strcmp(k, "username") == 0)
        opt.username = strdup(v);
    else if (strcmp(k, "password") == 0)
        opt.password = strdup(v);
    else if (strcmp(k, "passwordfile") == 0)
        opt.pwfile = strdup(v);
    else if (strcmp(k, "nossl") == 0)
        opt.nossl = strcmp(v, "true") == 0;
    else if (strcmp(k, "debug") == 0)
        opt.debug = strcmp(v, "true") == 0;
    else
        return false;
    return true;
}

/* ~/.xe: key=value lines; the keywords set options, the rest are passed on. */
static void read_rc(char ***rest, int *n_rest)
{
    const char *home = getenv("HOME");
    char path[4096];
    snprintf(path, sizeof path, "%s/.xe", home ? home : "");
    FILE *f = home ? fopen(path, "r") : NULL;
    char line[4096];
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        char *eq = strchr(line, '=');
        if (!eq || line[0] == '#')
            continue;
        *eq = 0;
        if (!set_keyword(line, eq + 1)) {
            *eq = '=';
            (*rest)[(*n_rest)++] = strdup(line);
        }
    }
    if (f)
        fclose(f);
}

static void read_pwf(void)
{
    FILE *f = fopen(opt.pwfile, "r");
    if (!f)
        die("Error opening password file '%s'\n", opt.pwfile);
    char user[1024], pw[1024];
    if (!fgets(user, sizeof user, f) || !fgets(pw, sizeof pw, f))
        die("%s", "Error: password file format: expecting username on the first line, password "
                  "on the second line\n");
    fclose(f);
    user[strcspn(user, "\r\n")] = 0;
    pw[strcspn(pw, "\r\n")] = 0;
    opt.username = strdup(user);
    opt.password = strdup(pw);
}

static void usage(void)
{
    printf("Usage: xe [-s server] [-p port] ([-u username] [-pw password] or [-pwf <password "
           "file>]) [--nossl] [--debug] <command> [<arguments>]\n"
           "For help, use xe -s server [-p port] ([-u username] [-pw password] or [-pwf "
           "<password file>]) help\n");
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    char **args = calloc((size_t)argc + 256, sizeof *args);
    int n = 0;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-version") == 0) {
            printf("ThinCLI protocol: %d.%d\n", MAJOR, MINOR);
            return 0;
        }
    read_rc(&args, &n);
    int rc_args = n;
    bool help = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        static const char *const sw[][2] = {{"-s", "server"},   {"-h", "server"},
                                            {"-p", "port"},     {"-u", "username"},
                                            {"-pw", "password"}, {"-pwf", "passwordfile"}};
        bool taken = false;
        for (unsigned k = 0; k < sizeof sw / sizeof sw[0] && !taken; k++)
            if (strcmp(a, sw[k][0]) == 0 && i + 1 < argc) {
                set_keyword(sw[k][1], argv[++i]);
                taken = true;
            }
        if (taken)
            continue;
        if (strcmp(a, "--nossl") == 0) {
            opt.nossl = true;
        } else if (strcmp(a, "--debug") == 0) {
            opt.debug = true;
        } else if (strcmp(a, "-help") == 0 || strcmp(a, "--help") == 0) {
            help = true;
        } else {
            const char *eq = strchr(a, '=');
            char key[64];
            if (eq && (size_t)(eq - a) < sizeof key) {
                memcpy(key, a, (size_t)(eq - a));
                key[eq - a] = 0;
                if (set_keyword(key, eq + 1))
                    continue;
            }
            args[n++] = argv[i];
        }
    }
    if (help || n == rc_args) {
        usage();
        for (int i = 0; i < rc_args; i++)
            free(args[i]);
        free(args);
        return 0;
    }
    if (opt.pwfile)
        read_pwf();
    /* the command first: ~/.xe's leftovers go after the command line's */
    size_t body_len = 0;
    for (int i = rc_args; i < n; i++)
        body_len += strlen(args[i]) + 1;
    for (int i = 0; i < rc_args; i++)
        body_len += strlen(args[i]) + 1;
    body_len += strlen(opt.username) + strlen(opt.password) + 32;
    char *body = malloc(body_len);
    body[0] = 0;
    for (int i = rc_args; i < n; i++)
        strcat(strcat(body, args[i]), "\n");
    for (int i = 0; i < rc_args; i++)
        strcat(strcat(body, args[i]), "\n");
    strcat(strcat(strcat(body, "username="), opt.username), "\n");
    strcat(strcat(body, "password="), opt.password);
    Conn c;
    if (open_conn(&c) < 0) {
        fprintf(stderr, "Unable to contact server. Please check server and port settings.\n");
        return 1;
    }
    char head[512];
    int hn = snprintf(head, sizeof head,
                      "POST /cli HTTP/1.0\r\nUser-agent: xe-cli/Unix/%d.%d\r\noriginator: cli\r\n"
                      "content-length: %zu\r\n\r\n",
                      MAJOR, MINOR, strlen(body));
    int code = 1;
    if (conn_write(&c, head, (size_t)hn) < 0 || conn_write(&c, body, strlen(body)) < 0)
        fprintf(stderr, "Lost connection to the server.\n");
    else {
        cli_conn = &c;
        code = main_loop(&c);
    }
    conn_close(&c);
    free(body);
    for (int i = 0; i < rc_args; i++) /* ~/.xe's lines; the rest are argv's */
        free(args[i]);
    free(args);
    return code;
}
