/* rrd.c: round-robin archives (see rrd.h). Every update spreads each
 * source's rate over the seconds since the previous one; each completed
 * 5 s step gives a primary point, which every archive consolidates into
 * its current row (unknown points beyond the archive's xff make the row
 * unknown, as in XAPI's rrd.ml). */
#include "rrd.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    char *name;
    RrdDsType type;
    double last_raw;  /* the last reading (a counter's total) */
    bool have_last;
    double pdp_sum;   /* rate x seconds within the current step */
    double pdp_known; /* seconds of the current step with a known rate */
    double last_pdp;  /* the last primary point (query_data_source) */
} RrdDs;

typedef struct {
    double *rows;     /* ring of the archive's rows */
    double cdp;       /* the row being consolidated: sum, min or max */
    unsigned unknown; /* unknown primary points in it */
} RraCol;

typedef struct {
    RrdCf cf;
    unsigned pdp_per_row, n_rows;
    double xff;
    unsigned cur;           /* index of the newest row */
    int64_t last_row_time;  /* its end time, a multiple of pdp_per_row x step */
    unsigned pdps;          /* primary points in the row being consolidated */
    GPtrArray *cols;        /* RraCol*, one per data source */
} Rra;

struct Rrd {
    int64_t last_update;
    GPtrArray *ds;   /* RrdDs* */
    GPtrArray *rras; /* Rra* */
};

/* XAPI's timescales: points per row, rows. */
static const unsigned timescales[][2] = {{1, 120}, {12, 120}, {720, 168}, {17280, 366}};

static void ds_free(gpointer p)
{
    RrdDs *ds = p;
    g_free(ds->name);
    g_free(ds);
}

static void col_free(gpointer p)
{
    RraCol *c = p;
    g_free(c->rows);
    g_free(c);
}

static void rra_free(gpointer p)
{
    Rra *r = p;
    g_ptr_array_unref(r->cols);
    g_free(r);
}

static double cdp_start(RrdCf cf) { return cf == RRD_AVERAGE ? 0.0 : NAN; }

static RraCol *col_new(const Rra *r)
{
    RraCol *c = g_new0(RraCol, 1);
    c->rows = g_new(double, r->n_rows);
    for (unsigned i = 0; i < r->n_rows; i++)
        c->rows[i] = NAN;
    c->cdp = cdp_start(r->cf);
    return c;
}

static Rra *rra_new(RrdCf cf, unsigned pdp_per_row, unsigned n_rows, double xff, int64_t now)
{
    Rra *r = g_new0(Rra, 1);
    r->cf = cf;
    r->pdp_per_row = pdp_per_row;
    r->n_rows = n_rows;
    r->xff = xff;
    int64_t span = (int64_t)pdp_per_row * RRD_STEP;
    r->last_row_time = now / span * span;
    r->pdps = (unsigned)((now - r->last_row_time) / RRD_STEP);
    r->cols = g_ptr_array_new_with_free_func(col_free);
    return r;
}

static Rrd *rrd_alloc(void)
{
    Rrd *rrd = g_new0(Rrd, 1);
    rrd->ds = g_ptr_array_new_with_free_func(ds_free);
    rrd->rras = g_ptr_array_new_with_free_func(rra_free);
    return rrd;
}

Rrd *rrd_new(bool min_max, int64_t now)
{
    Rrd *rrd = rrd_alloc();
    rrd->last_update = now;
    for (size_t i = 0; i < G_N_ELEMENTS(timescales); i++) {
        unsigned ppr = timescales[i][0], rows = timescales[i][1];
        bool three = min_max && i > 0;
        g_ptr_array_add(rrd->rras, rra_new(RRD_AVERAGE, ppr, rows, three ? 1.0 : 0.5, now));
        if (three) {
            g_ptr_array_add(rrd->rras, rra_new(RRD_MIN, ppr, rows, 1.0, now));
            g_ptr_array_add(rrd->rras, rra_new(RRD_MAX, ppr, rows, 1.0, now));
        }
    }
    return rrd;
}

void rrd_free(Rrd *rrd)
{
    if (!rrd)
        return;
    g_ptr_array_unref(rrd->ds);
    g_ptr_array_unref(rrd->rras);
    g_free(rrd);
}

int64_t rrd_last_update(const Rrd *rrd) { return rrd->last_update; }

