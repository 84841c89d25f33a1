/* cli_storage.c: xe's storage commands (cli_operations.ml): VDIs (create,
 * destroy, resize, snapshot, clone, copy, import and export, the last two
 * a file the client streams over HttpPut/HttpGet), SRs and PBDs. */
#include <string.h>

#include "cli.h"
#include "cli_upload.h"
#include "db.h"

static int vdi_create(CliCtx *ctx)
{
    g_autofree char *sr = cli_ref_of_uuid(ctx, "SR", cli_param(ctx, "sr-uuid"));
    if (!sr)
        return -1;
    bool ok = false;
    gint64 size = cli_param_size(ctx, "virtual-size", &ok);
    if (!ok)
        return -1;
    const char *type = cli_param(ctx, "type");
    Xv *rec = xv_new_struct();
    xv_struct_set_string(rec, "name_label", cli_param(ctx, "name-label"));
    xv_struct_set_string(rec, "name_description", "");
    xv_struct_set_string(rec, "SR", sr);
    xv_struct_set(rec, "virtual_size", xv_new_int(size));
    xv_struct_set_string(rec, "type", type ? type : "user");
    xv_struct_set(rec, "sharable", xv_new_bool(cli_param_bool(ctx, "sharable")));
    xv_struct_set(rec, "read_only", xv_new_bool(cli_param_bool(ctx, "read-only")));
    xv_struct_set(rec, "other_config", cli_param_map(ctx, "other-config"));
    xv_struct_set(rec, "sm_config", cli_param_map(ctx, "sm-config"));
    xv_struct_set(rec, "xenstore_data", xv_new_struct());
    xv_struct_set(rec, "tags", xv_new_array());
    g_autoptr(Xv) vdi = cli_call_create(ctx, "VDI.create", rec);
    return vdi ? cli_out_uuid(ctx, xv_str(vdi)) : -1;
}

static char *vdi_of(CliCtx *ctx)
{
    return cli_ref_of_uuid(ctx, "VDI", cli_param(ctx, "uuid"));
}

static int vdi_simple(CliCtx *ctx, const char *method, bool prints)
{
    g_autofree char *vdi = vdi_of(ctx);
    if (!vdi)
        return -1;
    Xv *args = xv_new_array();
    xv_array_append_string(args, vdi);
    if (strcmp(method, "VDI.snapshot") == 0 || strcmp(method, "VDI.clone") == 0)
        xv_array_append(args, cli_param_map(ctx, "driver-params"));
    if (strcmp(method, "VDI.copy") == 0) {
        const char *sr_uuid = cli_param(ctx, "sr-uuid");
        g_autofree char *sr = sr_uuid ? cli_ref_of_uuid(ctx, "SR", sr_uuid) : NULL;
        if (!sr) {
            xv_free(args);
            return sr_uuid ? -1 : cli_fail(ctx, "Required parameter not found: sr-uuid");
        }
        xv_array_append_string(args, sr);
    }
    g_autoptr(Xv) r = cli_call(ctx, method, args);
    if (!r)
        return -1;
    return prints ? cli_out_uuid(ctx, xv_str(r)) : 0;
}

static int vdi_destroy(CliCtx *ctx) { return vdi_simple(ctx, "VDI.destroy", false); }
static int vdi_forget(CliCtx *ctx) { return vdi_simple(ctx, "VDI.forget", false); }
static int vdi_snapshot(CliCtx *ctx) { return vdi_simple(ctx, "VDI.snapshot", true); }
static int vdi_clone(CliCtx *ctx) { return vdi_simple(ctx, "VDI.clone", true); }
static int vdi_copy(CliCtx *ctx) { return vdi_simple(ctx, "VDI.copy", true); }

static int vdi_resize(CliCtx *ctx)
{
    g_autofree char *vdi = vdi_of(ctx);
    bool ok = false;
    gint64 size = vdi ? cli_param_size(ctx, "disk-size", &ok) : 0;
    if (!ok)
        return -1;
    Xv *args = xv_new_array();
    xv_array_append_string(args, vdi);
    xv_array_append(args, xv_new_int(size));
    g_autoptr(Xv) r = cli_call(ctx, cli_param_bool(ctx, "online") ? "VDI.resize_online" : "VDI.resize", args);
    return r ? 0 : -1;
}

/* track_http_operation: a task for the transfer, the client's HTTP request
 * with it (GET /export_raw_vdi), then the task's outcome. */
static int http_transfer(CliCtx *ctx, bool put, const char *label)
{
    g_autofree char *vdi = vdi_of(ctx);
    if (!vdi)
        return -1;
    const char *format = cli_param(ctx, "format");
    const char *base_uuid = cli_param(ctx, "base"); /* a differential export */
    g_autofree char *base = base_uuid ? cli_ref_of_uuid(ctx, "VDI", base_uuid) : NULL;
    if (base_uuid && !base)
        return -1;
    g_autoptr(Xv) task = cli_call_s(ctx, "task.create", label, "", NULL);
    if (!task)
        return -1;
    g_autofree char *path = g_strdup_printf(
        "%s/%s?session_id=%s&task_id=%s&vdi=%s%s%s%s%s", ctx->http_base,
        put ? "import_raw_vdi" : "export_raw_vdi", ctx->session, xv_str(task), vdi,
        format ? "&format=" : "", format ? format : "", base ? "&base=" : "", base ? base : "");
    g_autofree char *result = cli_http_transfer(ctx, put, path, xv_str(task), label);
    cli_task_destroy(ctx, xv_str(task));
    return result ? 0 : -1;
}

