/* vm.c: hand-written VM messages that change or check its record: memory
 * and vCPU settings, boot and firmware settings, appliance order, and the
 * operation checks (assert_operation_valid, assert_can_boot_here, ...).
 *
 * A change runs as one write transaction that first checks the operation
 * XAPI's message forwarding takes for it (changing_memory_limits,
 * changing_VCPUs, ...), so a power state or a concurrent operation refuses
 * it as XAPI does, then refreshes allowed_operations. */
#include <string.h>

#include "bootstrap.h"
#include "dm_handlers.h"
#include "ha.h"
#include "ha_agility.h"
#include "implicit.h"
#include "operations.h"
#include "vdi_checksum.h"
#include "vm_fields.h"
#include "vm_lifecycle.h"
#include "vm_migrate.h"
#include "vm_operations.h"
#include "xenops.h"
#include "xva_url.h"

#define MiB (INT64_C(1) << 20)

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

typedef int (*VmChange)(DbRow *vm, const void *arg, XapiError **err);

typedef struct {
    const char *op; /* a vm_operations name, or NULL for none */
    VmChange change;
    const void *arg;
} VmWrite;

static int checked_change(DbRow *vm, const void *arg, XapiError **err)
{
    const VmWrite *w = arg;
    if (w->op && vm_check_operation(vm, w->op, err) < 0)
        return -1;
    return w->change(vm, w->arg, err);
}

/* Runs change on the VM under op's checks in one transaction. */
static int vm_write(Call *call, const char *vm, const char *op, VmChange change, const void *arg)
{
    VmWrite w = {op, change, arg};
    return operations_write(&vm_operations, vm, checked_change, &w, &call->error);
}

static int set_int(DbRow *vm, const char *field, int64_t value, XapiError **err)
{
    return db_set_by_name(vm, field, xv_new_int(value), err);
}

static char *int_text(int64_t v) { return g_strdup_printf("%" G_GINT64_FORMAT, v); }

static int power_state_is(const DbRow *vm, const char *expected, XapiError **err)
{
    const char *actual = xv_str(db_get(vm, "power_state"));
    if (g_ascii_strcasecmp(actual, expected) == 0)
        return 0;
    g_autofree char *want = g_ascii_strdown(expected, -1);
    g_autofree char *have = g_ascii_strdown(actual, -1);
    return xapi_error_set(err, "VM_BAD_POWER_STATE", vm->ref, want, have, NULL);
}

/* The control domain's memory and vCPUs are the host's (XAPI changes
 * dom0's only through Xen's command line and a reboot). */
static int not_control_domain(const DbRow *vm, XapiError **err)
{
    if (db_get(vm, "is_control_domain")->b)
        return xapi_error_set(err, "OPERATION_NOT_ALLOWED",
                              "the control domain's memory and vCPUs are the host's", NULL);
    return 0;
}

/* ---- memory ------------------------------------------------------------- */

static VmMemory memory_of_row(const DbRow *vm)
{
    g_autoptr(Xv) record = db_row_record(vm);
    return vm_memory_of(record);
}

static int write_memory(DbRow *vm, const VmMemory *m, XapiError **err)
{
    return set_int(vm, "memory_static_min", m->static_min, err) < 0 ||
                   set_int(vm, "memory_dynamic_min", m->dynamic_min, err) < 0 ||
                   set_int(vm, "memory_target", m->target, err) < 0 ||
                   set_int(vm, "memory_dynamic_max", m->dynamic_max, err) < 0 ||
                   set_int(vm, "memory_static_max", m->static_max, err) < 0
               ? -1
               : 0;
}

/* All four limits (target = dynamic_min, as XAPI's set_memory_limits). */
static int change_limits(DbRow *vm, const void *arg, XapiError **err)
{
    VmMemory m = *(const VmMemory *)arg;
    m.target = m.dynamic_min;
    if (not_control_domain(vm, err) < 0 || vm_memory_check_order(&m, err) < 0)
        return -1;
    return write_memory(vm, &m, err);
}

int xapi_VM_set_memory_limits(Call *call, const char *self, int64_t static_min, int64_t static_max,
                              int64_t dynamic_min, int64_t dynamic_max)
{
    VmMemory m = {static_min, dynamic_min, dynamic_min, dynamic_max, static_max};
    return vm_write(call, self, "changing_memory_limits", change_limits, &m);
}

/* set_memory: static_max and the dynamic range all at value. */
static int change_memory(DbRow *vm, const void *arg, XapiError **err)
{
    int64_t value = *(const int64_t *)arg;
    VmMemory m = {db_get(vm, "memory_static_min")->i, value, value, value, value};
    return change_limits(vm, &m, err);
}

int xapi_VM_set_memory(Call *call, const char *self, int64_t value)
{
    return vm_write(call, self, "changing_memory_limits", change_memory, &value);
}

typedef struct {
    int64_t min, max;
} Range;

static int change_static_range(DbRow *vm, const void *arg, XapiError **err)
{
    const Range *r = arg;
    VmMemory m = memory_of_row(vm);
    m.static_min = r->min;
    m.static_max = r->max;
    if (not_control_domain(vm, err) < 0 || vm_memory_check_order(&m, err) < 0)
        return -1;
    return set_int(vm, "memory_static_min", r->min, err) < 0 ? -1
           : set_int(vm, "memory_static_max", r->max, err);
}

