/* qemu_img.c: qemu-img as a subprocess. */
#include "qemu_img.h"

#include <glib.h>
#include <json-c/json.h>

static int run(const char *const *argv, char **out, XapiError **err)
{
    g_autofree char *stdout_text = NULL, *stderr_text = NULL;
    g_autoptr(GError) error = NULL;
    int status = 0;
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &stdout_text,
                      &stderr_text, &status, &error))
        return xapi_error_set(err, "SR_BACKEND_FAILURE", "127", "", error->message, NULL);
    if (!g_spawn_check_wait_status(status, NULL)) {
        char code[16];
        g_snprintf(code, sizeof code, "%d", WIFEXITED(status) ? WEXITSTATUS(status) : 128);
        g_strstrip(stderr_text);
        return xapi_error_set(err, "SR_BACKEND_FAILURE", code, stdout_text ? stdout_text : "",
                              stderr_text ? stderr_text : "", NULL);
    }
    if (out)
        *out = g_steal_pointer(&stdout_text);
    return 0;
}

int qemu_img_create_over(const char *path, int64_t size, const char *backing,
                         const char *backing_format, XapiError **err)
{
    char size_text[32];
    g_snprintf(size_text, sizeof size_text, "%" G_GINT64_FORMAT, size);
    if (backing) {
        const char *argv[] = {"qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", backing,
                              "-F", backing_format, path, size_text, NULL};
        return run(argv, NULL, err);
    }
    const char *argv[] = {"qemu-img", "create", "-q", "-f", "qcow2", path, size_text, NULL};
    return run(argv, NULL, err);
}

int qemu_img_create(const char *path, int64_t size, const char *backing, XapiError **err)
{
    const char *format = backing && g_str_has_suffix(backing, ".raw") ? "raw" : "qcow2";
    return qemu_img_create_over(path, size, backing, format, err);
}

int qemu_img_info(const char *path, const char *format, QemuImgInfo *out, XapiError **err)
{
    const char *argv[] = {"qemu-img", "info", "-U", "-f", format, "--output=json", path, NULL};
    g_autofree char *text = NULL;
    if (run(argv, &text, err) < 0)
        return -1;
    json_object *info = json_tokener_parse(text);
    json_object *v;
    if (!info || !json_object_object_get_ex(info, "virtual-size", &v)) {
        json_object_put(info);
        return xapi_error_set(err, "SR_BACKEND_FAILURE", "0", text, "unreadable qemu-img info",
                              NULL);
    }
    out->virtual_size = json_object_get_int64(v);
    out->actual_size = json_object_object_get_ex(info, "actual-size", &v)
                           ? json_object_get_int64(v) : 0;
    out->format = g_strdup(json_object_object_get_ex(info, "format", &v)
                               ? json_object_get_string(v) : "raw");
    out->backing = json_object_object_get_ex(info, "backing-filename", &v)
                       ? g_strdup(json_object_get_string(v)) : NULL;
    out->backing_format = json_object_object_get_ex(info, "backing-filename-format", &v)
                              ? g_strdup(json_object_get_string(v)) : NULL;
    json_object_put(info);
    return 0;
}

void qemu_img_info_clear(QemuImgInfo *info)
{
    g_free(info->format);
    g_free(info->backing);
    g_free(info->backing_format);
    *info = (QemuImgInfo){0};
}

int qemu_img_resize(const char *path, const char *format, int64_t size, XapiError **err)
{
    char size_text[32];
    g_snprintf(size_text, sizeof size_text, "%" G_GINT64_FORMAT, size);
    const char *argv[] = {"qemu-img", "resize", "-q", "-f", format, path, size_text, NULL};
    return run(argv, NULL, err);
}

int qemu_img_convert(const char *src, const char *src_format, const char *dst,
                     const char *dst_format, XapiError **err)
{
    const char *argv[] = {"qemu-img", "convert", "-q", "-U", "-f", src_format, "-O", dst_format,
                          src, dst, NULL};
    return run(argv, NULL, err);
}

int qemu_img_check(const char *path, const char *format, XapiError **err)
{
    const char *argv[] = {"qemu-img", "check", "-q", "-f", format, path, NULL};
    return run(argv, NULL, err);
}

int qemu_img_convert_into(const char *src, const char *src_format, const char *dst,
                          const char *dst_format, XapiError **err)
{
    const char *argv[] = {"qemu-img", "convert", "-q", "-U", "-n", "-f", src_format, "-O",
                          dst_format, src, dst, NULL};
    return run(argv, NULL, err);
}
