/* cli_misc.c: xe's device, network, host, task, event and console commands. */
#include <string.h>

#include "cli.h"
#include "db.h"

/* vif-unplug, vbd-unplug: Class.unplug on uuid=, unplug_force with --force. */
static int unplug(CliCtx *ctx, const char *dm_class)
{
    const char *op = cli_param_bool(ctx, "force") ? ".unplug_force" : ".unplug";
    g_autofree char *method = g_strconcat(dm_class, op, NULL);
    return cli_call_on(ctx, dm_class, "uuid", method);
}

static int network_create(CliCtx *ctx)
{
    const char *desc = cli_param(ctx, "name-description");
    const char *mtu = cli_param(ctx, "MTU");
    Xv *rec = xv_new_struct();
    xv_struct_set_string(rec, "name_label", cli_param(ctx, "name-label"));
    xv_struct_set_string(rec, "name_description", desc ? desc : "");
    xv_struct_set(rec, "MTU", xv_new_int(mtu ? g_ascii_strtoll(mtu, NULL, 10) : 1500));
    xv_struct_set(rec, "other_config", xv_new_struct());
    xv_struct_set(rec, "tags", xv_new_array());
    if (cli_param(ctx, "bridge"))
        xv_struct_set_string(rec, "bridge", cli_param(ctx, "bridge"));
    if (cli_param(ctx, "managed"))
        xv_struct_set(rec, "managed", xv_new_bool(cli_param_bool(ctx, "managed")));
    g_autoptr(Xv) net = cli_call_create(ctx, "network.create", rec);
    return net ? cli_out_uuid(ctx, xv_str(net)) : -1;
}

CLI_UUID_COMMAND(network_destroy, "network", "network.destroy")

static int vif_create(CliCtx *ctx)
{
    g_autofree char *vm = cli_ref_of_uuid(ctx, "VM", cli_param(ctx, "vm-uuid"));
    g_autofree char *net = vm ? cli_ref_of_uuid(ctx, "network", cli_param(ctx, "network-uuid")) : NULL;
    if (!net)
        return -1;
    const char *mac = cli_param(ctx, "mac");
    Xv *rec = xv_new_struct();
    xv_struct_set_string(rec, "device", cli_param(ctx, "device"));
    xv_struct_set_string(rec, "network", net);
    xv_struct_set_string(rec, "VM", vm);
    xv_struct_set_string(rec, "MAC", mac && strcmp(mac, "random") != 0 ? mac : "");
    xv_struct_set(rec, "MTU", xv_new_int(1500));
    xv_struct_set(rec, "other_config", xv_new_struct());
    xv_struct_set_string(rec, "qos_algorithm_type", "");
    xv_struct_set(rec, "qos_algorithm_params", xv_new_struct());
    g_autoptr(Xv) vif = cli_call_create(ctx, "VIF.create", rec);
    return vif ? cli_out_uuid(ctx, xv_str(vif)) : -1;
}

CLI_UUID_COMMAND(vif_plug, "VIF", "VIF.plug")
static int vif_unplug(CliCtx *ctx) { return unplug(ctx, "VIF"); }
CLI_UUID_COMMAND(vif_destroy, "VIF", "VIF.destroy")

static int vbd_create(CliCtx *ctx)
{
    g_autofree char *vm = cli_ref_of_uuid(ctx, "VM", cli_param(ctx, "vm-uuid"));
    if (!vm)
        return -1;
    const char *vdi_uuid = cli_param(ctx, "vdi-uuid");
    g_autofree char *vdi = vdi_uuid ? cli_ref_of_uuid(ctx, "VDI", vdi_uuid) : g_strdup("OpaqueRef:NULL");
    if (!vdi)
        return -1;
    const char *type = cli_param(ctx, "type"), *mode = cli_param(ctx, "mode");
    CliVbdSpec spec = {
        .vm = vm,
        .vdi = vdi,
        .bootable = cli_param_bool(ctx, "bootable"),
        .mode = mode ? mode : "RW",
        .type = type ? type : "Disk",
        .unpluggable = !cli_param(ctx, "unpluggable") || cli_param_bool(ctx, "unpluggable"),
        .empty = !vdi_uuid,
        .other_config = cli_param_map(ctx, "other-config"),
    };
    g_autoptr(Xv) vbd = cli_vbd_create(ctx, &spec);
    return vbd ? cli_out_uuid(ctx, xv_str(vbd)) : -1;
}

