/* perfmon.c: perfmon's alarm variables over the sampled archives (see
 * perfmon.h). */
#include "perfmon.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

typedef enum { FN_SUM, FN_AVERAGE, FN_MAX, FN_FS, FN_LOG_FS, FN_MEM, FN_SR } Fn;

typedef struct {
    char *name;
    char *xml; /* the <variable> as perfmon prints it in the body */
    GRegex *regex;
    Fn fn;
    double level;
    bool high;
    int64_t period, inhibit, priority;
    int64_t down_counter, last_alarm; /* perfmon's VariableState */
} Variable;

typedef struct {
    char *config;
    GPtrArray *vars; /* Variable* */
    int64_t stepped;
} Monitor;

struct Perfmon {
    GHashTable *monitors; /* "cls/uuid" -> Monitor* */
};

static void variable_free(gpointer p)
{
    Variable *v = p;
    g_free(v->name);
    g_free(v->xml);
    if (v->regex)
        g_regex_unref(v->regex);
    g_free(v);
}

static void monitor_free(gpointer p)
{
    Monitor *mon = p;
    g_free(mon->config);
    g_ptr_array_unref(mon->vars);
    g_free(mon);
}

void perfmon_alarm_free(gpointer p)
{
    PerfmonAlarm *a = p;
    g_free(a->cls);
    g_free(a->uuid);
    g_free(a->body);
    g_free(a);
}

Perfmon *perfmon_new(void)
{
    Perfmon *pm = g_new0(Perfmon, 1);
    pm->monitors = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, monitor_free);
    return pm;
}

void perfmon_free(Perfmon *pm)
{
    if (!pm)
        return;
    g_hash_table_unref(pm->monitors);
    g_free(pm);
}

/* ---- the XML, as minidom reads and prints it ------------------------------ */

static bool is_element(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

/* getElementsByTagName(tag)[0]: the first descendant in document order. */
static const xmlNode *first_descendant(const xmlNode *n, const char *tag)
{
    for (const xmlNode *c = n->children; c; c = c->next) {
        if (is_element(c, tag))
            return c;
        const xmlNode *d = first_descendant(c, tag);
        if (d)
            return d;
    }
    return NULL;
}

static void all_descendants(const xmlNode *n, const char *tag, GPtrArray *out)
{
    for (const xmlNode *c = n->children; c; c = c->next) {
        if (is_element(c, tag))
            g_ptr_array_add(out, (gpointer)c);
        all_descendants(c, tag, out);
    }
}

/* minidom's _write_data: & < " > escaped. */
static void write_data(GString *out, const char *text)
{
    for (const char *p = text; *p; p++) {
        switch (*p) {
        case '&': g_string_append(out, "&amp;"); break;
        case '<': g_string_append(out, "&lt;"); break;
        case '"': g_string_append(out, "&quot;"); break;
        case '>': g_string_append(out, "&gt;"); break;
        default: g_string_append_c(out, *p);
        }
    }
}

/* minidom's Element.writexml(writer, indent, "\t", "\n"). */
static void write_pretty(GString *out, const xmlNode *n, const char *indent)
{
    if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
        g_autofree char *text = (char *)xmlNodeGetContent(n);
        g_string_append(out, indent);
        write_data(out, text ? text : "");
        g_string_append_c(out, '\n');
        return;
    }
    if (n->type == XML_COMMENT_NODE) {
        g_autofree char *text = (char *)xmlNodeGetContent(n);
        g_string_append_printf(out, "%s<!--%s-->\n", indent, text ? text : "");
        return;
    }
    if (n->type != XML_ELEMENT_NODE)
        return;
    g_string_append_printf(out, "%s<%s", indent, (const char *)n->name);
    for (const xmlAttr *a = n->properties; a; a = a->next) {
        g_autofree char *value = (char *)xmlNodeListGetString(n->doc, a->children, 1);
        g_string_append_printf(out, " %s=\"", (const char *)a->name);
        write_data(out, value ? value : "");
        g_string_append_c(out, '"');
    }
    if (!n->children) {
        g_string_append(out, "/>\n");
        return;
    }
    g_string_append_c(out, '>');
    if (!n->children->next &&
        (n->children->type == XML_TEXT_NODE || n->children->type == XML_CDATA_SECTION_NODE)) {
        g_autofree char *text = (char *)xmlNodeGetContent(n->children);
        write_data(out, text ? text : "");
    } else {
        g_string_append_c(out, '\n');
        g_autofree char *deeper = g_strconcat(indent, "\t", NULL);
        for (const xmlNode *c = n->children; c; c = c->next)
            write_pretty(out, c, deeper);
        g_string_append(out, indent);
    }
    g_string_append_printf(out, "</%s>\n", (const char *)n->name);
}

