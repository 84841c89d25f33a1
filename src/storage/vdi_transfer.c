/* vdi_transfer.c: VDI import and export streams (vdi_transfer.h). Data
 * moves in chunks through qemu-nbd; all-zero granules are skipped where
 * the image already reads zero, and holes are known from block status.
 * Raw data for a VDI that stands alone (no backing file, no image built on
 * it) goes straight into a new raw file instead, and a raw file with no
 * base to differ from is sent straight from the file. */
#include "vdi_transfer.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nbd_image.h"
#include "pending_files.h"
#include "qemu_img.h"
#include "storage_operations.h"
#include "task.h"
#include "vdi_target.h"

#define CHUNK (4u << 20)               /* bytes per NBD read or write */
#define GRANULE (64u << 10)            /* zero and base comparisons (a qcow2 cluster) */
#define BLOCK (4u << 10)               /* zero blocks left as holes in a raw file */
#define PROGRESS_STEP ((int64_t)64 << 20)

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

/* ---- formats ---------------------------------------------------------------- */

static const char *const format_names[] = {"raw", "vhd", "qcow2"};
static const char *const content_types[] = {"application/octet-stream", "application/vhd",
                                            "application/x-qemu-disk"};
static const char *const qemu_formats[] = {"raw", "vpc", "qcow2"};

bool vdi_stream_format_parse(const char *name, VdiStreamFormat *out)
{
    for (size_t i = 0; i < G_N_ELEMENTS(format_names); i++)
        if (g_ascii_strcasecmp(name, format_names[i]) == 0) {
            *out = (VdiStreamFormat)i;
            return true;
        }
    return false;
}

const char *vdi_stream_format_name(VdiStreamFormat format) { return format_names[format]; }
const char *vdi_stream_content_type(VdiStreamFormat format) { return content_types[format]; }

char *vdi_transfer_resolve(const char *ref_or_uuid, XapiError **err)
{
    db_read_begin();
    DbRow *vdi = g_str_has_prefix(ref_or_uuid, "OpaqueRef:")
                     ? db_lookup(cls("VDI"), ref_or_uuid)
                     : db_lookup_uuid(cls("VDI"), ref_or_uuid);
    char *ref = vdi ? g_strdup(vdi->ref) : NULL;
    db_read_end();
    if (!ref)
        xapi_error_set(err, g_str_has_prefix(ref_or_uuid, "OpaqueRef:") ? "HANDLE_INVALID"
                                                                        : "UUID_INVALID",
                       "VDI", ref_or_uuid, NULL);
    return ref;
}

/* ---- the VDI and its file ------------------------------------------------------ */

/* Whether the VDI stands alone: no sm_config:vhd-parent, and no VDI of
 * its SR names it as one. */
static bool stands_alone(const VdiTarget *t)
{
    db_read_begin();
    DbRow *vdi = db_lookup(cls("VDI"), t->ref);
    DbRow *sr = db_lookup(cls("SR"), t->sr);
    bool alone = vdi && sr && !xv_struct_get(db_get(vdi, "sm_config"), "vhd-parent") &&
                 !storage_vdi_has_children(sr, t->uuid);
    db_read_end();
    return alone;
}

/* Whether the qcow2 image at path reads without a backing file. */
static bool has_no_backing_file(const char *path)
{
    QemuImgInfo info = {0};
    g_autoptr(XapiError) ignored = NULL;
    bool alone = qemu_img_info(path, "qcow2", &info, &ignored) == 0 && !info.backing;
    qemu_img_info_clear(&info);
    return alone;
}

static int os_failure(const char *what, const char *path, XapiError **err)
{
    g_autofree char *text = g_strdup_printf("%s %s: %s", what, path, g_strerror(errno));
    return xapi_error_set(err, "VDI_IO_ERROR", text, NULL);
}

static int too_small(const VdiTarget *t, int64_t needed, XapiError **err)
{
    char size[32];
    g_snprintf(size, sizeof size, "%" G_GINT64_FORMAT, needed);
    return xapi_error_set(err, "VDI_TOO_SMALL", t->ref, size, NULL);
}

/* A dot-name beside the VDI's file (SR scans pass over it), noted before
 * the file is made so that a crash never leaves it behind; NULL if the
 * note cannot be written. */
