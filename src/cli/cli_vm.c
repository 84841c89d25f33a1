/* cli_vm.c: xe's VM commands (cli_operations.ml): the power operations on
 * the VMs the selectors choose, install from a template, uninstall with
 * the disks the VM owns, clone/copy/snapshot, disks and devices. */
#include <string.h>

#include "cli.h"
#include "db.h"

/* ---- selection (select_vms, do_vm_op) ---- */

static bool vm_named(const char *ref, const char *v)
{
    db_read_begin();
    DbRow *row = db_lookup(dm_class_by_name("VM"), ref);
    bool yes = row && (strcmp(xv_str(db_get(row, "uuid")), v) == 0 ||
                       strcmp(xv_str(db_get(row, "name_label")), v) == 0);
    db_read_end();
    return yes;
}

static GPtrArray *select_vms(CliCtx *ctx, bool include_templates, const char *const *ignore)
{
    const char *defaults[] = {"is-control-domain=false", include_templates ? NULL : "is-a-template=false",
                              NULL};
    g_autoptr(GStrvBuilder) skip = g_strv_builder_new();
    g_strv_builder_add(skip, "vm");
    g_strv_builder_addv(skip, (const char **)ctx->cmd->optn);
    g_strv_builder_addv(skip, (const char **)ctx->cmd->reqd);
    if (ignore)
        g_strv_builder_addv(skip, (const char **)ignore);
    g_auto(GStrv) skipv = g_strv_builder_end(skip);
    GPtrArray *vms = cli_select(ctx, cli_class_by_dm("VM"), defaults, (const char *const *)skipv);
    const char *v = cli_param(ctx, "vm");
    for (guint i = vms ? vms->len : 0; v && i-- > 0;)
        if (!vm_named(g_ptr_array_index(vms, i), v))
            g_ptr_array_remove_index(vms, i);
    return vms;
}

int cli_do_vm_op(CliCtx *ctx, CliVmOp op, void *data, bool include_templates,
                 const char *const *ignore)
{
    g_autoptr(GPtrArray) vms = select_vms(ctx, include_templates, ignore);
    if (!vms) {
        if (ctx->error && strcmp(ctx->error->code, "Missing parameter") == 0) {
            g_autofree char *name = g_strdup(g_ptr_array_index(ctx->error->params, 0));
            g_clear_pointer(&ctx->error, xapi_error_free);
            return cli_fail(ctx, "Parameter '%s' is not a field of the VM class. Failed to select "
                                 "VM for operation.", name);
        }
        return -1;
    }
    if (vms->len == 0)
        return cli_fail(ctx, "No matching VMs found");
    if (vms->len == 1)
        return op(ctx, g_ptr_array_index(vms, 0), data);
    if (!cli_param_bool(ctx, "multiple"))
        return cli_fail(ctx, "Multiple matches VMs found. --multiple required to complete the "
                             "operation");
    int rc = 0;
    for (guint i = 0; i < vms->len; i++) { /* do_multiple: every one, failures after */
        const char *vm = g_ptr_array_index(vms, i);
        if (op(ctx, vm, data) == 0)
            continue;
        g_autofree char *uuid = cli_uuid_of_ref(vm);
        g_autofree char *msg = ctx->error ? g_strdup(ctx->error->code) : g_strdup(ctx->failure);
        g_autofree char *line = g_strdup_printf("operation failed on %s: %s", uuid, msg);
        cli_out(ctx, line);
        g_clear_pointer(&ctx->error, xapi_error_free);
        g_clear_pointer(&ctx->failure, g_free);
        rc = -1;
    }
    if (rc < 0)
        ctx->failure = g_strdup("the operation failed on some of the VMs");
    return rc;
}

/* ---- power operations ---- */

static int call_vm(CliCtx *ctx, const char *method, const char *vm, Xv *extra)
{
    Xv *args = xv_new_array();
    xv_array_append_string(args, vm);
    for (guint i = 0; extra && i < xv_len(extra); i++)
        xv_array_append(args, xv_dup(xv_at(extra, i)));
    xv_free(extra);
    g_autoptr(Xv) r = cli_call(ctx, method, args);
    return r ? 0 : -1;
}

static Xv *bools(bool a, bool b)
{
    Xv *v = xv_new_array();
    xv_array_append(v, xv_new_bool(a));
    xv_array_append(v, xv_new_bool(b));
    return v;
}

