/* rrd_archive.c: round-robin archives kept by librrd (see rrd_archive.h).
 * librrd consolidates as XAPI's rrd.ml does (both follow RRDtool): each
 * update spreads a source's rate over the seconds since the previous one,
 * a 5 s step with more than half its seconds unknown is an unknown
 * primary point, and a row with more unknown points than its archive's
 * xff allows is unknown. Only the wire forms are written here. */
#include "rrd_archive.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rrd.h>

typedef struct {
    char *name; /* XAPI's */
    char *id;   /* the file's: s0, s1, ... */
    RrdDsType type;
} RrdDs;

typedef struct {
    RrdCf cf;
    unsigned pdp_per_row, n_rows;
    double xff;
} RraDef;

/* The last primary point of every source, read back from the file when
 * asked after an update (query_data_source, perfmon). */
typedef struct {
    int64_t at; /* last_update it was read for; -1: none */
    GArray *values;
} PdpCache;

struct Rrd {
    char *path, *names_path;
    bool min_max;
    bool exists;       /* the file was created */
    int64_t last_update;
    unsigned next_id;
    GPtrArray *ds;     /* RrdDs*, in the file's order */
    GArray *rras;      /* RraDef */
    PdpCache *cache;
};

/* XAPI's timescales: points per row, rows. */
static const unsigned timescales[][2] = {{1, 120}, {12, 120}, {720, 168}, {17280, 366}};
/* XAPI's xff 1.0 (RRDtool takes below 1 only). */
#define XFF_ALL 0.999999

static void ds_free(gpointer p)
{
    RrdDs *ds = p;
    g_free(ds->name);
    g_free(ds->id);
    g_free(ds);
}

static const char *cf_name(RrdCf cf)
{
    return cf == RRD_AVERAGE ? "AVERAGE" : cf == RRD_MIN ? "MIN" : "MAX";
}

static Rrd *rrda_alloc(const char *path, bool min_max)
{
    Rrd *rrd = g_new0(Rrd, 1);
    rrd->path = g_strdup(path);
    rrd->names_path = g_strconcat(path, ".names", NULL);
    rrd->min_max = min_max;
    rrd->ds = g_ptr_array_new_with_free_func(ds_free);
    rrd->rras = g_array_new(FALSE, FALSE, sizeof(RraDef));
    for (size_t i = 0; i < G_N_ELEMENTS(timescales); i++) {
        unsigned ppr = timescales[i][0], rows = timescales[i][1];
        bool three = min_max && i > 0;
        RraDef avg = {RRD_AVERAGE, ppr, rows, three ? XFF_ALL : 0.5};
        g_array_append_val(rrd->rras, avg);
        if (three) {
            RraDef lo = {RRD_MIN, ppr, rows, XFF_ALL}, hi = {RRD_MAX, ppr, rows, XFF_ALL};
            g_array_append_val(rrd->rras, lo);
            g_array_append_val(rrd->rras, hi);
        }
    }
    rrd->cache = g_new0(PdpCache, 1);
    rrd->cache->at = -1;
    rrd->cache->values = g_array_new(FALSE, FALSE, sizeof(double));
    return rrd;
}

Rrd *rrda_new(const char *path, bool min_max, int64_t now)
{
    Rrd *rrd = rrda_alloc(path, min_max);
    rrd->last_update = now;
    return rrd;
}

void rrda_free(Rrd *rrd)
{
    if (!rrd)
        return;
    g_free(rrd->path);
    g_free(rrd->names_path);
    g_ptr_array_unref(rrd->ds);
    g_array_unref(rrd->rras);
    g_array_unref(rrd->cache->values);
    g_free(rrd->cache);
    g_free(rrd);
}

const char *rrda_path(const Rrd *rrd) { return rrd->path; }

void rrda_sync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            g_warning("cannot open %s: %s", path, g_strerror(errno));
        return;
    }
    if (fsync(fd) < 0)
        g_warning("cannot fsync %s: %s", path, g_strerror(errno));
    close(fd);
}

static const char *librrd_error(void)
{
    const char *e = rrd_get_error();
    return e && *e ? e : "unknown librrd error";
}

/* ---- the names beside the file ------------------------------------------- */

