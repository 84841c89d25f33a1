/* boot_files.c: PV_kernel and PV_ramdisk only from allowed host
 * directories, checked at VM.start on the resolved path (a symlink or
 * "../" out of the directory is refused), as XAPI's xapi_xenops.ml does. */
#include "boot_files.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

static GPtrArray *extra_dirs; /* resolved paths, for the daemon's life */

void boot_files_allow_dir(const char *dir)
{
    if (!extra_dirs)
        extra_dirs = g_ptr_array_new_with_free_func(g_free);
    char real[PATH_MAX];
    g_ptr_array_add(extra_dirs, g_strdup(realpath(dir, real) ? real : dir));
}

static bool inside(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    return strncmp(path, dir, n) == 0 && path[n] == '/';
}

static char *allowed_list(void)
{
    GString *s = g_string_new(BOOT_FILES_DEFAULT_DIR);
    for (guint i = 0; extra_dirs && i < extra_dirs->len; i++)
        g_string_append_printf(s, "; %s", (char *)extra_dirs->pdata[i]);
    return g_string_free(s, FALSE);
}

int boot_files_check(const char *field, const char *path, XapiError **err)
{
    char real[PATH_MAX];
    if (!realpath(path, real))
        return xapi_error_set(err, "INVALID_VALUE", field, path,
                              errno == ENOENT ? "File does not exist" : g_strerror(errno), NULL);
    struct stat st;
    if (stat(real, &st) < 0 || !S_ISREG(st.st_mode))
        return xapi_error_set(err, "INVALID_VALUE", field, path, "Is not a regular file", NULL);
    bool ok = inside(real, BOOT_FILES_DEFAULT_DIR);
    for (guint i = 0; !ok && extra_dirs && i < extra_dirs->len; i++)
        ok = inside(real, extra_dirs->pdata[i]);
    if (ok)
        return 0;
    g_autofree char *dirs = allowed_list();
    g_autofree char *reason =
        g_strdup_printf("Is not in any of the allowed kernel directories: [%s]", dirs);
    return xapi_error_set(err, "INVALID_VALUE", field, path, reason, NULL);
}

int boot_file_memfd_copy(int fd, long long size, const char *path, XapiError **err)
{
    int copy = memfd_create("xapid-boot-file", MFD_CLOEXEC);
    if (copy < 0)
        return xapi_error_internal(err, "cannot copy %s: %s", path, g_strerror(errno));
    off_t offset = 0;
    while (offset < size) {
        ssize_t n = sendfile(copy, fd, &offset, (size_t)(size - offset));
        if (n <= 0) {
            xapi_error_internal(err, "cannot copy %s: %s", path,
                                n < 0 ? g_strerror(errno) : "it shrank");
            close(copy);
            return -1;
        }
    }
    return copy;
}
