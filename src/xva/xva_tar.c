/* xva_tar.c: tar headers of an XVA (see xva_tar.h). */
#include "xva_tar.h"

#include <stdbool.h>
#include <string.h>

static void put_octal(guint8 *field, size_t width, uint64_t value)
{
    /* width - 1 digits and a NUL, as tar writes them */
    g_snprintf((char *)field, width, "%0*" G_GINT64_MODIFIER "o", (int)(width - 1),
               (guint64)value);
}

static unsigned header_checksum(const guint8 *h)
{
    unsigned sum = 0;
    for (size_t i = 0; i < XVA_TAR_BLOCK; i++)
        sum += (i >= 148 && i < 156) ? ' ' : h[i];
    return sum;
}

void xva_tar_append_header(GByteArray *out, const char *name, uint64_t size, int64_t mtime)
{
    guint8 h[XVA_TAR_BLOCK] = {0};
    size_t n = strlen(name);
    memcpy(h, name, MIN(n, (size_t)100));
    put_octal(h + 100, 8, 0400); /* mode */
    put_octal(h + 108, 8, 0);    /* uid */
    put_octal(h + 116, 8, 0);    /* gid */
    put_octal(h + 124, 12, size);
    put_octal(h + 136, 12, (uint64_t)MAX(mtime, 0));
    h[156] = '0'; /* a regular file */
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    g_snprintf((char *)h + 148, 8, "%06o", header_checksum(h));
    h[155] = ' ';
    g_byte_array_append(out, h, sizeof h);
}

size_t xva_tar_padding(uint64_t size)
{
    return (size_t)((XVA_TAR_BLOCK - size % XVA_TAR_BLOCK) % XVA_TAR_BLOCK);
}

void xva_tar_append_padding(GByteArray *out, uint64_t size)
{
    static const guint8 zeros[XVA_TAR_BLOCK];
    g_byte_array_append(out, zeros, (guint)xva_tar_padding(size));
}

void xva_tar_append_end(GByteArray *out)
{
    static const guint8 zeros[2 * XVA_TAR_BLOCK];
    g_byte_array_append(out, zeros, sizeof zeros);
}

static bool read_octal(const guint8 *field, size_t width, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    while (i < width && field[i] == ' ')
        i++;
    bool digits = false;
    for (; i < width && field[i] >= '0' && field[i] <= '7'; i++, digits = true)
        v = v * 8 + (uint64_t)(field[i] - '0');
    *out = v;
    return digits;
}

XvaTarHeader xva_tar_parse_header(const guint8 block[XVA_TAR_BLOCK], char **name,
                                  uint64_t *size)
{
    bool zero = true;
    for (size_t i = 0; i < XVA_TAR_BLOCK && zero; i++)
        zero = block[i] == 0;
    if (zero)
        return XVA_TAR_END;
    uint64_t sum = 0;
    if (!read_octal(block + 148, 8, &sum) || sum != header_checksum(block) ||
        !read_octal(block + 124, 12, size))
        return XVA_TAR_BAD;
    g_autofree char *base = g_strndup((const char *)block, 100);
    if (memcmp(block + 257, "ustar", 5) == 0 && block[345]) {
        g_autofree char *prefix = g_strndup((const char *)block + 345, 155);
        *name = g_strconcat(prefix, "/", base, NULL);
    } else {
        *name = g_steal_pointer(&base);
    }
    return XVA_TAR_ENTRY;
}
