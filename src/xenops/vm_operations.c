/* vm_operations.c: VM operation checks and locks. */
#include "vm_operations.h"

#include <string.h>

#include "implicit.h"

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

static int concurrency_error(const DbRow *vm, const Xv *current, XapiError **err)
{
    if (xv_len(current) == 1) {
        const XvMember *m = xv_member_at(current, 0);
        return xapi_error_set(err, "OTHER_OPERATION_IN_PROGRESS", "VM", vm->ref,
                              xv_str(&m->value), m->key, NULL);
    }
    GString *ops = g_string_new("{"), *tasks = g_string_new("{");
    for (guint i = 0; i < xv_len(current); i++) {
        const XvMember *m = xv_member_at(current, i);
        g_string_append_printf(ops, "%s%s", i ? "," : "", xv_str(&m->value));
        g_string_append_printf(tasks, "%s%s", i ? "," : "", m->key);
    }
    g_string_append_c(ops, '}');
    g_string_append_c(tasks, '}');
    xapi_error_set(err, "OTHER_OPERATION_IN_PROGRESS", "VM", vm->ref, ops->str, tasks->str,
                   NULL);
    g_string_free(ops, TRUE);
    g_string_free(tasks, TRUE);
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
        return concurrency_error(vm, current, err);
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
    "hard_shutdown", "hard_reboot", "shutdown", "power_state_reset", "destroy",
};

static Xv *allowed_operations(const DbRow *vm)
{
    const DmField *field = dm_field_by_name(vm->cls, "allowed_operations");
    const DmEnum *ops = field->type->elem->enumeration;
    Xv *allowed = xv_new_array();
    for (size_t i = 0; i < G_N_ELEMENTS(implemented_ops); i++) {
        if (vm_check_operation(vm, implemented_ops[i], NULL) == 0)
            xv_array_append(allowed,
                            xv_new_static_string(dm_enum_value(ops, implemented_ops[i])));
    }
    return allowed;
}

void vm_fill_allowed_operations(DbRow *vm)
{
    db_row_put(vm, "allowed_operations", allowed_operations(vm));
}

int vm_update_allowed_operations(DbRow *vm, XapiError **err)
{
    const DmField *field = dm_field_by_name(vm->cls, "allowed_operations");
    Xv *allowed = allowed_operations(vm);
    if (xv_equal(allowed, db_get(vm, "allowed_operations"))) {
        xv_free(allowed);
        return 0;
    }
    return db_set(vm, field, allowed, err);
}

int vm_write(const char *vm_ref, VmWriteFn fn, const void *arg, XapiError **err)
{
    if (db_write_begin(err) < 0)
        return -1;
    DbRow *vm = db_lookup(dm_class_by_name("VM"), vm_ref);
    if (!vm) {
        db_write_abort();
        return xapi_error_set(err, "HANDLE_INVALID", "VM", vm_ref, NULL);
    }
    if (fn(vm, arg, err) < 0 || vm_update_allowed_operations(vm, err) < 0) {
        db_write_abort();
        return -1;
    }
    return db_write_commit(err);
}

typedef struct {
    const char *op;
    const char *task_ref;
} OperationEntry;

static int add_operation(DbRow *vm, const void *arg, XapiError **err)
{
    const OperationEntry *e = arg;
    if (vm_check_operation(vm, e->op, err) < 0)
        return -1;
    const DmField *field = dm_field_by_name(vm->cls, "current_operations");
    const char *member = dm_enum_value(field->type->elem->enumeration, e->op);
    g_assert(member); /* callers name operations of the enum */
    Xv *current = xv_dup(db_get(vm, "current_operations"));
    xv_struct_set(current, e->task_ref, xv_new_static_string(member));
    return db_set(vm, field, current, err);
}

static int remove_operation(DbRow *vm, const void *arg, XapiError **err)
{
    Xv *current = xv_dup(db_get(vm, "current_operations"));
    xv_struct_remove(current, arg);
    return db_set_by_name(vm, "current_operations", current, err);
}

int vm_operation_begin(const char *vm_ref, const char *op, const char *task_ref,
                       XapiError **err)
{
    OperationEntry e = {op, task_ref};
    return vm_write(vm_ref, add_operation, &e, err);
}

void vm_operation_end(const char *vm_ref, const char *task_ref)
{
    g_autoptr(XapiError) err = NULL;
    /* A VM that the operation destroyed has nothing left to clear. */
    if (vm_write(vm_ref, remove_operation, task_ref, &err) < 0 &&
        strcmp(err->code, "HANDLE_INVALID") != 0)
        g_warning("VM %s: could not clear operation %s: %s", vm_ref, task_ref, err->code);
}
