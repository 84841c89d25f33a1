/* nbd_image.c: image I/O through qemu-nbd, started by libnbd on a socket
 * it hands over (systemd socket activation), so no path or port is ever
 * shared with anyone else and qemu-nbd exits when we disconnect. */
#include <glib.h>

#include "nbd_image.h"

#include <libnbd.h>
#include <string.h>

/* Extents remembered from the last block-status reply (qemu-nbd answers
 * for up to a few GiB at once). */
#define EXTENTS_KEPT 1024

struct NbdImage {
    struct nbd_handle *nbd;
    int64_t size;
    bool allocation; /* base:allocation negotiated */
    guint n_extents;
    int64_t extent_start[EXTENTS_KEPT + 1]; /* boundaries; extent i is [start[i], start[i+1]) */
    bool extent_zero[EXTENTS_KEPT];
};

static int nbd_failure(XapiError **err)
{
    return xapi_error_set(err, "VDI_IO_ERROR", nbd_get_error() ? nbd_get_error() : "NBD failure",
                          NULL);
}

/* Starts qemu-nbd on path with the cache mode given and connects. */
static struct nbd_handle *serve(const char *path, const char *format, bool writable,
                                const char *cache)
{
    /* A VHD's size is the one its footer states: qemu would otherwise take
     * the disk geometry of images from most makers (Xen Orchestra's among
     * them), which rounds the size down. */
    g_auto(GStrv) parts = g_strsplit(path, ",", -1);
    g_autofree char *escaped = g_strjoinv(",,", parts);
    g_autofree char *vpc = g_strdup_printf(
        "driver=vpc,force_size_calc=current_size,file.driver=file,file.filename=%s", escaped);
    bool is_vpc = strcmp(format, "vpc") == 0;
    /* qemu-nbd allocates a buffer per request: glibc would map and unmap
     * each one, and first touches of fresh pages cost qemu-nbd four times
     * the copy itself. env execs in place, so qemu-nbd keeps the pid that
     * socket activation names. */
    const char *argv[] = {"env",
                          "GLIBC_TUNABLES=glibc.malloc.mmap_threshold=67108864:"
                          "glibc.malloc.trim_threshold=268435456",
                          "qemu-nbd", cache, writable ? "--discard=unmap" : "--read-only",
                          is_vpc ? "--image-opts" : "-f", is_vpc ? vpc : format,
                          is_vpc ? NULL : path, NULL};
    struct nbd_handle *nbd = nbd_create();
    if (nbd && (nbd_add_meta_context(nbd, LIBNBD_CONTEXT_BASE_ALLOCATION) < 0 ||
                nbd_connect_systemd_socket_activation(nbd, (char **)argv) < 0))
        g_clear_pointer(&nbd, nbd_close);
    return nbd;
}

