/* cli_devices.c: xe's CD commands on the selected VMs (vm-cd-add, -insert,
 * -eject, -remove, -list) and the PIF and VLAN commands. */
#include <string.h>

#include "cli.h"
#include "db.h"

/* The VDIs named name in SRs whose content type is "iso" (refs). */
static GPtrArray *iso_vdis(CliCtx *ctx, const char *name)
{
    g_autoptr(Xv) all = cli_call_s(ctx, "VDI.get_by_name_label", name, NULL);
    if (!all)
        return NULL;
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    db_read_begin();
    for (guint i = 0; i < xv_len(all); i++) {
        DbRow *vdi = db_lookup(dm_class_by_name("VDI"), xv_str(xv_at(all, i)));
        DbRow *sr = vdi ? db_lookup(dm_class_by_name("SR"), xv_str(db_get(vdi, "SR"))) : NULL;
        if (sr && strcmp(xv_str(db_get(sr, "content_type")), "iso") == 0)
            g_ptr_array_add(out, g_strdup(vdi->ref));
    }
    db_read_end();
    return out;
}

/* The VM's VBDs of type CD (refs). */
static GPtrArray *cd_vbds(const char *vm)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    db_read_begin();
    DbRow *row = db_lookup(dm_class_by_name("VM"), vm);
    const Xv *vbds = row ? db_get(row, "VBDs") : NULL;
    for (guint i = 0; vbds && i < xv_len(vbds); i++) {
        DbRow *vbd = db_lookup(dm_class_by_name("VBD"), xv_str(xv_at(vbds, i)));
        if (vbd && strcmp(xv_str(db_get(vbd, "type")), "CD") == 0)
            g_ptr_array_add(out, g_strdup(vbd->ref));
    }
    db_read_end();
    return out;
}

/* create_vbd_and_plug: a read-only CD VBD, plugged when the VM runs. */
static int cd_add_one(CliCtx *ctx, const char *vm, void *cd)
{
    CliVbdSpec spec = {.vm = vm, .vdi = cd, .mode = "RO", .type = "CD", .unpluggable = true,
                       .other_config = xv_new_struct()};
    g_autoptr(Xv) vbd = cli_vbd_create(ctx, &spec);
    if (!vbd)
        return -1;
    db_read_begin();
    DbRow *row = db_lookup(dm_class_by_name("VM"), vm);
    bool running = row && strcmp(xv_str(db_get(row, "power_state")), "Running") == 0;
    db_read_end();
    if (!running)
        return 0;
    g_autoptr(Xv) plugged = cli_call_s(ctx, "VBD.plug", xv_str(vbd), NULL);
    return plugged ? 0 : -1;
}

static int vm_cd_add(CliCtx *ctx)
{
    const char *name = cli_param(ctx, "cd-name");
    g_autoptr(GPtrArray) vdis = iso_vdis(ctx, name);
    if (!vdis)
        return -1;
    if (vdis->len == 0)
        return cli_fail(ctx, "CD %s not found!", name);
    return cli_do_vm_op(ctx, cd_add_one, g_ptr_array_index(vdis, 0), false,
                        CLI_ARGS("cd-location"));
}

static int cd_insert_one(CliCtx *ctx, const char *vm, void *cd)
{
    g_autoptr(GPtrArray) cds = cd_vbds(vm);
    if (cds->len == 0)
        return cli_fail(ctx, "No CD drives found");
    if (cds->len > 1)
        return cli_fail(ctx, "Two or more CD drives found. Please use vbd-insert");
    g_autoptr(Xv) r = cli_call_s(ctx, "VBD.insert", (char *)g_ptr_array_index(cds, 0), (char *)cd, NULL);
    return r ? 0 : -1;
}

static int vm_cd_insert(CliCtx *ctx)
{
    const char *name = cli_param(ctx, "cd-name");
    g_autoptr(GPtrArray) vdis = iso_vdis(ctx, name);
    if (!vdis)
        return -1;
    if (vdis->len == 0)
        return cli_fail(ctx, "CD %s not found", name);
    if (vdis->len > 1)
        return cli_fail(ctx, "Multiple CDs named %s found. Please use vbd-insert and specify uuids",
                        name);
    return cli_do_vm_op(ctx, cd_insert_one, g_ptr_array_index(vdis, 0), false, NULL);
}