static int start_one(CliCtx *ctx, const char *vm, void *data)
{
    bool paused = cli_param_bool(ctx, "paused"), force = cli_param_bool(ctx, "force");
    const char *on = cli_param(ctx, "on");
    if (!on)
        return call_vm(ctx, "VM.start", vm, bools(paused, force));
    /* on= names a host by uuid or name */
    g_autofree char *host = NULL;
    db_read_begin();
    DbRow *row = db_lookup_uuid(dm_class_by_name("host"), on);
    if (row)
        host = g_strdup(row->ref);
    db_read_end();
    if (!host) {
        g_autoptr(Xv) r = cli_call_s(ctx, "host.get_by_name_label", on, NULL);
        if (!r)
            return -1;
        if (xv_len(r) != 1)
            return cli_fail(ctx, "Host '%s' not found", on);
        host = g_strdup(xv_str(xv_at(r, 0)));
    }
    Xv *extra = xv_new_array();
    xv_array_append_string(extra, host);
    xv_array_append(extra, xv_new_bool(paused));
    xv_array_append(extra, xv_new_bool(force));
    return call_vm(ctx, "VM.start_on", vm, extra);
}

static int shutdown_one(CliCtx *ctx, const char *vm, void *data)
{
    return call_vm(ctx, cli_param_bool(ctx, "force") ? "VM.hard_shutdown" : "VM.clean_shutdown",
                   vm, NULL);
}

static int reboot_one(CliCtx *ctx, const char *vm, void *data)
{
    return call_vm(ctx, cli_param_bool(ctx, "force") ? "VM.hard_reboot" : "VM.clean_reboot", vm,
                   NULL);
}

static int suspend_one(CliCtx *ctx, const char *vm, void *data) { return call_vm(ctx, "VM.suspend", vm, NULL); }
static int pause_one(CliCtx *ctx, const char *vm, void *data) { return call_vm(ctx, "VM.pause", vm, NULL); }
static int unpause_one(CliCtx *ctx, const char *vm, void *data) { return call_vm(ctx, "VM.unpause", vm, NULL); }

static int resume_one(CliCtx *ctx, const char *vm, void *data)
{
    return call_vm(ctx, "VM.resume", vm, bools(false, cli_param_bool(ctx, "force")));
}

static int reset_one(CliCtx *ctx, const char *vm, void *data)
{
    if (!cli_param_bool(ctx, "force"))
        return cli_fail(ctx, "This operation is extremely dangerous and may cause data loss. "
                             "This operation must be forced (use --force).");
    return call_vm(ctx, "VM.power_state_reset", vm, NULL);
}

#define VM_OP(fname, op)                                                                   \
    static int fname(CliCtx *ctx) { return cli_do_vm_op(ctx, op, NULL, false, NULL); }
VM_OP(vm_start, start_one)
VM_OP(vm_shutdown, shutdown_one)
VM_OP(vm_reboot, reboot_one)
VM_OP(vm_suspend, suspend_one)
VM_OP(vm_resume, resume_one)
VM_OP(vm_pause, pause_one)
VM_OP(vm_unpause, unpause_one)
VM_OP(vm_reset_powerstate, reset_one)

/* ---- copies: clone, copy, snapshot, checkpoint ---- */

static int copy_call(CliCtx *ctx, const char *method, const char *vm, const char *sr)
{
    Xv *args = xv_new_array();
    xv_array_append_string(args, vm);
    xv_array_append_string(args, cli_param(ctx, "new-name-label"));
    if (sr)
        xv_array_append_string(args, sr);
    g_autoptr(Xv) r = cli_call(ctx, method, args);
    if (!r)
        return -1;
    const char *desc = cli_param(ctx, "new-name-description");
    if (desc) {
        g_autoptr(Xv) d = cli_call_s(ctx, "VM.set_name_description", xv_str(r), desc, NULL);
        if (!d)
            return -1;
    }
    return cli_out_uuid(ctx, xv_str(r));
}

static int clone_one(CliCtx *ctx, const char *vm, void *data) { return copy_call(ctx, "VM.clone", vm, NULL); }
/* ignore-vdi-uuids=a,b: disks left out of the snapshot */
static int snapshot_one(CliCtx *ctx, const char *vm, void *data)
{
    const char *ignore = cli_param(ctx, "ignore-vdi-uuids");
    if (!ignore)
        return copy_call(ctx, "VM.snapshot", vm, NULL);
    Xv *args = xv_new_array();
    xv_array_append_string(args, vm);
    xv_array_append_string(args, cli_param(ctx, "new-name-label"));
    Xv *vdis = xv_new_array(); /* complete before it goes in: items are stored inline */
    g_auto(GStrv) uuids = g_strsplit(ignore, ",", -1);
    for (char **u = uuids; *u; u++) {
        if (!**u)
            continue;
        char *ref = cli_ref_of_uuid(ctx, "VDI", *u);
        if (!ref) {
            xv_free(vdis);
            xv_free(args);
            return -1;
        }
        xv_array_append(vdis, xv_new_string_take(ref));
    }
    xv_array_append(args, vdis);
    g_autoptr(Xv) r = cli_call(ctx, "VM.snapshot", args);
    return r ? cli_out_uuid(ctx, xv_str(r)) : -1;
}
static int checkpoint_one(CliCtx *ctx, const char *vm, void *data)
{
    return copy_call(ctx, "VM.checkpoint", vm, NULL);
}