/* One line per source, in the file's order: ID TAB NAME. */
static bool names_write(const Rrd *rrd)
{
    g_autoptr(GString) text = g_string_new(NULL);
    for (guint i = 0; i < rrd->ds->len; i++) {
        const RrdDs *ds = rrd->ds->pdata[i];
        g_string_append_printf(text, "%s\t%s\n", ds->id, ds->name);
    }
    g_autoptr(GError) gerr = NULL;
    if (!g_file_set_contents_full(rrd->names_path, text->str, (gssize)text->len,
                                  G_FILE_SET_CONTENTS_CONSISTENT, 0600, &gerr)) {
        g_warning("cannot write %s: %s", rrd->names_path, gerr->message);
        return false;
    }
    return true;
}

/* id -> name, from the file beside the archive (empty when none). */
static GHashTable *names_read(const char *names_path)
{
    GHashTable *names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autofree char *text = NULL;
    if (!g_file_get_contents(names_path, &text, NULL, NULL))
        return names;
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        char *tab = strchr(*l, '\t');
        if (tab && tab[1])
            g_hash_table_insert(names, g_strndup(*l, (gsize)(tab - *l)), g_strdup(tab + 1));
    }
    return names;
}

/* ---- loading --------------------------------------------------------------- */

static const rrd_info_t *info_find(const rrd_info_t *info, const char *key)
{
    for (; info; info = info->next)
        if (strcmp(info->key, key) == 0)
            return info;
    return NULL;
}

Rrd *rrda_load(const char *path)
{
    if (!g_file_test(path, G_FILE_TEST_EXISTS))
        return NULL;
    rrd_clear_error();
    rrd_info_t *info = rrd_info_r(path);
    if (!info) {
        g_warning("%s is no RRDtool archive (%s)", path, librrd_error());
        return NULL;
    }
    const rrd_info_t *step = info_find(info, "step");
    const rrd_info_t *last = info_find(info, "last_update");
    unsigned n_rra = 0;
    for (const rrd_info_t *i = info; i; i = i->next)
        if (g_str_has_prefix(i->key, "rra[") && g_str_has_suffix(i->key, "].cf"))
            n_rra++;
    if (!step || step->value.u_cnt != RRD_STEP || !last ||
        (n_rra != G_N_ELEMENTS(timescales) && n_rra != 3 * G_N_ELEMENTS(timescales) - 2)) {
        g_warning("%s is not an archive of xapid's layout", path);
        rrd_info_free(info);
        return NULL;
    }
    Rrd *rrd = rrda_alloc(path, n_rra != G_N_ELEMENTS(timescales));
    rrd->exists = true;
    rrd->last_update = (int64_t)last->value.u_cnt;
    g_autoptr(GHashTable) names = names_read(rrd->names_path);
    /* ds[ID].index = N, in index order */
    g_autoptr(GPtrArray) by_index = g_ptr_array_new();
    for (const rrd_info_t *i = info; i; i = i->next) {
        if (!g_str_has_prefix(i->key, "ds[") || !g_str_has_suffix(i->key, "].index"))
            continue;
        g_autofree char *id = g_strndup(i->key + 3, strlen(i->key) - 3 - strlen("].index"));
        g_autofree char *type_key = g_strdup_printf("ds[%s].type", id);
        const rrd_info_t *type = info_find(info, type_key);
        RrdDs *ds = g_new0(RrdDs, 1);
        ds->type = type && type->type == RD_I_STR && strcmp(type->value.u_str, "DDERIVE") == 0
                       ? RRD_DERIVE
                       : RRD_GAUGE;
        const char *name = g_hash_table_lookup(names, id);
        ds->name = g_strdup(name ? name : id);
        unsigned n = 0;
        if (id[0] == 's' && sscanf(id + 1, "%u", &n) == 1 && n >= rrd->next_id)
            rrd->next_id = n + 1;
        ds->id = g_steal_pointer(&id);
        guint at = (guint)i->value.u_cnt;
        if (at >= by_index->len)
            g_ptr_array_set_size(by_index, at + 1);
        by_index->pdata[at] = ds;
    }
    for (guint i = 0; i < by_index->len; i++)
        if (by_index->pdata[i])
            g_ptr_array_add(rrd->ds, by_index->pdata[i]);
    rrd_info_free(info);
    return rrd;
}

int64_t rrda_last_update(const Rrd *rrd) { return rrd->last_update; }

