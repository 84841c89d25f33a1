/* vm_bootloader.c: pygrub's job without mounting anything. The disk is
 * read as a file: a qcow2 image (and its backing chain) is first copied
 * to a sparse raw file in the staging directory by qemu-img; partitions
 * come from the MBR's four primary entries or the GPT; an ext2/3/4
 * filesystem is read by e2fsprogs' debugfs (read-only, at the partition's
 * offset), a FAT one by mtools' mcopy. Files come out of the guest's
 * filesystem by the paths its boot configuration names, into
 * STATE_DIR/bootloader/UUID, which exists only while a start runs. */
#include "vm_bootloader.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "boot_config.h"
#include "qemu_img.h"

#define SECTOR 512
#define MAX_CONFIG (1 << 20)

static char *staging_root;

int vm_bootloader_init(const char *state_dir, XapiError **err)
{
    g_autofree char *cwd = g_get_current_dir();
    g_autofree char *dir = g_build_filename(state_dir ? state_dir : ".", "bootloader", NULL);
    g_free(staging_root);
    staging_root = g_path_is_absolute(dir) ? g_strdup(dir) : g_build_filename(cwd, dir, NULL);
    if (g_mkdir_with_parents(staging_root, 0700) < 0)
        return xapi_error_internal(err, "cannot create %s: %s", staging_root, g_strerror(errno));
    return 0;
}

static const char *str_field(const Xv *record, const char *name)
{
    const Xv *v = xv_struct_get(record, name);
    const char *s = v ? xv_str(v) : NULL;
    return s ? s : "";
}

bool vm_bootloader_wanted(const Xv *record)
{
    const char *type = str_field(record, "domain_type");
    bool pv = strcmp(type, "pv") == 0 || strcmp(type, "pvh") == 0 ||
              strcmp(type, "pv_in_pvh") == 0 ||
              ((!*type || strcmp(type, "unspecified") == 0) &&
               !*str_field(record, "HVM_boot_policy"));
    return pv && strcmp(str_field(record, "PV_bootloader"), "pygrub") == 0;
}

static char *staging_dir(const char *uuid)
{
    return g_build_filename(staging_root ? staging_root : ".", uuid, NULL);
}

/* The directory holds only files this module wrote. */
static void remove_dir(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    if (!d)
        return;
    for (const char *name; (name = g_dir_read_name(d));) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        unlink(path);
    }
    g_dir_close(d);
    rmdir(dir);
}

void vm_bootloader_done(const char *uuid)
{
    g_autofree char *dir = staging_dir(uuid);
    remove_dir(dir);
}

typedef enum { FS_NONE, FS_EXT, FS_FAT } FsKind;

typedef struct {
    const char *vm_ref;
    const char *image; /* raw */
    const char *dir;   /* staging */
    int fd;
    XapiError **err;
} Reader;