int xapi_VM_set_memory_static_range(Call *call, const char *self, int64_t min, int64_t max)
{
    Range r = {min, max};
    return vm_write(call, self, "changing_static_range", change_static_range, &r);
}

/* set_memory_static_min/max and dynamic_min/max are one end of a range
 * whose other end is read in the same transaction (XAPI's forwarding). */
typedef struct {
    const char *field; /* the end that changes */
    int64_t value;
    VmChange change;
} RangeEnd;

static int change_range_end(DbRow *vm, const void *arg, XapiError **err)
{
    const RangeEnd *e = arg;
    bool is_static = g_str_has_prefix(e->field, "memory_static");
    bool is_min = g_str_has_suffix(e->field, "_min");
    Range r = {db_get(vm, is_static ? "memory_static_min" : "memory_dynamic_min")->i,
               db_get(vm, is_static ? "memory_static_max" : "memory_dynamic_max")->i};
    if (is_min)
        r.min = e->value;
    else
        r.max = e->value;
    return e->change(vm, &r, err);
}

static bool is_running(const DbRow *vm)
{
    return strcmp(xv_str(db_get(vm, "power_state")), "Running") == 0;
}

/* A running domain's balloon is given target, which memory_target then
 * records (XAPI's squeezer keeps it there too). */
static int balloon(DbRow *vm, int64_t target, XapiError **err)
{
    const HvDriver *hv = xenops_driver();
    if (!hv || !hv->memory_target)
        return xapi_error_set(err, "OPERATION_NOT_ALLOWED", "the hypervisor has no balloon",
                              NULL);
    if (hv->memory_target(xv_str(db_get(vm, "uuid")), target, err) < 0)
        return -1;
    return set_int(vm, "memory_target", target, err);
}

static int change_dynamic_range(DbRow *vm, const void *arg, XapiError **err)
{
    const Range *r = arg;
    VmMemory m = memory_of_row(vm);
    m.dynamic_min = m.target = r->min;
    m.dynamic_max = r->max;
    if (not_control_domain(vm, err) < 0 || vm_memory_check_order(&m, err) < 0)
        return -1;
    /* memory_target follows dynamic_min, as XAPI keeps it for a halted VM;
     * a running one is given all its range allows (no squeezing here) */
    if (write_memory(vm, &m, err) < 0)
        return -1;
    return is_running(vm) ? balloon(vm, m.dynamic_max, err) : 0;
}

int xapi_VM_set_memory_dynamic_range(Call *call, const char *self, int64_t min, int64_t max)
{
    Range r = {min, max};
    return vm_write(call, self, "changing_dynamic_range", change_dynamic_range, &r);
}

static int set_range_end(Call *call, const char *self, const char *field, int64_t value)
{
    bool is_static = g_str_has_prefix(field, "memory_static");
    RangeEnd e = {field, value, is_static ? change_static_range : change_dynamic_range};
    return vm_write(call, self, is_static ? "changing_static_range" : "changing_dynamic_range",
                    change_range_end, &e);
}

int xapi_VM_set_memory_static_min(Call *call, const char *self, int64_t value)
{
    return set_range_end(call, self, "memory_static_min", value);
}

int xapi_VM_set_memory_static_max(Call *call, const char *self, int64_t value)
{
    return set_range_end(call, self, "memory_static_max", value);
}

int xapi_VM_set_memory_dynamic_min(Call *call, const char *self, int64_t value)
{
    return set_range_end(call, self, "memory_dynamic_min", value);
}

int xapi_VM_set_memory_dynamic_max(Call *call, const char *self, int64_t value)
{
    return set_range_end(call, self, "memory_dynamic_max", value);
}

/* A target inside the dynamic range, given to the balloon. */
static int change_live_target(DbRow *vm, const void *arg, XapiError **err)
{
    int64_t target = *(const int64_t *)arg;
    VmMemory m = memory_of_row(vm);
    if (target < m.dynamic_min || target > m.dynamic_max) {
        g_autofree char *text = int_text(target);
        return xapi_error_set(err, "VALUE_NOT_SUPPORTED", "target", text,
                              "outside memory_dynamic_min..memory_dynamic_max", NULL);
    }
    return balloon(vm, target, err);
}

int xapi_VM_set_memory_target_live(Call *call, const char *self, int64_t target)
{
    return vm_write(call, self, "changing_memory_live", change_live_target, &target);
}

typedef struct {
    char *uuid;
    int64_t target;
} LiveTarget;

static int read_live_target(DbRow *vm, const void *arg, XapiError **err)
{
    LiveTarget *t = (LiveTarget *)arg;
    (void)err;
    t->uuid = g_strdup(xv_str(db_get(vm, "uuid")));
    t->target = db_get(vm, "memory_target")->i;
    return 0;
}

/* XAPI's wait: the guest within 1 MiB of its target, or
 * VM_MEMORY_TARGET_WAIT_TIMEOUT after 256 s. Polled outside the database
 * lock (the guest gives memory back at its own pace). */
