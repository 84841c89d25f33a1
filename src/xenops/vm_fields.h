/* vm_fields.h: what the VM's memory and vCPU fields must satisfy (XAPI's
 * rules and codes), and which fields VM.start refuses because the QEMU
 * driver would not honour them (docs/compat.md lists them from here). */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "xapi_error.h"
#include "xv.h"

typedef struct {
    int64_t static_min, dynamic_min, target, dynamic_max, static_max;
} VmMemory;

/* The VM's constraints as recorded (record: VM.get_record's struct). */
VmMemory vm_memory_of(const Xv *record);
/* static_min <= dynamic_min <= dynamic_max <= static_max, else
 * MEMORY_CONSTRAINT_VIOLATION_ORDER [] (XAPI's assert_valid). */
int vm_memory_check_order(const VmMemory *m, XapiError **err);
/* What QEMU takes beyond the guest's RAM (an estimate: the process, the
 * VGA memory, per-vCPU state and the guest's page tracking). */
int64_t vm_memory_overhead(int64_t static_max, int64_t vcpus_max);

/* 0 < at_startup <= max, else XAPI's INVALID_VALUE ["VCPU values must
 * satisfy: 0 < VCPUs_at_startup ≤ VCPUs_max"; value] naming value. */
int vm_vcpus_check(int64_t at_startup, int64_t max, int64_t value, XapiError **err);

/* The checks VM.start (and VM.assert_can_boot_here) make on the record:
 * XAPI's validate_basic_parameters (vCPUs, memory, actions_after_crash),
 * then every field the QEMU driver would not honour, refused with
 * VALUE_NOT_SUPPORTED [field, value, reason]. */
int vm_fields_check_start(const Xv *record, XapiError **err);

/* VCPUs_params:mask "0,2,3": each a CPU below ncpus; appended to cpus
 * (ints) when given. */
bool vm_fields_parse_mask(const char *mask, int64_t ncpus, GArray *cpus);

/* The "VM fields at VM.start" section of docs/compat.md. */
void vm_fields_markdown(GString *out);