static char *temp_path(const VdiTarget *t, const char *what, XapiError **err)
{
    g_autofree char *stem = db_new_uuid();
    g_autofree char *name = g_strdup_printf(".%s-%s-%s.tmp", t->uuid, what, stem);
    char *path = sr_path(t->dir, name);
    if (pending_file_note(path, err) < 0)
        g_clear_pointer(&path, g_free);
    return path;
}

/* Removes a temporary file and its note. */
static void temp_remove(const char *path)
{
    unlink(path);
    pending_file_done(path);
}

static int run_qemu_img(const char *const *argv, XapiError **err)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GSubprocess) p = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
                                                           G_SUBPROCESS_FLAGS_STDERR_PIPE,
                                                 &error);
    g_autofree char *errors = NULL;
    if (!p || !g_subprocess_communicate_utf8(p, NULL, NULL, NULL, &errors, &error))
        return xapi_error_set(err, "SR_BACKEND_FAILURE", "127", "", error->message, NULL);
    if (!g_subprocess_get_successful(p)) {
        char status[16];
        g_snprintf(status, sizeof status, "%d", g_subprocess_get_exit_status(p));
        return xapi_error_set(err, "SR_BACKEND_FAILURE", status, "",
                              errors ? g_strstrip(errors) : "", NULL);
    }
    return 0;
}

/* A new empty image of qemu_format at path. A VHD keeps its exact size
 * (force_size), as VDIs are not rounded to a disk geometry. */