CLI_UUID_COMMAND(vbd_plug, "VBD", "VBD.plug")
static int vbd_unplug(CliCtx *ctx) { return unplug(ctx, "VBD"); }
CLI_UUID_COMMAND(vbd_destroy, "VBD", "VBD.destroy")

/* host=, uuid= or the only host. */
static char *host_selected(CliCtx *ctx)
{
    const char *uuid = cli_param(ctx, "uuid");
    if (!uuid)
        uuid = cli_param(ctx, "host-uuid");
    if (uuid)
        return cli_ref_of_uuid(ctx, "host", uuid);
    const char *name = cli_param(ctx, "host");
    g_autoptr(Xv) all = cli_call_s(ctx, "host.get_all", NULL);
    if (!all)
        return NULL;
    char *found = NULL;
    unsigned n = 0;
    db_read_begin();
    for (guint i = 0; i < xv_len(all); i++) {
        DbRow *row = db_lookup(dm_class_by_name("host"), xv_str(xv_at(all, i)));
        if (!row || (name && strcmp(xv_str(db_get(row, "uuid")), name) &&
                     strcmp(xv_str(db_get(row, "name_label")), name) &&
                     strcmp(xv_str(db_get(row, "hostname")), name)))
            continue;
        n++;
        g_free(found);
        found = g_strdup(row->ref);
    }
    db_read_end();
    if (n == 0)
        return cli_fail(ctx, "No matching hosts found"), NULL;
    if (n > 1) {
        g_free(found);
        return cli_fail(ctx, "Multiple matching hosts found. --multiple required to complete the "
                             "operation"), NULL;
    }
    return found;
}

static int host_op(CliCtx *ctx, const char *method)
{
    g_autofree char *host = host_selected(ctx);
    if (!host)
        return -1;
    g_autoptr(Xv) r = cli_call_s(ctx, method, host, NULL);
    return r ? 0 : -1;
}

static int host_enable(CliCtx *ctx) { return host_op(ctx, "host.enable"); }
static int host_disable(CliCtx *ctx) { return host_op(ctx, "host.disable"); }

static int host_reset_server_certificate(CliCtx *ctx)
{
    return host_op(ctx, "host.reset_server_certificate");
}

static int host_refresh_server_certificate(CliCtx *ctx)
{
    return host_op(ctx, "host.refresh_server_certificate");
}

static int host_get_server_certificate(CliCtx *ctx)
{
    g_autofree char *host = host_selected(ctx);
    g_autoptr(Xv) r = host ? cli_call_s(ctx, "host.get_server_certificate", host, NULL) : NULL;
    if (!r)
        return -1;
    cli_out(ctx, xv_str(r));
    return 0;
}

static int host_call_plugin(CliCtx *ctx)
{
    g_autofree char *host = cli_ref_of_uuid(ctx, "host", cli_param(ctx, "host-uuid"));
    if (!host)
        return -1;
    Xv *args = xv_new_array();
    xv_array_append_string(args, host);
    xv_array_append_string(args, cli_param(ctx, "plugin"));
    xv_array_append_string(args, cli_param(ctx, "fn"));
    xv_array_append(args, cli_param_map(ctx, "args"));
    g_autoptr(Xv) r = cli_call(ctx, "host.call_plugin", args);
    if (!r)
        return -1;
    const char *items[] = {xv_str(r)};
    cli_out_list(ctx, items, 1);
    return 0;
}

CLI_UUID_COMMAND(task_cancel, "task", "task.cancel")

/* event-wait class=<class> [field=value ...]: until an object of class
 * matches every condition (XAPI's event_wait; a field given as
 * "field=/=value" must differ). timeout= seconds bound the wait. */