#define TARGET_TOLERANCE MiB
#define TARGET_WAIT_S 256

int xapi_VM_wait_memory_target_live(Call *call, const char *self)
{
    LiveTarget t = {NULL, 0};
    if (vm_write(call, self, "awaiting_memory_live", read_live_target, &t) < 0)
        return -1;
    g_autofree char *uuid = t.uuid;
    const HvDriver *hv = xenops_driver();
    int64_t deadline = g_get_monotonic_time() + TARGET_WAIT_S * G_USEC_PER_SEC;
    for (;;) {
        int64_t actual = hv->memory_actual(uuid, &call->error);
        if (actual < 0)
            return -1;
        if (ABS(actual - t.target) <= TARGET_TOLERANCE)
            return 0;
        if (g_get_monotonic_time() > deadline)
            return xapi_error_set(&call->error, "VM_MEMORY_TARGET_WAIT_TIMEOUT", self, NULL);
        g_usleep(100 * 1000);
    }
}

/* Read-only checks on the VM in hand (read lock). */
typedef int (*VmRead)(Call *call, const DbRow *vm, const void *arg, Xv **result);

static int vm_read(Call *call, const char *self, VmRead read, const void *arg, Xv **result)
{
    db_read_begin();
    const DbRow *vm = db_lookup(cls("VM"), self);
    int rc = vm ? read(call, vm, arg, result) : implicit_handle_invalid(call, cls("VM"), self);
    db_read_end();
    return rc;
}

static int read_overhead(Call *call, const DbRow *vm, const void *arg, Xv **result)
{
    (void)call, (void)arg;
    *result = xv_new_int(vm_memory_overhead(db_get(vm, "memory_static_max")->i,
                                            db_get(vm, "VCPUs_max")->i));
    return 0;
}

int xapi_VM_compute_memory_overhead(Call *call, const char *vm, Xv **result)
{
    return vm_read(call, vm, read_overhead, NULL, result);
}

typedef struct {
    int64_t total;
    bool approximate;
} MaximiseArgs;

/* The largest memory_static_max whose domain fits in total with its
 * overhead (with 64 vCPUs when approximate, as XAPI), in whole MiB. */
static int read_maximum(Call *call, const DbRow *vm, const void *arg, Xv **result)
{
    (void)call;
    const MaximiseArgs *a = arg;
    int64_t vcpus = a->approximate ? 64 : db_get(vm, "VCPUs_max")->i;
    int64_t lo = 0, hi = MAX(a->total, 0);
    while (lo < hi) { /* the overhead grows with the size: bisect */
        int64_t mid = lo + (hi - lo + 1) / 2;
        if (mid + vm_memory_overhead(mid, vcpus) <= a->total)
            lo = mid;
        else
            hi = mid - 1;
    }
    *result = xv_new_int(lo / MiB * MiB);
    return 0;
}

int xapi_VM_maximise_memory(Call *call, const char *self, int64_t total, bool approximate,
                            Xv **result)
{
    MaximiseArgs a = {total, approximate};
    return vm_read(call, self, read_maximum, &a, result);
}

/* ---- vCPUs -------------------------------------------------------------- */

static int change_vcpus_max(DbRow *vm, const void *arg, XapiError **err)
{
    int64_t value = *(const int64_t *)arg;
    if (not_control_domain(vm, err) < 0 ||
        vm_vcpus_check(db_get(vm, "VCPUs_at_startup")->i, value, value, err) < 0)
        return -1;
    return set_int(vm, "VCPUs_max", value, err);
}

int xapi_VM_set_VCPUs_max(Call *call, const char *self, int64_t value)
{
    return vm_write(call, self, "changing_VCPUs", change_vcpus_max, &value);
}

/* XAPI takes no operation for it: the number applies at the next start. */
static int change_vcpus_at_startup(DbRow *vm, const void *arg, XapiError **err)
{
    int64_t value = *(const int64_t *)arg;
    if (not_control_domain(vm, err) < 0 ||
        vm_vcpus_check(value, db_get(vm, "VCPUs_max")->i, value, err) < 0)
        return -1;
    return set_int(vm, "VCPUs_at_startup", value, err);
}

int xapi_VM_set_VCPUs_at_startup(Call *call, const char *self, int64_t value)
{
    return vm_write(call, self, NULL, change_vcpus_at_startup, &value);
}

typedef struct {
    int64_t nvcpu;
    char *uuid; /* out */
} LiveVcpus;

static int check_vcpus_live(DbRow *vm, const void *arg, XapiError **err)
{
    LiveVcpus *v = (LiveVcpus *)arg;
    int64_t max = db_get(vm, "VCPUs_max")->i;
    if (v->nvcpu < 1 || v->nvcpu > max) {
        g_autofree char *why = g_strdup_printf("nvcpu %" G_GINT64_FORMAT " is not in 1..VCPUs_max"
                                               " (%" G_GINT64_FORMAT ")", v->nvcpu, max);
        return xapi_error_set(err, "OPERATION_NOT_ALLOWED", why, NULL);
    }
    v->uuid = g_strdup(xv_str(db_get(vm, "uuid")));
    return 0;
}