size_t rrda_bytes(const Rrd *rrd)
{
    size_t n = sizeof *rrd + sizeof *rrd->cache + strlen(rrd->path) * 2 + 16 +
               rrd->rras->len * sizeof(RraDef) + rrd->cache->values->len * sizeof(double);
    for (guint i = 0; i < rrd->ds->len; i++) {
        const RrdDs *ds = rrd->ds->pdata[i];
        n += sizeof *ds + strlen(ds->name) + strlen(ds->id) + 2;
    }
    return n;
}

static int ds_index(const Rrd *rrd, const char *name)
{
    for (guint i = 0; i < rrd->ds->len; i++)
        if (strcmp(((RrdDs *)rrd->ds->pdata[i])->name, name) == 0)
            return (int)i;
    return -1;
}

/* ---- writing ---------------------------------------------------------------- */

static char *ds_spec(const RrdDs *ds)
{
    return g_strdup_printf("DS:%s:%s:%d:%s:U", ds->id,
                           ds->type == RRD_DERIVE ? "DDERIVE" : "GAUGE", RRD_HEARTBEAT,
                           ds->type == RRD_DERIVE ? "0" : "U");
}

static RrdDs *ds_make(Rrd *rrd, const char *name, RrdDsType type)
{
    RrdDs *ds = g_new0(RrdDs, 1);
    ds->name = g_strdup(name);
    ds->id = g_strdup_printf("s%u", rrd->next_id++);
    ds->type = type;
    return ds;
}

/* Creates the file with the sources known (at least one). */
static bool file_create(Rrd *rrd)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < rrd->ds->len; i++)
        g_ptr_array_add(argv, ds_spec(rrd->ds->pdata[i]));
    for (guint k = 0; k < rrd->rras->len; k++) {
        const RraDef *r = &g_array_index(rrd->rras, RraDef, k);
        char xff[G_ASCII_DTOSTR_BUF_SIZE];
        g_ascii_formatd(xff, sizeof xff, "%.6f", r->xff);
        g_ptr_array_add(argv, g_strdup_printf("RRA:%s:%s:%u:%u", cf_name(r->cf), xff,
                                              r->pdp_per_row, r->n_rows));
    }
    unlink(rrd->path);
    rrd_clear_error();
    if (rrd_create_r(rrd->path, RRD_STEP, (time_t)rrd->last_update, (int)argv->len,
                     (const char **)argv->pdata) != 0) {
        g_warning("cannot create %s: %s", rrd->path, librrd_error());
        return false;
    }
    rrd->exists = true;
    return names_write(rrd);
}

/* rrdtool tune FILE SPEC...: adds (DS:...) or deletes (DEL:ID) sources. */
static bool file_tune(Rrd *rrd, GPtrArray *specs)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_ptr_array_add(argv, (char *)"tune");
    g_ptr_array_add(argv, rrd->path);
    for (guint i = 0; i < specs->len; i++)
        g_ptr_array_add(argv, specs->pdata[i]);
    g_ptr_array_add(argv, NULL);
    rrd_clear_error();
    if (rrd_tune((int)argv->len - 1, (char **)argv->pdata) != 0) {
        g_warning("cannot tune %s: %s", rrd->path, librrd_error());
        return false;
    }
    return true;
}

/* Adds the sources of samples the archive lacks. */
static bool add_new_sources(Rrd *rrd, const RrdSample *samples, size_t n)
{
    g_autoptr(GPtrArray) specs = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) added = g_ptr_array_new_with_free_func(ds_free);
    for (size_t i = 0; i < n; i++) {
        if (ds_index(rrd, samples[i].name) >= 0)
            continue;
        bool dup = false;
        for (guint j = 0; j < added->len && !dup; j++)
            dup = strcmp(((RrdDs *)added->pdata[j])->name, samples[i].name) == 0;
        if (dup)
            continue;
        RrdDs *ds = ds_make(rrd, samples[i].name, samples[i].type);
        g_ptr_array_add(specs, ds_spec(ds));
        g_ptr_array_add(added, ds);
    }
    if (!added->len)
        return true;
    if (rrd->exists && !file_tune(rrd, specs))
        return false;
    for (guint j = 0; j < added->len; j++)
        g_ptr_array_add(rrd->ds, added->pdata[j]);
    g_ptr_array_set_free_func(added, NULL);
    return rrd->exists ? names_write(rrd) : file_create(rrd);
}