static int event_wait(CliCtx *ctx)
{
    const char *cls_name = cli_param(ctx, "class");
    const CliClass *cls = NULL;
    for (unsigned i = 0; i < cli_n_classes; i++)
        if (strcmp(cli_classes[i].name, cls_name) == 0)
            cls = &cli_classes[i];
    if (!cls)
        return cli_fail(ctx, "Unknown class: %s", cls_name);
    const char *timeout = cli_param(ctx, "timeout");
    gint64 deadline = timeout ? g_get_monotonic_time() +
                                    (gint64)(g_ascii_strtod(timeout, NULL) * G_USEC_PER_SEC)
                              : G_MAXINT64;
    for (;;) {
        uint64_t gen = db_generation();
        g_autoptr(GPtrArray) refs = cli_select(ctx, cls, NULL, CLI_ARGS("class", "timeout"));
        if (!refs)
            return -1;
        if (refs->len)
            return 0;
        gint64 now = g_get_monotonic_time();
        if (now >= deadline)
            return cli_fail(ctx, "Timed out waiting for the condition");
        db_wait_for_change(gen, MIN(deadline, now + 5 * G_USEC_PER_SEC));
    }
}

/* console: the VM's text console through the client (HttpConnect to the
 * console's location), as XAPI's; the selectors must name one VM, the
 * control domain included. */
static int console(CliCtx *ctx)
{
    static const char *const defaults[] = {"is-a-template=false", NULL};
    g_autoptr(GPtrArray) vms = cli_select(ctx, cli_class_by_dm("VM"), defaults, CLI_ARGS("vm"));
    if (!vms)
        return -1;
    const char *v = cli_param(ctx, "vm");
    g_autofree char *location = NULL, *name = NULL;
    unsigned matched = 0;
    db_read_begin();
    for (guint i = 0; i < vms->len; i++) {
        DbRow *vm = db_lookup(dm_class_by_name("VM"), g_ptr_array_index(vms, i));
        if (!vm || (v && strcmp(xv_str(db_get(vm, "uuid")), v) != 0 &&
                    strcmp(xv_str(db_get(vm, "name_label")), v) != 0))
            continue;
        matched++;
        g_free(name);
        name = g_strdup(xv_str(db_get(vm, "name_label")));
        const Xv *consoles = db_get(vm, "consoles");
        g_clear_pointer(&location, g_free);
        for (guint j = 0; j < xv_len(consoles); j++) {
            DbRow *c = db_lookup(dm_class_by_name("console"), xv_str(xv_at(consoles, j)));
            if (c && strcmp(xv_str(db_get(c, "protocol")), "vt100") == 0)
                location = g_strdup(xv_str(db_get(c, "location")));
        }
    }
    db_read_end();
    if (matched != 1 || !location) { /* XAPI's texts, on stderr, exit 1 */
        cli_print_stderr(ctx->wire, matched == 0   ? "No VM found\n"
                                    : matched > 1  ? "Multiple VMs found: please narrow your request to one VM.\n"
                                                   : "No text console available\n");
        ctx->silent = true;
        return -1;
    }
    g_autofree char *line = g_strdup_printf("Connecting to console on VM %s. Press Ctrl + ']' to quit.", name);
    cli_out(ctx, line);
    g_autofree char *url = g_strdup_printf("%s&session_id=%s", location, ctx->session);
    cli_http_connect(ctx->wire, url);
    if (cli_read_response(ctx->wire) != CLI_RESPONSE_OK)
        return cli_fail(ctx, "Failure");
    return 0;
}

