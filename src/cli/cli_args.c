/* cli_args.c: xe's parameters: looking them up among the caller's, and
 * reading their values (booleans, maps, integers, sizes with units). */
#include <string.h>

#include "cli.h"

const char *cli_param(const CliCtx *ctx, const char *key)
{
    for (guint i = 0; i < ctx->params->len; i++) {
        const CliParam *p = g_ptr_array_index(ctx->params, i);
        if (strcmp(p->key, key) == 0)
            return p->value;
    }
    return NULL;
}

bool cli_param_bool(const CliCtx *ctx, const char *key)
{
    const char *v = cli_param(ctx, key);
    return v && g_ascii_strcasecmp(v, "true") == 0;
}

Xv *cli_param_map(const CliCtx *ctx, const char *prefix)
{
    Xv *map = xv_new_struct();
    size_t n = strlen(prefix);
    for (guint i = 0; i < ctx->params->len; i++) {
        const CliParam *p = g_ptr_array_index(ctx->params, i);
        if (strncmp(p->key, prefix, n) == 0 && p->key[n] == ':' && p->key[n + 1])
            xv_struct_set_string(map, p->key + n + 1, p->value);
    }
    return map;
}

bool cli_param_is_standard(const char *key)
{
    static const char *const std[] = {"server", "password", "port", "username", "minimal",
                                      "force", "multiple", "all", "message-priority", "trace",
                                      "params", "nossl", "debug"};
    for (unsigned i = 0; i < G_N_ELEMENTS(std); i++)
        if (strcmp(key, std[i]) == 0)
            return true;
    return false;
}

bool cli_parse_int(const char *text, gint64 *out)
{
    char *end = NULL;
    *out = g_ascii_strtoll(text, &end, 10);
    return *text && !*end;
}

double cli_size_unit(const char *suffix)
{
    return !*suffix                                ? 1
           : g_ascii_strcasecmp(suffix, "KiB") == 0 ? 1024.0
           : g_ascii_strcasecmp(suffix, "MiB") == 0 ? 1048576.0
           : g_ascii_strcasecmp(suffix, "GiB") == 0 ? 1073741824.0
           : g_ascii_strcasecmp(suffix, "TiB") == 0 ? 1099511627776.0
                                                    : 0;
}

gint64 cli_param_size(CliCtx *ctx, const char *key, bool *ok)
{
    const char *text = cli_param(ctx, key);
    char *end = NULL;
    gint64 n = g_ascii_strtoll(text, &end, 10);
    double unit = end == text ? 0 : cli_size_unit(end);
    *ok = unit != 0;
    if (!*ok)
        cli_fail(ctx, "Failed to parse parameter '%s': expecting an integer (possibly with suffix)",
                 key);
    return (gint64)((double)n * unit);
}