static void append_number(GString *out, double v)
{
    if (!isfinite(v)) {
        g_string_append_c(out, 'U');
        return;
    }
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    g_string_append(out, g_ascii_formatd(buf, sizeof buf, "%.17g", v));
}

void rrda_update(Rrd *rrd, int64_t t, const RrdSample *samples, size_t n)
{
    if (t <= rrd->last_update)
        return;
    if (!add_new_sources(rrd, samples, n))
        return;
    if (!rrd->exists) { /* no source yet: nothing to keep */
        rrd->last_update = t;
        return;
    }
    g_autoptr(GString) line = g_string_new(NULL);
    g_string_printf(line, "%" G_GINT64_FORMAT, t);
    for (guint i = 0; i < rrd->ds->len; i++) {
        const char *name = ((RrdDs *)rrd->ds->pdata[i])->name;
        double v = NAN;
        for (size_t j = 0; j < n; j++)
            if (strcmp(samples[j].name, name) == 0) {
                v = samples[j].value;
                break;
            }
        g_string_append_c(line, ':');
        append_number(line, v);
    }
    const char *argv[] = {line->str};
    rrd_clear_error();
    if (rrd_update_r(rrd->path, NULL, 1, argv) != 0) {
        g_warning("cannot update %s: %s", rrd->path, librrd_error());
        return;
    }
    rrd->last_update = t;
}

guint rrda_n_sources(const Rrd *rrd) { return rrd->ds->len; }

const char *rrda_source_name(const Rrd *rrd, guint i)
{
    return ((const RrdDs *)rrd->ds->pdata[i])->name;
}

int rrda_source_index(const Rrd *rrd, const char *name) { return ds_index(rrd, name); }

void rrda_forget_source(Rrd *rrd, guint i)
{
    RrdDs *ds = g_ptr_array_steal_index(rrd->ds, i);
    if (!rrd->exists) {
        ds_free(ds);
        return;
    }
    RrdDs *fresh = ds_make(rrd, ds->name, ds->type);
    g_autoptr(GPtrArray) specs = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(specs, g_strdup_printf("DEL:%s", ds->id));
    g_ptr_array_add(specs, ds_spec(fresh));
    if (file_tune(rrd, specs)) {
        g_ptr_array_add(rrd->ds, fresh);
        ds_free(ds);
    } else {
        g_ptr_array_insert(rrd->ds, (gint)i, ds);
        ds_free(fresh);
    }
    names_write(rrd);
    rrd->cache->at = -1;
}

/* ---- reading ---------------------------------------------------------------- */

/* Rows of one archive (cf, span) as rrd_fetch gives them: the row ending
 * at start + step x (j + 1) is data[j x ds_cnt + column]. */
typedef struct {
    time_t start;
    unsigned long step, n_rows, ds_cnt;
    int *column; /* our source i -> the fetch's column, -1 if absent */
    rrd_value_t *data;
} Fetched;

static void fetched_free(Fetched *f)
{
    if (!f)
        return;
    g_free(f->column);
    if (f->data)
        rrd_freemem(f->data);
    g_free(f);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Fetched, fetched_free)

/* The rows of rrd's archive r ending from first to last (NULL when the
 * file has none). */
static Fetched *fetch(const Rrd *rrd, const RraDef *r, int64_t first, int64_t last)
{
    if (!rrd->exists)
        return NULL;
    unsigned long span = (unsigned long)r->pdp_per_row * RRD_STEP;
    time_t start = (time_t)(first - (int64_t)span), end = (time_t)last;
    unsigned long step = span, ds_cnt = 0;
    char **names = NULL;
    rrd_value_t *data = NULL;
    rrd_clear_error();
    if (rrd_fetch_r(rrd->path, cf_name(r->cf), &start, &end, &step, &ds_cnt, &names, &data) != 0) {
        g_warning("cannot read %s: %s", rrd->path, librrd_error());
        return NULL;
    }
    Fetched *f = g_new0(Fetched, 1);
    f->start = start;
    f->step = step;
    f->ds_cnt = ds_cnt;
    f->n_rows = step ? (unsigned long)(end - start) / step : 0;
    f->data = data;
    f->column = g_new(int, rrd->ds->len ? rrd->ds->len : 1);
    for (guint i = 0; i < rrd->ds->len; i++) {
        f->column[i] = -1;
        for (unsigned long c = 0; c < ds_cnt; c++)
            if (strcmp(names[c], ((RrdDs *)rrd->ds->pdata[i])->id) == 0)
                f->column[i] = (int)c;
    }
    for (unsigned long c = 0; c < ds_cnt; c++)
        rrd_freemem(names[c]);
    rrd_freemem(names);
    if (step != span) { /* librrd chose another archive: not ours to show */
        fetched_free(f);
        return NULL;
    }
    return f;
}