static int copy_one(CliCtx *ctx, const char *vm, void *data)
{
    const char *sr_uuid = cli_param(ctx, "sr-uuid");
    g_autofree char *sr = sr_uuid ? cli_ref_of_uuid(ctx, "SR", sr_uuid) : g_strdup("OpaqueRef:NULL");
    return sr ? copy_call(ctx, "VM.copy", vm, sr) : -1;
}

static int vm_clone(CliCtx *ctx) { return cli_do_vm_op(ctx, clone_one, NULL, true, NULL); }
static int vm_copy(CliCtx *ctx) { return cli_do_vm_op(ctx, copy_one, NULL, true, NULL); }
static int vm_snapshot(CliCtx *ctx) { return cli_do_vm_op(ctx, snapshot_one, NULL, false, NULL); }
static int vm_checkpoint(CliCtx *ctx) { return cli_do_vm_op(ctx, checkpoint_one, NULL, false, NULL); }

static int snapshot_revert(CliCtx *ctx)
{
    const char *uuid = cli_param(ctx, "snapshot-uuid");
    if (!uuid)
        uuid = cli_param(ctx, "uuid");
    if (!uuid)
        return cli_fail(ctx, "Required parameter not found: snapshot-uuid");
    g_autofree char *ref = cli_ref_of_uuid(ctx, "VM", uuid);
    if (!ref)
        return -1;
    g_autoptr(Xv) r = cli_call_s(ctx, "VM.revert", ref, NULL);
    return r ? 0 : -1;
}

CLI_UUID_COMMAND(vm_destroy, "VM", "VM.destroy")

/* ---- install ---- */

static char *find_template(CliCtx *ctx)
{
    const char *uuid = cli_param(ctx, "template-uuid");
    const char *name = cli_param(ctx, "template-name-label");
    if (!name)
        name = cli_param(ctx, "template-name");
    const char *either = cli_param(ctx, "template");
    char *ref = NULL;
    if (uuid || either) {
        db_read_begin();
        DbRow *row = db_lookup_uuid(dm_class_by_name("VM"), uuid ? uuid : either);
        ref = row ? g_strdup(row->ref) : NULL;
        db_read_end();
        if (uuid && !ref)
            return cli_fail(ctx, "Cannot find template"), NULL;
        if (ref)
            return ref;
        name = either;
    }
    if (!name)
        return cli_fail(ctx, "Template must be specified by parameter 'template-uuid', "
                             "'template-name', 'template-name-label' or 'template'"), NULL;
    g_autoptr(Xv) all = cli_call_s(ctx, "VM.get_by_name_label", name, NULL);
    if (!all)
        return NULL;
    g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func(g_free);
    db_read_begin();
    for (guint i = 0; i < xv_len(all); i++) {
        DbRow *row = db_lookup(dm_class_by_name("VM"), xv_str(xv_at(all, i)));
        if (row && db_get(row, "is_a_template")->b && !db_get(row, "is_control_domain")->b)
            g_ptr_array_add(found, g_strdup(row->ref));
    }
    db_read_end();
    if (found->len == 0)
        return cli_fail(ctx, "No templates matched"), NULL;
    if (found->len > 1)
        return cli_fail(ctx, "More than one matching template found"), NULL;
    return g_strdup(g_ptr_array_index(found, 0));
}

static bool collect_row(DbRow *row, void *pools)
{
    g_ptr_array_add(pools, row);
    return true;
}

