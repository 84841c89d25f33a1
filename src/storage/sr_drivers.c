/* sr_drivers.c: the `file` SR driver (a directory of qcow2 images, and raw
 * files such as suspend images and VDIs imported as raw data, named <uuid>.qcow2 / <uuid>.raw; backing
 * files recorded relative to the directory so that an SR can move) and the
 * `iso` driver (read-only .iso files), which share the directory handling. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "db.h"
#include "pending_files.h"
#include "qemu_img.h"
#include "sr_driver.h"

#define SR_MARKER ".xapid-sr"

static int os_error(const char *what, const char *path, XapiError **err)
{
    g_autofree char *text = g_strdup_printf("%s %s: %s", what, path, g_strerror(errno));
    char code[16];
    g_snprintf(code, sizeof code, "%d", errno);
    return xapi_error_set(err, "SR_BACKEND_FAILURE", code, "", text, NULL);
}

char *sr_path(const char *dir, const char *location) { return g_build_filename(dir, location, NULL); }

/* An error as XAPI reports an SM plugin's: SR_BACKEND_FAILURE_<code>
 * ["", "<description> [opterr=<detail>]", ""]. */
static int sm_error(XapiError **err, int code, const char *description, const char *detail)
{
    g_autofree char *name = g_strdup_printf("SR_BACKEND_FAILURE_%d", code);
    g_autofree char *text = g_strdup_printf("%s [opterr=%s]", description, detail);
    return xapi_error_set(err, name, "", text, "", NULL);
}