/* The value of source i for the row ending at t (NaN when not held). */
static double fetched_value(const Fetched *f, guint i, int64_t t)
{
    if (!f || f->column[i] < 0 || t <= f->start || (t - f->start) % (int64_t)f->step)
        return NAN;
    unsigned long j = (unsigned long)((t - f->start) / (int64_t)f->step) - 1;
    if (j >= f->n_rows)
        return NAN;
    return f->data[j * f->ds_cnt + (unsigned long)f->column[i]];
}

static int64_t last_row_time(const Rrd *rrd, const RraDef *r)
{
    int64_t span = (int64_t)r->pdp_per_row * RRD_STEP;
    return rrd->last_update / span * span;
}

double rrda_source_value(const Rrd *rrd, guint i)
{
    PdpCache *c = rrd->cache;
    if (c->at != rrd->last_update) {
        const RraDef *finest = &g_array_index(rrd->rras, RraDef, 0);
        int64_t t = last_row_time(rrd, finest);
        g_autoptr(Fetched) f = fetch(rrd, finest, t, t);
        g_array_set_size(c->values, rrd->ds->len);
        for (guint k = 0; k < rrd->ds->len; k++)
            g_array_index(c->values, double, k) = fetched_value(f, k, t);
        c->at = rrd->last_update;
    }
    return i < c->values->len ? g_array_index(c->values, double, i) : NAN;
}

/* ---- output ------------------------------------------------------------- */

void rrda_format_value(GString *out, double v)
{
    if (isnan(v))
        g_string_append(out, "NaN");
    else if (isinf(v))
        g_string_append(out, v > 0 ? "Infinity" : "-Infinity");
    else if (v == 0)
        g_string_append(out, "0.0");
    else {
        char buf[G_ASCII_DTOSTR_BUF_SIZE];
        int n = snprintf(buf, sizeof buf, "%0.15g", v);
        g_string_append_len(out, buf, n);
    }
}

/* Source names hold device names, which Linux lets hold '"', '<', '&'. */
static void append_xml_text(GString *out, const char *text)
{
    g_autofree char *escaped = g_markup_escape_text(text, -1);
    g_string_append(out, escaped);
}

static void append_json_text(GString *out, const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == '"' || *p == '\\')
            g_string_append_c(out, '\\');
        if (*p < 0x20)
            g_string_append_printf(out, "\\u%04x", *p);
        else
            g_string_append_c(out, (char)*p);
    }
}

static bool cf_matches(const RraDef *r, int cf) { return cf < 0 || (int)r->cf == cf; }

/* Rrd.find_best_rras: the finest archive (of the wanted function) with at
 * least interval/step points per row that still reaches back to start,
 * else the coarsest. */
static unsigned best_pdp_per_row(const Rrd *rrd, int64_t start, int64_t interval, int cf)
{
    int64_t pdp = interval / RRD_STEP;
    unsigned coarsest = 0;
    for (guint k = 0; k < rrd->rras->len; k++) {
        const RraDef *r = &g_array_index(rrd->rras, RraDef, k);
        if (!cf_matches(r, cf))
            continue;
        coarsest = MAX(coarsest, r->pdp_per_row);
        int64_t reach = last_row_time(rrd, r) - (int64_t)r->n_rows * r->pdp_per_row * RRD_STEP;
        if (r->pdp_per_row >= pdp && reach <= start)
            return r->pdp_per_row;
    }
    return coarsest;
}

typedef struct {
    const Fetched *rows;
    guint ds;
} Column;