/* The SR new disks go to: sr-uuid=, sr-name-label=, else the pool's default. */
static char *install_sr(CliCtx *ctx)
{
    const char *uuid = cli_param(ctx, "sr-uuid");
    if (uuid) {
        g_autofree char *ref = cli_ref_of_uuid(ctx, "SR", uuid);
        return ref ? g_strdup(uuid) : NULL;
    }
    const char *name = cli_param(ctx, "sr-name-label");
    if (name) {
        g_autoptr(Xv) r = cli_call_s(ctx, "SR.get_by_name_label", name, NULL);
        if (!r)
            return NULL;
        if (xv_len(r) != 1)
            return cli_fail(ctx, "Failed to find a unique SR named '%s'", name), NULL;
        return cli_uuid_of_ref(xv_str(xv_at(r, 0)));
    }
    char *sr = NULL;
    db_read_begin();
    const DmClass *pool = dm_class_by_name("pool");
    GPtrArray *pools = g_ptr_array_new();
    db_foreach(pool, collect_row, pools);
    if (pools->len) {
        const char *ref = xv_str(db_get(g_ptr_array_index(pools, 0), "default_SR"));
        DbRow *row = ref ? db_lookup(dm_class_by_name("SR"), ref) : NULL;
        if (row)
            sr = g_strdup(xv_str(db_get(row, "uuid")));
    }
    g_ptr_array_free(pools, TRUE);
    db_read_end();
    return sr ? sr : g_strdup("");
}

/* The template's disk provisioning names the SR (rewrite_provisioning_xml):
 * each disk with sr="" gets the install's SR. */
static int rewrite_provisioning(CliCtx *ctx, const char *vm, const char *sr_uuid)
{
    g_autofree char *disks = NULL;
    db_read_begin();
    DbRow *row = db_lookup(dm_class_by_name("VM"), vm);
    const Xv *oc = row ? db_get(row, "other_config") : NULL;
    const Xv *d = oc ? xv_struct_get(oc, "disks") : NULL;
    if (d)
        disks = g_strdup(xv_str(d));
    db_read_end();
    if (!disks || !*sr_uuid || !strstr(disks, "sr=\"\""))
        return 0;
    g_autofree char *with = g_strdup_printf("sr=\"%s\"", sr_uuid);
    g_auto(GStrv) parts = g_strsplit(disks, "sr=\"\"", -1);
    g_autofree char *rewritten = g_strjoinv(with, parts);
    g_autoptr(Xv) rm = cli_call_s(ctx, "VM.remove_from_other_config", vm, "disks", NULL);
    g_autoptr(Xv) add = rm ? cli_call_s(ctx, "VM.add_to_other_config", vm, "disks", rewritten, NULL)
                           : NULL;
    return add ? 0 : -1;
}

static int vm_install(CliCtx *ctx)
{
    g_autofree char *tmpl = find_template(ctx);
    if (!tmpl)
        return -1;
    db_read_begin();
    DbRow *row = db_lookup(dm_class_by_name("VM"), tmpl);
    bool is_template = row && db_get(row, "is_a_template")->b;
    db_read_end();
    if (!is_template)
        return cli_fail(ctx, "Can only install from templates");
    g_autofree char *sr = install_sr(ctx);
    if (!sr)
        return -1;
    g_autoptr(Xv) vm = cli_call_s(ctx, "VM.clone", tmpl, cli_param(ctx, "new-name-label"), NULL);
    if (!vm)
        return -1;
    const char *ref = xv_str(vm);
    g_autoptr(Xv) d = cli_call_s(ctx, "VM.set_name_description", ref, "Installed via xe CLI", NULL);
    if (!d || rewrite_provisioning(ctx, ref, sr) < 0)
        return -1;
    g_autoptr(Xv) p = cli_call_s(ctx, "VM.provision", ref, NULL);
    if (!p)
        return -1;
    return cli_out_uuid(ctx, ref);
}

/* ---- uninstall ---- */

static bool user_says_yes(CliCtx *ctx)
{
    cli_out(ctx, "Type 'yes' to continue");
    cli_prompt(ctx->wire);
    g_autoptr(GString) answer = g_string_new(NULL);
    if (cli_read_blob(ctx->wire, answer, 4096) < 0)
        return false;
    g_autofree char *trimmed = g_strstrip(g_ascii_strdown(answer->str, -1));
    if (strcmp(trimmed, "yes") == 0)
        return true;
    g_autofree char *line = g_strdup_printf("Aborted (you typed: '%s')", answer->str);
    cli_out(ctx, line);
    return false;
}

typedef struct {
    GPtrArray *vms;  /* refs */
    GPtrArray *vdis; /* refs */
} Doomed;

