/* image_chain.c: a disk image and its backing files, opened by xapid so
 * that QEMU gets descriptors and needs no right to open them by name.
 *
 * The backing file of a qcow2 image is named in its header (QEMU's
 * docs/interop/qcow2.txt): backing_file_offset (8, u64) and
 * backing_file_size (16, u32) locate the name inside the first cluster,
 * and the header extension 0xE2792ACA holds its format. */
#include "image_chain.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define QCOW2_MAGIC 0x514649fbu
#define QCOW2_EXT_BACKING_FORMAT 0xE2792ACAu
#define QCOW2_V2_HEADER_LENGTH 72
#define QCOW2_MAX_CLUSTER (2u << 20)

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const unsigned char *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }

/* The first cluster of a qcow2 image (header, extensions, backing name). */
static unsigned char *read_first_cluster(int fd, size_t *len)
{
    unsigned char head[24];
    if (pread(fd, head, sizeof head, 0) != (ssize_t)sizeof head)
        return NULL;
    uint32_t cluster_bits = be32(head + 20);
    size_t size = cluster_bits >= 9 && cluster_bits <= 21 ? (size_t)1 << cluster_bits
                                                          : QCOW2_MAX_CLUSTER;
    unsigned char *buf = g_malloc0(size);
    ssize_t n = pread(fd, buf, size, 0);
    if (n < (ssize_t)QCOW2_V2_HEADER_LENGTH) {
        g_free(buf);
        return NULL;
    }
    *len = (size_t)n;
    return buf;
}

/* The backing file's name and format recorded in the qcow2 image at fd:
 * 0 with *name NULL when it has none. */
static int qcow2_backing(int fd, const char *path, char **name, char **format, XapiError **err)
{
    *name = *format = NULL;
    size_t len = 0;
    g_autofree unsigned char *c = read_first_cluster(fd, &len);
    if (!c || be32(c) != QCOW2_MAGIC)
        return xapi_error_set(err, "SR_BACKEND_FAILURE", "", "", "not a qcow2 image", path,
                              NULL);
    uint64_t offset = be64(c + 8);
    uint32_t size = be32(c + 16);
    if (!offset)
        return 0;
    if (offset >= len || size == 0 || size > len - offset || memchr(c + offset, 0, size))
        return xapi_error_set(err, "SR_BACKEND_FAILURE", "", "",
                              "unreadable backing file name", path, NULL);
    size_t ext = be32(c + 4) >= 3 && len >= 104 ? be32(c + 100) : QCOW2_V2_HEADER_LENGTH;
    while (ext + 8 <= len) {
        uint32_t type = be32(c + ext), ext_len = be32(c + ext + 4);
        if (type == 0 || ext_len > len - ext - 8)
            break;
        if (type == QCOW2_EXT_BACKING_FORMAT && ext_len > 0 && ext_len < 32)
            *format = g_strndup((const char *)c + ext + 8, ext_len);
        ext += 8 + (((size_t)ext_len + 7) & ~(size_t)7);
    }
    if (!*format || (strcmp(*format, "qcow2") != 0 && strcmp(*format, "raw") != 0)) {
        g_clear_pointer(format, g_free);
        return xapi_error_set(err, "SR_BACKEND_FAILURE", "", "",
                              "the backing file's format is not recorded as qcow2 or raw", path,
                              NULL);
    }
    *name = g_strndup((const char *)c + offset, size);
    return 0;
}

static int open_image(const char *path, int flags, XapiError **err)
{
    int fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    if (fd < 0)
        xapi_error_set(err, "SR_BACKEND_FAILURE", "", "", g_strerror(errno), path, NULL);
    return fd;
}

static int add_layer(ImageChain *chain, const char *path, const char *format, bool writable,
                     XapiError **err)
{
    ImageLayer *l = &chain->layers[chain->n];
    l->fd_rw = -1;
    l->fd_ro = open_image(path, O_RDONLY, err);
    if (l->fd_ro < 0)
        return -1;
    if (writable && (l->fd_rw = open_image(path, O_RDWR, err)) < 0) {
        close(l->fd_ro);
        return -1;
    }
    l->format = g_strdup(format);
    chain->n++;
    return 0;
}

int image_chain_open(const char *path, const char *format, bool writable, ImageChain *chain,
                     XapiError **err)
{
    chain->layers = g_new0(ImageLayer, IMAGE_CHAIN_MAX);
    chain->n = 0;
    g_autofree char *current = g_strdup(path);
    g_autofree char *current_format = g_strdup(strcmp(format, "qcow2") == 0 ? "qcow2" : "raw");
    for (;;) {
        if (chain->n == IMAGE_CHAIN_MAX) {
            image_chain_close(chain);
            return xapi_error_set(err, "SR_BACKEND_FAILURE", "", "",
                                  "backing chain too long (a loop?)", path, NULL);
        }
        if (add_layer(chain, current, current_format, writable && chain->n == 0, err) < 0) {
            image_chain_close(chain);
            return -1;
        }
        if (strcmp(current_format, "qcow2") != 0)
            return 0;
        g_autofree char *name = NULL, *backing_format = NULL;
        if (qcow2_backing(chain->layers[chain->n - 1].fd_ro, current, &name, &backing_format,
                          err) < 0) {
            image_chain_close(chain);
            return -1;
        }
        if (!name)
            return 0;
        g_autofree char *dir = g_path_get_dirname(current);
        g_free(current);
        current = g_path_is_absolute(name) ? g_steal_pointer(&name)
                                           : g_build_filename(dir, name, NULL);
        g_free(current_format);
        current_format = g_steal_pointer(&backing_format);
    }
}

void image_chain_close(ImageChain *chain)
{
    for (size_t i = 0; i < chain->n; i++) {
        ImageLayer *l = &chain->layers[i];
        if (l->fd_rw >= 0)
            close(l->fd_rw);
        if (l->fd_ro >= 0)
            close(l->fd_ro);
        g_free(l->format);
    }
    g_clear_pointer(&chain->layers, g_free);
    chain->n = 0;
}