static int failed(const Reader *r, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static int failed(const Reader *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    return xapi_error_set(r->err, "BOOTLOADER_FAILED", r->vm_ref, why, NULL);
}

static bool read_at(int fd, guint64 offset, void *buf, size_t len)
{
    return pread(fd, buf, len, (off_t)offset) == (ssize_t)len;
}

static guint32 le32(const guint8 *p) { return p[0] | p[1] << 8 | p[2] << 16 | (guint32)p[3] << 24; }
static guint64 le64(const guint8 *p) { return le32(p) | (guint64)le32(p + 4) << 32; }

static FsKind probe(int fd, guint64 offset)
{
    guint8 sb[2], boot[SECTOR];
    if (read_at(fd, offset + 1024 + 56, sb, 2) && sb[0] == 0x53 && sb[1] == 0xEF)
        return FS_EXT;
    if (read_at(fd, offset, boot, SECTOR) && boot[510] == 0x55 && boot[511] == 0xAA &&
        (memcmp(boot + 0x36, "FAT", 3) == 0 || memcmp(boot + 0x52, "FAT32", 5) == 0))
        return FS_FAT;
    return FS_NONE;
}

/* The filesystems' offsets: the whole disk's, else the partitions' (the
 * active MBR partition first). */
static GArray *filesystems(int fd)
{
    GArray *out = g_array_new(FALSE, FALSE, sizeof(guint64));
    guint64 zero = 0;
    if (probe(fd, 0) != FS_NONE) {
        g_array_append_val(out, zero);
        return out;
    }
    guint8 mbr[SECTOR];
    if (!read_at(fd, 0, mbr, SECTOR) || mbr[510] != 0x55 || mbr[511] != 0xAA)
        return out;
    bool gpt = false;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < 4; i++) {
            const guint8 *e = mbr + 0x1BE + 16 * i;
            guint8 type = e[4];
            gpt |= type == 0xEE;
            if (!type || type == 0xEE || type == 0x05 || type == 0x0F || type == 0x85 ||
                (e[0] == 0x80) != (pass == 0))
                continue;
            guint64 offset = (guint64)le32(e + 8) * SECTOR;
            g_array_append_val(out, offset);
        }
    guint8 header[92];
    if (!gpt || !read_at(fd, SECTOR, header, sizeof header) || memcmp(header, "EFI PART", 8))
        return out;
    guint64 entries = le64(header + 72);
    guint32 count = MIN(le32(header + 80), 128), size = le32(header + 84);
    for (guint32 i = 0; size >= 48 && size <= 4096 && i < count; i++) {
        guint8 e[48];
        static const guint8 unused[16];
        if (!read_at(fd, entries * SECTOR + (guint64)i * size, e, sizeof e))
            break;
        if (memcmp(e, unused, 16) == 0)
            continue;
        guint64 offset = le64(e + 32) * SECTOR;
        g_array_append_val(out, offset);
    }
    return out;
}

/* Copies path (absolute in the filesystem at offset) to dest: 0, or -1
 * when the filesystem has no such file. */
static int copy_out(const Reader *r, FsKind fs, guint64 offset, const char *path,
                    const char *dest)
{
    if (strpbrk(path, " \t\"'\\\n") || path[0] != '/')
        return -1; /* not a path debugfs or mtools would take as one word */
    g_autofree char *request = g_strdup_printf("dump %s %s", path, dest);
    g_autofree char *at = g_strdup_printf(fs == FS_EXT ? "%s?offset=%" G_GUINT64_FORMAT
                                                       : "%s@@%" G_GUINT64_FORMAT,
                                          r->image, offset);
    g_autofree char *source = g_strconcat("::", path, NULL);
    const char *ext_argv[] = {"debugfs", "-c", "-R", request, at, NULL};
    const char *fat_argv[] = {"mcopy", "-n", "-i", at, source, dest, NULL};
    g_auto(GStrv) env = g_environ_setenv(g_get_environ(), "MTOOLS_SKIP_CHECK", "1", TRUE);
    unlink(dest);
    gint status = -1;
    g_autoptr(GError) error = NULL;
    if (!g_spawn_sync(NULL, (char **)(fs == FS_EXT ? ext_argv : fat_argv), env,
                      G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL |
                          G_SPAWN_STDERR_TO_DEV_NULL,
                      NULL, NULL, NULL, NULL, &status, &error))
        return failed(r, "cannot run %s: %s", fs == FS_EXT ? "debugfs" : "mcopy",
                      error->message); /* *r->err set: not a missing file */
    return g_file_test(dest, G_FILE_TEST_IS_REGULAR) ? 0 : -1;
}

/* A path of the configuration as the filesystem knows it: SYSLINUX's
 * relative ones are relative to the configuration's directory. */
static char *resolve(const char *config, const char *path)
{
    if (path[0] == '/')
        return g_strdup(path);
    g_autofree char *dir = g_path_get_dirname(config);
    return g_build_filename(dir, path, NULL);
}