/* ---- perfmon's defaults (VMMonitor, HOSTMonitor, SRMonitor) --------------- */

/* The default of tag for variable name in a monitor of cls, or NULL when
 * perfmon has none (a config error). */
static const char *default_of(const char *cls, const char *name, const char *tag)
{
    bool vm = strcmp(cls, "VM") == 0, host = strcmp(cls, "Host") == 0;
    if (strcmp(tag, "consolidation_fn") == 0) {
        if ((vm || host) && strcmp(name, "cpu_usage") == 0)
            return "average";
        if (vm && strcmp(name, "fs_usage") == 0)
            return "get_percent_fs_usage";
        if (vm && strcmp(name, "log_fs_usage") == 0)
            return "get_percent_log_fs_usage";
        if (vm && strcmp(name, "mem_usage") == 0)
            return "get_percent_mem_usage";
        if (!vm && !host && strcmp(name, "physical_utilisation") == 0)
            return "get_percent_sr_usage";
        return "sum";
    }
    if (strcmp(tag, "rrd_regex") == 0) {
        static const char *const nothing = "_$_DUMMY__";
        if ((vm || host) && strcmp(name, "cpu_usage") == 0)
            return "cpu[0-9]+";
        if (vm && strcmp(name, "network_usage") == 0)
            return "vif_[0-9]+_[rt]x";
        if (host && strcmp(name, "network_usage") == 0)
            return "pif_eth[0-9]+_[rt]x";
        if (vm && strcmp(name, "disk_usage") == 0)
            return "vbd_(xvd|hd)[a-z]+_(read|write)";
        if (vm && (strcmp(name, "fs_usage") == 0 || strcmp(name, "log_fs_usage") == 0 ||
                   strcmp(name, "mem_usage") == 0))
            return nothing;
        if ((vm && strcmp(name, "memory_internal_free") == 0) ||
            (host && strcmp(name, "memory_free_kib") == 0))
            return name;
        if (host && g_str_has_prefix(name, "sr_io_throughput_total_") && strlen(name) == 31)
            return name + 3;
        if (!vm && !host && strcmp(name, "physical_utilisation") == 0)
            return "physical_utilisation|size";
        if (!vm && !host && strcmp(name, "sr_io_throughput_total_per_host") == 0)
            return nothing;
        return NULL;
    }
    if (strcmp(tag, "alarm_trigger_period") == 0)
        return "60";
    if (strcmp(tag, "alarm_auto_inhibit_period") == 0)
        return "3600";
    if (strcmp(tag, "alarm_trigger_level") == 0) {
        if (vm && (strcmp(name, "fs_usage") == 0 || strcmp(name, "log_fs_usage") == 0))
            return "0.9";
        if (vm && strcmp(name, "mem_usage") == 0)
            return "0.95";
        if (!vm && !host && strcmp(name, "physical_utilisation") == 0)
            return "0.8";
        return NULL;
    }
    if (strcmp(tag, "alarm_trigger_sense") == 0)
        return (vm && strcmp(name, "memory_internal_free") == 0) ||
                       (host && strcmp(name, "memory_free_kib") == 0)
                   ? "low"
                   : "high";
    if (strcmp(tag, "alarm_priority") == 0)
        return "3";
    return NULL;
}

static bool parse_fn(const char *text, Fn *fn)
{
    static const struct { const char *name; Fn fn; } fns[] = {
        {"sum", FN_SUM}, {"average", FN_AVERAGE}, {"max", FN_MAX},
        {"get_percent_fs_usage", FN_FS}, {"get_percent_log_fs_usage", FN_LOG_FS},
        {"get_percent_mem_usage", FN_MEM}, {"get_percent_sr_usage", FN_SR},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(fns); i++)
        if (strcmp(text, fns[i].name) == 0) {
            *fn = fns[i].fn;
            return true;
        }
    return false;
}

/* Python's int() and float() of the text: surrounding blanks allowed. */
static bool parse_int(const char *text, int64_t *out)
{
    g_autofree char *t = g_strstrip(g_strdup(text));
    char *end;
    *out = g_ascii_strtoll(t, &end, 10);
    return *t && *end == '\0';
}

static bool parse_float(const char *text, double *out)
{
    g_autofree char *t = g_strstrip(g_strdup(text));
    char *end;
    *out = g_ascii_strtod(t, &end);
    return *t && *end == '\0';
}