/* The VDIs of vm's VBDs whose other_config has "owner", and its suspend VDI. */
static void choose_objects(CliCtx *ctx, const char *vm, Doomed *d)
{
    db_read_begin();
    DbRow *row = db_lookup(dm_class_by_name("VM"), vm);
    if (row) {
        g_ptr_array_add(d->vms, g_strdup(vm));
        g_autofree char *line = g_strdup_printf("VM : %s (%s)", xv_str(db_get(row, "uuid")),
                                                xv_str(db_get(row, "name_label")));
        cli_out(ctx, line);
        const Xv *vbds = db_get(row, "VBDs");
        for (guint i = 0; i < xv_len(vbds); i++) {
            DbRow *vbd = db_lookup(dm_class_by_name("VBD"), xv_str(xv_at(vbds, i)));
            const Xv *oc = vbd ? db_get(vbd, "other_config") : NULL;
            DbRow *vdi = vbd ? db_lookup(dm_class_by_name("VDI"), xv_str(db_get(vbd, "VDI"))) : NULL;
            if (!vdi || !xv_struct_get(oc, "owner"))
                continue;
            g_ptr_array_add(d->vdis, g_strdup(vdi->ref));
            g_autofree char *l = g_strdup_printf(
                "VDI: %s (%s) %s", xv_str(db_get(vdi, "uuid")), xv_str(db_get(vdi, "name_label")),
                xv_len(db_get(vdi, "VBDs")) > 1 ? " ** WARNING: disk is shared by other VMs" : "");
            cli_out(ctx, l);
        }
        DbRow *suspend = db_lookup(dm_class_by_name("VDI"), xv_str(db_get(row, "suspend_VDI")));
        if (suspend)
            g_ptr_array_add(d->vdis, g_strdup(suspend->ref));
    }
    db_read_end();
}

static int collect_one(CliCtx *ctx, const char *vm, void *vms)
{
    g_ptr_array_add(vms, g_strdup(vm));
    return 0;
}

static int vm_uninstall(CliCtx *ctx)
{
    g_autoptr(GPtrArray) vms = g_ptr_array_new_with_free_func(g_free);
    if (cli_do_vm_op(ctx, collect_one, vms, false, NULL) < 0)
        return -1;
    int rc;
    /* the VM's snapshots go with it */
    guint n = vms->len;
    for (guint i = 0; i < n; i++) {
        db_read_begin();
        DbRow *row = db_lookup(dm_class_by_name("VM"), g_ptr_array_index(vms, i));
        const Xv *snaps = row ? db_get(row, "snapshots") : NULL;
        for (guint j = 0; snaps && j < xv_len(snaps); j++)
            g_ptr_array_add(vms, g_strdup(xv_str(xv_at(snaps, j))));
        db_read_end();
    }
    Doomed d = {g_ptr_array_new_with_free_func(g_free), g_ptr_array_new_with_free_func(g_free)};
    cli_out(ctx, "The following items are about to be destroyed");
    for (guint i = 0; i < vms->len; i++)
        choose_objects(ctx, g_ptr_array_index(vms, i), &d);
    rc = 0;
    if (cli_param_bool(ctx, "force") || user_says_yes(ctx)) {
        for (guint i = 0; rc == 0 && i < d.vms->len; i++) {
            const char *vm = g_ptr_array_index(d.vms, i);
            db_read_begin();
            DbRow *row = db_lookup(dm_class_by_name("VM"), vm);
            bool halted = !row || strcmp(xv_str(db_get(row, "power_state")), "Halted") == 0;
            db_read_end();
            if (!halted && call_vm(ctx, "VM.hard_shutdown", vm, NULL) < 0)
                rc = -1;
            else if (call_vm(ctx, "VM.destroy", vm, NULL) < 0)
                rc = -1;
        }
        for (guint i = 0; rc == 0 && i < d.vdis->len; i++) {
            g_autoptr(Xv) r = cli_call_s(ctx, "VDI.destroy", (char *)g_ptr_array_index(d.vdis, i), NULL);
            if (!r)
                rc = -1;
        }
        if (rc == 0)
            cli_out(ctx, "All objects destroyed");
    }
    g_ptr_array_free(d.vms, TRUE);
    g_ptr_array_free(d.vdis, TRUE);
    return rc;
}

/* ---- devices ---- */

