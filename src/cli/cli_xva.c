/* cli_xva.c: vm-export and vm-import, as XenServer's xe does them: the
 * client GETs /export or PUTs /import (src/xva) with the command's session
 * and a task, which tells the outcome; vm-import prints the new VMs'
 * uuids. The /import handler answers before it reads the body, as the
 * client's PUT expects. */
#include <string.h>

#include "cli.h"

/* compress= as xe takes it: true or gzip, zstd, false. */
static const char *compression(CliCtx *ctx)
{
    const char *c = cli_param(ctx, "compress");
    if (!c || g_ascii_strcasecmp(c, "false") == 0)
        return "false";
    if (g_ascii_strcasecmp(c, "true") == 0 || g_ascii_strcasecmp(c, "gzip") == 0)
        return "gzip";
    if (g_ascii_strcasecmp(c, "zstd") == 0)
        return "zstd";
    return NULL;
}

static int export_one(CliCtx *ctx, const char *vm, void *unused)
{
    const char *use_compression = compression(ctx);
    if (!use_compression)
        return cli_fail(ctx, "Unknown compression: %s (true, gzip, zstd or false)",
                        cli_param(ctx, "compress"));
    bool metadata = cli_param_bool(ctx, "metadata");
    g_autoptr(Xv) task = cli_call_s(ctx, "task.create", "VM export", "", NULL);
    if (!task)
        return -1;
    g_autofree char *path = g_strdup_printf(
        "%s/%s?session_id=%s&task_id=%s&ref=%s&use_compression=%s&preserve_power_state=%s"
        "&include_snapshots=%s",
        ctx->http_base, metadata ? "export_metadata" : "export", ctx->session, xv_str(task), vm,
        use_compression, cli_param_bool(ctx, "preserve-power-state") ? "true" : "false",
        cli_param_bool(ctx, "include-snapshots") ? "true" : "false");
    g_autofree char *result = cli_http_transfer(ctx, false, path, xv_str(task), "VM export");
    cli_task_destroy(ctx, xv_str(task));
    if (!result)
        return -1;
    cli_out_msg(ctx, "Export succeeded");
    return 0;
}

static int vm_export(CliCtx *ctx)
{
    return cli_do_vm_op(ctx, export_one, NULL, true,
                        CLI_ARGS("filename", "compress", "metadata", "preserve-power-state",
                                 "include-snapshots"));
}

/* The VM refs of an import's result (XenServer's <value><array>...). */
static GPtrArray *refs_in(const char *result)
{
    GPtrArray *refs = g_ptr_array_new_with_free_func(g_free);
    for (const char *at = result; (at = strstr(at, "OpaqueRef:"));) {
        size_t n = strcspn(at, "<\" ,]");
        g_ptr_array_add(refs, g_strndup(at, n));
        at += n;
    }
    return refs;
}

static int vm_import(CliCtx *ctx)
{
    const char *sr_uuid = cli_param(ctx, "sr-uuid");
    g_autofree char *sr = sr_uuid ? cli_ref_of_uuid(ctx, "SR", sr_uuid) : NULL;
    if (sr_uuid && !sr)
        return -1;
    bool metadata = cli_param_bool(ctx, "metadata");
    g_autoptr(Xv) task = cli_call_s(ctx, "task.create", "VM import", "", NULL);
    if (!task)
        return -1;
    g_autofree char *path = g_strdup_printf(
        "%s/%s?session_id=%s&task_id=%s&restore=%s&force=%s%s%s", ctx->http_base,
        metadata ? "import_metadata" : "import", ctx->session, xv_str(task),
        cli_param_bool(ctx, "preserve") ? "true" : "false",
        cli_param_bool(ctx, "force") ? "true" : "false", sr ? "&sr_id=" : "", sr ? sr : "");
    g_autofree char *result = cli_http_transfer(ctx, true, path, xv_str(task), "VM import");
    cli_task_destroy(ctx, xv_str(task));
    if (!result)
        return -1;
    g_autoptr(GPtrArray) refs = refs_in(result);
    g_autoptr(GPtrArray) uuids = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < refs->len; i++) {
        char *uuid = cli_uuid_of_ref(refs->pdata[i]);
        if (uuid)
            g_ptr_array_add(uuids, uuid);
    }
    cli_out_list(ctx, (const char *const *)uuids->pdata, uuids->len);
    return 0;
}

void cli_xva_register(GPtrArray *t)
{
    cli_table_add(t, "vm-export", CLI_ARGS("filename"),
                  CLI_ARGS("compress", "metadata", "preserve-power-state", "include-snapshots"),
                  "Export a VM to <filename> as an XVA (compress=true|gzip|zstd; metadata=true "
                  "for its records only).",
                  CLI_VM_SELECTORS | CLI_STANDARD, vm_export);
    cli_table_add(t, "vm-import", CLI_ARGS("filename"),
                  CLI_ARGS("sr-uuid", "preserve", "force", "metadata"),
                  "Import a VM from an XVA <filename> onto the SR (the pool's default SR when "
                  "none is named); prints the new VM's uuid.",
                  CLI_STANDARD, vm_import);
}