/* VariableConfig.__init__: a variable from its <variable>, or NULL with
 * why (perfmon logs it and leaves the variable out). */
static Variable *variable_parse(const char *cls, const xmlNode *node, int64_t now, char **why)
{
    const xmlNode *name_node = first_descendant(node, "name");
    if (!name_node) {
        *why = g_strdup("variable missing 'name' tag");
        return NULL;
    }
    g_autofree char *name = (char *)xmlGetProp(name_node, (const xmlChar *)"value");
    if (!name)
        name = g_strdup("");
    const char *tags[] = {"rrd_regex", "consolidation_fn", "alarm_trigger_level",
                          "alarm_trigger_period", "alarm_auto_inhibit_period",
                          "alarm_trigger_sense", "alarm_priority"};
    g_autoptr(GPtrArray) given = g_ptr_array_new_with_free_func(g_free);
    for (size_t i = 0; i < G_N_ELEMENTS(tags); i++) {
        const xmlNode *t = first_descendant(node, tags[i]);
        if (t) {
            xmlChar *prop = xmlGetProp(t, (const xmlChar *)"value");
            g_ptr_array_add(given, g_strdup(prop ? (const char *)prop : ""));
            xmlFree(prop);
            continue;
        }
        const char *d = default_of(cls, name, tags[i]);
        if (!d) {
            *why = g_strdup_printf("variable %s: no default %s - please specify one", name,
                                   tags[i]);
            return NULL;
        }
        g_ptr_array_add(given, g_strdup(d));
    }
    const char *const *values = (const char *const *)given->pdata;
    g_autoptr(GError) gerr = NULL;
    /* perfmon's re.compile("^%s$") and re.match: anchored at the start */
    g_autofree char *anchored = g_strdup_printf("^%s$", values[0]);
    Variable *v = g_new0(Variable, 1);
    v->name = g_strdup(name);
    v->regex = g_regex_new(anchored, 0, G_REGEX_MATCH_ANCHORED, &gerr);
    bool level_ok = parse_float(values[2], &v->level);
    if (!v->regex)
        *why = g_strdup_printf("variable %s: regex %s does not compile", name, values[0]);
    else if (!parse_fn(values[1], &v->fn))
        *why = g_strdup_printf("variable %s: consolidation function %s not supported", name,
                               values[1]);
    else if (!parse_int(values[3], &v->period))
        *why = g_strdup_printf("variable %s: alarm_trigger_period %s not an int", name,
                               values[3]);
    else if (!parse_int(values[4], &v->inhibit))
        *why = g_strdup_printf("variable %s: alarm_auto_inhibit_period %s not an int", name,
                               values[4]);
    else if (!level_ok)
        *why = g_strdup_printf("variable %s: alarm_trigger_level %s not a float", name,
                               values[2]);
    if (*why) {
        variable_free(v);
        return NULL;
    }
    v->high = strcmp(values[5], "high") == 0;
    v->priority = g_ascii_strtoll(values[6], NULL, 10);
    GString *xml = g_string_new(NULL);
    write_pretty(xml, node, "");
    v->xml = g_string_free(xml, FALSE);
    v->down_counter = v->period;
    v->last_alarm = now - v->inhibit;
    return v;
}

#define PER_HOST "sr_io_throughput_total_per_host"

/* HOSTMonitor.__parse_secondary_xmlconfigs: in an SR's config (of
 * sr_uuid), the one variable PER_HOST without an rrd_regex becomes the
 * host's sr_io_throughput_total_<sr8>, with <configured_on class="SR"
 * uuid=.../> added; NULL if there is none. */
static xmlNode *per_host_variable(GPtrArray *nodes, const char *sr_uuid)
{
    for (guint i = 0; i < nodes->len; i++) {
        xmlNode *node = nodes->pdata[i];
        xmlNode *name = (xmlNode *)first_descendant(node, "name");
        xmlChar *value = name ? xmlGetProp(name, (const xmlChar *)"value") : NULL;
        bool ours = value && strcmp((const char *)value, PER_HOST) == 0;
        xmlFree(value);
        if (!ours)
            continue;
        if (first_descendant(node, "rrd_regex")) {
            g_warning("perfmon: SR %s: rrd_regex must not be specified in config on SR meant "
                      "for each host", sr_uuid);
            continue;
        }
        g_autofree char *renamed = g_strdup_printf("sr_io_throughput_total_%.8s", sr_uuid);
        xmlSetProp(name, (const xmlChar *)"value", (const xmlChar *)renamed);
        xmlNode *from = xmlNewChild(node, NULL, (const xmlChar *)"configured_on", NULL);
        xmlSetProp(from, (const xmlChar *)"class", (const xmlChar *)"SR");
        xmlSetProp(from, (const xmlChar *)"uuid", (const xmlChar *)sr_uuid);
        return node;
    }
    return NULL;
}