static const struct {
    const char *path;
    BootConfigKind kind;
} configs[] = {
    {"/boot/grub/grub.cfg", BOOT_CONFIG_GRUB2},
    {"/grub/grub.cfg", BOOT_CONFIG_GRUB2},
    {"/boot/grub2/grub.cfg", BOOT_CONFIG_GRUB2},
    {"/grub2/grub.cfg", BOOT_CONFIG_GRUB2},
    {"/boot/grub/menu.lst", BOOT_CONFIG_GRUB_LEGACY},
    {"/grub/menu.lst", BOOT_CONFIG_GRUB_LEGACY},
    {"/boot/extlinux/extlinux.conf", BOOT_CONFIG_SYSLINUX},
    {"/extlinux/extlinux.conf", BOOT_CONFIG_SYSLINUX},
    {"/boot/syslinux/syslinux.cfg", BOOT_CONFIG_SYSLINUX},
    {"/syslinux/syslinux.cfg", BOOT_CONFIG_SYSLINUX},
    {"/extlinux.conf", BOOT_CONFIG_SYSLINUX},
    {"/syslinux.cfg", BOOT_CONFIG_SYSLINUX},
};

/* Appends the file at path to dst. */
static int append_file(int dst, const char *path)
{
    int src = open(path, O_RDONLY | O_CLOEXEC);
    if (src < 0)
        return -1;
    char buf[65536];
    ssize_t n;
    while ((n = read(src, buf, sizeof buf)) > 0)
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(dst, buf + done, (size_t)(n - done));
            if (w < 0) {
                close(src);
                return -1;
            }
            done += w;
        }
    close(src);
    return n < 0 ? -1 : 0;
}

/* Concatenates the initrds (Linux takes concatenated archives) into out. */
static int copy_initrds(const Reader *r, FsKind fs, guint64 offset, const char *config,
                        GPtrArray *initrds, const char *out)
{
    int dst = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (dst < 0)
        return xapi_error_internal(r->err, "cannot create %s: %s", out, g_strerror(errno));
    g_autofree char *part = g_build_filename(r->dir, "initrd.part", NULL);
    int rc = 0;
    for (guint i = 0; rc == 0 && i < initrds->len; i++) {
        g_autofree char *path = resolve(config, initrds->pdata[i]);
        if ((rc = copy_out(r, fs, offset, path, part)) < 0) {
            if (!*r->err)
                failed(r, "%s names initrd %s, which its filesystem lacks", config, path);
            break;
        }
        if (append_file(dst, part) < 0)
            rc = xapi_error_internal(r->err, "cannot copy initrd %s: %s", path,
                                     g_strerror(errno));
    }
    unlink(part);
    close(dst);
    return rc;
}

/* The first filesystem with a configuration whose default entry's files
 * are there: its kernel, initrd and arguments in the staging directory. */
static int extract(const Reader *r, BootEntry *entry, char **kernel, char **ramdisk)
{
    g_autoptr(GArray) fss = filesystems(r->fd);
    if (fss->len == 0)
        return failed(r, "the bootable disk has no partition or filesystem xapid reads "
                         "(ext2/3/4 or FAT, whole-disk, MBR or GPT)");
    g_autofree char *cfg_file = g_build_filename(r->dir, "config", NULL);
    g_autofree char *last = NULL;
    for (guint f = 0; f < fss->len; f++) {
        guint64 offset = g_array_index(fss, guint64, f);
        FsKind fs = probe(r->fd, offset);
        if (fs == FS_NONE)
            continue;
        for (size_t c = 0; c < G_N_ELEMENTS(configs); c++) {
            if (copy_out(r, fs, offset, configs[c].path, cfg_file) < 0) {
                if (*r->err)
                    return -1;
                continue;
            }
            g_autofree char *text = NULL;
            gsize len = 0;
            if (!g_file_get_contents(cfg_file, &text, &len, NULL) || len > MAX_CONFIG ||
                memchr(text, 0, len)) {
                g_free(last);
                last = g_strdup_printf("%s is not a text file of at most 1 MiB",
                                       configs[c].path);
                continue;
            }
            g_autofree char *why = NULL;
            boot_entry_clear(entry);
            if (!boot_config_default_entry(configs[c].kind, text, entry, &why)) {
                g_free(last);
                last = g_strdup_printf("%s (%s)", why, configs[c].path);
                continue;
            }
            g_autofree char *kernel_path = resolve(configs[c].path, entry->kernel);
            *kernel = g_build_filename(r->dir, "kernel", NULL);
            if (copy_out(r, fs, offset, kernel_path, *kernel) < 0)
                return *r->err ? -1 : failed(r, "%s names kernel %s, which its filesystem lacks",
                                             configs[c].path, kernel_path);
            if (entry->initrds->len) {
                *ramdisk = g_build_filename(r->dir, "initrd", NULL);
                if (copy_initrds(r, fs, offset, configs[c].path, entry->initrds, *ramdisk) < 0)
                    return -1;
            }
            return 0;
        }
    }
    return failed(r, "%s", last ? last : "no grub.cfg, menu.lst or extlinux.conf on the "
                                         "bootable disk");
}

