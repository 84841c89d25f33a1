/* log_ring.c: a GLib log writer that keeps the newest lines in a bounded
 * buffer (host.get_log) and may copy them to a remote syslog over UDP
 * (RFC 3164 form, facility daemon), then writes them as GLib would. */
#include "log_ring.h"

#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct {
    GMutex lock;
    GString *text;
    size_t capacity;
    int syslog_fd;      /* -1: not forwarding */
    char *hostname;
} ring = {.syslog_fd = -1};

/* Drops whole lines from the front until the text fits. */
static void trim(void)
{
    if (ring.text->len <= ring.capacity)
        return;
    size_t cut = ring.text->len - ring.capacity;
    const char *nl = memchr(ring.text->str + cut, '\n', ring.text->len - cut);
    g_string_erase(ring.text, 0, nl ? (gssize)(nl - ring.text->str + 1) : (gssize)cut);
}

static int severity(GLogLevelFlags level)
{
    if (level & G_LOG_LEVEL_ERROR)
        return 3;
    if (level & G_LOG_LEVEL_CRITICAL)
        return 2;
    if (level & G_LOG_LEVEL_WARNING)
        return 4;
    if (level & G_LOG_LEVEL_MESSAGE)
        return 5;
    if (level & G_LOG_LEVEL_INFO)
        return 6;
    return 7;
}

static const char *message_of(const GLogField *fields, gsize n)
{
    for (gsize i = 0; i < n; i++)
        if (strcmp(fields[i].key, "MESSAGE") == 0)
            return fields[i].value;
    return "";
}

static GLogWriterOutput writer(GLogLevelFlags level, const GLogField *fields, gsize n,
                               gpointer unused)
{
    const char *domain = NULL;
    for (gsize i = 0; i < n; i++)
        if (strcmp(fields[i].key, "GLIB_DOMAIN") == 0)
            domain = fields[i].value;
    if (!g_log_writer_default_would_drop(level, domain)) {
        g_autoptr(GDateTime) now = g_date_time_new_now_utc();
        g_autofree char *stamp = g_date_time_format(now, "%Y%m%dT%H:%M:%SZ");
        const char *message = message_of(fields, n);
        g_mutex_lock(&ring.lock);
        g_string_append_printf(ring.text, "%s xapid[%d]: %s\n", stamp, (int)getpid(), message);
        trim();
        if (ring.syslog_fd >= 0) {
            g_autoptr(GDateTime) local = g_date_time_new_now_local();
            g_autofree char *when = g_date_time_format(local, "%b %e %H:%M:%S");
            g_autofree char *datagram = g_strdup_printf(
                "<%d>%s %s xapid[%d]: %s", 3 * 8 + severity(level), when, ring.hostname,
                (int)getpid(), message);
            send(ring.syslog_fd, datagram, strlen(datagram), MSG_DONTWAIT);
        }
        g_mutex_unlock(&ring.lock);
    }
    return g_log_writer_default(level, fields, n, NULL);
}

void log_ring_install(size_t capacity)
{
    ring.text = g_string_new(NULL);
    ring.capacity = capacity;
    char name[256] = "localhost";
    gethostname(name, sizeof name - 1);
    ring.hostname = g_strdup(name);
    g_log_set_writer_func(writer, NULL, NULL);
}

char *log_ring_contents(void)
{
    if (!ring.text)
        return g_strdup("");
    g_mutex_lock(&ring.lock);
    char *copy = g_strdup(ring.text->str);
    g_mutex_unlock(&ring.lock);
    return copy;
}

/* A connected UDP socket to "host[:port]", or -1 with err set. */
static int connect_destination(const char *destination, XapiError **err)
{
    g_autofree char *host = g_strdup(destination);
    const char *port = "514";
    char *colon = strrchr(host, ':');
    if (host[0] == '[') { /* [v6]:port */
        char *close = strchr(host, ']');
        if (close && close[1] == ':')
            port = close + 2;
        if (close)
            *close = '\0';
        memmove(host, host + 1, strlen(host));
    } else if (colon && colon == strchr(host, ':')) {
        *colon = '\0';
        port = colon + 1;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0)
        return xapi_error_internal(err, "syslog destination %s: %s", destination,
                                   gai_strerror(rc));
    int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return xapi_error_internal(err, "syslog destination %s: cannot connect", destination);
    return fd;
}

int log_ring_forward_to(const char *destination, XapiError **err)
{
    int fd = -1;
    if (*destination && (fd = connect_destination(destination, err)) < 0)
        return -1;
    g_mutex_lock(&ring.lock);
    int old = ring.syslog_fd;
    ring.syslog_fd = fd;
    g_mutex_unlock(&ring.lock);
    if (old >= 0)
        close(old);
    g_message("log: %s%s", *destination ? "copied to syslog at " : "not copied to a remote syslog",
              destination);
    return 0;
}
