/* vm_operations.c: VM operation checks and locks. */
#include "vm_operations.h"

#include <string.h>

#include "implicit.h"
#include "vm_vtpm.h"

enum { HALTED = 1, PAUSED = 2, RUNNING = 4, SUSPENDED = 8, ANY = 15 };

/* The power states each operation needs (XAPI's allowed_power_states);
 * operations not listed are allowed in every state. */
static const struct {
    const char *op;
    unsigned states;
} power_states[] = {
    {"changing_VCPUs", HALTED},        {"changing_static_range", HALTED},
    {"changing_memory_limits", HALTED}, {"changing_shadow_memory", HALTED},
    {"changing_NVRAM", HALTED},        {"make_into_template", HALTED},
    {"provision", HALTED},             {"start", HALTED},
    {"start_on", HALTED},              {"create_vtpm", HALTED},
    {"unpause", PAUSED},               {"csvm", SUSPENDED},
    {"resume", SUSPENDED},             {"resume_on", SUSPENDED},
    {"awaiting_memory_live", RUNNING}, {"call_plugin", RUNNING},
    {"clean_reboot", RUNNING},         {"clean_shutdown", RUNNING},
    {"changing_memory_live", RUNNING}, {"changing_shadow_memory_live", RUNNING},
    {"changing_VCPUs_live", RUNNING},  {"data_source_op", RUNNING},
    {"pause", RUNNING},                {"pool_migrate", RUNNING},
    {"send_sysrq", RUNNING},           {"send_trigger", RUNNING},
    {"snapshot_with_quiesce", RUNNING}, {"sysprep", RUNNING},
    {"suspend", RUNNING},              {"changing_dynamic_range", HALTED | RUNNING},
    {"clone", HALTED},                 {"copy", HALTED},
    {"create_template", HALTED | SUSPENDED}, {"destroy", HALTED | SUSPENDED},
    {"export", HALTED | SUSPENDED},    {"hard_reboot", PAUSED | RUNNING},
    {"checkpoint", PAUSED | SUSPENDED | RUNNING}, {"get_boot_record", PAUSED | SUSPENDED | RUNNING},
    {"shutdown", PAUSED | SUSPENDED | RUNNING}, {"hard_shutdown", PAUSED | SUSPENDED | RUNNING},
    {"migrate_send", HALTED | SUSPENDED | RUNNING}, {"import", 0},
};

/* What a template may still do (check_template). */
static const char *const template_ops[] = {
    "changing_dynamic_range", "changing_static_range", "changing_memory_limits",
    "changing_shadow_memory", "changing_VCPUs", "changing_NVRAM", "clone", "copy",
    "export", "metadata_export", "provision",
};

/* What a snapshot may do (check_snapshot). */
static const char *const snapshot_ops[] = {"revert", "clone", "copy", "export", "destroy",
                                           "hard_shutdown", "metadata_export"};

static const char *const state_names[] = {"halted", "paused", "running", "suspended"};

static unsigned state_bit(const char *power_state)
{
    if (strcmp(power_state, "Halted") == 0)
        return HALTED;
    if (strcmp(power_state, "Paused") == 0)
        return PAUSED;
    if (strcmp(power_state, "Running") == 0)
        return RUNNING;
    if (strcmp(power_state, "Suspended") == 0)
        return SUSPENDED;
    return 0;
}

static unsigned allowed_states(const char *op)
{
    for (size_t i = 0; i < G_N_ELEMENTS(power_states); i++)
        if (strcmp(power_states[i].op, op) == 0)
            return power_states[i].states;
    return ANY;
}

static bool in_list(const char *op, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], op) == 0)
            return true;
    return false;
}

/* XAPI's is_allowed_concurrently: long copies with each other, snapshots
 * with each other, and the hard operations that end what is running. */
static bool allowed_concurrently(const char *op, const Xv *current)
{
    static const char *const long_copies[] = {"clone", "copy", "export"};
    static const char *const snapshots[] = {"snapshot", "checkpoint"};
    static const char *const boot_record[] = {"get_boot_record"};
    const struct { const char *const *ops; size_t n; } groups[] = {
        {long_copies, 3}, {snapshots, 2}, {boot_record, 1}};
    for (size_t g = 0; g < G_N_ELEMENTS(groups); g++) {
        if (!in_list(op, groups[g].ops, groups[g].n))
            continue;
        bool all = true;
        for (guint i = 0; i < xv_len(current); i++)
            all = all && in_list(xv_str(&xv_member_at(current, i)->value), groups[g].ops,
                                 groups[g].n);
        if (all)
            return true;
    }
    bool has_hard_shutdown = false, has_hard_reboot = false;
    for (guint i = 0; i < xv_len(current); i++) {
        const char *cop = xv_str(&xv_member_at(current, i)->value);
        has_hard_shutdown |= strcmp(cop, "hard_shutdown") == 0;
        has_hard_reboot |= strcmp(cop, "hard_reboot") == 0;
    }
    if (strcmp(op, "hard_shutdown") == 0)
        return !has_hard_shutdown;
    if (strcmp(op, "hard_reboot") == 0)
        return !has_hard_shutdown && !has_hard_reboot;
    return false;
}

