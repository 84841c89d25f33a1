/* macvtap.c: a guest NIC's macvtap link on a NIC that is no bridge's port,
 * and the character device QEMU reads and writes its frames through. */
#include "macvtap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "host_links.h"
#include "host_net.h"

bool macvtap_is(const char *name)
{
    if (!hostnet_valid_name(name))
        return false;
    g_autofree char *dir = g_build_filename("/sys/class/net", name, "macvtap", NULL);
    return g_file_test(dir, G_FILE_TEST_IS_DIR);
}

/* The link's character device number, from sysfs
 * (/sys/class/net/X/macvtap/tapN/dev, "major:minor"). */
static bool device_number(const char *name, dev_t *out)
{
    g_autofree char *dir = g_build_filename("/sys/class/net", name, "macvtap", NULL);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *entry = d ? g_dir_read_name(d) : NULL;
    if (!entry)
        return false;
    g_autofree char *path = g_build_filename(dir, entry, "dev", NULL);
    g_autofree char *text = NULL;
    unsigned major_n, minor_n;
    if (!g_file_get_contents(path, &text, NULL, NULL) ||
        sscanf(text, "%u:%u", &major_n, &minor_n) != 2)
        return false;
    *out = makedev(major_n, minor_n);
    return true;
}

/* /dev/tap<ifindex> is made by devtmpfs, but the ifindex of a link in
 * another network namespace may be the same: the node is used only if it
 * is this link's, otherwise a private node is made, opened and unlinked. */
static int open_device(const char *name, dev_t dev, XapiError **err)
{
    g_autofree char *ifindex = NULL;
    g_autofree char *index_path = g_build_filename("/sys/class/net", name, "ifindex", NULL);
    if (g_file_get_contents(index_path, &ifindex, NULL, NULL)) {
        g_autofree char *node = g_strdup_printf("/dev/tap%s", g_strstrip(ifindex));
        struct stat st;
        if (stat(node, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == dev) {
            int fd = open(node, O_RDWR | O_CLOEXEC);
            if (fd >= 0)
                return fd;
        }
    }
    g_autofree char *own = g_strdup_printf("/dev/.xapid-%s-%d", name, (int)getpid());
    unlink(own);
    if (mknod(own, S_IFCHR | 0600, dev) < 0)
        return xapi_error_internal(err, "mknod %s: %s", own, g_strerror(errno));
    int fd = open(own, O_RDWR | O_CLOEXEC);
    int saved = errno;
    unlink(own);
    if (fd < 0)
        return xapi_error_internal(err, "open %s: %s", own, g_strerror(saved));
    return fd;
}

int macvtap_open(const char *name, const char *parent, const char *mac, int mtu, XapiError **err)
{
    if (hostlinks_macvtap_add(name, parent, mac, mtu, err) < 0)
        return -1;
    dev_t dev;
    int fd = -1;
    if (!device_number(name, &dev))
        xapi_error_internal(err, "the macvtap %s has no character device", name);
    else
        fd = open_device(name, dev, err);
    if (fd < 0) {
        g_autoptr(XapiError) ignored = NULL;
        hostlinks_del(name, &ignored);
    }
    return fd;
}

int macvtap_remove(const char *name, XapiError **err)
{
    if (!macvtap_is(name))
        return 0;
    return hostlinks_del(name, err);
}

void macvtap_remove_prefixed(const char *prefix, GHashTable *keep)
{
    g_autoptr(GDir) dir = g_dir_open("/sys/class/net", 0, NULL);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    for (const char *n = dir ? g_dir_read_name(dir) : NULL; n; n = g_dir_read_name(dir))
        if (g_str_has_prefix(n, prefix) && (!keep || !g_hash_table_contains(keep, n)) &&
            macvtap_is(n))
            g_ptr_array_add(names, g_strdup(n));
    for (guint i = 0; i < names->len; i++) {
        g_autoptr(XapiError) err = NULL;
        if (hostlinks_del(names->pdata[i], &err) < 0)
            g_warning("cannot remove macvtap %s: %s", (char *)names->pdata[i],
                      err ? err->code : "");
    }
}
