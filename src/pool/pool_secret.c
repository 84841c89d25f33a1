/* pool_secret.c: reading, creating and replacing STATE_DIR/pool-secret. */
#include "pool_secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <glib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "pool_client.h"

static bool is_secret_hex(const char *s)
{
    if (strlen(s) != POOL_SECRET_HEX_LEN)
        return false;
    for (const char *p = s; *p; p++)
        if (!g_ascii_isxdigit(*p))
            return false;
    return true;
}

int pool_secret_set(const char *state_dir, const char *hex, XapiError **err)
{
    if (!hex || !is_secret_hex(hex))
        return xapi_error_set(err, "INVALID_VALUE", "pool secret", hex ? hex : "", NULL);
    g_autofree char *path = g_build_filename(state_dir, "pool-secret", NULL);
    g_autofree char *tmp = g_strconcat(path, ".new", NULL);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return xapi_error_internal(err, "pool secret: %s: %s", tmp, g_strerror(errno));
    bool ok = write(fd, hex, POOL_SECRET_HEX_LEN) == POOL_SECRET_HEX_LEN && write(fd, "\n", 1) == 1 &&
              fsync(fd) == 0;
    int saved = errno;
    close(fd);
    if (!ok || rename(tmp, path) < 0) {
        if (ok)
            saved = errno;
        unlink(tmp);
        if (saved == ENOSPC)
            return xapi_error_set(err, "OUT_OF_SPACE", state_dir, NULL);
        return xapi_error_internal(err, "pool secret: %s: %s", path, g_strerror(saved));
    }
    int dir = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        fsync(dir);
        close(dir);
    }
    return 0;
}

char *pool_secret_get(const char *state_dir, XapiError **err)
{
    g_autofree char *path = g_build_filename(state_dir, "pool-secret", NULL);
    g_autofree char *text = NULL;
    if (g_file_get_contents(path, &text, NULL, NULL)) {
        g_strstrip(text);
        if (is_secret_hex(text))
            return g_steal_pointer(&text);
        xapi_error_internal(err, "pool secret: %s is not %d hex digits", path, POOL_SECRET_HEX_LEN);
        return NULL;
    }
    unsigned char raw[POOL_SECRET_HEX_LEN / 2];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        xapi_error_internal(err, "pool secret: getrandom: %s", g_strerror(errno));
        return NULL;
    }
    char hex[POOL_SECRET_HEX_LEN + 1];
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    if (pool_secret_set(state_dir, hex, err) < 0)
        return NULL;
    return g_strdup(hex);
}

bool pool_secret_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = la != lb;
    for (size_t i = 0; i < la && i < lb; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

char *pool_secret_header(const char *state_dir, XapiError **err)
{
    g_autofree char *secret = pool_secret_get(state_dir, err);
    return secret ? g_strconcat(POOL_SECRET_HEADER ": ", secret, NULL) : NULL;
}