size_t rrd_bytes(const Rrd *rrd)
{
    size_t n = sizeof *rrd;
    for (guint i = 0; i < rrd->ds->len; i++) {
        const RrdDs *ds = rrd->ds->pdata[i];
        n += sizeof *ds + strlen(ds->name) + 1;
    }
    for (guint i = 0; i < rrd->rras->len; i++) {
        const Rra *r = rrd->rras->pdata[i];
        n += sizeof *r + r->cols->len * (sizeof(RraCol) + r->n_rows * sizeof(double));
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

static int ds_add(Rrd *rrd, const char *name, RrdDsType type)
{
    RrdDs *ds = g_new0(RrdDs, 1);
    ds->name = g_strdup(name);
    ds->type = type;
    ds->last_pdp = NAN;
    g_ptr_array_add(rrd->ds, ds);
    for (guint i = 0; i < rrd->rras->len; i++) {
        Rra *r = rrd->rras->pdata[i];
        RraCol *c = col_new(r);
        c->unknown = r->pdps; /* the points of this row before it existed */
        g_ptr_array_add(r->cols, c);
    }
    return (int)rrd->ds->len - 1;
}

/* Closes the row of r ending at t. */
static void rra_finish_row(Rra *r, int64_t t)
{
    r->cur = (r->cur + 1) % r->n_rows;
    for (guint i = 0; i < r->cols->len; i++) {
        RraCol *c = r->cols->pdata[i];
        unsigned unknown = c->unknown + (r->pdp_per_row - MIN(r->pdps, r->pdp_per_row));
        double v = c->cdp;
        if ((double)unknown / r->pdp_per_row > r->xff || unknown >= r->pdp_per_row)
            v = NAN;
        else if (r->cf == RRD_AVERAGE)
            v = c->cdp / (r->pdp_per_row - unknown);
        c->rows[r->cur] = v;
        c->cdp = cdp_start(r->cf);
        c->unknown = 0;
    }
    r->last_row_time = t;
    r->pdps = 0;
}

/* A primary point of every source for the step ending at t. */
static void feed(Rrd *rrd, int64_t t, const double *pdp)
{
    for (guint k = 0; k < rrd->rras->len; k++) {
        Rra *r = rrd->rras->pdata[k];
        for (guint i = 0; i < r->cols->len; i++) {
            RraCol *c = r->cols->pdata[i];
            double v = pdp[i];
            if (isnan(v))
                c->unknown++;
            else if (r->cf == RRD_AVERAGE)
                c->cdp += v;
            else if (isnan(c->cdp) || (r->cf == RRD_MIN ? v < c->cdp : v > c->cdp))
                c->cdp = v;
        }
        r->pdps++;
        if (t % ((int64_t)r->pdp_per_row * RRD_STEP) == 0)
            rra_finish_row(r, t);
    }
}

/* Longer gaps restart the archives: XAPI would show them unknown anyway. */
#define MAX_GAP (400LL * 86400)

void rrd_update(Rrd *rrd, int64_t t, const RrdSample *samples, size_t n)
{
    if (t <= rrd->last_update)
        return;
    int64_t elapsed = t - rrd->last_update;
    g_autofree double *rate = NULL;
    for (size_t i = 0; i < n; i++)
        if (ds_index(rrd, samples[i].name) < 0)
            ds_add(rrd, samples[i].name, samples[i].type);
    guint n_ds = rrd->ds->len;
    rate = g_new(double, n_ds);
    for (guint i = 0; i < n_ds; i++)
        rate[i] = NAN;
    g_autofree bool *seen = g_new0(bool, n_ds);
    for (size_t i = 0; i < n; i++) {
        int d = ds_index(rrd, samples[i].name);
        RrdDs *ds = rrd->ds->pdata[d];
        seen[d] = true;
        double v = samples[i].value;
        if (ds->type == RRD_GAUGE)
            rate[d] = v;
        else if (ds->have_last && v >= ds->last_raw)
            rate[d] = (v - ds->last_raw) / (double)elapsed;
        ds->last_raw = v;
        ds->have_last = true;
    }
    for (guint i = 0; i < n_ds; i++) {
        if (!seen[i])
            ((RrdDs *)rrd->ds->pdata[i])->have_last = false;
        if (elapsed > RRD_HEARTBEAT)
            rate[i] = NAN;
    }
    if (elapsed > MAX_GAP) {
        g_autoptr(GPtrArray) old = g_steal_pointer(&rrd->rras);
        bool min_max = old->len > G_N_ELEMENTS(timescales);
        g_autoptr(Rrd) fresh = rrd_new(min_max, t - RRD_STEP);
        rrd->rras = g_steal_pointer(&fresh->rras);
        fresh->rras = g_ptr_array_new();
        for (guint i = 0; i < n_ds; i++)
            for (guint k = 0; k < rrd->rras->len; k++) {
                Rra *r = rrd->rras->pdata[k];
                g_ptr_array_add(r->cols, col_new(r));
            }
        rrd->last_update = t - RRD_STEP;
    }
    g_autofree double *pdp = g_new(double, n_ds);
    for (int64_t pos = rrd->last_update; pos < t;) {
        int64_t boundary = (pos / RRD_STEP + 1) * RRD_STEP;
        int64_t end = MIN(boundary, t);
        for (guint i = 0; i < n_ds; i++) {
            RrdDs *ds = rrd->ds->pdata[i];
            if (!isnan(rate[i])) {
                ds->pdp_sum += rate[i] * (double)(end - pos);
                ds->pdp_known += (double)(end - pos);
            }
        }
        pos = end;
        if (end != boundary)
            break;
        for (guint i = 0; i < n_ds; i++) {
            RrdDs *ds = rrd->ds->pdata[i];
            /* Half the step known, as the first archive's xff asks. */
            pdp[i] = ds->pdp_known * 2 >= RRD_STEP ? ds->pdp_sum / ds->pdp_known : NAN;
            ds->last_pdp = pdp[i];
            ds->pdp_sum = ds->pdp_known = 0;
        }
        feed(rrd, boundary, pdp);
    }
    rrd->last_update = t;
}

guint rrd_n_sources(const Rrd *rrd) { return rrd->ds->len; }

const char *rrd_source_name(const Rrd *rrd, guint i)
{
    return ((const RrdDs *)rrd->ds->pdata[i])->name;
}

double rrd_source_value(const Rrd *rrd, guint i)
{
    return ((const RrdDs *)rrd->ds->pdata[i])->last_pdp;
}

int rrd_source_index(const Rrd *rrd, const char *name) { return ds_index(rrd, name); }

void rrd_forget_source(Rrd *rrd, guint i)
{
    for (guint k = 0; k < rrd->rras->len; k++) {
        Rra *r = rrd->rras->pdata[k];
        RraCol *c = r->cols->pdata[i];
        for (unsigned j = 0; j < r->n_rows; j++)
            c->rows[j] = NAN;
        c->cdp = cdp_start(r->cf);
        c->unknown = r->pdps;
    }
    ((RrdDs *)rrd->ds->pdata[i])->last_pdp = NAN;
}

/* ---- output ------------------------------------------------------------- */

void rrd_format_value(GString *out, double v)
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

static const char *cf_name(RrdCf cf)
{
    return cf == RRD_AVERAGE ? "AVERAGE" : cf == RRD_MIN ? "MIN" : "MAX";
}

static bool cf_matches(const Rra *r, int cf) { return cf < 0 || (int)r->cf == cf; }

/* The value of r's source col for the row ending at t (NaN when the ring
 * no longer, or not yet, holds it). */
static double row_value(const Rra *r, guint col, int64_t t)
{
    int64_t span = (int64_t)r->pdp_per_row * RRD_STEP;
    if (t > r->last_row_time || (r->last_row_time - t) % span)
        return NAN;
    int64_t back = (r->last_row_time - t) / span;
    if (back >= r->n_rows)
        return NAN;
    unsigned idx = (unsigned)((r->cur + r->n_rows - back) % r->n_rows);
    return ((RraCol *)r->cols->pdata[col])->rows[idx];
}

/* Rrd.find_best_rras: the finest archive (of the wanted function) with at
 * least interval/step points per row that still reaches back to start,
 * else the coarsest. */
static unsigned best_pdp_per_row(const Rrd *rrd, int64_t start, int64_t interval, int cf)
{
    int64_t pdp = interval / RRD_STEP;
    unsigned coarsest = 0;
    for (guint k = 0; k < rrd->rras->len; k++) {
        const Rra *r = rrd->rras->pdata[k];
        if (!cf_matches(r, cf))
            continue;
        coarsest = MAX(coarsest, r->pdp_per_row);
        int64_t reach = r->last_row_time - (int64_t)r->n_rows * r->pdp_per_row * RRD_STEP;
        if (r->pdp_per_row >= pdp && reach <= start)
            return r->pdp_per_row;
    }
    return coarsest;
}

typedef struct {
    const Rra *rra;
    guint col;
} Column;

void rrd_xport(GString *out, const RrdSource *sources, size_t n, int64_t start, int64_t interval,
               int cf, bool json)
{
    unsigned ppr = n ? best_pdp_per_row(sources[0].rrd, start, interval, cf) : 1;
    if (!ppr)
        ppr = 1;
    int64_t step = (int64_t)ppr * RRD_STEP;
    g_autoptr(GArray) columns = g_array_new(FALSE, FALSE, sizeof(Column));
    g_autoptr(GPtrArray) legend = g_ptr_array_new_with_free_func(g_free);
    int64_t end = 0;
    unsigned n_rows = 0;
    for (size_t s = 0; s < n; s++) {
        const Rrd *rrd = sources[s].rrd;
        for (guint k = 0; k < rrd->rras->len; k++) {
            const Rra *r = rrd->rras->pdata[k];
            if (r->pdp_per_row != ppr || !cf_matches(r, cf))
                continue;
            if (s == 0 && !columns->len) {
                end = r->last_row_time;
                n_rows = r->n_rows;
            }
            for (guint i = 0; i < rrd->ds->len; i++) {
                Column c = {r, i};
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
            rrd_format_value(out, row_value(c->rra, c->col, t));
            g_string_append(out, json ? q : "</v>");
        }
        g_string_append(out, json ? "]}" : "</row>");
    }
    g_string_append(out, json ? "]}" : "</data></xport>");
}

void rrd_dump_xml(GString *out, const Rrd *rrd)
{
    g_string_append_printf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rrd><version>0003"
                           "</version><step>%d</step><lastupdate>%" G_GINT64_FORMAT
                           "</lastupdate>", RRD_STEP, rrd->last_update);
    for (guint i = 0; i < rrd->ds->len; i++) {
        const RrdDs *ds = rrd->ds->pdata[i];
        g_string_append(out, "<ds><name>");
        append_xml_text(out, ds->name);
        g_string_append_printf(out, "</name><type>%s</type><minimal_heartbeat>",
                               ds->type == RRD_GAUGE ? "GAUGE" : "DERIVE");
        rrd_format_value(out, RRD_HEARTBEAT);
        g_string_append(out, "</minimal_heartbeat><min>");
        rrd_format_value(out, ds->type == RRD_DERIVE ? 0.0 : -INFINITY);
        g_string_append(out, "</min><max>");
        rrd_format_value(out, INFINITY);
        g_string_append(out, "</max><last_ds>");
        rrd_format_value(out, ds->have_last ? ds->last_raw : NAN);
        g_string_append(out, "</last_ds><value>");
        rrd_format_value(out, ds->pdp_sum);
        g_string_append_printf(out, "</value><unknown_sec>%d</unknown_sec></ds>",
                               (int)(rrd->last_update % RRD_STEP - ds->pdp_known));
    }
    for (guint k = 0; k < rrd->rras->len; k++) {
        const Rra *r = rrd->rras->pdata[k];
        g_string_append_printf(out, "<rra><cf>%s</cf><pdp_per_row>%u</pdp_per_row><params><xff>",
                               cf_name(r->cf), r->pdp_per_row);
        rrd_format_value(out, r->xff);
        g_string_append(out, "</xff></params><cdp_prep>");
        for (guint i = 0; i < r->cols->len; i++) {
            const RraCol *c = r->cols->pdata[i];
            g_string_append(out, "<ds><primary_value>0.0</primary_value><secondary_value>0.0"
                                 "</secondary_value><value>");
            rrd_format_value(out, c->cdp);
            g_string_append_printf(out, "</value><unknown_datapoints>%u</unknown_datapoints></ds>",
                                   c->unknown);
        }
        g_string_append(out, "</cdp_prep><database>");
        for (unsigned j = 1; j <= r->n_rows; j++) { /* oldest first */
            unsigned idx = (r->cur + j) % r->n_rows;
            g_string_append(out, "<row>");
            for (guint i = 0; i < r->cols->len; i++) {
                g_string_append(out, "<v>");
                rrd_format_value(out, ((RraCol *)r->cols->pdata[i])->rows[idx]);
                g_string_append(out, "</v>");
            }
            g_string_append(out, "</row>");
        }
        g_string_append(out, "</database></rra>");
    }
    g_string_append(out, "</rrd>");
}

/* ---- the state dir's image ---------------------------------------------- */

#define MAGIC "xapidrrd1"

static void put(GByteArray *b, const void *p, size_t n) { g_byte_array_append(b, p, (guint)n); }
#define PUT(b, v) put(b, &(v), sizeof(v))

GBytes *rrd_serialize(const Rrd *rrd)
{
    GByteArray *b = g_byte_array_new();
    put(b, MAGIC, sizeof MAGIC);
    uint32_t n_ds = rrd->ds->len, n_rra = rrd->rras->len;
    PUT(b, rrd->last_update);
    PUT(b, n_ds);
    PUT(b, n_rra);
    for (guint i = 0; i < n_ds; i++) {
        const RrdDs *ds = rrd->ds->pdata[i];
        uint32_t len = (uint32_t)strlen(ds->name), type = ds->type;
        uint8_t have = ds->have_last;
        PUT(b, len);
        put(b, ds->name, len);
        PUT(b, type);
        PUT(b, ds->last_raw);
        PUT(b, have);
        PUT(b, ds->pdp_sum);
        PUT(b, ds->pdp_known);
    }
    for (guint k = 0; k < n_rra; k++) {
        const Rra *r = rrd->rras->pdata[k];
        uint32_t cf = r->cf;
        PUT(b, cf);
        PUT(b, r->pdp_per_row);
        PUT(b, r->n_rows);
        PUT(b, r->xff);
        PUT(b, r->cur);
        PUT(b, r->last_row_time);
        PUT(b, r->pdps);
        for (guint i = 0; i < n_ds; i++) {
            const RraCol *c = r->cols->pdata[i];
            PUT(b, c->cdp);
            PUT(b, c->unknown);
            put(b, c->rows, r->n_rows * sizeof(double));
        }
    }
    return g_byte_array_free_to_bytes(b);
}

typedef struct {
    const uint8_t *p;
    size_t left;
} Reader;

static bool get(Reader *r, void *out, size_t n)
{
    if (r->left < n)
        return false;
    memcpy(out, r->p, n);
    r->p += n;
    r->left -= n;
    return true;
}
#define GET(r, v) get(r, &(v), sizeof(v))

Rrd *rrd_deserialize(const void *data, size_t len)
{
    Reader rd = {data, len};
    char magic[sizeof MAGIC];
    uint32_t n_ds, n_rra;
    g_autoptr(Rrd) rrd = rrd_alloc();
    if (!get(&rd, magic, sizeof magic) || memcmp(magic, MAGIC, sizeof magic) != 0 ||
        !GET(&rd, rrd->last_update) || !GET(&rd, n_ds) || !GET(&rd, n_rra) || n_ds > 100000 ||
        n_rra > 64)
        return NULL;
    for (uint32_t i = 0; i < n_ds; i++) {
        uint32_t name_len, type;
        uint8_t have;
        if (!GET(&rd, name_len) || name_len > 1024 || rd.left < name_len)
            return NULL;
        RrdDs *ds = g_new0(RrdDs, 1);
        ds->name = g_strndup((const char *)rd.p, name_len);
        g_ptr_array_add(rrd->ds, ds);
        rd.p += name_len;
        rd.left -= name_len;
        if (!GET(&rd, type) || type > RRD_DERIVE || !GET(&rd, ds->last_raw) || !GET(&rd, have) ||
            !GET(&rd, ds->pdp_sum) || !GET(&rd, ds->pdp_known))
            return NULL;
        ds->type = type;
        ds->have_last = have;
        ds->last_pdp = NAN;
    }
    for (uint32_t k = 0; k < n_rra; k++) {
        uint32_t cf;
        Rra *r = g_new0(Rra, 1);
        r->cols = g_ptr_array_new_with_free_func(col_free);
        g_ptr_array_add(rrd->rras, r);
        if (!GET(&rd, cf) || cf > RRD_MAX || !GET(&rd, r->pdp_per_row) || !r->pdp_per_row ||
            !GET(&rd, r->n_rows) || !r->n_rows || r->n_rows > 100000 || !GET(&rd, r->xff) ||
            !GET(&rd, r->cur) || r->cur >= r->n_rows || !GET(&rd, r->last_row_time) ||
            !GET(&rd, r->pdps))
            return NULL;
        r->cf = cf;
        for (uint32_t i = 0; i < n_ds; i++) {
            RraCol *c = col_new(r);
            g_ptr_array_add(r->cols, c);
            if (!GET(&rd, c->cdp) || !GET(&rd, c->unknown) ||
                !get(&rd, c->rows, r->n_rows * sizeof(double)))
                return NULL;
        }
    }
    return rd.left == 0 ? g_steal_pointer(&rrd) : NULL;
}