static int disk_list_one(CliCtx *ctx, const char *vm, void *data)
{
    g_autoptr(GPtrArray) vbds = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) vdis = g_ptr_array_new_with_free_func(g_free);
    bool disks = !cli_param_bool(ctx, "cd") || cli_param_bool(ctx, "disk");
    db_read_begin();
    DbRow *row = db_lookup(dm_class_by_name("VM"), vm);
    const Xv *list = row ? db_get(row, "VBDs") : NULL;
    for (guint i = 0; list && i < xv_len(list); i++) {
        DbRow *vbd = db_lookup(dm_class_by_name("VBD"), xv_str(xv_at(list, i)));
        if (!vbd)
            continue;
        bool cd = strcmp(xv_str(db_get(vbd, "type")), "CD") == 0;
        if (cd ? !cli_param_bool(ctx, "cd") : !disks)
            continue;
        g_ptr_array_add(vbds, g_strdup(vbd->ref));
        DbRow *vdi = db_lookup(dm_class_by_name("VDI"), xv_str(db_get(vbd, "VDI")));
        if (vdi)
            g_ptr_array_add(vdis, g_strdup(vdi->ref));
    }
    db_read_end();
    static const char *const vbd_default[] = {"uuid", "vm-name-label", "userdevice", "empty", NULL};
    static const char *const vdi_default[] = {"uuid", "name-label", "sr-name-label", "virtual-size", NULL};
    /* vbd-params=, vdi-params=: a,b or all, as params= of a list */
    const char *vbd_given = cli_param(ctx, "vbd-params"), *vdi_given = cli_param(ctx, "vdi-params");
    g_auto(GStrv) vbd_split = vbd_given && strcmp(vbd_given, "all") ? g_strsplit(vbd_given, ",", -1) : NULL;
    g_auto(GStrv) vdi_split = vdi_given && strcmp(vdi_given, "all") ? g_strsplit(vdi_given, ",", -1) : NULL;
    const char *const *vbd_params = vbd_given ? (const char *const *)vbd_split : vbd_default;
    const char *const *vdi_params = vdi_given ? (const char *const *)vdi_split : vdi_default;
    for (guint i = 0; i < vbds->len; i++) {
        g_autofree char *vbd_title = g_strdup_printf("Disk %u VBD:", i);
        cli_print_object(ctx, vbd_title, cli_class_by_dm("VBD"), g_ptr_array_index(vbds, i),
                         vbd_params);
        if (i < vdis->len) {
            g_autofree char *vdi_title = g_strdup_printf("Disk %u VDI:", i);
            cli_print_object(ctx, vdi_title, cli_class_by_dm("VDI"), g_ptr_array_index(vdis, i),
                             vdi_params);
        }
    }
    return 0;
}

static int vm_disk_list(CliCtx *ctx)
{
    return cli_do_vm_op(ctx, disk_list_one, NULL, false, CLI_ARGS("vbd-params", "vdi-params"));
}

static int vif_list_one(CliCtx *ctx, const char *vm, void *data)
{
    g_autoptr(GPtrArray) vifs = g_ptr_array_new_with_free_func(g_free);
    db_read_begin();
    DbRow *row = db_lookup(dm_class_by_name("VM"), vm);
    const Xv *list = row ? db_get(row, "VIFs") : NULL;
    for (guint i = 0; list && i < xv_len(list); i++)
        g_ptr_array_add(vifs, g_strdup(xv_str(xv_at(list, i))));
    db_read_end();
    static const char *const def[] = {"uuid", "device", "MAC", "network-uuid", "vm-name-label", NULL};
    return cli_print_objects(ctx, cli_class_by_dm("VIF"), vifs, def);
}

static int vm_vif_list(CliCtx *ctx) { return cli_do_vm_op(ctx, vif_list_one, NULL, false, NULL); }

/* vm-disk-add: a new VDI in the SR (default: the pool's), plugged as a disk
 * the VM owns, as XAPI's vm_disk_add. */
static int disk_add_one(CliCtx *ctx, const char *vm, void *data)
{
    g_autofree char *sr_uuid = install_sr(ctx);
    if (!sr_uuid)
        return -1;
    if (!*sr_uuid)
        return cli_fail(ctx, "No default SR: give sr-uuid=");
    g_autofree char *sr = cli_ref_of_uuid(ctx, "SR", sr_uuid);
    if (!sr)
        return -1;
    char *end = NULL;
    const char *size_text = cli_param(ctx, "disk-size");
    gint64 size = g_ascii_strtoll(size_text, &end, 10);
    if (end && *end) { /* 10GiB and the like */
        double unit = cli_size_unit(end);
        if (unit == 0)
            return cli_fail(ctx, "Failed to parse disk-size: %s", size_text);
        size = (gint64)((double)size * unit);
    }
    g_autofree char *vm_name = NULL;
    db_read_begin();
    DbRow *row = db_lookup(dm_class_by_name("VM"), vm);
    vm_name = row ? g_strdup(xv_str(db_get(row, "name_label"))) : g_strdup("");
    db_read_end();
    Xv *rec = xv_new_struct();
    g_autofree char *label = g_strdup_printf("%s %s", vm_name, cli_param(ctx, "device"));
    xv_struct_set_string(rec, "name_label", label);
    xv_struct_set_string(rec, "name_description", "Created by xe");
    xv_struct_set_string(rec, "SR", sr);
    xv_struct_set(rec, "virtual_size", xv_new_int(size));
    xv_struct_set_string(rec, "type", "user");
    xv_struct_set(rec, "sharable", xv_new_bool(false));
    xv_struct_set(rec, "read_only", xv_new_bool(false));
    xv_struct_set(rec, "other_config", xv_new_struct());
    g_autoptr(Xv) vdi = cli_call_create(ctx, "VDI.create", rec);
    if (!vdi)
        return -1;
    Xv *owner = xv_new_struct();
    xv_struct_set_string(owner, "owner", "true");
    CliVbdSpec spec = {.vm = vm, .vdi = xv_str(vdi), .mode = "RW", .type = "Disk",
                       .unpluggable = true, .other_config = owner};
    g_autoptr(Xv) vbd_ref = cli_vbd_create(ctx, &spec);
    if (!vbd_ref)
        return -1;
    return cli_out_uuid(ctx, xv_str(vdi));
}