/* ObjectMonitor.__parse_xmlconfig: the variables of config, keeping the
 * state of those whose XML is unchanged. For_sr: the config is that SR's,
 * read for the host (per_host_variable). */
static void monitor_configure(Monitor *mon, const char *cls, const char *uuid,
                              const char *config, const char *for_sr, int64_t now)
{
    g_autoptr(GPtrArray) vars = g_ptr_array_new_with_free_func(variable_free);
    xmlDoc *doc = config && *config
                      ? xmlReadMemory(config, (int)strlen(config), NULL, NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)
                      : NULL;
    if (config && *config && !doc)
        g_warning("perfmon: %s %s: other_config:perfmon is not XML", cls, uuid);
    g_autoptr(GPtrArray) nodes = g_ptr_array_new();
    if (doc)
        all_descendants((xmlNode *)doc, "variable", nodes);
    if (for_sr) {
        xmlNode *node = per_host_variable(nodes, for_sr);
        g_ptr_array_set_size(nodes, 0);
        if (node)
            g_ptr_array_add(nodes, node);
    }
    for (guint i = 0; i < nodes->len; i++) {
        g_autofree char *why = NULL;
        Variable *v = variable_parse(cls, nodes->pdata[i], now, &why);
        if (!v) {
            g_warning("perfmon: %s %s config error: %s", cls, uuid, why);
            continue;
        }
        for (guint j = 0; j < mon->vars->len; j++) {
            Variable *old = mon->vars->pdata[j];
            if (old && strcmp(old->name, v->name) == 0 && strcmp(old->xml, v->xml) == 0) {
                variable_free(v);
                v = g_ptr_array_steal_index(mon->vars, j);
                break;
            }
        }
        g_ptr_array_add(vars, v);
    }
    if (doc)
        xmlFreeDoc(doc);
    g_ptr_array_unref(mon->vars);
    mon->vars = g_steal_pointer(&vars);
    g_free(mon->config);
    mon->config = g_strdup(config ? config : "");
}

/* ---- consolidation --------------------------------------------------------- */

/* df's Use%: used over used + available, rounded up, as a fraction. */
static double percent_used(const char *path, dev_t *dev)
{
    struct statvfs fs;
    struct stat st;
    if (statvfs(path, &fs) < 0 || stat(path, &st) < 0)
        return NAN;
    if (dev)
        *dev = st.st_dev;
    double used = (double)(fs.f_blocks - fs.f_bfree), avail = (double)fs.f_bavail;
    return used + avail > 0 ? ceil(100.0 * used / (used + avail)) / 100.0 : 0.0;
}

static double log_fs_usage(void)
{
    dev_t root, log;
    double root_used = percent_used("/etc/passwd", &root), log_used = percent_used("/var/log", &log);
    return !isnan(root_used) && !isnan(log_used) && root != log ? log_used : NAN;
}

/* (resident memory + swap in use) / MemTotal, from /proc/meminfo. */
static double mem_usage(void)
{
    g_autofree char *text = NULL;
    if (!g_file_get_contents("/proc/meminfo", &text, NULL, NULL))
        return 0.0;
    const char *keys[] = {"MemTotal:", "MemFree:", "Buffers:", "Cached:", "SwapTotal:",
                          "SwapFree:"};
    double kib[G_N_ELEMENTS(keys)] = {0};
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        g_autofree char *at_line = g_strconcat("\n", keys[i], NULL);
        const char *p = g_str_has_prefix(text, keys[i]) ? text : strstr(text, at_line);
        if (!p)
            return 0.0;
        kib[i] = g_ascii_strtod(strchr(p + 1, ':') + 1, NULL);
    }
    return kib[0] > 0 ? (kib[0] - kib[1] - kib[2] - kib[3] + kib[4] - kib[5]) / kib[0] : 0.0;
}

