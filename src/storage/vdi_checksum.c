/* vdi_checksum.c: a VDI's contents hashed, as XAPI's VDI.checksum does
 * (MD5 of the whole virtual disk; holes hash as the zeros they read as). */
#include "vdi_checksum.h"

#include "db.h"
#include "dm_handlers.h"
#include "nbd_image.h"
#include "storage.h"

#define CHUNK (1 << 20)

char *vdi_checksum_md5(const char *vdi_ref, XapiError **err)
{
    db_read_begin();
    DbRow *vdi = db_lookup(dm_class_by_name("VDI"), vdi_ref);
    g_autofree char *path = vdi ? storage_vdi_path(vdi, err) : NULL;
    const char *format = vdi ? storage_vdi_format(vdi) : NULL;
    db_read_end();
    if (!vdi) {
        xapi_error_set(err, "HANDLE_INVALID", "VDI", vdi_ref, NULL);
        return NULL;
    }
    if (!path)
        return NULL;
    g_autoptr(NbdImage) img = nbd_image_open(path, format, false, err);
    if (!img)
        return NULL;
    g_autoptr(GChecksum) md5 = g_checksum_new(G_CHECKSUM_MD5);
    g_autofree guchar *buf = g_malloc(CHUNK);
    int64_t size = nbd_image_size(img);
    for (int64_t offset = 0; offset < size;) {
        size_t len = (size_t)MIN((int64_t)CHUNK, size - offset);
        if (nbd_image_read(img, buf, len, offset, err) < 0)
            return NULL;
        g_checksum_update(md5, buf, len);
        offset += (int64_t)len;
    }
    return g_strdup(g_checksum_get_string(md5));
}
