/* http_actions.c: XAPI's HTTP actions and the roles allowed each
 * (ocaml/idl/datamodel.ml http_actions; _R_* of datamodel_roles.ml). */
#include "http_actions.h"

#include <string.h>

#include "rbac.h"

#define ACTION(n, r) {.name = n, .wire_name = "http/" n, .roles = (r)}

static const DmMessage actions[] = {
    ACTION("get_services", RBAC_R_READ_ONLY),
    ACTION("post_services", RBAC_R_POOL_ADMIN),
    ACTION("put_services", RBAC_R_POOL_ADMIN),
    ACTION("post_remote_db_access", RBAC_R_POOL_ADMIN),
    ACTION("post_remote_db_access_v2", RBAC_R_POOL_ADMIN),
    ACTION("get_services_xenops", RBAC_R_VM_POWER_ADMIN),
    ACTION("post_services_xenops", RBAC_R_VM_POWER_ADMIN | DM_ROLE_CLIENT_CERT),
    ACTION("put_services_xenops", RBAC_R_VM_POWER_ADMIN | DM_ROLE_CLIENT_CERT),
    ACTION("get_services_sm", RBAC_R_VM_POWER_ADMIN),
    ACTION("post_services_sm", RBAC_R_VM_POWER_ADMIN),
    ACTION("put_services_sm", RBAC_R_VM_POWER_ADMIN),
    ACTION("put_import", RBAC_R_VM_ADMIN),
    ACTION("put_import_metadata", RBAC_R_VM_ADMIN),
    ACTION("put_import_raw_vdi", RBAC_R_VM_ADMIN),
    ACTION("get_export", RBAC_R_VM_ADMIN),
    ACTION("get_export_metadata", RBAC_R_VM_ADMIN),
    ACTION("get_export_raw_vdi", RBAC_R_VM_ADMIN),
    ACTION("connect_console", RBAC_R_VM_OP),
    ACTION("connect_console_ws", RBAC_R_VM_OP),
    /* sub-actions: only pool admins reach the host's own console */
    ACTION("connect_console/host_console", RBAC_R_POOL_ADMIN),
    ACTION("connect_console_ws/host_console_ws", RBAC_R_POOL_ADMIN),
    ACTION("get_root", RBAC_R_READ_ONLY),
    ACTION("post_cli", RBAC_R_READ_ONLY),
    ACTION("get_host_backup", RBAC_R_POOL_ADMIN),
    ACTION("put_host_restore", RBAC_R_POOL_ADMIN),
    ACTION("get_host_logs_download", RBAC_R_POOL_OP),
    ACTION("put_pool_patch_upload", RBAC_R_POOL_OP),
    ACTION("get_vncsnapshot", RBAC_R_VM_OP),
    ACTION("get_vncsnapshot/host_console", RBAC_R_POOL_ADMIN),
    ACTION("get_pool_xml_db_sync", RBAC_R_POOL_ADMIN),
    ACTION("put_pool_xml_db_sync", RBAC_R_POOL_ADMIN),
    ACTION("get_config_sync", RBAC_R_POOL_ADMIN),
    ACTION("get_system_status", RBAC_R_POOL_OP),
    ACTION("vm_rrd", RBAC_R_READ_ONLY),
    ACTION("get_vm_rrds", RBAC_R_READ_ONLY),
    ACTION("host_rrd", RBAC_R_READ_ONLY),
    ACTION("get_host_rrds", RBAC_R_READ_ONLY),
    ACTION("sr_rrd", RBAC_R_READ_ONLY),
    ACTION("rrd_updates", RBAC_R_READ_ONLY),
    ACTION("rrd", RBAC_R_POOL_ADMIN),
    ACTION("get_blob", RBAC_R_READ_ONLY),
    ACTION("put_blob", RBAC_R_VM_POWER_ADMIN),
    ACTION("put_messages", RBAC_R_VM_POWER_ADMIN),
    ACTION("connect_remotecmd", RBAC_R_POOL_ADMIN),
    ACTION("get_wlb_report", RBAC_R_READ_ONLY),
    ACTION("get_wlb_diagnostics", RBAC_R_READ_ONLY),
    ACTION("get_audit_log", RBAC_R_READ_ONLY),
    ACTION("post_root", RBAC_R_READ_ONLY),
    ACTION("post_RPC2", RBAC_R_READ_ONLY),
    ACTION("post_json", RBAC_R_READ_ONLY),
    ACTION("post_root_options", RBAC_R_READ_ONLY),
    ACTION("post_json_options", RBAC_R_READ_ONLY),
    ACTION("post_jsonrpc", RBAC_R_READ_ONLY),
    ACTION("post_jsonrpc_options", RBAC_R_READ_ONLY),
    ACTION("get_pool_update_download", RBAC_R_READ_ONLY),
    ACTION("get_repository", 0), /* XAPI's _R_LOCAL_ROOT_ONLY */
    ACTION("get_enabled_repository", RBAC_R_POOL_OP | DM_ROLE_CLIENT_CERT),
    ACTION("get_host_updates", RBAC_R_POOL_OP | DM_ROLE_CLIENT_CERT),
    ACTION("get_updates", RBAC_R_POOL_OP | DM_ROLE_CLIENT_CERT),
    ACTION("put_bundle", RBAC_R_POOL_OP),
};

const DmMessage *http_action(const char *name)
{
    for (unsigned i = 0; i < G_N_ELEMENTS(actions); i++)
        if (strcmp(actions[i].name, name) == 0)
            return &actions[i];
    return NULL;
}

const DmMessage *http_action_at(unsigned i)
{
    return i < G_N_ELEMENTS(actions) ? &actions[i] : NULL;
}