/* The variable's value now, false when it has nothing to consolidate. */
static bool consolidate(const Variable *v, const Rrd *rrd, double *value)
{
    g_autoptr(GArray) xs = g_array_new(FALSE, FALSE, sizeof(double));
    for (guint i = 0; rrd && i < rrda_n_sources(rrd); i++)
        if (g_regex_match(v->regex, rrda_source_name(rrd, i), 0, NULL)) {
            double x = rrda_source_value(rrd, i);
            g_array_append_val(xs, x);
        }
    const double *x = (const double *)xs->data;
    switch (v->fn) {
    case FN_FS: *value = percent_used("/etc/passwd", NULL); return true;
    case FN_LOG_FS: *value = log_fs_usage(); return true;
    case FN_MEM: *value = mem_usage(); return true;
    case FN_SR: *value = xs->len == 2 && x[1] ? x[0] / x[1] : 0.0; return xs->len > 0;
    default: break;
    }
    if (!xs->len)
        return false;
    double acc = v->fn == FN_MAX ? -INFINITY : 0.0;
    for (guint i = 0; i < xs->len; i++)
        acc = v->fn == FN_MAX ? (x[i] > acc || isnan(x[i]) ? x[i] : acc) : acc + x[i];
    *value = v->fn == FN_AVERAGE ? acc / xs->len : acc;
    return true;
}

/* ---- stepping -------------------------------------------------------------- */

/* Whether mon has a variable of that name. */
static bool has_variable(const Monitor *mon, const char *name)
{
    for (guint i = 0; mon && i < mon->vars->len; i++)
        if (strcmp(((Variable *)mon->vars->pdata[i])->name, name) == 0)
            return true;
    return false;
}

static void step(Perfmon *pm, const char *key, const char *cls, const char *uuid,
                 const char *config, const char *for_sr, const Rrd *rrd, int64_t now,
                 GPtrArray *alarms)
{
    Monitor *mon = g_hash_table_lookup(pm->monitors, key);
    if (!config || !*config) {
        g_hash_table_remove(pm->monitors, key);
        return;
    }
    if (!mon) {
        mon = g_new0(Monitor, 1);
        mon->vars = g_ptr_array_new_with_free_func(variable_free);
        g_hash_table_insert(pm->monitors, g_strdup(key), mon);
    }
    if (!mon->config || strcmp(mon->config, config) != 0)
        monitor_configure(mon, cls, uuid, config, for_sr, now);
    mon->stepped = now;
    /* An SR's variable for the host yields to one of its name configured
     * on the host itself. */
    g_autofree char *host_key = for_sr ? g_strconcat("Host/", uuid, NULL) : NULL;
    const Monitor *host_mon = for_sr ? g_hash_table_lookup(pm->monitors, host_key) : NULL;
    for (guint i = 0; i < mon->vars->len; i++) {
        Variable *v = mon->vars->pdata[i];
        double value;
        if (has_variable(host_mon, v->name)) {
            v->down_counter = v->period; /* as perfmon's set_active(False) and back */
            v->last_alarm = now - v->inhibit;
            continue;
        }
        if (!consolidate(v, rrd, &value))
            continue;
        /* Variable.update with perfmon's rrd_step of 5 s (NaN is never bad) */
        bool bad = v->high ? value > v->level : value < v->level;
        if (!bad) {
            v->down_counter = v->period;
            continue;
        }
        v->down_counter -= RRD_STEP;
        if (v->down_counter > 0)
            continue;
        v->down_counter = v->period;
        if (now - v->last_alarm < v->inhibit)
            continue;
        v->last_alarm = now;
        PerfmonAlarm *a = g_new0(PerfmonAlarm, 1);
        a->cls = g_strdup(cls);
        a->uuid = g_strdup(uuid);
        a->priority = v->priority;
        a->body = g_strdup_printf("value: %f\nconfig:\n%s", value, v->xml);
        g_ptr_array_add(alarms, a);
    }
}

void perfmon_step(Perfmon *pm, const char *cls, const char *uuid, const char *config,
                  const Rrd *rrd, int64_t now, GPtrArray *alarms)
{
    g_autofree char *key = g_strconcat(cls, "/", uuid, NULL);
    step(pm, key, cls, uuid, config, NULL, rrd, now, alarms);
}

void perfmon_step_sr_for_host(Perfmon *pm, const char *host_uuid, const char *sr_uuid,
                              const char *sr_config, const Rrd *host_rrd, int64_t now,
                              GPtrArray *alarms)
{
    g_autofree char *key = g_strconcat("Host/", host_uuid, "/SR/", sr_uuid, NULL);
    step(pm, key, "Host", host_uuid, sr_config, sr_uuid, host_rrd, now, alarms);
}

static gboolean not_stepped(gpointer key, gpointer value, gpointer now)
{
    (void)key;
    return ((Monitor *)value)->stepped < *(int64_t *)now;
}

void perfmon_expire(Perfmon *pm, int64_t now)
{
    g_hash_table_foreach_remove(pm->monitors, not_stepped, &now);
}