NbdImage *nbd_image_open(const char *path, const char *format, bool writable, XapiError **err)
{
    g_autoptr(NbdImage) img = g_new0(NbdImage, 1);
    /* Writes bypass the page cache (O_DIRECT): less CPU for qemu-nbd, and
     * a flush at close that has little left to do. File systems without
     * O_DIRECT (tmpfs) get the page cache and the same flush. Reads keep
     * the page cache: what was just written is often read next. */
    if (writable)
        img->nbd = serve(path, format, true, "--cache=none");
    if (!img->nbd)
        img->nbd = serve(path, format, writable, "--cache=writeback");
    if (!img->nbd) {
        nbd_failure(err);
        return NULL;
    }
    img->size = nbd_get_size(img->nbd);
    if (img->size < 0) {
        nbd_failure(err);
        return NULL;
    }
    img->allocation = nbd_can_meta_context(img->nbd, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
    return g_steal_pointer(&img);
}

int64_t nbd_image_size(const NbdImage *img) { return img->size; }

/* What was zero in [from, to) may hold data now. Writes go forward, just
 * behind the cached run: trimming its start keeps the rest. */
static void forget_extents(NbdImage *img, int64_t from, int64_t to)
{
    if (!img->n_extents || to <= img->extent_start[0] ||
        from >= img->extent_start[img->n_extents])
        return;
    if (from > img->extent_start[0] || to >= img->extent_start[img->n_extents]) {
        img->n_extents = 0;
        return;
    }
    guint i = 0;
    while (img->extent_start[i + 1] <= to)
        i++;
    memmove(img->extent_start, img->extent_start + i, (img->n_extents - i + 1) * sizeof(int64_t));
    memmove(img->extent_zero, img->extent_zero + i, (img->n_extents - i) * sizeof(bool));
    img->n_extents -= i;
    img->extent_start[0] = to;
}

/* qemu-nbd takes at most 32 MiB a request. */
#define REQUEST_MAX (32u << 20)

int nbd_image_read(NbdImage *img, void *buf, size_t len, int64_t offset, XapiError **err)
{
    for (size_t done = 0; done < len;) {
        size_t n = MIN(len - done, REQUEST_MAX);
        if (nbd_pread(img->nbd, (char *)buf + done, n, (uint64_t)offset + done, 0) < 0)
            return nbd_failure(err);
        done += n;
    }
    return 0;
}

int nbd_image_write(NbdImage *img, const void *buf, size_t len, int64_t offset,
                    XapiError **err)
{
    for (size_t done = 0; done < len;) {
        size_t n = MIN(len - done, REQUEST_MAX);
        if (nbd_pwrite(img->nbd, (const char *)buf + done, n, (uint64_t)offset + done, 0) < 0)
            return nbd_failure(err);
        done += n;
    }
    forget_extents(img, offset, offset + (int64_t)len);
    return 0;
}

int nbd_image_zero(NbdImage *img, int64_t len, int64_t offset, XapiError **err)
{
    for (int64_t done = 0; done < len;) {
        int64_t n = MIN(len - done, (int64_t)1 << 30);
        if (nbd_zero(img->nbd, (uint64_t)n, (uint64_t)(offset + done), 0) < 0)
            return nbd_failure(err);
        done += n;
    }
    return 0;
}

static int on_extents(void *user_data, const char *metacontext, uint64_t offset,
                      uint32_t *entries, size_t nr_entries, int *error)
{
    NbdImage *img = user_data;
    if (strcmp(metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0)
        return 0;
    int64_t at = (int64_t)offset;
    img->n_extents = 0;
    img->extent_start[0] = at;
    for (size_t i = 0; i + 1 < nr_entries && img->n_extents < EXTENTS_KEPT; i += 2) {
        at += entries[i];
        img->extent_zero[img->n_extents] = entries[i + 1] & LIBNBD_STATE_ZERO;
        img->extent_start[++img->n_extents] = at;
    }
    return 0;
}

int nbd_image_extent(NbdImage *img, int64_t offset, int64_t max, int64_t *len, bool *zero,
                     XapiError **err)
{
    max = MIN(max, img->size - offset);
    if (!img->allocation || max <= 0) {
        *len = MAX(max, 0);
        *zero = false;
        return 0;
    }
    if (!img->n_extents || offset < img->extent_start[0] ||
        offset >= img->extent_start[img->n_extents]) {
        nbd_extent_callback cb = {.callback = on_extents, .user_data = img};
        int64_t ask = MIN(img->size - offset, (int64_t)1 << 31);
        img->n_extents = 0;
        if (nbd_block_status(img->nbd, (uint64_t)ask, (uint64_t)offset, cb, 0) < 0)
            return nbd_failure(err);
        if (!img->n_extents) /* a server must describe at least one extent */
            return xapi_error_set(err, "VDI_IO_ERROR", "no block status from qemu-nbd", NULL);
    }
    guint i = 0;
    while (img->extent_start[i + 1] <= offset)
        i++;
    *zero = img->extent_zero[i];
    /* Neighbours alike in the cache make one run. */
    guint j = i + 1;
    while (j < img->n_extents && img->extent_zero[j] == *zero)
        j++;
    *len = MIN(img->extent_start[j] - offset, max);
    return 0;
}

int nbd_image_close(NbdImage *img, XapiError **err)
{
    int rc = 0;
    if (nbd_flush(img->nbd, 0) < 0 || nbd_shutdown(img->nbd, 0) < 0)
        rc = nbd_failure(err);
    nbd_image_free(img);
    return rc;
}

void nbd_image_free(NbdImage *img)
{
    if (!img)
        return;
    if (img->nbd)
        nbd_close(img->nbd); /* waits for qemu-nbd */
    g_free(img);
}