/* The disk the bootloader reads: the first in boot order, else the first. */
static const HvDisk *boot_disk(const HvDisk *disks, size_t n)
{
    const HvDisk *best = NULL;
    for (size_t i = 0; i < n; i++) {
        const HvDisk *d = &disks[i];
        if (d->cdrom || d->floppy || !d->path)
            continue;
        if (!best || (d->bootindex >= 0 && (best->bootindex < 0 || d->bootindex < best->bootindex)))
            best = d;
    }
    return best;
}

int vm_bootloader_run(const char *vm_ref, const char *uuid, const Xv *record, HvDisk *disks,
                      size_t n_disks, Xv **boot, XapiError **err)
{
    Reader r = {.vm_ref = vm_ref, .fd = -1, .err = err};
    const HvDisk *disk = boot_disk(disks, n_disks);
    if (!disk)
        return failed(&r, "the VM has no disk to boot from");
    g_autofree char *dir = staging_dir(uuid);
    remove_dir(dir); /* what a crashed start left */
    if (g_mkdir_with_parents(dir, 0700) < 0)
        return xapi_error_internal(err, "cannot create %s: %s", dir, g_strerror(errno));
    r.dir = dir;
    g_autofree char *raw = NULL;
    if (strcmp(disk->format, "raw") != 0) {
        raw = g_build_filename(dir, "disk.raw", NULL);
        g_autoptr(XapiError) convert = NULL;
        if (qemu_img_convert(disk->path, disk->format, raw, "raw", &convert) < 0) {
            vm_bootloader_done(uuid);
            return failed(&r, "cannot read the bootable disk: %s",
                          convert->params->len > 2 ? (char *)convert->params->pdata[2]
                                                   : convert->code);
        }
    }
    r.image = raw ? raw : disk->path;
    r.fd = open(r.image, O_RDONLY | O_CLOEXEC);
    if (r.fd < 0) {
        vm_bootloader_done(uuid);
        return xapi_error_internal(err, "cannot open %s: %s", r.image, g_strerror(errno));
    }
    g_auto(BootEntry) entry = {0};
    g_autofree char *kernel = NULL, *ramdisk = NULL;
    int rc = extract(&r, &entry, &kernel, &ramdisk);
    close(r.fd);
    if (raw)
        unlink(raw); /* only the kernel and initrd stay until the start is done */
    if (rc < 0) {
        vm_bootloader_done(uuid);
        return -1;
    }
    const char *extra = str_field(record, "PV_args");
    g_autofree char *args = g_strdup_printf("%s%s%s", entry.args,
                                            *entry.args && *extra ? " " : "", extra);
    *boot = xv_dup(record);
    xv_struct_set_string(*boot, "PV_kernel", kernel);
    xv_struct_set_string(*boot, "PV_ramdisk", ramdisk ? ramdisk : "");
    xv_struct_set_string(*boot, "PV_args", args);
    for (size_t i = 0; i < n_disks; i++)
        disks[i].bootindex = -1;
    return 0;
}
