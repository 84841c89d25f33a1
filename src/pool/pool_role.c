/* pool_role.c: the role files, the management address, the member timeout. */
#include "pool_role.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

static struct {
    char *state_dir;
    const char *master_address; /* NULL: master; interned (never freed: read unlocked) */
    const char *this_host;      /* pool-host, interned; also kept on a dqlite master */
    char *local_address;
    int local_port;
    unsigned member_timeout;
    gint changed; /* atomic: the role files differ from the role this process runs */
    gint booting; /* atomic: not serving yet, or changing role in-process */
} role = {.member_timeout = 20};

static char *state_file(const char *name)
{
    return g_build_filename(role.state_dir, name, NULL);
}

int pool_role_load(const char *state_dir, XapiError **err)
{
    g_free(role.state_dir);
    role.state_dir = g_strdup(state_dir);
    role.master_address = NULL;
    role.this_host = NULL;
    g_autofree char *host_path = state_file("pool-host");
    g_autofree char *host = NULL;
    if (g_file_get_contents(host_path, &host, NULL, NULL) && *g_strstrip(host))
        role.this_host = g_intern_string(host);
    g_autofree char *path = state_file("pool-role");
    g_autofree char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return 0; /* standalone */
    g_strstrip(text);
    if (strcmp(text, "master") == 0 || !*text)
        return 0;
    if (!g_str_has_prefix(text, "member ") || !*g_strstrip(text + 7))
        return xapi_error_internal(err, "%s: neither \"master\" nor \"member ADDRESS\"", path);
    if (!role.this_host)
        return xapi_error_internal(err, "%s says member but %s is missing", path, host_path);
    role.master_address = g_intern_string(text + 7);
    return 0;
}

const char *pool_state_dir(void) { return role.state_dir; }
bool pool_is_member(void) { return role.master_address != NULL; }
const char *pool_master_address(void) { return role.master_address; }
const char *pool_this_host(void) { return role.master_address ? role.this_host : NULL; }
const char *pool_own_host(void) { return role.this_host; }

char *pool_endpoint_of(const char *address)
{
    /* "a.b.c.d:P", "[v6]:P" have a port; a bare v6 address has colons but
     * no brackets. */
    const char *colon = strrchr(address, ':');
    bool has_port = colon && (address[0] == '[' ? colon > strchr(address, ']')
                                                : strchr(address, ':') == colon);
    if (has_port)
        return g_strdup(address);
    bool v6 = strchr(address, ':') != NULL;
    return g_strdup_printf(v6 ? "[%s]:%d" : "%s:%d", address, role.local_port);
}

char *pool_master_endpoint(void)
{
    return role.master_address ? pool_endpoint_of(role.master_address) : NULL;
}

/* Writes name durably: a temporary file, fsync, rename, fsync of the dir. */
static int write_durably(const char *name, const char *text, XapiError **err)
{
    g_autofree char *path = state_file(name);
    g_autofree char *tmp = g_strconcat(path, ".new", NULL);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return xapi_error_internal(err, "%s: %s", tmp, g_strerror(errno));
    size_t len = strlen(text);
    bool ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    int saved = errno;
    close(fd);
    if (!ok || rename(tmp, path) < 0) {
        if (ok)
            saved = errno;
        unlink(tmp);
        return xapi_error_internal(err, "%s: %s", path, g_strerror(saved));
    }
    int dir = open(role.state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        fsync(dir);
        close(dir);
    }
    return 0;
}

int pool_role_write_member(const char *master_address, const char *host_ref, XapiError **err)
{
    g_autofree char *host_line = g_strconcat(host_ref, "\n", NULL);
    g_autofree char *role_line = g_strconcat("member ", master_address, "\n", NULL);
    if (write_durably("pool-host", host_line, err) < 0 ||
        write_durably("pool-role", role_line, err) < 0)
        return -1;
    role.this_host = g_intern_string(host_ref);
    role.master_address = g_intern_string(master_address);
    g_atomic_int_set(&role.changed, 1);
    return 0;
}

int pool_role_follow(const char *master_address, XapiError **err)
{
    if (!role.this_host)
        return xapi_error_internal(err, "pool: %s/pool-host is missing", role.state_dir);
    g_autofree char *role_line = g_strconcat("member ", master_address, "\n", NULL);
    if (write_durably("pool-role", role_line, err) < 0)
        return -1;
    role.master_address = g_intern_string(master_address);
    return 0;
}

int pool_role_write_master(const char *host_ref, XapiError **err)
{
    g_autofree char *host_line = g_strconcat(host_ref, "\n", NULL);
    if (write_durably("pool-host", host_line, err) < 0 ||
        write_durably("pool-role", "master\n", err) < 0)
        return -1;
    role.this_host = g_intern_string(host_ref);
    role.master_address = NULL;
    return 0;
}

int pool_role_clear(XapiError **err)
{
    g_autofree char *path = state_file("pool-role");
    g_autofree char *host_path = state_file("pool-host");
    if ((g_unlink(path) < 0 && errno != ENOENT) || (g_unlink(host_path) < 0 && errno != ENOENT))
        return xapi_error_internal(err, "%s: %s", path, g_strerror(errno));
    int dir = open(role.state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        fsync(dir);
        close(dir);
    }
    role.master_address = NULL;
    role.this_host = NULL;
    g_atomic_int_set(&role.changed, 1);
    return 0;
}

bool pool_role_changed(void)
{
    return g_atomic_int_get(&role.changed) || g_atomic_int_get(&role.booting);
}

void pool_role_set_booting(bool on) { g_atomic_int_set(&role.booting, on); }
bool pool_role_booting(void) { return g_atomic_int_get(&role.booting); }

void pool_set_local_address(const char *address, int port)
{
    char *copy = address ? g_strdup(address) : NULL; /* address may be the old value */
    g_free(role.local_address);
    role.local_address = copy;
    role.local_port = port;
}

const char *pool_local_address(void) { return role.local_address; }
int pool_local_port(void) { return role.local_port; }
void pool_set_member_timeout(unsigned seconds) { role.member_timeout = seconds; }
unsigned pool_member_timeout(void) { return role.member_timeout; }