/* vdi-import: the client PUTs the file to a one-time path served by
 * cli_upload.c, which answers before the body as XAPI does. */
static int vdi_import(CliCtx *ctx)
{
    g_autofree char *vdi = vdi_of(ctx);
    if (!vdi)
        return -1;
    const char *format_name = cli_param(ctx, "format");
    VdiStreamFormat format = VDI_STREAM_RAW;
    if (format_name && !vdi_stream_format_parse(format_name, &format))
        return cli_fail(ctx, "Unknown format: %s", format_name);
    g_autoptr(Xv) task = cli_call_s(ctx, "task.create", "VDI import", "", NULL);
    if (!task)
        return -1;
    const char *filename = cli_param(ctx, "filename");
    CliUpload *up = cli_upload_register(vdi, format, xv_str(task));
    cli_http_put(ctx->wire, filename, cli_upload_path(up));
    bool client_ok = cli_read_response(ctx->wire) == CLI_RESPONSE_OK;
    XapiError *err = NULL;
    int rc = cli_upload_finish(up, client_ok, &err);
    if (rc < 0 && !client_ok) {
        xapi_error_free(err);
        cli_fail(ctx, "VDI import failed: the client could not transfer '%s'", filename);
    } else if (rc < 0) {
        ctx->error = err;
    }
    cli_task_destroy(ctx, xv_str(task));
    return rc;
}
static int vdi_export(CliCtx *ctx) { return http_transfer(ctx, false, "VDI export"); }

CLI_UUID_COMMAND(sr_scan, "SR", "SR.scan")
CLI_UUID_COMMAND(sr_destroy, "SR", "SR.destroy")
CLI_UUID_COMMAND(sr_forget, "SR", "SR.forget")

/* The host of host-uuid=, else this one (there is one host per pool). */
static char *host_of(CliCtx *ctx)
{
    const char *uuid = cli_param(ctx, "host-uuid");
    if (uuid)
        return cli_ref_of_uuid(ctx, "host", uuid);
    g_autoptr(Xv) all = cli_call_s(ctx, "host.get_all", NULL);
    if (!all)
        return NULL;
    if (xv_len(all) != 1)
        return cli_fail(ctx, "host-uuid= is required in a pool of several hosts"), NULL;
    return g_strdup(xv_str(xv_at(all, 0)));
}

/* The arguments SR.create and SR.introduce end with: name_label,
 * name_description, type, content_type, shared, sm_config. */
static void append_sr_description(CliCtx *ctx, Xv *args)
{
    const char *desc = cli_param(ctx, "name-description");
    const char *content = cli_param(ctx, "content-type");
    xv_array_append_string(args, cli_param(ctx, "name-label"));
    xv_array_append_string(args, desc ? desc : "");
    xv_array_append_string(args, cli_param(ctx, "type"));
    xv_array_append_string(args, content ? content : "");
    xv_array_append(args, xv_new_bool(cli_param_bool(ctx, "shared")));
    xv_array_append(args, cli_param_map(ctx, "sm-config"));
}

static int sr_create(CliCtx *ctx)
{
    g_autofree char *host = host_of(ctx);
    if (!host)
        return -1;
    bool ok = true;
    const char *size = cli_param(ctx, "physical-size");
    gint64 psize = size ? cli_param_size(ctx, "physical-size", &ok) : 0;
    if (!ok)
        return -1;
    Xv *args = xv_new_array();
    xv_array_append_string(args, host);
    xv_array_append(args, cli_param_map(ctx, "device-config"));
    xv_array_append(args, xv_new_int(psize));
    append_sr_description(ctx, args);
    g_autoptr(Xv) sr = cli_call(ctx, "SR.create", args);
    return sr ? cli_out_uuid(ctx, xv_str(sr)) : -1;
}

static int sr_introduce(CliCtx *ctx)
{
    Xv *args = xv_new_array();
    xv_array_append_string(args, cli_param(ctx, "uuid"));
    append_sr_description(ctx, args);
    g_autoptr(Xv) sr = cli_call(ctx, "SR.introduce", args);
    return sr ? cli_out_uuid(ctx, xv_str(sr)) : -1;
}