static int image_create(const char *path, const char *qemu_format, int64_t size,
                        const char *backing, const char *backing_format, XapiError **err)
{
    if (strcmp(qemu_format, "qcow2") == 0)
        return backing && backing_format
                   ? qemu_img_create_over(path, size, backing, backing_format, err)
                   : qemu_img_create(path, size, backing, err);
    if (strcmp(qemu_format, "vpc") == 0) {
        char size_text[32];
        g_snprintf(size_text, sizeof size_text, "%" G_GINT64_FORMAT, size);
        const char *argv[] = {"qemu-img", "create", "-q", "-f", "vpc", "-o",
                              "subformat=dynamic,force_size=on", path, size_text, NULL};
        return run_qemu_img(argv, err);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    int rc = fd >= 0 && ftruncate(fd, size) == 0 ? 0 : os_failure("cannot create", path, err);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* The image that will take the place of t's file: empty, in its format,
 * over its backing file if it has one (a VDI after snapshot). */
static char *stage_create(const VdiTarget *t, XapiError **err)
{
    char *path = temp_path(t, "import", err);
    if (!path)
        return NULL;
    QemuImgInfo info = {0};
    int rc = strcmp(t->format, "qcow2") == 0 ? qemu_img_info(t->path, "qcow2", &info, err) : 0;
    if (rc == 0)
        rc = image_create(path, t->format, t->virtual_size, info.backing, info.backing_format,
                          err);
    qemu_img_info_clear(&info);
    if (rc < 0) {
        temp_remove(path);
        g_clear_pointer(&path, g_free);
    }
    return path;
}

static void sync_dir(const char *path)
{
    int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        fsync(dir); /* renames and unlinks survive a crash */
        close(dir);
    }
}

/* Puts the complete staging image in the place of t's file and records
 * what it takes on disk. */
static int stage_commit(const VdiTarget *t, const char *stage, XapiError **err)
{
    storage_lock_sr(t->sr);
    int rc = 0;
    if (rename(stage, t->path) < 0)
        rc = os_failure("cannot replace", t->path, err);
    else
        sync_dir(t->dir);
    if (rc == 0)
        pending_file_done(stage);
    VdiInfo info = {0};
    SrSpace space = {0};
    if (rc == 0)
        rc = t->driver->vdi_info(t->dir, t->location, &info, err);
    if (rc == 0)
        storage_sr_space_read(t->sr, &space); /* before the write lock */
    if (rc == 0 && (rc = db_write_begin(err)) == 0) {
        DbRow *vdi = db_lookup(cls("VDI"), t->ref);
        DbRow *sr = db_lookup(cls("SR"), t->sr);
        if (vdi)
            db_set_by_name(vdi, "physical_utilisation", xv_new_int(info.physical_utilisation),
                           NULL);
        if (sr && storage_refresh_sr_space(sr, &space, err) < 0) {
            db_write_abort();
            rc = -1;
        } else {
            rc = db_write_commit(err);
        }
    }
    vdi_info_clear(&info);
    storage_unlock_sr(t->sr);
    return rc;
}

/* The complete raw file stage becomes t's image under a new location,
 * "<uuid>.raw": moved in, the VDI's record pointed at it together with
 * its new physical_utilisation in one transaction, the old image deleted,
 * all under the SR's lock (a scan sees either image, never both). */
static int raw_commit(const VdiTarget *t, const char *stage, XapiError **err)
{
    g_autofree char *stem = db_new_uuid();
    g_autofree char *location = g_strconcat(stem, ".raw", NULL);
    g_autofree char *path = sr_path(t->dir, location);
    storage_lock_sr(t->sr);
    int rc = pending_file_note(path, err);
    bool moved = false;
    if (rc == 0 && rename(stage, path) < 0)
        rc = os_failure("cannot rename", stage, err);
    else if (rc == 0)
        moved = true;
    VdiInfo info = {0};
    if (rc == 0)
        rc = t->driver->vdi_info(t->dir, location, &info, err);
    if (rc == 0 && (rc = db_write_begin(err)) == 0) {
        DbRow *vdi = db_lookup(cls("VDI"), t->ref);
        if (!vdi)
            rc = xapi_error_set(err, "HANDLE_INVALID", "VDI", t->ref, NULL);
        else if (db_set_by_name(vdi, "location", xv_new_string(location), err) < 0 ||
                 db_set_by_name(vdi, "physical_utilisation",
                                xv_new_int(info.physical_utilisation), err) < 0 ||
                 pending_file_note(t->path, err) < 0) /* the old image, now garbage */
            rc = -1;
        if (rc < 0)
            db_write_abort();
        else
            rc = db_write_commit(err);
    }
    vdi_info_clear(&info);
    if (rc == 0) {
        if (unlink(t->path) < 0 && errno != ENOENT)
            g_warning("VDI %s: %s left behind: %s", t->uuid, t->location, g_strerror(errno));
        sync_dir(t->dir);
        pending_file_done(t->path);
        pending_file_done(path);
        pending_file_done(stage);
        g_autoptr(XapiError) ignored = NULL; /* the space as it is now; a scan redoes it */
        SrSpace space;
        storage_sr_space_read(t->sr, &space);
        if (db_write_begin(&ignored) == 0) {
            DbRow *sr = db_lookup(cls("SR"), t->sr);
            if (sr && storage_refresh_sr_space(sr, &space, &ignored) < 0)
                db_write_abort();
            else
                db_write_commit(&ignored);
        }
    } else if (moved) {
        temp_remove(path);
    }
    storage_unlock_sr(t->sr);
    return rc;
}

/* ---- progress --------------------------------------------------------------- */

/* Progress of a task over a stretch [from, from + span) of its whole work;
 * also where a cancellation is noticed. */
typedef struct {
    const char *task;
    int64_t total;
    double from, span;
    int64_t next;
} Progress;

static int progress_update(Progress *p, int64_t done, XapiError **err)
{
    if (done < p->next || !p->task)
        return 0;
    p->next = done + PROGRESS_STEP;
    if (task_cancel_requested(p->task))
        return xapi_error_set(err, "TASK_CANCELLED", p->task, NULL);
    double part = p->total > 0 ? MIN(1.0, (double)done / (double)p->total) : 0;
    task_set_progress(p->task, p->from + p->span * part);
    return 0;
}

/* ---- block moves -------------------------------------------------------------- */

static bool all_zero(const guint8 *p, size_t n)
{
    return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Makes [offset, offset + len) of dst read as zeros, writing only where
 * it does not already. */
static int sink_zero(NbdImage *dst, int64_t offset, int64_t len, XapiError **err)
{
    for (int64_t end = offset + len; offset < end;) {
        int64_t n;
        bool zero;
        if (nbd_image_extent(dst, offset, end - offset, &n, &zero, err) < 0 ||
            (!zero && nbd_image_zero(dst, n, offset, err) < 0))
            return -1;
        offset += n;
    }
    return 0;
}

/* Writes buf at offset: data runs as they are, zero runs by sink_zero. */
static int sink_write(NbdImage *dst, int64_t offset, const guint8 *buf, size_t len,
                      XapiError **err)
{
    for (size_t i = 0; i < len;) {
        bool zero = all_zero(buf + i, MIN(GRANULE, len - i));
        size_t j = i + MIN(GRANULE, len - i);
        while (j < len && all_zero(buf + j, MIN(GRANULE, len - j)) == zero)
            j += MIN(GRANULE, len - j);
        if (zero ? sink_zero(dst, offset + (int64_t)i, (int64_t)(j - i), err)
                 : nbd_image_write(dst, buf + i, j - i, offset + (int64_t)i, err))
            return -1;
        i = j;
    }
    return 0;
}

/* An image read as a stream, or as its differences from base. */
typedef struct {
    NbdImage *img;
    NbdImage *base;    /* or NULL */
    guint8 *base_buf;  /* CHUNK bytes, with base */
} Source;

static void source_clear(Source *s)
{
    nbd_image_free(s->img);
    nbd_image_free(s->base);
    g_free(s->base_buf);
    *s = (Source){0};
}

/* Granules of buf (read at pos) that read the same in base become zeros:
 * what XAPI's differential exports send for unchanged blocks. */
static int drop_unchanged(Source *s, int64_t pos, guint8 *buf, int64_t len, XapiError **err)
{
    int64_t n = MIN(len, nbd_image_size(s->base) - pos);
    int64_t run;
    bool zero;
    if (n <= 0)
        return 0;
    if (nbd_image_extent(s->base, pos, n, &run, &zero, err) < 0)
        return -1;
    if (zero && run == n) /* equal granules there are zeros already */
        return 0;
    if (nbd_image_read(s->base, s->base_buf, (size_t)n, pos, err) < 0)
        return -1;
    for (int64_t i = 0; i < n; i += GRANULE) {
        size_t g = (size_t)MIN((int64_t)GRANULE, n - i);
        if (memcmp(buf + i, s->base_buf + i, g) == 0)
            memset(buf + i, 0, g);
    }
    return 0;
}

/* The next run of the stream from pos, at most max bytes: a hole (*hole;
 * buf untouched) or at most CHUNK bytes of data read into buf. */
static int64_t source_next(Source *s, int64_t pos, guint8 *buf, int64_t max, bool *hole,
                           XapiError **err)
{
    int64_t n;
    if (nbd_image_extent(s->img, pos, max, &n, hole, err) < 0)
        return -1;
    if (*hole)
        return n;
    n = MIN(n, (int64_t)CHUNK);
    if (nbd_image_read(s->img, buf, (size_t)n, pos, err) < 0 ||
        (s->base && drop_unchanged(s, pos, buf, n, err) < 0))
        return -1;
    return n;
}

/* dst (empty, or an overlay) gets src's stream, zeros past its end. */
static int copy_image(Source *src, NbdImage *dst, Progress *p, XapiError **err)
{
    g_autofree guint8 *buf = g_malloc(CHUNK);
    int64_t size = nbd_image_size(src->img);
    for (int64_t pos = 0; pos < size;) {
        bool hole;
        int64_t n = source_next(src, pos, buf, size - pos, &hole, err);
        if (n < 0 || (hole ? sink_zero(dst, pos, n, err)
                           : sink_write(dst, pos, buf, (size_t)n, err)) < 0 ||
            progress_update(p, pos + n, err) < 0)
            return -1;
        pos += n;
    }
    return sink_zero(dst, size, nbd_image_size(dst) - size, err);
}

/* ---- import ----------------------------------------------------------------------- */

struct VdiImport {
    VdiTarget t;
    VdiStreamFormat format;
    char *lock_ref, *op_task; /* operations_end needs both */
    int64_t length, received;
    Progress progress;
    char *stage;     /* the image taking the VDI's place */
    NbdImage *dst;   /* raw: the stage, open */
    guint8 *buf;     /* raw: bytes received and not yet written, */
    size_t fill;
    int64_t written; /* which go there */
    char *upload;    /* qcow2, vhd: the file as received */
    int upload_fd;
    int stage_fd;    /* raw into a VDI that stands alone: the stage, a raw file */
};

void vdi_import_free(VdiImport *im)
{
    if (!im)
        return;
    nbd_image_free(im->dst);
    if (im->upload_fd >= 0)
        close(im->upload_fd);
    if (im->stage_fd >= 0)
        close(im->stage_fd);
    if (im->stage)
        temp_remove(im->stage);
    if (im->upload)
        temp_remove(im->upload);
    if (im->lock_ref)
        operations_end(&vdi_operations, im->lock_ref, im->op_task);
    vdi_target_clear(&im->t);
    g_free(im->lock_ref);
    g_free(im->op_task);
    g_free(im->stage);
    g_free(im->upload);
    g_free(im->buf);
    g_free(im);
}

/* Whether a raw stream can go straight into a raw file that takes the
 * place of t's image: t stands alone (no backing file, no image built on
 * it) on the file driver. Else it goes through qemu-nbd into an image of
 * t's format, over t's backing file. */
static bool raw_direct(const VdiTarget *t)
{
    if (!t->driver || strcmp(t->driver->type, "file") != 0 || !stands_alone(t))
        return false;
    return strcmp(t->format, "raw") == 0 || has_no_backing_file(t->path);
}

VdiImport *vdi_import_begin(const char *vdi_ref, VdiStreamFormat format, int64_t length,
                            const char *task_ref, XapiError **err)
{
    VdiImport *im = g_new0(VdiImport, 1);
    im->format = format;
    im->length = length;
    im->upload_fd = -1;
    im->stage_fd = -1;
    im->op_task = task_ref ? g_strdup(task_ref) : db_new_ref();
    if (operations_begin(&vdi_operations, vdi_ref, "update", im->op_task, err) < 0) {
        vdi_import_free(im);
        return NULL;
    }
    im->lock_ref = g_strdup(vdi_ref);
    VdiTarget *t = &im->t;
    int rc = vdi_target_read(vdi_ref, t, err);
    if (rc == 0)
        rc = sr_chain_check(t->dir, t->location, err);
    if (rc == 0 && t->read_only)
        rc = xapi_error_set(err, "VDI_READONLY", vdi_ref, NULL);
    if (rc == 0 && format == VDI_STREAM_RAW && length > t->virtual_size)
        rc = too_small(t, length, err);
    im->progress = (Progress){task_ref ? im->op_task : NULL,
                              length >= 0 ? length : t->virtual_size, 0.0,
                              format == VDI_STREAM_RAW ? 1.0 : 0.5, 0};
    if (rc == 0 && format == VDI_STREAM_RAW && raw_direct(t)) {
        im->stage = temp_path(t, "import", err);
        im->stage_fd = im->stage ? open(im->stage, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                                                       O_CLOEXEC, 0644)
                                 : -1;
        if (!im->stage)
            rc = -1;
        else if (im->stage_fd < 0 || ftruncate(im->stage_fd, t->virtual_size) < 0)
            rc = os_failure("cannot create", im->stage, err);
    } else if (rc == 0 && format == VDI_STREAM_RAW) {
        im->stage = stage_create(t, err);
        im->dst = im->stage ? nbd_image_open(im->stage, t->format, true, err) : NULL;
        im->buf = g_malloc(CHUNK);
        rc = im->dst ? 0 : -1;
    } else if (rc == 0) {
        im->upload = temp_path(t, "upload", err);
        im->upload_fd = im->upload ? open(im->upload, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                                                         O_CLOEXEC, 0600)
                                   : -1;
        if (!im->upload)
            rc = -1;
        else if (im->upload_fd < 0)
            rc = os_failure("cannot create", im->upload, err);
    }
    if (rc < 0) {
        vdi_import_free(im);
        return NULL;
    }
    return im;
}

/* An image file may carry metadata beyond its virtual size; not this much. */
static int64_t upload_limit(const VdiTarget *t)
{
    return t->virtual_size + t->virtual_size / 4 + ((int64_t)64 << 20);
}

static int flush_buffer(VdiImport *im, XapiError **err)
{
    if (sink_write(im->dst, im->written, im->buf, im->fill, err) < 0)
        return -1;
    im->written += (int64_t)im->fill;
    im->fill = 0;
    return 0;
}

/* data at offset into the stage file, all-zero blocks (by the file's
 * block boundaries) left out: the new file reads zeros there already. */
static int raw_write(VdiImport *im, const guint8 *data, size_t len, int64_t offset,
                     XapiError **err)
{
    for (size_t i = 0; i < len;) {
        size_t j = i + MIN(len - i, BLOCK - (size_t)((offset + (int64_t)i) % BLOCK));
        bool zero = all_zero(data + i, j - i);
        while (j < len && all_zero(data + j, MIN(BLOCK, len - j)) == zero)
            j += MIN(BLOCK, len - j);
        for (size_t k = i; !zero && k < j;) {
            ssize_t n = pwrite(im->stage_fd, data + k, j - k, offset + (int64_t)k);
            if (n < 0 && errno != EINTR)
                return os_failure("cannot write", im->stage, err);
            k += n > 0 ? (size_t)n : 0;
        }
        i = j;
    }
    return 0;
}

int vdi_import_write(VdiImport *im, const void *data, size_t len, XapiError **err)
{
    int64_t total = im->received + (int64_t)len;
    if (im->format == VDI_STREAM_RAW && im->stage_fd >= 0) {
        if (total > im->t.virtual_size)
            return too_small(&im->t, MAX(total, im->length), err);
        if (raw_write(im, data, len, im->received, err) < 0)
            return -1;
    } else if (im->format == VDI_STREAM_RAW) {
        if (total > im->t.virtual_size)
            return too_small(&im->t, MAX(total, im->length), err);
        for (size_t done = 0; done < len;) {
            size_t n = MIN(len - done, CHUNK - im->fill);
            memcpy(im->buf + im->fill, (const char *)data + done, n);
            im->fill += n;
            done += n;
            if (im->fill == CHUNK && flush_buffer(im, err) < 0)
                return -1;
        }
    } else {
        if (total > upload_limit(&im->t))
            return too_small(&im->t, total, err);
        for (size_t done = 0; done < len;) {
            ssize_t n = write(im->upload_fd, (const char *)data + done, len - done);
            if (n < 0 && errno != EINTR)
                return os_failure("cannot write", im->upload, err);
            done += n > 0 ? (size_t)n : 0;
        }
    }
    im->received = total;
    return progress_update(&im->progress, total, err);
}

/* A qcow2 image names no other file (backing or external data file): an
 * upload must not reach outside itself. */
static int check_qcow2_header(const char *path, XapiError **err)
{
    guint8 h[80];
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    ssize_t n = fd >= 0 ? pread(fd, h, sizeof h, 0) : -1;
    if (fd >= 0)
        close(fd);
    uint32_t version = n == (ssize_t)sizeof h ? GUINT32_FROM_BE(*(uint32_t *)(h + 4)) : 0;
    if (n != (ssize_t)sizeof h || memcmp(h, "QFI\xfb", 4) != 0 || version < 2)
        return xapi_error_set(err, "VDI_IO_ERROR", "the upload is not a qcow2 image", NULL);
    uint64_t backing_offset = GUINT64_FROM_BE(*(uint64_t *)(h + 8));
    uint64_t incompatible = version >= 3 ? GUINT64_FROM_BE(*(uint64_t *)(h + 72)) : 0;
    if (backing_offset != 0 || (incompatible & (1u << 2)))
        return xapi_error_set(err, "VDI_IO_ERROR",
                              "a qcow2 upload must not refer to other files (backing or data file)",
                              NULL);
    return 0;
}

/* The received image file becomes the stage's contents. */
static int import_image(VdiImport *im, XapiError **err)
{
    VdiTarget *t = &im->t;
    const char *qemu_format = qemu_formats[im->format];
    if (close(im->upload_fd) < 0) {
        im->upload_fd = -1;
        return os_failure("cannot write", im->upload, err);
    }
    im->upload_fd = -1;
    if (im->format == VDI_STREAM_QCOW2 &&
        (check_qcow2_header(im->upload, err) < 0 || qemu_img_check(im->upload, "qcow2", err) < 0))
        return -1;
    Source src = {.img = nbd_image_open(im->upload, qemu_format, false, err)};
    int rc = src.img ? 0 : -1;
    if (rc == 0 && nbd_image_size(src.img) > t->virtual_size)
        rc = too_small(t, nbd_image_size(src.img), err);
    if (rc == 0 && !(im->stage = stage_create(t, err)))
        rc = -1;
    NbdImage *dst = rc == 0 ? nbd_image_open(im->stage, t->format, true, err) : NULL;
    if (dst) {
        im->progress = (Progress){im->progress.task, nbd_image_size(src.img), 0.5, 0.5, 0};
        rc = copy_image(&src, dst, &im->progress, err);
        rc = rc == 0 ? nbd_image_close(dst, err) : (nbd_image_free(dst), -1);
    } else {
        rc = -1;
    }
    source_clear(&src);
    return rc;
}

int vdi_import_finish(VdiImport *im, XapiError **err)
{
    if (im->length >= 0 && im->received < im->length)
        return xapi_error_set(err, "IMPORT_ERROR_PREMATURE_EOF", NULL);
    int rc;
    if (im->stage_fd >= 0) {
        int fd = im->stage_fd;
        im->stage_fd = -1;
        rc = fsync(fd) == 0 ? 0 : os_failure("cannot write", im->stage, err);
        if (close(fd) < 0 && rc == 0)
            rc = os_failure("cannot write", im->stage, err);
        if (rc == 0 && (rc = raw_commit(&im->t, im->stage, err)) == 0)
            g_clear_pointer(&im->stage, g_free);
        if (rc == 0 && im->progress.task)
            task_set_progress(im->progress.task, 1.0);
        return rc;
    }
    if (im->format == VDI_STREAM_RAW) {
        rc = flush_buffer(im, err);
        if (rc == 0)
            rc = sink_zero(im->dst, im->received, im->t.virtual_size - im->received, err);
        if (rc == 0)
            rc = nbd_image_close(g_steal_pointer(&im->dst), err);
    } else {
        rc = import_image(im, err);
    }
    if (rc == 0 && (rc = stage_commit(&im->t, im->stage, err)) == 0)
        g_clear_pointer(&im->stage, g_free);
    if (rc == 0 && im->progress.task)
        task_set_progress(im->progress.task, 1.0);
    return rc;
}

/* ---- export ----------------------------------------------------------------------- */

struct VdiExport {
    VdiTarget t, base;
    char *op_task;
    char *filename;
    bool locked, base_locked;
    int64_t length;
    Source src;   /* raw: the stream */
    int fd;       /* qcow2, vhd: the image file to send; raw: the VDI's raw file */
    bool raw_file;         /* fd is a raw file: its holes are sent as zeros */
    int64_t extent_start, extent_end; /* raw_file: a run of data or hole known */
    bool extent_hole;
    Progress progress;
};

void vdi_export_free(VdiExport *ex)
{
    if (!ex)
        return;
    source_clear(&ex->src);
    if (ex->fd >= 0)
        close(ex->fd);
    if (ex->base_locked)
        operations_end(&vdi_operations, ex->base.ref, ex->op_task);
    if (ex->locked)
        operations_end(&vdi_operations, ex->t.ref, ex->op_task);
    vdi_target_clear(&ex->t);
    vdi_target_clear(&ex->base);
    g_free(ex->op_task);
    g_free(ex->filename);
    g_free(ex);
}

int64_t vdi_export_length(const VdiExport *ex) { return ex->length; }
const char *vdi_export_filename(const VdiExport *ex) { return ex->filename; }

/* Locks "copy" on ref (copies run beside each other) and reads it. */
static int lock_and_read(VdiExport *ex, const char *ref, VdiTarget *t, bool *locked,
                         XapiError **err)
{
    if (operations_begin(&vdi_operations, ref, "copy", ex->op_task, err) < 0)
        return -1;
    *locked = true;
    if (vdi_target_read(ref, t, err) < 0) {
        t->ref = g_strdup(ref); /* for operations_end */
        return -1;
    }
    return sr_chain_check(t->dir, t->location, err);
}

static int open_source(VdiExport *ex, XapiError **err)
{
    ex->src.img = nbd_image_open(ex->t.path, ex->t.format, false, err);
    if (!ex->src.img)
        return -1;
    if (ex->base.ref) {
        ex->src.base = nbd_image_open(ex->base.path, ex->base.format, false, err);
        ex->src.base_buf = g_malloc(CHUNK);
        if (!ex->src.base)
            return -1;
    }
    return 0;
}

/* Whether the VDI's own file is the image to send: a qcow2 with no
 * backing file, and no base to differ from. */
static bool file_is_stream(const VdiExport *ex, VdiStreamFormat format)
{
    if (format != VDI_STREAM_QCOW2 || ex->base.ref || strcmp(ex->t.format, "qcow2") != 0)
        return false;
    return has_no_backing_file(ex->t.path);
}

/* An image file of format with the stream's contents, opened and already
 * unlinked, so that nothing is left behind whatever happens. */
static int build_image(VdiExport *ex, VdiStreamFormat format, XapiError **err)
{
    g_autofree char *path = temp_path(&ex->t, "export", err);
    if (!path)
        return -1;
    if (open_source(ex, err) < 0 ||
        image_create(path, qemu_formats[format], ex->t.virtual_size, NULL, NULL, err) < 0) {
        temp_remove(path);
        return -1;
    }
    NbdImage *dst = nbd_image_open(path, qemu_formats[format], true, err);
    Progress prep = {ex->progress.task, nbd_image_size(ex->src.img), 0.0, 0.5, 0};
    int rc = -1;
    if (dst) {
        rc = copy_image(&ex->src, dst, &prep, err);
        rc = rc == 0 ? nbd_image_close(dst, err) : (nbd_image_free(dst), -1);
    }
    source_clear(&ex->src);
    if (rc == 0 && (ex->fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        rc = os_failure("cannot open", path, err);
    temp_remove(path);
    return rc;
}

VdiExport *vdi_export_begin(const char *vdi_ref, const char *base_ref, VdiStreamFormat format,
                            const char *task_ref, XapiError **err)
{
    VdiExport *ex = g_new0(VdiExport, 1);
    ex->fd = -1;
    ex->op_task = task_ref ? g_strdup(task_ref) : db_new_ref();
    ex->progress.task = task_ref ? ex->op_task : NULL;
    int rc = lock_and_read(ex, vdi_ref, &ex->t, &ex->locked, err);
    if (rc == 0 && base_ref && strcmp(base_ref, vdi_ref) != 0) {
        rc = lock_and_read(ex, base_ref, &ex->base, &ex->base_locked, err);
    } else if (rc == 0 && base_ref) { /* itself: nothing differs */
        ex->base.ref = g_strdup(vdi_ref);
        ex->base.path = g_strdup(ex->t.path);
        ex->base.format = ex->t.format;
    }
    double sent_from = 0.0; /* of the task's progress; building an image comes first */
    if (rc == 0) {
        ex->filename = g_strdup_printf("%s.%s", ex->t.uuid, format_names[format]);
        if (format == VDI_STREAM_RAW && !ex->base.ref && strcmp(ex->t.format, "raw") == 0) {
            /* a raw file has no backing file: it is the stream */
            if ((ex->fd = open(ex->t.path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
                rc = os_failure("cannot open", ex->t.path, err);
            ex->raw_file = true;
        } else if (format == VDI_STREAM_RAW) {
            rc = open_source(ex, err);
            ex->length = rc == 0 ? nbd_image_size(ex->src.img) : 0;
        } else if (file_is_stream(ex, format)) {
            if ((ex->fd = open(ex->t.path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
                rc = os_failure("cannot open", ex->t.path, err);
        } else {
            rc = build_image(ex, format, err);
            sent_from = 0.5;
        }
        struct stat st;
        if (rc == 0 && ex->fd >= 0)
            ex->length = fstat(ex->fd, &st) == 0 ? st.st_size : 0;
    }
    ex->progress = (Progress){ex->progress.task, ex->length, sent_from, 1.0 - sent_from, 0};
    if (rc < 0) {
        vdi_export_free(ex);
        return NULL;
    }
    return ex;
}

/* Where the run of data or hole at pos in the raw file ends (file systems
 * without SEEK_DATA: all data). */
static void raw_extent(VdiExport *ex, int64_t pos)
{
    ex->extent_start = pos;
    off_t data = lseek(ex->fd, pos, SEEK_DATA);
    if (data < 0 && errno == ENXIO) { /* a hole to the end */
        ex->extent_hole = true;
        ex->extent_end = ex->length;
    } else if (data > pos) {
        ex->extent_hole = true;
        ex->extent_end = data;
    } else {
        off_t hole = data == pos ? lseek(ex->fd, pos, SEEK_HOLE) : -1;
        ex->extent_hole = false;
        ex->extent_end = hole > pos ? hole : ex->length;
    }
    ex->extent_end = MIN(ex->extent_end, ex->length);
}

ssize_t vdi_export_read(VdiExport *ex, int64_t pos, void *buf, size_t max, XapiError **err)
{
    int64_t want = MIN((int64_t)max, ex->length - pos);
    if (want <= 0)
        return 0;
    int64_t n;
    if (ex->raw_file && (pos < ex->extent_start || pos >= ex->extent_end))
        raw_extent(ex, pos);
    if (ex->raw_file && ex->extent_hole) {
        n = MIN(want, ex->extent_end - pos);
        memset(buf, 0, (size_t)n);
    } else if (ex->fd >= 0) {
        if (ex->raw_file)
            want = MIN(want, ex->extent_end - pos);
        n = pread(ex->fd, buf, (size_t)want, pos);
        if (n <= 0)
            return n < 0 ? os_failure("cannot read", ex->t.path, err)
                         : xapi_error_set(err, "VDI_IO_ERROR", "the image shrank", NULL);
    } else {
        bool hole;
        n = source_next(&ex->src, pos, buf, want, &hole, err);
        if (n < 0)
            return -1;
        if (hole)
            memset(buf, 0, (size_t)n);
    }
    if (progress_update(&ex->progress, pos + n, err) < 0)
        return -1;
    return n;
}