void rrda_xport(GString *out, const RrdSource *sources, size_t n, int64_t start, int64_t interval,
               int cf, bool json)
{
    unsigned ppr = n ? best_pdp_per_row(sources[0].rrd, start, interval, cf) : 1;
    if (!ppr)
        ppr = 1;
    int64_t step = (int64_t)ppr * RRD_STEP;
    g_autoptr(GArray) columns = g_array_new(FALSE, FALSE, sizeof(Column));
    g_autoptr(GPtrArray) legend = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) fetched = g_ptr_array_new_with_free_func((GDestroyNotify)fetched_free);
    int64_t end = 0;
    unsigned n_rows = 0;
    bool first = true;
    for (size_t s = 0; s < n; s++) {
        const Rrd *rrd = sources[s].rrd;
        for (guint k = 0; k < rrd->rras->len; k++) {
            const RraDef *r = &g_array_index(rrd->rras, RraDef, k);
            if (r->pdp_per_row != ppr || !cf_matches(r, cf))
                continue;
            if (first) {
                end = last_row_time(rrd, r);
                n_rows = r->n_rows;
                first = false;
            }
            if (!rrd->ds->len)
                continue;
            int64_t oldest = MAX(start, end - (int64_t)(n_rows - 1) * step);
            Fetched *f = fetch(rrd, r, oldest, end);
            if (f)
                g_ptr_array_add(fetched, f);
            for (guint i = 0; i < rrd->ds->len; i++) {
                Column c = {f, i};
                g_array_append_val(columns, c);
                g_ptr_array_add(legend, g_strdup_printf("%s:%s:%s:%s", cf_name(r->cf),
                                                        sources[s].owner, sources[s].uuid,
                                                        ((RrdDs *)rrd->ds->pdata[i])->name));
            }
        }
    }
    g_autoptr(GArray) times = g_array_new(FALSE, FALSE, sizeof(int64_t));
    for (int64_t t = end; columns->len && t >= start && times->len < n_rows; t -= step)
        g_array_append_val(times, t);
    int64_t meta_start = (start >= 0 ? start / step : (start - step + 1) / step) * step + step;
    const char *q = json ? "\"" : "";
    if (json)
        g_string_append_printf(out, "{\"meta\":{\"start\":\"%" G_GINT64_FORMAT "\",\"step\":\"%"
                               G_GINT64_FORMAT "\",\"end\":\"%" G_GINT64_FORMAT "\",\"rows\":\"%u"
                               "\",\"columns\":\"%u\",\"legend\":[",
                               meta_start, step, end, times->len, columns->len);
    else
        g_string_append_printf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xport><meta>"
                               "<start>%" G_GINT64_FORMAT "</start><step>%" G_GINT64_FORMAT
                               "</step><end>%" G_GINT64_FORMAT "</end><rows>%u</rows><columns>%u"
                               "</columns><legend>",
                               meta_start, step, end, times->len, columns->len);
    for (guint i = 0; i < legend->len; i++) {
        if (json) {
            g_string_append(out, i ? ",\"" : "\"");
            append_json_text(out, legend->pdata[i]);
            g_string_append_c(out, '"');
        } else {
            g_string_append(out, "<entry>");
            append_xml_text(out, legend->pdata[i]);
            g_string_append(out, "</entry>");
        }
    }
    g_string_append(out, json ? "]},\"data\":[" : "</legend></meta><data>");
    for (guint j = 0; j < times->len; j++) {
        int64_t t = g_array_index(times, int64_t, j);
        if (json)
            g_string_append_printf(out, "%s{\"t\":\"%" G_GINT64_FORMAT "\",\"values\":[",
                                   j ? "," : "", t);
        else
            g_string_append_printf(out, "<row><t>%" G_GINT64_FORMAT "</t>", t);
        for (guint i = 0; i < columns->len; i++) {
            const Column *c = &g_array_index(columns, Column, i);
            g_string_append(out, json ? (i ? ",\"" : "\"") : "<v>");
            rrda_format_value(out, fetched_value(c->rows, c->ds, t));
            g_string_append(out, json ? q : "</v>");
        }
        g_string_append(out, json ? "]}" : "</row>");
    }
    g_string_append(out, json ? "]}" : "</data></xport>");
}

static double info_double(const rrd_info_t *info, const char *key)
{
    const rrd_info_t *i = info_find(info, key);
    if (!i)
        return NAN;
    switch (i->type) {
    case RD_I_VAL:
        return i->value.u_val;
    case RD_I_CNT:
        return (double)i->value.u_cnt;
    case RD_I_INT:
        return i->value.u_int;
    case RD_I_STR:
        return strcmp(i->value.u_str, "U") == 0 ? NAN : g_ascii_strtod(i->value.u_str, NULL);
    default:
        return NAN;
    }
}