/* Looks at location in dir without following a link at either. */
static int lstat_in(const char *dir, const char *location, struct stat *st)
{
    if (!*location || strchr(location, '/')) {
        errno = EINVAL;
        return -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fstatat(fd, location, st, AT_SYMLINK_NOFOLLOW);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int sr_file_check(const char *dir, const char *location, XapiError **err)
{
    struct stat st;
    if (lstat_in(dir, location, &st) < 0) {
        g_autofree char *detail = g_strdup_printf("%s/%s: %s", dir, location, g_strerror(errno));
        return sm_error(err, 46, "The VDI is not available", detail);
    }
    if (!S_ISREG(st.st_mode)) {
        g_autofree char *detail = g_strdup_printf("%s/%s is not a regular file", dir, location);
        return sm_error(err, 46, "The VDI is not available", detail);
    }
    return 0;
}

/* A new empty file at path, made here so that nothing at that name is
 * followed (qemu-img then writes into it). */
static int create_new_file(const char *path, XapiError **err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return os_error("cannot create", path, err);
    close(fd);
    return 0;
}

void vdi_info_clear(VdiInfo *info)
{
    g_free(info->parent);
    *info = (VdiInfo){0};
}

/* Whether dir holds anything but the SR marker. */
static bool holds_files(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    bool found = false;
    for (const char *name; d && !found && (name = g_dir_read_name(d));)
        found = strcmp(name, SR_MARKER) != 0;
    if (d)
        g_dir_close(d);
    return found;
}

static int file_create(const char *dir, XapiError **err)
{
    struct stat st;
    if (lstat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
        return sm_error(err, 61, "File SR creation error", "the location is not a directory");
    if (g_mkdir_with_parents(dir, 0700) < 0)
        return os_error("cannot create", dir, err);
    g_autofree char *marker = g_build_filename(dir, SR_MARKER, NULL);
    bool has_marker = lstat(marker, &st) == 0 && S_ISREG(st.st_mode);
    if (!has_marker && holds_files(dir)) {
        /* someone's files, not an SR: SR.destroy would not be ours to run */
        g_autofree char *detail = g_strdup_printf("%s is not empty and holds no SR", dir);
        return sm_error(err, 42, "The SR already exists", detail);
    }
    if (!g_file_test(marker, G_FILE_TEST_EXISTS) &&
        !g_file_set_contents(marker, "file\n", -1, NULL))
        return os_error("cannot write", marker, err);
    return 0;
}

static int file_attach(const char *dir, XapiError **err)
{
    struct stat st;
    if (lstat(dir, &st) < 0) /* a link in its place is not the SR */
        return os_error("cannot attach", dir, err);
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return os_error("cannot attach", dir, err);
    }
    if (access(dir, R_OK | W_OK | X_OK) < 0)
        return os_error("cannot attach", dir, err);
    return 0;
}

static int file_stat(const char *dir, int64_t *size, int64_t *used, XapiError **err)
{
    struct statvfs fs;
    if (statvfs(dir, &fs) < 0)
        return os_error("cannot stat", dir, err);
    *size = (int64_t)fs.f_blocks * (int64_t)fs.f_frsize;
    *used = (int64_t)(fs.f_blocks - fs.f_bavail) * (int64_t)fs.f_frsize;
    return 0;
}

static bool is_image_name(const char *name, const char *const *suffixes)
{
    if (name[0] == '.')
        return false;
    for (; *suffixes; suffixes++)
        if (g_str_has_suffix(name, *suffixes))
            return true;
    return false;
}

static GPtrArray *list_with(const char *dir, const char *const *suffixes, XapiError **err)
{
    g_autoptr(GError) error = NULL;
    GDir *d = g_dir_open(dir, 0, &error);
    if (!d) {
        xapi_error_set(err, "SR_BACKEND_FAILURE", "2", "", error->message, NULL);
        return NULL;
    }
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    for (const char *name; (name = g_dir_read_name(d));)
        if (is_image_name(name, suffixes))
            g_ptr_array_add(names, g_strdup(name));
    g_dir_close(d);
    return names;
}

static const char *const file_suffixes[] = {".qcow2", ".raw", NULL};

static GPtrArray *file_list(const char *dir, XapiError **err)
{
    return list_with(dir, file_suffixes, err);
}

static int64_t allocated_bytes(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 ? (int64_t)st.st_blocks * 512 : 0;
}

/* Whether an image's recorded backing file is an image of dir itself: a
 * name there (as the SR writes them) or a path into dir (as QEMU's live
 * snapshots record them), never a file elsewhere. */
static bool backing_in_dir(const char *dir, const char *backing)
{
    if (!strchr(backing, '/'))
        return *backing && strcmp(backing, ".") != 0 && strcmp(backing, "..") != 0;
    g_autofree char *parent = g_path_get_dirname(backing);
    g_autofree char *name = g_path_get_basename(backing);
    g_autofree char *real_parent = g_path_is_absolute(backing) ? realpath(parent, NULL) : NULL;
    g_autofree char *real_dir = realpath(dir, NULL);
    return real_parent && real_dir && strcmp(real_parent, real_dir) == 0 && name[0] != '.';
}

int sr_chain_check(const char *dir, const char *location, XapiError **err)
{
    g_autofree char *level = g_strdup(location);
    for (int depth = 0; depth < 1024; depth++) {
        if (sr_file_check(dir, level, err) < 0)
            return -1;
        if (!g_str_has_suffix(level, ".qcow2"))
            return 0; /* raw and iso files have no backing file */
        g_autofree char *path = sr_path(dir, level);
        QemuImgInfo info = {0};
        if (qemu_img_info(path, "qcow2", &info, err) < 0)
            return -1;
        if (!info.backing) {
            qemu_img_info_clear(&info);
            return 0;
        }
        bool inside = backing_in_dir(dir, info.backing);
        g_autofree char *detail = g_strdup_printf("%s: backing file %s is outside the SR", path,
                                                  info.backing);
        g_free(level);
        level = g_path_get_basename(info.backing);
        qemu_img_info_clear(&info);
        if (!inside)
            return sm_error(err, 46, "The VDI is not available", detail);
    }
    return sm_error(err, 46, "The VDI is not available", "backing chain too long");
}

static int file_vdi_info(const char *dir, const char *location, VdiInfo *out, XapiError **err)
{
    g_autofree char *path = sr_path(dir, location);
    *out = (VdiInfo){0};
    if (sr_file_check(dir, location, err) < 0)
        return -1;
    if (g_str_has_suffix(location, ".raw")) {
        struct stat st;
        if (lstat(path, &st) < 0)
            return os_error("cannot stat", path, err);
        out->virtual_size = st.st_size;
        out->physical_utilisation = (int64_t)st.st_blocks * 512;
        out->format = "raw";
        return 0;
    }
    QemuImgInfo info = {0};
    if (qemu_img_info(path, "qcow2", &info, err) < 0)
        return -1;
    if (info.backing && !backing_in_dir(dir, info.backing)) {
        g_autofree char *text = g_strdup_printf("%s: backing file %s is outside the SR", path,
                                                info.backing);
        qemu_img_info_clear(&info);
        return xapi_error_set(err, "SR_BACKEND_FAILURE", "1", "", text, NULL);
    }
    out->virtual_size = info.virtual_size;
    out->physical_utilisation = allocated_bytes(path);
    out->format = "qcow2";
    if (info.backing)
        out->parent = g_path_get_basename(info.backing);
    qemu_img_info_clear(&info);
    return 0;
}

static char *new_location(const char *suffix)
{
    g_autofree char *uuid = db_new_uuid();
    return g_strconcat(uuid, suffix, NULL);
}

/* A new qcow2 image of size bytes, over base when non-NULL (its format
 * told by its name: an overlay over a raw base records it as raw). */
static char *new_qcow2(const char *dir, const char *base, int64_t size, XapiError **err)
{
    char *location = new_location(".qcow2");
    g_autofree char *path = sr_path(dir, location);
    if (base && sr_file_check(dir, base, err) < 0) {
        g_free(location);
        return NULL;
    }
    if (pending_file_note(path, err) < 0 || create_new_file(path, err) < 0 ||
        qemu_img_create(path, size, base, err) < 0) {
        unlink(path);
        pending_file_done(path);
        g_free(location);
        return NULL;
    }
    return location;
}

static char *file_vdi_create(const char *dir, int64_t size, XapiError **err)
{
    return new_qcow2(dir, NULL, size, err);
}

static int file_vdi_delete(const char *dir, const char *location, XapiError **err)
{
    if (!*location || strchr(location, '/'))
        return sm_error(err, 64, "Failed to remove VDI", location);
    g_autofree char *path = sr_path(dir, location); /* unlink removes a link, not its target */
    if (unlink(path) < 0 && errno != ENOENT)
        return os_error("cannot delete", path, err);
    pending_file_done(path);
    return 0;
}

static int file_vdi_resize(const char *dir, const char *location, int64_t size, XapiError **err)
{
    g_autofree char *path = sr_path(dir, location);
    if (sr_file_check(dir, location, err) < 0)
        return -1;
    if (g_str_has_suffix(location, ".raw")) {
        int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
        int rc = fd >= 0 && ftruncate(fd, size) == 0 ? 0 : os_error("cannot resize", path, err);
        if (fd >= 0)
            close(fd);
        return rc;
    }
    return qemu_img_resize(path, "qcow2", size, err);
}

static char *file_vdi_overlay(const char *dir, const char *base, int64_t size, XapiError **err)
{
    return new_qcow2(dir, base, size, err);
}

static char *file_vdi_import(const char *dir, const char *src, const char *src_format,
                             XapiError **err)
{
    /* raw stays raw (suspend images are byte streams); the rest becomes
     * one stand-alone qcow2 image */
    bool raw = strcmp(src_format, "raw") == 0;
    char *location = new_location(raw ? ".raw" : ".qcow2");
    g_autofree char *path = sr_path(dir, location);
    if (pending_file_note(path, err) < 0 || create_new_file(path, err) < 0 ||
        qemu_img_convert(src, src_format, path, raw ? "raw" : "qcow2", err) < 0) {
        unlink(path);
        pending_file_done(path);
        g_free(location);
        return NULL;
    }
    return location;
}

static const char *const file_capabilities[] = {
    "SR_PROBE", "SR_UPDATE", "VDI_CREATE", "VDI_DELETE", "VDI_ATTACH", "VDI_DETACH",
    "VDI_UPDATE", "VDI_CLONE", "VDI_SNAPSHOT", "VDI_RESIZE", "VDI_RESIZE_ONLINE",
    "VDI_INTRODUCE", "VDI_ACTIVATE", "VDI_DEACTIVATE", "VDI_GENERATE_CONFIG", NULL};

const SrDriver sr_file_driver = {
    .type = "file",
    .name_label = "Local or shared directory",
    .description = "SR plugin which stores VDIs as qcow2 files in a directory",
    .content_type = "user",
    .capabilities = file_capabilities,
    .create = file_create,
    .attach = file_attach,
    .stat = file_stat,
    .list = file_list,
    .vdi_info = file_vdi_info,
    .vdi_create = file_vdi_create,
    .vdi_delete = file_vdi_delete,
    .vdi_resize = file_vdi_resize,
    .vdi_overlay = file_vdi_overlay,
    .vdi_import = file_vdi_import,
};

/* ---- iso: read-only .iso files in a directory ---------------------------- */

static const char *const iso_suffixes[] = {".iso", ".img", NULL};

static GPtrArray *iso_list(const char *dir, XapiError **err)
{
    return list_with(dir, iso_suffixes, err);
}

static int iso_vdi_info(const char *dir, const char *location, VdiInfo *out, XapiError **err)
{
    g_autofree char *path = sr_path(dir, location);
    struct stat st;
    *out = (VdiInfo){0};
    if (sr_file_check(dir, location, err) < 0)
        return -1;
    if (lstat(path, &st) < 0)
        return os_error("cannot stat", path, err);
    out->virtual_size = st.st_size;
    out->physical_utilisation = (int64_t)st.st_blocks * 512;
    out->format = "raw";
    out->read_only = true;
    return 0;
}

static int iso_create(const char *dir, XapiError **err)
{
    if (g_mkdir_with_parents(dir, 0755) < 0)
        return os_error("cannot create", dir, err);
    return 0;
}

static const char *const iso_capabilities[] = {"SR_PROBE", "SR_UPDATE", "VDI_ATTACH",
                                               "VDI_DETACH", "VDI_INTRODUCE", NULL};

const SrDriver sr_iso_driver = {
    .type = "iso",
    .name_label = "ISO",
    .description = "Handles CD images stored as files in iso format",
    .content_type = "iso",
    .capabilities = iso_capabilities,
    .create = iso_create,
    .attach = file_attach,
    .stat = file_stat,
    .list = iso_list,
    .vdi_info = iso_vdi_info,
};

const SrDriver *sr_driver_for(const char *type)
{
    static const SrDriver *const drivers[] = {&sr_file_driver, &sr_iso_driver};
    for (size_t i = 0; i < G_N_ELEMENTS(drivers); i++)
        if (strcmp(drivers[i]->type, type) == 0)
            return drivers[i];
    return NULL;
}