static int vm_disk_add(CliCtx *ctx) { return cli_do_vm_op(ctx, disk_add_one, NULL, false, NULL); }

/* vm-disk-remove, as XAPI's: the VBD at device= goes, then its VDI. */
static int disk_remove_one(CliCtx *ctx, const char *vm, void *data)
{
    const char *device = cli_param(ctx, "device");
    g_autofree char *vbd = NULL, *vdi = NULL;
    db_read_begin();
    DbRow *row = db_lookup(dm_class_by_name("VM"), vm);
    const Xv *vbds = row ? db_get(row, "VBDs") : NULL;
    const DmClass *vbd_cls = dm_class_by_name("VBD");
    for (guint i = 0; vbds && i < xv_len(vbds) && !vbd; i++) {
        DbRow *b = db_lookup(vbd_cls, xv_str(xv_at(vbds, i)));
        if (b && strcmp(xv_str(db_get(b, "userdevice")), device) == 0 &&
            strcmp(xv_str(db_get(b, "type")), "Disk") == 0) {
            vbd = g_strdup(b->ref);
            vdi = g_strdup(xv_str(db_get(b, "VDI")));
        }
    }
    db_read_end();
    if (!vbd)
        return cli_fail(ctx, "Disk not found");
    g_autoptr(Xv) gone = cli_call_s(ctx, "VBD.destroy", vbd, NULL);
    if (!gone)
        return -1;
    g_autoptr(Xv) destroyed = cli_call_s(ctx, "VDI.destroy", vdi, NULL);
    return destroyed ? 0 : -1;
}

static int vm_disk_remove(CliCtx *ctx)
{
    return cli_do_vm_op(ctx, disk_remove_one, NULL, false, CLI_ARGS("device"));
}

static int memory_limits_one(CliCtx *ctx, const char *vm, void *data)
{
    const char *names[] = {"static-min", "static-max", "dynamic-min", "dynamic-max"};
    Xv *args = xv_new_array();
    xv_array_append_string(args, vm);
    for (unsigned i = 0; i < 4; i++) {
        gint64 v = 0;
        if (!cli_parse_int(cli_param(ctx, names[i]), &v)) {
            xv_free(args);
            return cli_fail(ctx, "Parameter %s must be an integer", names[i]);
        }
        xv_array_append(args, xv_new_int(v));
    }
    g_autoptr(Xv) r = cli_call(ctx, "VM.set_memory_limits", args);
    return r ? 0 : -1;
}

static int vm_memory_limits_set(CliCtx *ctx)
{
    return cli_do_vm_op(ctx, memory_limits_one, NULL, false, NULL);
}