static int record_vcpus_live(DbRow *vm, const void *arg, XapiError **err)
{
    DbRow *metrics = db_lookup(cls("VM_metrics"), xv_str(db_get(vm, "metrics")));
    return metrics ? set_int(metrics, "VCPUs_number", *(const int64_t *)arg, err) : 0;
}

/* vCPU hot-plug through the driver (ACPI: the guest takes a new vCPU
 * online itself, and lets go of one within 30 s), outside the database
 * lock, then VM_metrics.VCPUs_number. */
#define VCPU_UNPLUG_TIMEOUT_MS 30000

int xapi_VM_set_VCPUs_number_live(Call *call, const char *self, int64_t nvcpu)
{
    LiveVcpus v = {nvcpu, NULL};
    if (vm_write(call, self, "changing_VCPUs_live", check_vcpus_live, &v) < 0)
        return -1;
    g_autofree char *uuid = v.uuid;
    const HvDriver *hv = xenops_driver();
    int rc = hv->vcpus_set(uuid, nvcpu, VCPU_UNPLUG_TIMEOUT_MS, &call->error);
    if (rc > 0)
        return xapi_error_set(&call->error, "OPERATION_NOT_ALLOWED",
                              "the guest did not let go of its vCPUs", NULL);
    if (rc < 0)
        return -1;
    return vm_write(call, self, NULL, record_vcpus_live, &nvcpu);
}

static int refuse_params_live(DbRow *vm, const void *arg, XapiError **err)
{
    (void)vm, (void)arg;
    return xapi_error_set(err, "NOT_IMPLEMENTED", "add_to_VCPUs_params_live", NULL); /* as XAPI */
}

int xapi_VM_add_to_VCPUs_params_live(Call *call, const char *self, const char *key,
                                     const char *value)
{
    (void)key, (void)value;
    return vm_write(call, self, "changing_VCPUs_live", refuse_params_live, NULL);
}

/* ---- boot --------------------------------------------------------------- */

/* HVM_boot_policy and domain_type follow each other (xapi_vm_helpers.ml
 * derive_domain_type, derive_hvm_boot_policy). */
static int change_boot_policy(DbRow *vm, const void *arg, XapiError **err)
{
    const char *policy = arg;
    const char *domain_type = *policy ? "hvm" : "pv";
    return db_set_by_name(vm, "domain_type", xv_new_static_string(domain_type), err) < 0
               ? -1
               : db_set_by_name(vm, "HVM_boot_policy", xv_new_string(policy), err);
}

int xapi_VM_set_HVM_boot_policy(Call *call, const char *self, const char *value)
{
    return vm_write(call, self, NULL, change_boot_policy, value);
}

static int change_domain_type(DbRow *vm, const void *arg, XapiError **err)
{
    const char *domain_type = arg;
    if (strcmp(domain_type, "unspecified") == 0)
        return xapi_error_set(err, "INVALID_VALUE", "domain_type", domain_type, NULL);
    const char *policy = strcmp(domain_type, "hvm") == 0 ? "BIOS order" : "";
    return db_set_by_name(vm, "domain_type", xv_new_static_string(domain_type), err) < 0
               ? -1
               : db_set_by_name(vm, "HVM_boot_policy", xv_new_string(policy), err);
}

int xapi_VM_set_domain_type(Call *call, const char *self, const char *value)
{
    return vm_write(call, self, NULL, change_domain_type, value);
}

typedef struct {
    const char *field;
    Xv *value;         /* taken by the change */
    const char *check; /* a non-negative int's name in INVALID_VALUE, or NULL */
} FieldValue;

static int change_field(DbRow *vm, const void *arg, XapiError **err)
{
    const FieldValue *f = arg;
    if (f->check && f->value->i < 0) {
        g_autofree char *what = g_strdup_printf("%s must be non-negative", f->check);
        g_autofree char *text = int_text(f->value->i);
        return xapi_error_set(err, "INVALID_VALUE", what, text, NULL);
    }
    return db_set_by_name(vm, f->field, xv_dup(f->value), err);
}

static int set_field(Call *call, const char *self, const char *op, const char *field, Xv *value,
                     const char *check)
{
    g_autoptr(Xv) owned = value;
    FieldValue f = {field, owned, check};
    return vm_write(call, self, op, change_field, &f);
}

/* Any of XAPI's values is recorded; VM.start refuses those it would not
 * honour (vm_fields.c), as XAPI validates at start. */
int xapi_VM_set_actions_after_crash(Call *call, const char *self, const char *value)
{
    return set_field(call, self, NULL, "actions_after_crash", xv_new_static_string(value), NULL);
}

int xapi_VM_set_order(Call *call, const char *self, int64_t value)
{
    return set_field(call, self, NULL, "order", xv_new_int(value), "order");
}

/* HA's protection (src/pool/ha.c): XAPI's checks, the plan kept. */
int xapi_VM_set_ha_restart_priority(Call *call, const char *self, const char *value)
{
    return ha_set_restart_priority(self, value, &call->error);
}

