/* cli_vbd.c: the VBD record xe's vbd-create, vm-cd-add and vm-disk-add send. */
#include "cli.h"

Xv *cli_vbd_create(CliCtx *ctx, const CliVbdSpec *spec)
{
    Xv *rec = xv_new_struct();
    xv_struct_set_string(rec, "VM", spec->vm);
    xv_struct_set_string(rec, "VDI", spec->vdi);
    xv_struct_set_string(rec, "userdevice", cli_param(ctx, "device"));
    xv_struct_set(rec, "bootable", xv_new_bool(spec->bootable));
    xv_struct_set_string(rec, "mode", spec->mode);
    xv_struct_set_string(rec, "type", spec->type);
    xv_struct_set(rec, "unpluggable", xv_new_bool(spec->unpluggable));
    xv_struct_set(rec, "empty", xv_new_bool(spec->empty));
    xv_struct_set(rec, "other_config", spec->other_config);
    xv_struct_set_string(rec, "qos_algorithm_type", "");
    xv_struct_set(rec, "qos_algorithm_params", xv_new_struct());
    return cli_call_create(ctx, "VBD.create", rec);
}