void cli_vm_register(GPtrArray *t)
{
    const unsigned sel = CLI_VM_SELECTORS;
    cli_table_add(t, "vm-start", CLI_NONE, CLI_ARGS("force", "on", "paused"),
                  "Start the selected VM(s). Where pooling is enabled, the host on which to start "
                  "can be specified with the 'on' parameter that takes a uuid. The optional "
                  "parameter '--force' will bypass any hardware-compatibility warnings.",
                  sel | CLI_STANDARD, vm_start);
    cli_table_add(t, "vm-shutdown", CLI_NONE, CLI_ARGS("force"),
                  "Shutdown the selected VM(s). The optional argument --force will forcibly shut "
                  "down the VM.",
                  sel | CLI_STANDARD, vm_shutdown);
    cli_table_add(t, "vm-reboot", CLI_NONE, CLI_ARGS("force"),
                  "Reboot the selected VM(s).", sel | CLI_STANDARD, vm_reboot);
    cli_table_add(t, "vm-suspend", CLI_NONE, CLI_NONE, "Suspend the selected VM(s).",
                  sel | CLI_STANDARD, vm_suspend);
    cli_table_add(t, "vm-resume", CLI_NONE, CLI_ARGS("force"),
                  "Resume the selected VM(s).", sel | CLI_STANDARD, vm_resume);
    cli_table_add(t, "vm-pause", CLI_NONE, CLI_NONE, "Pause a running VM.", sel, vm_pause);
    cli_table_add(t, "vm-unpause", CLI_NONE, CLI_NONE, "Unpause a paused VM.", sel, vm_unpause);
    cli_table_add(t, "vm-reset-powerstate", CLI_NONE, CLI_ARGS("force"),
                  "Force the VM powerstate to halted in the management toolstack database only. "
                  "This command is used to recover a VM that is marked as 'running', but is "
                  "known to be on a dead slave host that will not recover. This is a potentially "
                  "dangerous operation: you must ensure that the VM you are forcing to 'halted' "
                  "is definitely not running anywhere.",
                  sel, vm_reset_powerstate);
    cli_table_add(t, "vm-install", CLI_ARGS("new-name-label"),
                  CLI_ARGS("template-uuid", "template", "template-name-label", "template-name",
                           "sr-uuid", "sr-name-label"),
                  "Install a new VM from a template. The template parameter can match either the "
                  "template name or the uuid.",
                  CLI_STANDARD, vm_install);
    cli_table_add(t, "vm-uninstall", CLI_NONE, CLI_ARGS("force"),
                  "Uninstall a VM. This operation will destroy those VDIs that are marked RW and "
                  "connected to this VM only. To simply destroy the VM record, use vm-destroy.",
                  sel | CLI_STANDARD, vm_uninstall);
    cli_table_add(t, "vm-destroy", CLI_ARGS("uuid"), CLI_NONE,
                  "Destroy a VM. This simply deletes the VM record from the database. It does "
                  "not delete the VM's disks.",
                  0, vm_destroy);
    cli_table_add(t, "vm-clone", CLI_ARGS("new-name-label"), CLI_ARGS("new-name-description"),
                  "Clone an existing VM, using storage-level fast disk clone operation where "
                  "available.",
                  sel | CLI_STANDARD, vm_clone);
    cli_table_add(t, "vm-copy", CLI_ARGS("new-name-label"),
                  CLI_ARGS("new-name-description", "sr-uuid"),
                  "Copy an existing VM, but without using storage-level fast disk clone "
                  "operation (even if this is available). The disk images of the copied VM are "
                  "guaranteed to be 'full images' - that is, not part of a copy-on-write chain.",
                  sel | CLI_STANDARD, vm_copy);
    cli_table_add(t, "vm-snapshot", CLI_ARGS("new-name-label"),
                  CLI_ARGS("new-name-description", "ignore-vdi-uuids"),
                  "Snapshot an existing VM, using storage-level fast disk snapshot operation "
                  "where available.",
                  sel | CLI_STANDARD, vm_snapshot);
    cli_table_add(t, "vm-checkpoint", CLI_ARGS("new-name-label"),
                  CLI_ARGS("new-name-description"),
                  "Checkpoint an existing VM, using storage-level fast disk snapshot operation "
                  "where available.",
                  sel | CLI_STANDARD, vm_checkpoint);
    cli_table_add(t, "snapshot-revert", CLI_NONE, CLI_ARGS("uuid", "snapshot-uuid"),
                  "Revert an existing VM to a previous checkpointed or snapshotted state.",
                  CLI_STANDARD, snapshot_revert);
    cli_table_add(t, "vm-disk-list", CLI_NONE,
                  CLI_ARGS("vbd-params", "vdi-params", "disk", "cd"),
                  "List the disks on the selected VM(s).", sel | CLI_STANDARD, vm_disk_list);
    cli_table_add(t, "vm-vif-list", CLI_NONE, CLI_NONE, "List the VIFs present on selected VM.",
                  sel | CLI_STANDARD, vm_vif_list);
    cli_table_add(t, "vm-disk-remove", CLI_ARGS("device"), CLI_NONE,
                  "Remove a disk from the specified VM and destroy it.", sel | CLI_STANDARD,
                  vm_disk_remove);
    cli_table_add(t, "vm-disk-add", CLI_ARGS("disk-size", "device"), CLI_ARGS("sr-uuid"),
                  "Add a new disk to the selected VM(s). The device field should be set to the "
                  "userdevice field of the new VBD.",
                  sel | CLI_STANDARD, vm_disk_add);
    cli_table_add(t, "vm-memory-limits-set",
                  CLI_ARGS("static-min", "static-max", "dynamic-min", "dynamic-max"), CLI_NONE,
                  "Set the memory limits of this VM.", sel, vm_memory_limits_set);
}