static int cd_eject_one(CliCtx *ctx, const char *vm, void *data)
{
    g_autoptr(GPtrArray) cds = cd_vbds(vm);
    if (cds->len == 0)
        return cli_fail(ctx, "No CDs found");
    if (cds->len > 1)
        return cli_fail(ctx, "Two or more CDs found. Please use vbd-eject");
    g_autoptr(Xv) r = cli_call_s(ctx, "VBD.eject", (char *)g_ptr_array_index(cds, 0), NULL);
    return r ? 0 : -1;
}

static int vm_cd_eject(CliCtx *ctx) { return cli_do_vm_op(ctx, cd_eject_one, NULL, false, NULL); }

/* vm_cd_remove: the CD VBD whose VDI (in an iso SR) has that name, or an
 * empty drive for "<EMPTY>". */
static int cd_remove_one(CliCtx *ctx, const char *vm, void *data)
{
    const char *name = cli_param(ctx, "cd-name");
    g_autoptr(GPtrArray) cds = cd_vbds(vm);
    g_autofree char *doomed = NULL;
    db_read_begin();
    for (guint i = 0; i < cds->len && !doomed; i++) {
        DbRow *vbd = db_lookup(dm_class_by_name("VBD"), g_ptr_array_index(cds, i));
        DbRow *vdi = vbd ? db_lookup(dm_class_by_name("VDI"), xv_str(db_get(vbd, "VDI"))) : NULL;
        DbRow *sr = vdi ? db_lookup(dm_class_by_name("SR"), xv_str(db_get(vdi, "SR"))) : NULL;
        bool match = vdi ? sr && strcmp(xv_str(db_get(sr, "content_type")), "iso") == 0 &&
                               strcmp(xv_str(db_get(vdi, "name_label")), name) == 0
                         : strcmp(name, "<EMPTY>") == 0;
        if (vbd && match)
            doomed = g_strdup(vbd->ref);
    }
    db_read_end();
    if (!doomed)
        return cli_fail(ctx, "Disk not found");
    g_autoptr(Xv) r = cli_call_s(ctx, "VBD.destroy", doomed, NULL);
    return r ? 0 : -1;
}

static int vm_cd_remove(CliCtx *ctx) { return cli_do_vm_op(ctx, cd_remove_one, NULL, false, NULL); }

static int cd_list_one(CliCtx *ctx, const char *vm, void *data)
{
    g_autoptr(GPtrArray) cds = cd_vbds(vm);
    static const char *const vbd_params[] = {"uuid", "vm-name-label", "userdevice", "empty", NULL};
    static const char *const vdi_params[] = {"uuid", "name-label", NULL};
    for (guint i = 0; i < cds->len; i++) {
        g_autofree char *t1 = g_strdup_printf("CD %u VBD:", i);
        cli_print_object(ctx, t1, cli_class_by_dm("VBD"), g_ptr_array_index(cds, i), vbd_params);
        g_autofree char *vdi = NULL;
        db_read_begin();
        DbRow *vbd = db_lookup(dm_class_by_name("VBD"), g_ptr_array_index(cds, i));
        DbRow *row = vbd ? db_lookup(dm_class_by_name("VDI"), xv_str(db_get(vbd, "VDI"))) : NULL;
        if (row)
            vdi = g_strdup(row->ref);
        db_read_end();
        if (vdi) {
            g_autofree char *t2 = g_strdup_printf("CD %u VDI:", i);
            cli_print_object(ctx, t2, cli_class_by_dm("VDI"), vdi, vdi_params);
        }
    }
    return 0;
}

static int vm_cd_list(CliCtx *ctx)
{
    return cli_do_vm_op(ctx, cd_list_one, NULL, false, CLI_ARGS("vbd-params", "vdi-params"));
}

/* ---- PIFs and VLANs ---- */

static int pif_scan(CliCtx *ctx) { return cli_call_on(ctx, "host", "host-uuid", "PIF.scan"); }

static const char *or_empty(const char *s) { return s ? s : ""; }