static int power_state_error(const DbRow *vm, unsigned states, const char *actual,
                             XapiError **err)
{
    GString *expected = g_string_new(NULL);
    for (unsigned b = 0; b < 4; b++)
        if (states & (1u << b))
            g_string_append_printf(expected, "%s%s", expected->len ? ", " : "", state_names[b]);
    g_autofree char *lower = g_ascii_strdown(actual, -1);
    xapi_error_set(err, "VM_BAD_POWER_STATE", vm->ref, expected->str, lower, NULL);
    g_string_free(expected, TRUE);
    return -1;
}

int vm_check_operation(const DbRow *vm, const char *op, XapiError **err)
{
    const Xv *blocked = db_get(vm, "blocked_operations");
    const Xv *reason = xv_struct_get(blocked, op);
    if (reason)
        return xapi_error_set(err, "OPERATION_BLOCKED", vm->ref, xv_str(reason), NULL);
    const char *power_state = xv_str(db_get(vm, "power_state"));
    unsigned states = allowed_states(op);
    if (!(states & state_bit(power_state)))
        return power_state_error(vm, states, power_state, err);
    const Xv *current = db_get(vm, "current_operations");
    if (xv_len(current) && !allowed_concurrently(op, current))
        return operations_conflict_error(vm, current, err);
    if (db_get(vm, "is_a_template")->b && !db_get(vm, "is_a_snapshot")->b) {
        const Xv *default_key = xv_struct_get(db_get(vm, "other_config"), "default_template");
        bool is_default = db_get(vm, "is_default_template")->b ||
                          (default_key && strcmp(xv_str(default_key), "true") == 0);
        bool allowed = in_list(op, template_ops, G_N_ELEMENTS(template_ops)) ||
                       ((strcmp(op, "destroy") == 0 || strcmp(op, "migrate_send") == 0) &&
                        !is_default);
        if (!allowed)
            return xapi_error_set(err, "VM_IS_TEMPLATE", vm->ref, op, NULL);
    }
    bool is_template = db_get(vm, "is_a_template")->b;
    bool is_snapshot = db_get(vm, "is_a_snapshot")->b;
    if (is_snapshot && !in_list(op, snapshot_ops, G_N_ELEMENTS(snapshot_ops)))
        return xapi_error_set(err, "VM_IS_SNAPSHOT", vm->ref, op, NULL);
    /* XAPI's check_operation_error: one VTPM per VM */
    if (strcmp(op, "create_vtpm") == 0 && xv_len(db_get(vm, "VTPMs"))) {
        char amount[16];
        g_snprintf(amount, sizeof amount, "%u", xv_len(db_get(vm, "VTPMs")));
        return xapi_error_set(err, "VTPM_MAX_AMOUNT_REACHED", amount, NULL);
    }
    if (strcmp(op, "provision") == 0 && !is_template)
        return xapi_error_set(err, "PROVISION_ONLY_ALLOWED_ON_TEMPLATE", NULL);
    if (strcmp(op, "revert") == 0 && !is_snapshot)
        return xapi_error_set(err, "REVERT_ONLY_ALLOWED_ON_SNAPSHOT", NULL);
    if (db_get(vm, "is_control_domain")->b && strcmp(op, "power_state_reset") != 0 &&
        !in_list(op, template_ops, G_N_ELEMENTS(template_ops)))
        return xapi_error_set(err, "OPERATION_NOT_ALLOWED",
                              "the control domain's power state is the host's", NULL);
    return 0;
}

/* The operations xapid implements: only these are ever offered in
 * allowed_operations, so that clients do not offer what would fail. */
static const char *const implemented_ops[] = {
    "start", "start_on", "pause", "unpause", "clean_shutdown", "clean_reboot",
    "hard_shutdown", "hard_reboot", "shutdown", "power_state_reset", "destroy", "clone",
    "copy", "snapshot", "revert", "provision", "suspend", "resume", "resume_on", "checkpoint",
    "changing_memory_limits", "changing_static_range", "changing_dynamic_range", "changing_VCPUs",
    "changing_NVRAM", "make_into_template", "create_vtpm", NULL,
};

const ObjectOperations vm_operations = {"VM", vm_check_operation, implemented_ops,
                                        vm_vtpm_refresh_for_vm};