void rrda_dump_xml(GString *out, const Rrd *rrd)
{
    rrd_info_t *info = NULL;
    if (rrd->exists) {
        rrd_clear_error();
        info = rrd_info_r(rrd->path);
        if (!info)
            g_warning("cannot read %s: %s", rrd->path, librrd_error());
    }
    g_string_append_printf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rrd><version>0003"
                           "</version><step>%d</step><lastupdate>%" G_GINT64_FORMAT
                           "</lastupdate>", RRD_STEP, rrd->last_update);
    for (guint i = 0; i < rrd->ds->len; i++) {
        const RrdDs *ds = rrd->ds->pdata[i];
        g_string_append(out, "<ds><name>");
        append_xml_text(out, ds->name);
        g_string_append_printf(out, "</name><type>%s</type><minimal_heartbeat>",
                               ds->type == RRD_GAUGE ? "GAUGE" : "DERIVE");
        rrda_format_value(out, RRD_HEARTBEAT);
        g_string_append(out, "</minimal_heartbeat><min>");
        rrda_format_value(out, ds->type == RRD_DERIVE ? 0.0 : -INFINITY);
        g_string_append(out, "</min><max>");
        rrda_format_value(out, INFINITY);
        g_autofree char *last_ds = g_strdup_printf("ds[%s].last_ds", ds->id);
        g_autofree char *value = g_strdup_printf("ds[%s].value", ds->id);
        g_autofree char *unknown = g_strdup_printf("ds[%s].unknown_sec", ds->id);
        g_string_append(out, "</max><last_ds>");
        rrda_format_value(out, info_double(info, last_ds));
        g_string_append(out, "</last_ds><value>");
        rrda_format_value(out, info_double(info, value));
        double unknown_sec = info_double(info, unknown);
        g_string_append_printf(out, "</value><unknown_sec>%d</unknown_sec></ds>",
                               isnan(unknown_sec) ? 0 : (int)unknown_sec);
    }
    for (guint k = 0; k < rrd->rras->len; k++) {
        const RraDef *r = &g_array_index(rrd->rras, RraDef, k);
        g_string_append_printf(out, "<rra><cf>%s</cf><pdp_per_row>%u</pdp_per_row><params><xff>",
                               cf_name(r->cf), r->pdp_per_row);
        rrda_format_value(out, r->xff);
        g_string_append(out, "</xff></params><cdp_prep>");
        for (guint i = 0; i < rrd->ds->len; i++) {
            guint at = (guint)i; /* the file's index: ours, in order */
            g_autofree char *value = g_strdup_printf("rra[%u].cdp_prep[%u].value", k, at);
            g_autofree char *unknown =
                g_strdup_printf("rra[%u].cdp_prep[%u].unknown_datapoints", k, at);
            double u = info_double(info, unknown);
            g_string_append(out, "<ds><primary_value>0.0</primary_value><secondary_value>0.0"
                                 "</secondary_value><value>");
            rrda_format_value(out, info_double(info, value));
            g_string_append_printf(out, "</value><unknown_datapoints>%u</unknown_datapoints></ds>",
                                   isnan(u) ? 0u : (unsigned)u);
        }
        g_string_append(out, "</cdp_prep><database>");
        int64_t span = (int64_t)r->pdp_per_row * RRD_STEP, last = last_row_time(rrd, r);
        int64_t oldest = last - (int64_t)(r->n_rows - 1) * span;
        g_autoptr(Fetched) f = rrd->ds->len ? fetch(rrd, r, oldest, last) : NULL;
        for (int64_t t = oldest; t <= last; t += span) { /* oldest first */
            g_string_append(out, "<row>");
            for (guint i = 0; i < rrd->ds->len; i++) {
                g_string_append(out, "<v>");
                rrda_format_value(out, fetched_value(f, i, t));
                g_string_append(out, "</v>");
            }
            g_string_append(out, "</row>");
        }
        g_string_append(out, "</database></rra>");
    }
    g_string_append(out, "</rrd>");
    if (info)
        rrd_info_free(info);
}