static int pif_reconfigure_ip(CliCtx *ctx)
{
    g_autofree char *pif = cli_ref_of_uuid(ctx, "PIF", cli_param(ctx, "uuid"));
    if (!pif)
        return -1;
    g_autoptr(Xv) r = cli_call_s(ctx, "PIF.reconfigure_ip", pif, cli_param(ctx, "mode"),
                                 or_empty(cli_param(ctx, "IP")), or_empty(cli_param(ctx, "netmask")),
                                 or_empty(cli_param(ctx, "gateway")), or_empty(cli_param(ctx, "DNS")),
                                 NULL);
    return r ? 0 : -1;
}

static int vlan_create(CliCtx *ctx)
{
    g_autofree char *net = cli_ref_of_uuid(ctx, "network", cli_param(ctx, "network-uuid"));
    g_autofree char *pif = net ? cli_ref_of_uuid(ctx, "PIF", cli_param(ctx, "pif-uuid")) : NULL;
    if (!pif)
        return -1;
    const char *text = cli_param(ctx, "vlan");
    gint64 tag = 0;
    if (!cli_parse_int(text, &tag))
        return cli_fail(ctx, "Failed to parse VLAN tag: %s", text);
    Xv *args = xv_new_array();
    xv_array_append_string(args, pif);
    xv_array_append(args, xv_new_int(tag));
    xv_array_append_string(args, net);
    g_autoptr(Xv) vlan = cli_call(ctx, "VLAN.create", args);
    if (!vlan)
        return -1;
    /* XAPI prints the untagged PIF's uuid */
    g_autofree char *untagged = NULL;
    db_read_begin();
    DbRow *row = db_lookup(dm_class_by_name("VLAN"), xv_str(vlan));
    if (row)
        untagged = g_strdup(xv_str(db_get(row, "untagged_PIF")));
    db_read_end();
    return cli_out_uuid(ctx, untagged ? untagged : "");
}

CLI_UUID_COMMAND(vlan_destroy, "VLAN", "VLAN.destroy")

void cli_devices_register(GPtrArray *t)
{
    const unsigned sel = CLI_VM_SELECTORS | CLI_STANDARD;
    cli_table_add(t, "vm-cd-add", CLI_ARGS("cd-name", "device"), CLI_NONE,
                  "Add a CD to the VM(s). The device field should be selected from the parameter "
                  "'allowed-VBD-devices' of the VM.",
                  sel, vm_cd_add);
    cli_table_add(t, "vm-cd-insert", CLI_ARGS("cd-name"), CLI_NONE,
                  "Insert a CD into the VM(s)' virtual CD drive.", sel, vm_cd_insert);
    cli_table_add(t, "vm-cd-eject", CLI_NONE, CLI_NONE,
                  "Eject a CD from the virtual CD drive. This command will only work if there is "
                  "one and only one CD attached to the VM. When there are two or more CDs, please "
                  "use the command 'vbd-eject' and specify the uuid of the VBD.",
                  sel, vm_cd_eject);
    cli_table_add(t, "vm-cd-remove", CLI_ARGS("cd-name"), CLI_NONE,
                  "Remove the selected CDs from the VM(s).", sel, vm_cd_remove);
    cli_table_add(t, "vm-cd-list", CLI_NONE, CLI_ARGS("vbd-params", "vdi-params"),
                  "List the CDs currently attached to the VM(s).", sel, vm_cd_list);
    cli_table_add(t, "pif-scan", CLI_ARGS("host-uuid"), CLI_NONE,
                  "Scan for new physical interfaces on a host.", 0, pif_scan);
    cli_table_add(t, "pif-reconfigure-ip", CLI_ARGS("uuid", "mode"),
                  CLI_ARGS("IP", "netmask", "gateway", "DNS"),
                  "Reconfigure the IP address settings on a PIF.", 0, pif_reconfigure_ip);
    cli_table_add(t, "vlan-create", CLI_ARGS("pif-uuid", "vlan", "network-uuid"), CLI_NONE,
                  "Create a new VLAN on a host.", 0, vlan_create);
    cli_table_add(t, "vlan-destroy", CLI_ARGS("uuid"), CLI_NONE,
                  "Destroy a VLAN. Requires the UUID of the VLAN to be destroyed.", 0,
                  vlan_destroy);
}
