/* boot_config.c: the default entry of grub.cfg, menu.lst or
 * extlinux.conf, as pygrub reads them: GRUB 2's "set default" (an index,
 * "N>M" into a submenu, a title or an id; anything else is entry 0) and
 * its menuentry blocks' linux/initrd lines; GRUB legacy's default, title,
 * kernel and initrd; SYSLINUX's DEFAULT (or MENU DEFAULT) label with its
 * KERNEL/LINUX, INITRD and APPEND (initrd= in APPEND too). No script is
 * run: variables, conditions and functions are not evaluated. */
#include "boot_config.h"

#include <string.h>

void boot_entry_clear(BootEntry *e)
{
    g_free(e->title);
    g_free(e->kernel);
    if (e->initrds)
        g_ptr_array_free(e->initrds, TRUE);
    g_free(e->args);
    memset(e, 0, sizeof *e);
}

static void entry_init(BootEntry *e, const char *title)
{
    memset(e, 0, sizeof *e);
    e->title = g_strdup(title ? title : "");
    e->initrds = g_ptr_array_new_with_free_func(g_free);
    e->args = g_strdup("");
}

/* GRUB's words: blanks separate them, quotes ('...' and "...") and
 * backslashes protect, a word may mix quoted and bare parts. */
static GPtrArray *words(const char *line)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    const char *p = line;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '#')
            break;
        GString *w = g_string_new(NULL);
        while (*p && *p != ' ' && *p != '\t') {
            if (*p == '\'' || *p == '"') {
                char q = *p++;
                while (*p && *p != q) {
                    if (q == '"' && *p == '\\' && p[1])
                        p++;
                    g_string_append_c(w, *p++);
                }
                if (*p)
                    p++;
            } else if (*p == '\\' && p[1]) {
                g_string_append_c(w, p[1]);
                p += 2;
            } else {
                g_string_append_c(w, *p++);
            }
        }
        g_ptr_array_add(out, g_string_free(w, FALSE));
    }
    return out;
}

static const char *word(GPtrArray *w, guint i) { return i < w->len ? w->pdata[i] : ""; }

static char *join_from(GPtrArray *w, guint from)
{
    GString *s = g_string_new(NULL);
    for (guint i = from; i < w->len; i++)
        g_string_append_printf(s, "%s%s", s->len ? " " : "", (char *)w->pdata[i]);
    return g_string_free(s, FALSE);
}

/* "(hd0,msdos1)/boot/vmlinuz" -> "/boot/vmlinuz" */
static char *strip_device(const char *path)
{
    if (path[0] == '(') {
        const char *close = strchr(path, ')');
        if (close)
            return g_strdup(close[1] ? close + 1 : "/");
    }
    return g_strdup(path);
}

static gboolean is_one_of(const char *w, const char *const *names)
{
    for (; *names; names++)
        if (strcmp(w, *names) == 0)
            return TRUE;
    return FALSE;
}

/* ---- GRUB 2 ---------------------------------------------------------------- */

typedef struct {
    BootEntry e;
    int top, sub;   /* top-level index; index inside its submenu or -1 */
    char *id;       /* --id */
    char *path_title; /* "submenu>entry" titles, or the title */
} GrubEntry;

static void grub_entries_free(GArray *a)
{
    for (guint i = 0; i < a->len; i++) {
        GrubEntry *g = &g_array_index(a, GrubEntry, i);
        boot_entry_clear(&g->e);
        g_free(g->id);
        g_free(g->path_title);
    }
    g_array_free(a, TRUE);
}

static char *option_value(GPtrArray *w, const char *name)
{
    size_t n = strlen(name);
    for (guint i = 1; i < w->len; i++) {
        const char *s = w->pdata[i];
        if (strncmp(s, name, n) == 0 && s[n] == '=')
            return g_strdup(s + n + 1);
        if (strcmp(s, name) == 0 && i + 1 < w->len)
            return g_strdup(w->pdata[i + 1]);
    }
    return NULL;
}