/* agility.ml: whether the VM could restart on any host (ha_agility.c). */
int xapi_VM_assert_agile(Call *call, const char *self)
{
    return ha_vm_assert_agile(self, &call->error);
}

/* Deprecated since Boston: XAPI maps it onto the priority. */
int xapi_VM_set_ha_always_run(Call *call, const char *self, bool value)
{
    return ha_set_restart_priority(self, value ? "restart" : "", &call->error);
}

int xapi_VM_set_start_delay(Call *call, const char *self, int64_t value)
{
    return set_field(call, self, NULL, "start_delay", xv_new_int(value), "start_delay");
}

int xapi_VM_set_shutdown_delay(Call *call, const char *self, int64_t value)
{
    return set_field(call, self, NULL, "shutdown_delay", xv_new_int(value), "shutdown_delay");
}

/* ---- firmware: NVRAM, BIOS strings, vendor device ------------------------ */

int xapi_VM_set_NVRAM(Call *call, const char *self, const Xv *value)
{
    return set_field(call, self, "changing_NVRAM", "NVRAM", xv_dup(value), NULL);
}

typedef struct {
    const char *key, *value; /* value NULL: remove */
} MapEntry;

static int change_nvram_entry(DbRow *vm, const void *arg, XapiError **err)
{
    const MapEntry *e = arg;
    Xv *nvram = xv_dup(db_get(vm, "NVRAM"));
    if (e->value)
        xv_struct_set_string(nvram, e->key, e->value);
    else
        xv_struct_remove(nvram, e->key);
    return db_set_by_name(vm, "NVRAM", nvram, err);
}

int xapi_VM_add_to_NVRAM(Call *call, const char *self, const char *key, const char *value)
{
    MapEntry e = {key, value};
    return vm_write(call, self, "changing_NVRAM", change_nvram_entry, &e);
}

int xapi_VM_remove_from_NVRAM(Call *call, const char *self, const char *key)
{
    MapEntry e = {key, NULL};
    return vm_write(call, self, "changing_NVRAM", change_nvram_entry, &e);
}

/* XAPI's Constants.generic_bios_strings, which set_bios_strings fills in. */
static const char *const generic_bios_strings[][2] = {
    {"bios-vendor", "Xen"},
    {"bios-version", ""},
    {"system-manufacturer", "Xen"},
    {"system-product-name", "HVM domU"},
    {"system-version", ""},
    {"system-serial-number", ""},
    {"baseboard-manufacturer", ""},
    {"baseboard-product-name", ""},
    {"baseboard-version", ""},
    {"baseboard-serial-number", ""},
    {"baseboard-asset-tag", ""},
    {"baseboard-location-in-chassis", ""},
    {"enclosure-asset-tag", ""},
    {"hp-rombios", ""},
    {"oem-1", "Xen"},
    {"oem-2", "MS_VM_CERT/SHA1/bdbeb6e0a816d43fa6d3fe8aaef04c2bad9d3e3d"},
};
#define BIOS_STRING_LIMIT 512
/* the keys a client may set: the first 13 generic ones */
#define N_SETTABLE_BIOS_KEYS 13

static bool settable_bios_key(const char *key)
{
    for (size_t i = 0; i < N_SETTABLE_BIOS_KEYS; i++)
        if (strcmp(generic_bios_strings[i][0], key) == 0)
            return true;
    return false;
}

/* XAPI's assert_valid_bios_strings, with its messages. */
static int check_bios_strings(const Xv *value, XapiError **err)
{
    for (guint i = 0; i < xv_len(value); i++) {
        const XvMember *m = xv_member_at(value, i);
        const char *v = xv_str(&m->value);
        size_t len = strlen(v);
        if (!settable_bios_key(m->key))
            return xapi_error_set(err, "INVALID_VALUE", m->key, "Unknown key", NULL);
        if (len == 0)
            return xapi_error_set(err, "INVALID_VALUE", m->key, "Value provided is empty", NULL);
        if (len > BIOS_STRING_LIMIT) {
            g_autofree char *why = g_strdup_printf("%s has length more than %d characters", v,
                                                   BIOS_STRING_LIMIT);
            return xapi_error_set(err, "INVALID_VALUE", m->key, why, NULL);
        }
        for (const char *c = v; *c; c++)
            if (*c < 32 || *c >= 127) {
                g_autofree char *why = g_strdup_printf("%s has non-printable ASCII characters", v);
                return xapi_error_set(err, "INVALID_VALUE", m->key, why, NULL);
            }
    }
    return 0;
}

static int bios_strings_unset(const DbRow *vm, XapiError **err)
{
    if (xv_len(db_get(vm, "bios_strings")))
        return xapi_error_set(err, "VM_BIOS_STRINGS_ALREADY_SET", NULL);
    return 0;
}

static int change_bios_strings(DbRow *vm, const void *arg, XapiError **err)
{
    const Xv *value = arg;
    if (bios_strings_unset(vm, err) < 0 || check_bios_strings(value, err) < 0)
        return -1;
    Xv *strings = xv_new_struct();
    for (size_t i = 0; i < G_N_ELEMENTS(generic_bios_strings); i++) {
        const Xv *given = xv_struct_get(value, generic_bios_strings[i][0]);
        xv_struct_set_string(strings, generic_bios_strings[i][0],
                             given ? xv_str(given) : generic_bios_strings[i][1]);
    }
    return db_set_by_name(vm, "bios_strings", strings, err);
}

