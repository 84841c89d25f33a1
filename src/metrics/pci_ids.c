/* pci_ids.c: names from pci.ids (see pci_ids.h). The file's lines are
 * "vvvv  Vendor", "\tdddd  Device" and "\t\tssss ssss  Subsystem". It is
 * about 1.3 MB: each id asked for is looked up by a scan of the file and
 * its answer kept, not the whole table (the host has a few NICs). */
#include "pci_ids.h"

#include <stdbool.h>
#include <string.h>

#include <glib.h>

static const char *const default_paths[] = {"/usr/share/misc/pci.ids",
                                            "/usr/share/hwdata/pci.ids"};

static GMutex lock;
static GHashTable *answers; /* "vvvv" or "vvvv:dddd" -> name ("" if none) */
static char *path_override;

void pci_ids_set_path(const char *path)
{
    g_mutex_lock(&lock);
    g_free(path_override);
    path_override = g_strdup(path);
    g_clear_pointer(&answers, g_hash_table_unref);
    g_mutex_unlock(&lock);
}

static char *read_file(void)
{
    char *text = NULL;
    if (path_override)
        g_file_get_contents(path_override, &text, NULL, NULL);
    for (size_t i = 0; !path_override && !text && i < G_N_ELEMENTS(default_paths); i++)
        g_file_get_contents(default_paths[i], &text, NULL, NULL);
    return text;
}

/* The name on the line after the id (its "  "), to the line's end. */
static char *name_at(const char *p)
{
    const char *end = strchr(p, '\n');
    return g_strstrip(end ? g_strndup(p, (gsize)(end - p)) : g_strdup(p));
}

/* vendor and device in lower case, as the file has them; device NULL for
 * the vendor's own name. */
static char *scan(const char *text, const char *vendor, const char *device)
{
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        if (line[0] == 'C' && line[1] == ' ') /* the device classes follow the vendors */
            break;
        if (strncmp(line, vendor, 4) == 0 && line[4] == ' ') {
            if (!device)
                return name_at(line + 5);
            /* the vendor's devices: the lines that start with one tab */
            for (line = nl ? nl + 1 : NULL; line && (line[0] == '\t' || line[0] == '#');) {
                nl = strchr(line, '\n');
                if (line[0] == '\t' && line[1] != '\t' && strncmp(line + 1, device, 4) == 0 &&
                    line[5] == ' ')
                    return name_at(line + 6);
                line = nl ? nl + 1 : NULL;
            }
            return g_strdup("");
        }
        line = nl ? nl + 1 : NULL;
    }
    return g_strdup("");
}

static bool is_id(const char *id)
{
    if (!id || strlen(id) != 4)
        return false;
    for (int i = 0; i < 4; i++)
        if (!g_ascii_isxdigit(id[i]))
            return false;
    return true;
}

static char *lookup(const char *vendor, const char *device)
{
    if (!is_id(vendor) || (device && !is_id(device)))
        return g_strdup("");
    g_autofree char *v = g_ascii_strdown(vendor, -1);
    g_autofree char *d = device ? g_ascii_strdown(device, -1) : NULL;
    g_autofree char *key = d ? g_strconcat(v, ":", d, NULL) : g_strdup(v);
    g_mutex_lock(&lock);
    if (!answers)
        answers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    const char *known = g_hash_table_lookup(answers, key);
    char *out;
    if (known) {
        out = g_strdup(known);
    } else {
        g_autofree char *text = read_file();
        out = text ? scan(text, v, d) : g_strdup("");
        g_hash_table_insert(answers, g_strdup(key), g_strdup(out));
    }
    g_mutex_unlock(&lock);
    return out;
}

char *pci_ids_vendor_name(const char *vendor) { return lookup(vendor, NULL); }

char *pci_ids_device_name(const char *vendor, const char *device)
{
    return device ? lookup(vendor, device) : g_strdup("");
}