static gboolean grub2(const char *text, BootEntry *out, char **why)
{
    GArray *entries = g_array_new(FALSE, TRUE, sizeof(GrubEntry));
    g_autofree char *def = g_strdup("0");
    g_autofree char *submenu_title = NULL;
    int top = 0, sub = 0, depth = 0, entry_depth = -1, submenu_depth = -1;
    GrubEntry *cur = NULL;
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        g_autoptr(GPtrArray) w = words(*l);
        if (!w->len)
            continue;
        const char *w0 = word(w, 0);
        gboolean opens = strcmp(word(w, w->len - 1), "{") == 0;
        if (strcmp(w0, "}") == 0) {
            depth--;
            if (depth == entry_depth) {
                cur = NULL;
                entry_depth = -1;
            } else if (depth == submenu_depth) {
                submenu_depth = -1;
            }
            continue;
        }
        if (strcmp(w0, "set") == 0 && g_str_has_prefix(word(w, 1), "default=") && depth == 0) {
            g_free(def);
            def = g_strdup(word(w, 1) + strlen("default="));
        } else if (strcmp(w0, "menuentry") == 0 && opens && entry_depth < 0) {
            GrubEntry g = {0};
            entry_init(&g.e, word(w, 1));
            g.id = option_value(w, "--id");
            if (submenu_depth >= 0) {
                g.top = top - 1;
                g.sub = sub++;
                g.path_title = g_strdup_printf("%s>%s", submenu_title, g.e.title);
            } else {
                g.top = top++;
                g.sub = -1;
                g.path_title = g_strdup(g.e.title);
            }
            g_array_append_val(entries, g);
            cur = &g_array_index(entries, GrubEntry, entries->len - 1);
            entry_depth = depth;
        } else if (strcmp(w0, "submenu") == 0 && opens && submenu_depth < 0 && entry_depth < 0) {
            g_free(submenu_title);
            submenu_title = g_strdup(word(w, 1));
            top++;
            sub = 0;
            submenu_depth = depth;
        } else if (cur && is_one_of(w0, (const char *const[]){"linux", "linux16", "linuxefi",
                                                              "kernel", NULL}) && w->len > 1) {
            g_free(cur->e.kernel);
            cur->e.kernel = strip_device(word(w, 1));
            g_free(cur->e.args);
            cur->e.args = join_from(w, 2);
        } else if (cur && is_one_of(w0, (const char *const[]){"initrd", "initrd16", "initrdefi",
                                                              NULL})) {
            g_ptr_array_set_size(cur->e.initrds, 0);
            for (guint i = 1; i < w->len; i++)
                g_ptr_array_add(cur->e.initrds, strip_device(w->pdata[i]));
        }
        if (opens)
            depth++;
    }
    /* the default: "N", "N>M", a title, "submenu>title" or an id */
    GrubEntry *chosen = NULL;
    char *end;
    long n = strtol(def, &end, 10);
    long m = -1;
    gboolean numeric = *def && (*end == 0 || (*end == '>' && (m = strtol(end + 1, &end, 10),
                                                              *end == 0)));
    for (guint i = 0; i < entries->len && !chosen; i++) {
        GrubEntry *g = &g_array_index(entries, GrubEntry, i);
        if (numeric ? (g->top == n && (m < 0 ? g->sub <= 0 : g->sub == m))
                    : (strcmp(g->path_title, def) == 0 || (g->id && strcmp(g->id, def) == 0) ||
                       strcmp(g->e.title, def) == 0))
            chosen = g;
    }
    if (!chosen && entries->len)
        chosen = &g_array_index(entries, GrubEntry, 0); /* ${saved_entry} and the like */
    gboolean found = chosen && chosen->e.kernel;
    if (found) {
        *out = chosen->e;
        memset(&chosen->e, 0, sizeof chosen->e);
    } else {
        *why = g_strdup(chosen ? "grub.cfg: its default entry has no linux line"
                               : "grub.cfg: no menuentry");
    }
    grub_entries_free(entries);
    return found;
}

/* ---- GRUB legacy ------------------------------------------------------------ */

/* "default=0" and "default 0" alike: the keyword and the rest. */
static GPtrArray *legacy_words(const char *line)
{
    g_autofree char *copy = g_strdup(line);
    char *p = copy + strspn(copy, " \t");
    size_t k = strcspn(p, " \t=");
    if (p[k] == '=')
        p[k] = ' ';
    return words(p);
}

static gboolean grub_legacy(const char *text, BootEntry *out, char **why)
{
    GArray *entries = g_array_new(FALSE, TRUE, sizeof(BootEntry));
    long def = 0;
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        g_autoptr(GPtrArray) w = legacy_words(*l);
        if (!w->len)
            continue;
        const char *w0 = word(w, 0);
        BootEntry *cur = entries->len ? &g_array_index(entries, BootEntry, entries->len - 1)
                                      : NULL;
        if (strcmp(w0, "default") == 0 && !cur) {
            def = strtol(word(w, 1), NULL, 10); /* "saved": 0 */
        } else if (strcmp(w0, "title") == 0) {
            BootEntry e;
            g_autofree char *title = join_from(w, 1);
            entry_init(&e, title);
            g_array_append_val(entries, e);
        } else if (cur && strcmp(w0, "kernel") == 0 && w->len > 1) {
            g_free(cur->kernel);
            cur->kernel = strip_device(word(w, 1));
            g_free(cur->args);
            cur->args = join_from(w, 2);
        } else if (cur && strcmp(w0, "initrd") == 0 && w->len > 1) {
            g_ptr_array_set_size(cur->initrds, 0);
            g_ptr_array_add(cur->initrds, strip_device(word(w, 1)));
        }
    }
    BootEntry *chosen = NULL;
    if (entries->len)
        chosen = &g_array_index(entries, BootEntry,
                                def >= 0 && (guint)def < entries->len ? (guint)def : 0);
    gboolean found = chosen && chosen->kernel;
    if (found) {
        *out = *chosen;
        memset(chosen, 0, sizeof *chosen);
    } else {
        *why = g_strdup(chosen ? "menu.lst: its default entry has no kernel line"
                               : "menu.lst: no title");
    }
    for (guint i = 0; i < entries->len; i++)
        boot_entry_clear(&g_array_index(entries, BootEntry, i));
    g_array_free(entries, TRUE);
    return found;
}