static int pbd_create(CliCtx *ctx)
{
    g_autofree char *host = cli_ref_of_uuid(ctx, "host", cli_param(ctx, "host-uuid"));
    g_autofree char *sr = host ? cli_ref_of_uuid(ctx, "SR", cli_param(ctx, "sr-uuid")) : NULL;
    if (!sr)
        return -1;
    Xv *rec = xv_new_struct();
    xv_struct_set_string(rec, "host", host);
    xv_struct_set_string(rec, "SR", sr);
    xv_struct_set(rec, "device_config", cli_param_map(ctx, "device-config"));
    xv_struct_set(rec, "other_config", xv_new_struct());
    g_autoptr(Xv) pbd = cli_call_create(ctx, "PBD.create", rec);
    return pbd ? cli_out_uuid(ctx, xv_str(pbd)) : -1;
}

CLI_UUID_COMMAND(pbd_plug, "PBD", "PBD.plug")
CLI_UUID_COMMAND(pbd_unplug, "PBD", "PBD.unplug")
CLI_UUID_COMMAND(pbd_destroy, "PBD", "PBD.destroy")

void cli_storage_register(GPtrArray *t)
{
    cli_table_add(t, "vdi-create", CLI_ARGS("sr-uuid", "name-label", "virtual-size"),
                  CLI_ARGS("type", "sharable", "read-only", "other-config:", "sm-config:"),
                  "Create a VDI. Type is 'system' 'user' 'suspend' or 'crashdump'.", CLI_STANDARD,
                  vdi_create);
    cli_table_add(t, "vdi-destroy", CLI_ARGS("uuid"), CLI_NONE,
                  "Destroy a VDI. In the case of Xenserver Enterprise, the VDI will be removed from "
                  "storage.",
                  0, vdi_destroy);
    cli_table_add(t, "vdi-forget", CLI_ARGS("uuid"), CLI_NONE,
                  "Forget about a VDI.", 0, vdi_forget);
    cli_table_add(t, "vdi-resize", CLI_ARGS("uuid", "disk-size"), CLI_ARGS("online"),
                  "Resize a VDI.", 0, vdi_resize);
    cli_table_add(t, "vdi-snapshot", CLI_ARGS("uuid"), CLI_ARGS("driver-params:"),
                  "Snapshot a VDI.", 0, vdi_snapshot);
    cli_table_add(t, "vdi-clone", CLI_ARGS("uuid"), CLI_ARGS("driver-params:"),
                  "Clone a specified VDI.", 0, vdi_clone);
    cli_table_add(t, "vdi-copy", CLI_ARGS("uuid"), CLI_ARGS("sr-uuid"),
                  "Copy either a full VDI or the block differences between two VDIs into either "
                  "a fresh VDI in a specified SR.",
                  0, vdi_copy);
    cli_table_add(t, "vdi-import", CLI_ARGS("uuid", "filename"), CLI_ARGS("format"),
                  "Import a raw VDI.", 0, vdi_import);
    cli_table_add(t, "vdi-export", CLI_ARGS("uuid", "filename"), CLI_ARGS("format", "base"),
                  "Export a VDI.", 0, vdi_export);
    cli_table_add(t, "sr-create", CLI_ARGS("name-label", "type"),
                  CLI_ARGS("host-uuid", "device-config:", "shared", "physical-size",
                           "content-type", "sm-config:", "name-description"),
                  "Create an SR, also a PBD. The device-config parameters can be specified by "
                  "e.g. device-config:foo=baa.",
                  CLI_STANDARD, sr_create);
    cli_table_add(t, "sr-introduce", CLI_ARGS("name-label", "type", "uuid"),
                  CLI_ARGS("shared", "content-type", "sm-config:", "name-description"),
                  "Introduces an SR (but does not create any PBDs).", 0, sr_introduce);
    cli_table_add(t, "sr-scan", CLI_ARGS("uuid"), CLI_NONE,
                  "Force an SR scan, syncing database with VDIs present in underlying storage "
                  "substrate.",
                  0, sr_scan);
    cli_table_add(t, "sr-destroy", CLI_ARGS("uuid"), CLI_NONE,
                  "Destroy the SR.", 0, sr_destroy);
    cli_table_add(t, "sr-forget", CLI_ARGS("uuid"), CLI_NONE,
                  "Forget about the SR.", 0, sr_forget);
    cli_table_add(t, "pbd-create", CLI_ARGS("host-uuid", "sr-uuid"), CLI_ARGS("device-config:"),
                  "Create a PBD. The read-only device-config parameter can only be set on "
                  "creation in the following manner. To add a mapping of 'path' -> '/tmp', the "
                  "command line should contain the argument device-config:path=/tmp",
                  0, pbd_create);
    cli_table_add(t, "pbd-plug", CLI_ARGS("uuid"), CLI_NONE,
                  "Attempt to plug in the PBD to the host. If this succeeds then the referenced "
                  "SR (and the VDIs contained within) should be visible to the host.",
                  0, pbd_plug);
    cli_table_add(t, "pbd-unplug", CLI_ARGS("uuid"), CLI_NONE,
                  "Attempt to unplug the PBD from the host. If this succeeds then the referenced "
                  "SR (and the VDIs contained within) should not be visible to the host.",
                  0, pbd_unplug);
    cli_table_add(t, "pbd-destroy", CLI_ARGS("uuid"), CLI_NONE, "Destroy the PBD.", 0, pbd_destroy);
}