int xapi_VM_set_bios_strings(Call *call, const char *self, const Xv *value)
{
    return vm_write(call, self, NULL, change_bios_strings, value);
}

/* The host's strings, and the VM's affinity to that host (XAPI's
 * copy_bios_strings: an OEM guest bound to the host it was licensed on). */
static int change_copy_bios_strings(DbRow *vm, const void *arg, XapiError **err)
{
    const char *host_ref = arg;
    DbRow *host = db_lookup(cls("host"), host_ref);
    if (!host)
        return xapi_error_set(err, "HANDLE_INVALID", "host", host_ref, NULL);
    if (bios_strings_unset(vm, err) < 0)
        return -1;
    return db_set_by_name(vm, "bios_strings", xv_dup(db_get(host, "bios_strings")), err) < 0
               ? -1
               : db_set_by_name(vm, "affinity", xv_new_string(host_ref), err);
}

int xapi_VM_copy_bios_strings(Call *call, const char *vm, const char *host)
{
    return vm_write(call, vm, NULL, change_copy_bios_strings, host);
}

/* Halted only (XAPI's assert_initial_power_state_is); a vendor device is
 * a Xen platform device that QEMU here cannot give, so only false. */
static int change_vendor_device(DbRow *vm, const void *arg, XapiError **err)
{
    bool value = *(const bool *)arg;
    if (power_state_is(vm, "Halted", err) < 0)
        return -1;
    if (value)
        return xapi_error_set(err, "VALUE_NOT_SUPPORTED", "has_vendor_device", "true",
                              "the XenServer vendor device is a Xen platform device", NULL);
    return db_set_by_name(vm, "has_vendor_device", xv_new_bool(false), err);
}

int xapi_VM_set_has_vendor_device(Call *call, const char *self, bool value)
{
    return vm_write(call, self, NULL, change_vendor_device, &value);
}

/* ---- suspend image, appliance ------------------------------------------- */

/* XAPI's set_suspend_VDI: only a suspended VM, and another image only
 * when its contents are the same (both VDIs' MD5s, taken with no lock
 * held, else SUSPEND_VDI_REPLACEMENT_IS_NOT_IDENTICAL). The write checks
 * again that the VM still has the image that was compared. */
typedef struct {
    const char *vdi;  /* the new suspend_VDI */
    const char *was;  /* the one it was compared with; NULL: checks only */
} SuspendVdiChange;

static int change_suspend_vdi(DbRow *vm, const void *arg, XapiError **err)
{
    const SuspendVdiChange *c = arg;
    if (power_state_is(vm, "Suspended", err) < 0)
        return -1;
    DbRow *vdi = db_lookup(cls("VDI"), c->vdi);
    if (!vdi)
        return xapi_error_set(err, "HANDLE_INVALID", "VDI", c->vdi, NULL);
    if (strcmp(xv_str(db_get(vdi, "type")), "cbt_metadata") == 0)
        return xapi_error_set(err, "VDI_INCOMPATIBLE_TYPE", vdi->ref, "cbt_metadata", NULL);
    const char *now = xv_str(db_get(vm, "suspend_VDI"));
    if (!c->was || strcmp(now, c->vdi) == 0)
        return 0;
    if (strcmp(now, c->was) != 0)
        return xapi_error_set(err, "OTHER_OPERATION_IN_PROGRESS", "VM", vm->ref, NULL);
    return db_set_by_name(vm, "suspend_VDI", xv_new_string(c->vdi), err);
}

/* "<uuid> : <md5>", as XAPI's error names each VDI. */
static char *named_checksum(const char *vdi_ref, XapiError **err)
{
    g_autofree char *md5 = vdi_checksum_md5(vdi_ref, err);
    if (!md5)
        return NULL;
    db_read_begin();
    DbRow *vdi = db_lookup(cls("VDI"), vdi_ref);
    char *named = g_strdup_printf("%s : %s", vdi ? xv_str(db_get(vdi, "uuid")) : vdi_ref, md5);
    db_read_end();
    return named;
}

int xapi_VM_set_suspend_VDI(Call *call, const char *self, const char *value)
{
    SuspendVdiChange checks = {value, NULL};
    if (vm_write(call, self, NULL, change_suspend_vdi, &checks) < 0)
        return -1;
    db_read_begin();
    DbRow *vm = db_lookup(cls("VM"), self);
    g_autofree char *was = vm ? g_strdup(xv_str(db_get(vm, "suspend_VDI"))) : NULL;
    db_read_end();
    if (!was)
        return xapi_error_set(&call->error, "HANDLE_INVALID", "VM", self, NULL);
    if (strcmp(was, value) == 0)
        return 0;
    g_autofree char *src = named_checksum(was, &call->error);
    g_autofree char *dst = src ? named_checksum(value, &call->error) : NULL;
    if (!dst)
        return -1;
    if (strcmp(strchr(src, ':'), strchr(dst, ':')) != 0)
        return xapi_error_set(&call->error, "SUSPEND_VDI_REPLACEMENT_IS_NOT_IDENTICAL", src,
                              dst, NULL);
    SuspendVdiChange change = {value, was};
    return vm_write(call, self, NULL, change_suspend_vdi, &change);
}