/* ---- SYSLINUX ---------------------------------------------------------------- */

static void add_initrd_list(BootEntry *e, const char *list)
{
    g_auto(GStrv) parts = g_strsplit(list, ",", -1);
    for (char **p = parts; *p; p++)
        if (**p)
            g_ptr_array_add(e->initrds, g_strdup(*p));
}

static gboolean syslinux(const char *text, BootEntry *out, char **why)
{
    GArray *entries = g_array_new(FALSE, TRUE, sizeof(BootEntry));
    g_autofree char *def = NULL;
    int menu_default = -1;
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        g_autofree char *line = g_strstrip(g_strdup(*l));
        if (!*line || *line == '#')
            continue;
        size_t k = strcspn(line, " \t");
        g_autofree char *key = g_ascii_strdown(line, (gssize)k);
        const char *rest = line + k + strspn(line + k, " \t");
        BootEntry *cur = entries->len ? &g_array_index(entries, BootEntry, entries->len - 1)
                                      : NULL;
        if (strcmp(key, "default") == 0) {
            g_free(def);
            def = g_strndup(rest, strcspn(rest, " \t"));
        } else if (strcmp(key, "label") == 0) {
            BootEntry e;
            entry_init(&e, rest);
            g_array_append_val(entries, e);
        } else if (cur && (strcmp(key, "kernel") == 0 || strcmp(key, "linux") == 0)) {
            g_free(cur->kernel);
            cur->kernel = g_strdup(rest);
        } else if (cur && strcmp(key, "initrd") == 0) {
            g_ptr_array_set_size(cur->initrds, 0);
            add_initrd_list(cur, rest);
        } else if (cur && strcmp(key, "append") == 0) {
            g_auto(GStrv) args = g_strsplit_set(rest, " \t", -1);
            GString *kept = g_string_new(NULL);
            for (char **a = args; *a; a++) {
                if (!**a)
                    continue;
                if (g_str_has_prefix(*a, "initrd="))
                    add_initrd_list(cur, *a + strlen("initrd="));
                else
                    g_string_append_printf(kept, "%s%s", kept->len ? " " : "", *a);
            }
            g_free(cur->args);
            cur->args = g_string_free(kept, FALSE);
        } else if (cur && strcmp(key, "menu") == 0 && g_ascii_strcasecmp(rest, "default") == 0) {
            menu_default = (int)entries->len - 1;
        }
    }
    BootEntry *chosen = NULL;
    for (guint i = 0; def && i < entries->len && !chosen; i++)
        if (strcmp(g_array_index(entries, BootEntry, i).title, def) == 0)
            chosen = &g_array_index(entries, BootEntry, i);
    if (!chosen && menu_default >= 0)
        chosen = &g_array_index(entries, BootEntry, menu_default);
    if (!chosen && entries->len)
        chosen = &g_array_index(entries, BootEntry, 0);
    gboolean found = chosen && chosen->kernel && *chosen->kernel;
    if (found) {
        *out = *chosen;
        memset(chosen, 0, sizeof *chosen);
    } else {
        *why = g_strdup(chosen ? "extlinux.conf: its default label has no KERNEL line"
                               : "extlinux.conf: no LABEL");
    }
    for (guint i = 0; i < entries->len; i++)
        boot_entry_clear(&g_array_index(entries, BootEntry, i));
    g_array_free(entries, TRUE);
    return found;
}

gboolean boot_config_default_entry(BootConfigKind kind, const char *text, BootEntry *out,
                                   char **why)
{
    memset(out, 0, sizeof *out);
    switch (kind) {
    case BOOT_CONFIG_GRUB2:
        return grub2(text, out, why);
    case BOOT_CONFIG_GRUB_LEGACY:
        return grub_legacy(text, out, why);
    case BOOT_CONFIG_SYSLINUX:
        return syslinux(text, out, why);
    }
    *why = g_strdup("unknown configuration");
    return FALSE;
}