void cli_misc_register(GPtrArray *t)
{
    cli_table_add(t, "console", CLI_NONE, CLI_ARGS("vm"),
                  "Attach to a particular console.", CLI_VM_SELECTORS, console);
    cli_table_add(t, "network-create", CLI_ARGS("name-label"),
                  CLI_ARGS("name-description", "MTU", "bridge", "managed"),
                  "Create a new network.", CLI_STANDARD, network_create);
    cli_table_add(t, "network-destroy", CLI_ARGS("uuid"), CLI_NONE, "Delete an existing network.",
                  CLI_STANDARD, network_destroy);
    cli_table_add(t, "vif-create", CLI_ARGS("device", "network-uuid", "vm-uuid"), CLI_ARGS("mac"),
                  "Create a VIF. Appropriate values for the device are listed in the parameter "
                  "'allowed-VIF-devices' on the VM. If specified, the MAC parameter is of the form "
                  "aa:bb:cc:dd:ee:ff, and should be a random MAC address.",
                  CLI_STANDARD, vif_create);
    cli_table_add(t, "vif-plug", CLI_ARGS("uuid"), CLI_NONE,
                  "Attempt to attach the VIF while the VM is in the running state.", 0, vif_plug);
    cli_table_add(t, "vif-unplug", CLI_ARGS("uuid"), CLI_ARGS("force"),
                  "Attempt to detach the VIF from the VM while it is in the running state.", 0,
                  vif_unplug);
    cli_table_add(t, "vif-destroy", CLI_ARGS("uuid"), CLI_NONE, "Destroy a VIF.", CLI_STANDARD,
                  vif_destroy);
    cli_table_add(t, "vbd-create", CLI_ARGS("vm-uuid", "device"),
                  CLI_ARGS("vdi-uuid", "bootable", "type", "mode", "unpluggable", "other-config:"),
                  "Create a VBD. Appropriate values for the device field are listed in the "
                  "parameter 'allowed-VBD-devices' on the VM. If no VDI is specified, an empty VBD "
                  "will be created. The type parameter can be 'Disk' or 'CD', and the mode is 'RO' "
                  "or 'RW'.",
                  CLI_STANDARD, vbd_create);
    cli_table_add(t, "vbd-plug", CLI_ARGS("uuid"), CLI_NONE,
                  "Attempt to attach the VBD while the VM is in the running state.", 0, vbd_plug);
    cli_table_add(t, "vbd-unplug", CLI_ARGS("uuid"), CLI_ARGS("force"),
                  "Attempt to detach the VBD from the VM while it is in the running state.", 0,
                  vbd_unplug);
    cli_table_add(t, "vbd-destroy", CLI_ARGS("uuid"), CLI_NONE, "Destroy a VBD.", 0, vbd_destroy);
    cli_table_add(t, "host-enable", CLI_NONE, CLI_ARGS("host", "uuid"),
                  "Enables the XE host, which allows new VMs to be started.", 0, host_enable);
    cli_table_add(t, "host-disable", CLI_NONE, CLI_ARGS("host", "uuid"),
                  "Disable the XE host, preventing any new VMs from starting on it.", 0,
                  host_disable);
    /* a command whose message xapid lacks is left out: "Unknown command" */
    const DmMessage *cert = dm_message_by_wire_name("host.get_server_certificate");
    if (cert && dm_message_implemented(cert))
        cli_table_add(t, "host-get-server-certificate", CLI_NONE, CLI_ARGS("host", "uuid"),
                      "Get the installed server public TLS certificate.", 0,
                      host_get_server_certificate);
    cli_table_add(t, "host-reset-server-certificate", CLI_NONE, CLI_ARGS("host", "uuid"),
                  "Deletes the current TLS server certificate in the host and installs a new, "
                  "self-signed one.", 0, host_reset_server_certificate);
    cli_table_add(t, "host-refresh-server-certificate", CLI_NONE, CLI_ARGS("host", "uuid"),
                  "Refresh internal server certificate of host", 0,
                  host_refresh_server_certificate);
    cli_table_add(t, "host-call-plugin", CLI_ARGS("host-uuid", "plugin", "fn"), CLI_ARGS("args:"),
                  "Calls the function within the plugin on the given host with optional "
                  "arguments.",
                  0, host_call_plugin);
    cli_table_add(t, "task-cancel", CLI_ARGS("uuid"), CLI_NONE,
                  "Set a task to cancelling and return.", 0, task_cancel);
    cli_table_add(t, "event-wait", CLI_ARGS("class"), CLI_ARGS("timeout"),
                  "Wait for the event that satisfies the conditions given on the command line.",
                  0, event_wait);
}