static int change_appliance(DbRow *vm, const void *arg, XapiError **err)
{
    const char *appliance = arg;
    if (db_get(vm, "is_control_domain")->b || db_get(vm, "is_a_template")->b ||
        db_get(vm, "is_a_snapshot")->b)
        return xapi_error_set(err, "OPERATION_NOT_ALLOWED",
                              "Control domains, templates and snapshots cannot be assigned to "
                              "appliances.", NULL);
    if (*appliance && strcmp(appliance, "OpaqueRef:NULL") != 0 &&
        !db_lookup(cls("VM_appliance"), appliance))
        return xapi_error_set(err, "HANDLE_INVALID", "VM_appliance", appliance, NULL);
    return db_set_by_name(vm, "appliance", xv_new_string(appliance), err);
}

int xapi_VM_set_appliance(Call *call, const char *self, const char *value)
{
    return vm_write(call, self, NULL, change_appliance, value);
}

/* ---- operation checks --------------------------------------------------- */

static int read_operation_valid(Call *call, const DbRow *vm, const void *arg, Xv **result)
{
    (void)result;
    return vm_check_operation(vm, arg, &call->error);
}

int xapi_VM_assert_operation_valid(Call *call, const char *self, const char *op)
{
    return vm_read(call, self, read_operation_valid, op, NULL);
}

static int nothing(DbRow *vm, const void *arg, XapiError **err)
{
    (void)vm, (void)arg, (void)err;
    return 0;
}

int xapi_VM_update_allowed_operations(Call *call, const char *self)
{
    return vm_write(call, self, NULL, nothing, NULL); /* the write refreshes them */
}

static int read_cooperative(Call *call, const DbRow *vm, const void *arg, Xv **result)
{
    (void)call, (void)vm, (void)arg;
    *result = xv_new_bool(true); /* XAPI's answer for this deprecated message */
    return 0;
}

int xapi_VM_get_cooperative(Call *call, const char *self, Xv **result)
{
    return vm_read(call, self, read_cooperative, NULL, result);
}

/* The record the domain booted with: XAPI answers with the current one. */
static int read_boot_record(Call *call, const DbRow *vm, const void *arg, Xv **result)
{
    (void)arg;
    if (vm_check_operation(vm, "get_boot_record", &call->error) < 0)
        return -1;
    *result = db_row_record(vm);
    return 0;
}

int xapi_VM_get_boot_record(Call *call, const char *self, Xv **result)
{
    return vm_read(call, self, read_boot_record, NULL, result);
}

static Xv *record_of(const char *vm_ref)
{
    db_read_begin();
    const DbRow *vm = db_lookup(cls("VM"), vm_ref);
    Xv *record = vm ? db_row_record(vm) : NULL;
    db_read_end();
    return record;
}

/* The record's checks, then host's: this host's own (its CPUs, its free
 * memory as the start will see it) here; any host's (live, enabled, SRs,
 * networks, memory) in a pool. */
static int boot_here_check(const char *vm, const Xv *record, const char *host, XapiError **err)
{
    g_autofree char *here = bootstrap_this_host();
    if (vm_check_record(vm, record, err) < 0)
        return -1;
    if (strcmp(host, here) == 0 && vm_check_bootable(vm, record, err) < 0)
        return -1;
    db_read_begin();
    DbRow *row = db_lookup(cls("VM"), vm);
    int rc = row ? vm_host_can_run(row, host, err)
                 : xapi_error_set(err, "HANDLE_INVALID", "VM", vm, NULL);
    db_read_end();
    return rc;
}

int xapi_VM_assert_can_boot_here(Call *call, const char *self, const char *host)
{
    g_autoptr(Xv) record = record_of(self);
    if (!record)
        return implicit_handle_invalid(call, cls("VM"), self);
    return boot_here_check(self, record, host, &call->error);
}

static bool collect_host(DbRow *row, void *ctx)
{
    g_ptr_array_add(ctx, g_strdup(row->ref));
    return true;
}

/* The hosts where assert_can_boot_here passes. */
int xapi_VM_get_possible_hosts(Call *call, const char *vm, Xv **result)
{
    g_autoptr(Xv) record = record_of(vm);
    if (!record)
        return implicit_handle_invalid(call, cls("VM"), vm);
    g_autoptr(GPtrArray) hosts = g_ptr_array_new_with_free_func(g_free);
    db_read_begin();
    db_foreach(cls("host"), collect_host, hosts);
    db_read_end();
    *result = xv_new_array();
    for (guint i = 0; i < hosts->len; i++) {
        g_autoptr(XapiError) why_not = NULL;
        if (boot_here_check(vm, record, hosts->pdata[i], &why_not) == 0)
            xv_array_append_string(*result, hosts->pdata[i]);
    }
    return 0;
}

/* ---- pool_migrate ------------------------------------------------------------------ */

/* options: "live" (default true) and "force" (XAPI's skips CPU checks and
 * strict operation checks, neither of which xapid makes: nothing to
 * skip); any other key is refused. */
static int migrate_options(Call *call, const Xv *options, bool *live)
{
    *live = true;
    for (guint i = 0; options && i < xv_len(options); i++) {
        const XvMember *m = xv_member_at(options, i);
        const char *value = xv_str(&m->value);
        bool is_true = strcmp(value, "true") == 0, is_false = strcmp(value, "false") == 0;
        if ((strcmp(m->key, "live") == 0 || strcmp(m->key, "force") == 0) && (is_true || is_false)) {
            if (strcmp(m->key, "live") == 0)
                *live = is_true;
            continue;
        }
        return xapi_error_set(&call->error, "VALUE_NOT_SUPPORTED", m->key, value,
                              "pool_migrate takes the options live and force (true or false)",
                              NULL);
    }
    return 0;
}

int xapi_VM_pool_migrate(Call *call, const char *vm, const char *host, const Xv *options)
{
    bool live;
    if (migrate_options(call, options, &live) < 0 ||
        vm_migrate_check(vm, host, &call->error) < 0)
        return -1;
    return vm_pool_migrate(call, vm, host, live);
}

/* Within the pool only: dest names one of its hosts ("host", as
 * host.migrate_receive's map has it); no storage or network remapping. */
int xapi_VM_assert_can_migrate(Call *call, const char *vm, const Xv *dest, bool live,
                               const Xv *vdi_map, const Xv *vif_map, const Xv *options,
                               const Xv *vgpu_map)
{
    const Xv *host = dest ? xv_struct_get(dest, "host") : NULL;
    if (!host || !*xv_str(host))
        return xapi_error_set(&call->error, "VALUE_NOT_SUPPORTED", "dest", "",
                              "only a migration within the pool (dest:host) is supported", NULL);
    const char *maps[] = {"vdi_map", "vif_map", "vgpu_map"};
    const Xv *given[] = {vdi_map, vif_map, vgpu_map};
    for (unsigned i = 0; i < G_N_ELEMENTS(maps); i++)
        if (given[i] && xv_len(given[i]))
            return xapi_error_set(&call->error, "VALUE_NOT_SUPPORTED", maps[i], "",
                                  "storage and network remapping are not supported", NULL);
    bool unused_live;
    if (migrate_options(call, options, &unused_live) < 0)
        return -1;
    return vm_migrate_check(vm, xv_str(host), &call->error);
}

/* ---- import ---------------------------------------------------------------------- */

/* An XVA fetched from url, as PUT /import takes one (xva_url.c). */
int xapi_VM_import(Call *call, const char *url, const char *sr, bool full_restore, bool force,
                   Xv **result)
{
    return xva_import_url(url, sr, full_restore, force, call->task_ref, result, &call->error);
}

/* ---- triggers and keys (XAPI answers NOT_IMPLEMENTED to both; xapid
 * gives them QEMU's meaning) ---------------------------------------------- */

static int check_running(DbRow *vm, const void *arg, XapiError **err)
{
    if (power_state_is(vm, "Running", err) < 0)
        return -1;
    *(char **)arg = g_strdup(xv_str(db_get(vm, "uuid")));
    return 0;
}

int xapi_VM_send_trigger(Call *call, const char *vm, const char *trigger)
{
    bool nmi = strcmp(trigger, "nmi") == 0, power = strcmp(trigger, "power") == 0;
    if (!nmi && !power) {
        static const char *const xen_only[] = {"reset", "init", "sleep", "s3resume"};
        for (size_t i = 0; i < G_N_ELEMENTS(xen_only); i++)
            if (strcmp(trigger, xen_only[i]) == 0)
                return xapi_error_set(&call->error, "VALUE_NOT_SUPPORTED", "trigger", trigger,
                                      "QEMU has nmi and power (the ACPI power button)", NULL);
        return xapi_error_set(&call->error, "INVALID_VALUE", "trigger", trigger, NULL);
    }
    g_autofree char *uuid = NULL;
    if (vm_write(call, vm, NULL, check_running, &uuid) < 0)
        return -1;
    const HvDriver *hv = xenops_driver();
    return nmi ? hv->nmi(uuid, &call->error) : hv->request_shutdown(uuid, &call->error);
}

int xapi_VM_send_sysrq(Call *call, const char *vm, const char *key)
{
    if (strlen(key) != 1 || !(g_ascii_islower(*key) || g_ascii_isdigit(*key)))
        return xapi_error_set(&call->error, "INVALID_VALUE", "key", key, NULL);
    g_autofree char *uuid = NULL;
    if (vm_write(call, vm, NULL, check_running, &uuid) < 0)
        return -1;
    const char *const qcodes[] = {"alt", "sysrq", key, NULL};
    return xenops_driver()->send_keys(uuid, qcodes, &call->error);
}

int xapi_VM_query_services(Call *call, const char *self, Xv **result)
{
    (void)self, (void)result;
    return xapi_error_set(&call->error, "NOT_IMPLEMENTED", "query_services", NULL); /* as XAPI */
}
