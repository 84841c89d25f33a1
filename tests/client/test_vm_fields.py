"""VM fields as XAPI checks them, on the sim driver: enums in any case and
empty refs as nova and the Java SDK send them, the memory and vCPU setters
with every constraint error, XAPI's power-state rules for the setters,
VM.provision, and the fields VM.start refuses rather than ignore."""
import base64
import os
import time

import pytest

from sim_daemon import api, daemon  # noqa: F401 (fixtures)
from xapid_daemon import err, ok

MiB = 1 << 20
VCPU_RULE = "VCPU values must satisfy: 0 < VCPUs_at_startup ≤ VCPUs_max"


def new_vm(api, **fields):
    proxy, s = api
    record = {"name_label": "fields", "memory_static_max": str(256 * MiB),
              "memory_dynamic_max": str(256 * MiB), "memory_dynamic_min": str(256 * MiB),
              "memory_static_min": str(64 * MiB),
              "VCPUs_max": "2", "VCPUs_at_startup": "1",
              "actions_after_shutdown": "destroy", "actions_after_reboot": "restart",
              "actions_after_crash": "destroy"}
    record.update(fields)
    return ok(proxy.VM.create(s, record))


def running_vm(api, **fields):
    proxy, s = api
    vm = new_vm(api, **fields)
    ok(proxy.VM.start(s, vm, False, False))
    return vm


def memory(api, vm):
    proxy, s = api
    rec = ok(proxy.VM.get_record(s, vm))
    return tuple(int(rec[f]) for f in ("memory_static_min", "memory_dynamic_min",
                                        "memory_target", "memory_dynamic_max",
                                        "memory_static_max"))


def gone(api, *vms):
    proxy, s = api
    for vm in vms:
        if ok(proxy.VM.get_power_state(s, vm)) != "Halted":
            ok(proxy.VM.hard_shutdown(s, vm))
        ok(proxy.VM.destroy(s, vm))


# ---- input as XAPI accepts it ---------------------------------------------

def test_nova_record_with_empty_affinity_and_any_case(api):
    """nova's VM.create record (vm_utils.create_vm): affinity '' is stored as
    given and names no host; its VBD and VDI enums in its spellings."""
    proxy, s = api
    mem = str(256 * MiB)
    vm = ok(proxy.VM.create(s, {
        "actions_after_crash": "Destroy", "actions_after_reboot": "RESTART",
        "actions_after_shutdown": "destroy", "affinity": "", "blocked_operations": {},
        "HVM_boot_params": {}, "HVM_boot_policy": "", "is_a_template": False,
        "memory_dynamic_min": mem, "memory_dynamic_max": mem, "memory_static_min": "0",
        "memory_static_max": mem, "memory_target": mem, "name_description": "",
        "name_label": "nova", "other_config": {"nova_uuid": "x"}, "PCI_bus": "",
        "platform": {"acpi": "true", "apic": "true", "pae": "true", "timeoffset": "0"},
        "PV_args": "", "PV_bootloader": "", "PV_bootloader_args": "", "PV_kernel": "",
        "PV_legacy_args": "", "PV_ramdisk": "", "recommendations": "", "tags": [],
        "user_version": "0", "VCPUs_at_startup": "1", "VCPUs_max": "1", "VCPUs_params": {},
        "xenstore_data": {"vm-data/allowvssprovider": "false"}, "power_state": "HALTED"}))
    rec = ok(proxy.VM.get_record(s, vm))
    assert rec["affinity"] == ""
    assert (rec["actions_after_crash"], rec["actions_after_reboot"]) == ("destroy", "restart")
    assert rec["power_state"] == "Halted"
    sr = ok(proxy.pool.get_default_SR(s, ok(proxy.pool.get_all(s))[0]))
    vdi = ok(proxy.VDI.create(s, {"name_label": "nova disk", "SR": sr,
                                  "virtual_size": str(MiB), "type": "User",
                                  "sharable": False, "read_only": False, "other_config": {}}))
    assert ok(proxy.VDI.get_type(s, vdi)) == "user"
    vbd = ok(proxy.VBD.create(s, {"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": True,
                                  "mode": "rw", "type": "disk", "unpluggable": True,
                                  "empty": False, "other_config": {},
                                  "qos_algorithm_type": "", "qos_algorithm_params": {}}))
    assert (ok(proxy.VBD.get_type(s, vbd)), ok(proxy.VBD.get_mode(s, vbd))) == ("Disk", "RW")
    cd = ok(proxy.VBD.create(s, {"VM": vm, "VDI": "", "userdevice": "3", "bootable": False,
                                 "mode": "RO", "type": "cd", "unpluggable": True,
                                 "empty": True, "other_config": {},
                                 "qos_algorithm_type": "", "qos_algorithm_params": {}}))
    assert ok(proxy.VBD.get_type(s, cd)) == "CD"
    ok(proxy.VM.start(s, vm, False, False))  # '' is no affinity, no host is required
    gone(api, vm)
    ok(proxy.VDI.destroy(s, vdi))


def test_java_sdk_upper_case_enums(api):
    """The Java SDK writes enum values in upper case, in parameters and as
    map keys; they are stored in XAPI's spelling."""
    proxy, s = api
    vm = new_vm(api)
    ok(proxy.VM.set_actions_after_shutdown(s, vm, "RESTART"))
    assert ok(proxy.VM.get_actions_after_shutdown(s, vm)) == "restart"
    ok(proxy.VM.set_actions_after_crash(s, vm, "PRESERVE"))
    assert ok(proxy.VM.get_actions_after_crash(s, vm)) == "preserve"
    ok(proxy.VM.add_to_blocked_operations(s, vm, "START", "maintenance"))
    assert ok(proxy.VM.get_blocked_operations(s, vm)) == {"start": "maintenance"}
    assert ok(proxy.VM.get_all_records_where(s, 'field "power_state" = "Halted"'))
    ok(proxy.VM.assert_operation_valid(s, vm, "CLONE"))
    assert err(proxy.VM.set_actions_after_shutdown(s, vm, "REBOOT"))[0] == "INVALID_VALUE"
    gone(api, vm)


def test_blocked_operations_refresh_allowed_operations(api):
    proxy, s = api
    vm = new_vm(api)
    assert "start" in ok(proxy.VM.get_allowed_operations(s, vm))
    ok(proxy.VM.add_to_blocked_operations(s, vm, "start", "no"))
    assert "start" not in ok(proxy.VM.get_allowed_operations(s, vm))
    assert err(proxy.VM.assert_operation_valid(s, vm, "start")) == \
        ["OPERATION_BLOCKED", vm, "no"]
    ok(proxy.VM.remove_from_blocked_operations(s, vm, "start"))
    assert "start" in ok(proxy.VM.get_allowed_operations(s, vm))
    ok(proxy.VM.update_allowed_operations(s, vm))
    gone(api, vm)


# ---- memory ----------------------------------------------------------------

def test_memory_limits_every_order_error(api):
    proxy, s = api
    vm = new_vm(api)
    before = memory(api, vm)
    # static_min <= dynamic_min <= dynamic_max <= static_max, each broken
    for smin, smax, dmin, dmax in [(300, 256, 256, 256), (128, 256, 64, 256),
                                   (64, 256, 200, 100), (64, 256, 128, 512),
                                   (64, 128, 256, 256)]:
        reply = proxy.VM.set_memory_limits(s, vm, str(smin * MiB), str(smax * MiB),
                                           str(dmin * MiB), str(dmax * MiB))
        assert err(reply) == ["MEMORY_CONSTRAINT_VIOLATION_ORDER"], (smin, smax, dmin, dmax)
        assert memory(api, vm) == before
    ok(proxy.VM.set_memory_limits(s, vm, str(32 * MiB), str(512 * MiB), str(128 * MiB),
                                  str(512 * MiB)))
    assert memory(api, vm) == (32 * MiB, 128 * MiB, 128 * MiB, 512 * MiB, 512 * MiB)
    ok(proxy.VM.set_memory(s, vm, str(384 * MiB)))
    assert memory(api, vm) == (32 * MiB,) + (384 * MiB,) * 4
    assert err(proxy.VM.set_memory(s, vm, str(16 * MiB))) == ["MEMORY_CONSTRAINT_VIOLATION_ORDER"]
    gone(api, vm)


def test_memory_ranges(api):
    proxy, s = api
    vm = new_vm(api)
    assert err(proxy.VM.set_memory_static_range(s, vm, str(300 * MiB), str(512 * MiB))) == \
        ["MEMORY_CONSTRAINT_VIOLATION_ORDER"]  # above dynamic_min
    assert err(proxy.VM.set_memory_static_range(s, vm, str(64 * MiB), str(128 * MiB))) == \
        ["MEMORY_CONSTRAINT_VIOLATION_ORDER"]  # below dynamic_max
    ok(proxy.VM.set_memory_static_range(s, vm, str(32 * MiB), str(512 * MiB)))
    ok(proxy.VM.set_memory_static_max(s, vm, str(1024 * MiB)))
    ok(proxy.VM.set_memory_static_min(s, vm, str(16 * MiB)))
    assert err(proxy.VM.set_memory_static_min(s, vm, str(2048 * MiB))) == \
        ["MEMORY_CONSTRAINT_VIOLATION_ORDER"]
    assert err(proxy.VM.set_memory_dynamic_range(s, vm, str(512 * MiB), str(256 * MiB))) == \
        ["MEMORY_CONSTRAINT_VIOLATION_ORDER"]
    assert err(proxy.VM.set_memory_dynamic_range(s, vm, str(8 * MiB), str(256 * MiB))) == \
        ["MEMORY_CONSTRAINT_VIOLATION_ORDER"]  # below static_min
    ok(proxy.VM.set_memory_dynamic_range(s, vm, str(128 * MiB), str(512 * MiB)))
    assert memory(api, vm) == (16 * MiB, 128 * MiB, 128 * MiB, 512 * MiB, 1024 * MiB)
    ok(proxy.VM.set_memory_dynamic_max(s, vm, str(1024 * MiB)))
    ok(proxy.VM.set_memory_dynamic_min(s, vm, str(1024 * MiB)))
    assert err(proxy.VM.set_memory_dynamic_max(s, vm, str(512 * MiB))) == \
        ["MEMORY_CONSTRAINT_VIOLATION_ORDER"]
    assert memory(api, vm) == (16 * MiB,) + (1024 * MiB,) * 4
    gone(api, vm)


def test_memory_setters_and_power_state(api):
    proxy, s = api
    vm = running_vm(api)
    size = str(256 * MiB)
    assert err(proxy.VM.set_memory_limits(s, vm, size, size, size, size)) == \
        ["VM_BAD_POWER_STATE", vm, "halted", "running"]
    assert err(proxy.VM.set_memory_static_range(s, vm, size, size)) == \
        ["VM_BAD_POWER_STATE", vm, "halted", "running"]
    assert err(proxy.VM.set_memory(s, vm, size)) == \
        ["VM_BAD_POWER_STATE", vm, "halted", "running"]
    # the balloon: a running VM's range moves it to the new maximum, which
    # memory_target records; a live target lies inside the range
    ok(proxy.VM.set_memory_dynamic_range(s, vm, str(128 * MiB), str(192 * MiB)))
    assert memory(api, vm) == (64 * MiB, 128 * MiB, 192 * MiB, 192 * MiB, 256 * MiB)
    ok(proxy.VM.wait_memory_target_live(s, vm))
    e = err(proxy.VM.set_memory_target_live(s, vm, str(100 * MiB)))
    assert e[:3] == ["VALUE_NOT_SUPPORTED", "target", str(100 * MiB)]
    e = err(proxy.VM.set_memory_dynamic_range(s, vm, str(128 * MiB), str(512 * MiB)))
    assert e == ["MEMORY_CONSTRAINT_VIOLATION_ORDER"]
    ok(proxy.VM.set_memory_target_live(s, vm, str(160 * MiB)))
    assert memory(api, vm)[2] == 160 * MiB
    ok(proxy.VM.wait_memory_target_live(s, vm))
    ok(proxy.VM.hard_shutdown(s, vm))
    assert err(proxy.VM.set_memory_target_live(s, vm, size)) == \
        ["VM_BAD_POWER_STATE", vm, "running", "halted"]
    gone(api, vm)


def test_memory_overhead_and_maximise(api):
    proxy, s = api
    vm = new_vm(api)
    overhead = int(ok(proxy.VM.compute_memory_overhead(s, vm)))
    assert 0 < overhead < 256 * MiB
    total = 1024 * MiB
    best = int(ok(proxy.VM.maximise_memory(s, vm, str(total), False)))
    assert best % MiB == 0 and 512 * MiB < best < total
    assert int(ok(proxy.VM.maximise_memory(s, vm, str(total), True))) <= best
    gone(api, vm)


def test_start_balloons_to_dynamic_max_and_counts_the_overhead(api):
    proxy, s = api
    ballooned = new_vm(api, memory_dynamic_max=str(128 * MiB), memory_dynamic_min=str(64 * MiB))
    ok(proxy.VM.start(s, ballooned, False, False))
    rec = ok(proxy.VM.get_record(s, ballooned))
    assert int(rec["memory_target"]) == 128 * MiB
    assert rec["memory_overhead"] == ok(proxy.VM.compute_memory_overhead(s, ballooned))
    metrics = ok(proxy.VM.get_metrics(s, ballooned))
    assert ok(proxy.VM_metrics.get_memory_actual(s, metrics)) == str(128 * MiB)
    upside_down = new_vm(api, memory_static_min=str(512 * MiB))
    assert err(proxy.VM.start(s, upside_down, False, False)) == ["MEMORY_CONSTRAINT_VIOLATION"]
    assert ok(proxy.VM.get_power_state(s, upside_down)) == "Halted"
    # left out at VM.create (0): no range asked for, the VM starts
    plain = ok(proxy.VM.create(s, {"name_label": "plain", "memory_static_max": str(256 * MiB),
                                   "VCPUs_max": "1", "VCPUs_at_startup": "1"}))
    ok(proxy.VM.start(s, plain, False, False))
    # a VM whose RAM fits the free memory but not with its overhead
    host = ok(proxy.host.get_all(s))[0]
    free = int(ok(proxy.host.compute_free_memory(s, host)))
    size = free // MiB * MiB - 4 * MiB
    big = new_vm(api, memory_static_max=str(size), memory_dynamic_max=str(size),
                 memory_dynamic_min=str(size))
    assert int(ok(proxy.VM.compute_memory_overhead(s, big))) > 4 * MiB
    e = err(proxy.VM.start(s, big, False, False))
    assert e[0] == "HOST_NOT_ENOUGH_FREE_MEMORY" and int(e[1]) > size
    gone(api, ballooned, upside_down, plain, big)


# ---- vCPUs -----------------------------------------------------------------

def test_vcpu_setters_every_error(api):
    proxy, s = api
    vm = new_vm(api, VCPUs_max="4", VCPUs_at_startup="2")
    assert err(proxy.VM.set_VCPUs_max(s, vm, "0")) == ["INVALID_VALUE", VCPU_RULE, "0"]
    assert err(proxy.VM.set_VCPUs_max(s, vm, "1")) == ["INVALID_VALUE", VCPU_RULE, "1"]
    assert err(proxy.VM.set_VCPUs_at_startup(s, vm, "0")) == ["INVALID_VALUE", VCPU_RULE, "0"]
    assert err(proxy.VM.set_VCPUs_at_startup(s, vm, "5")) == ["INVALID_VALUE", VCPU_RULE, "5"]
    ok(proxy.VM.set_VCPUs_max(s, vm, "8"))
    ok(proxy.VM.set_VCPUs_at_startup(s, vm, "8"))
    rec = ok(proxy.VM.get_record(s, vm))
    assert (rec["VCPUs_max"], rec["VCPUs_at_startup"]) == ("8", "8")
    ok(proxy.VM.set_VCPUs_at_startup(s, vm, "2"))
    # no more vCPUs than the host has CPUs, unless platform:vcpu-unrestricted
    host = ok(proxy.host.get_all(s))[0]
    pcpus = ok(proxy.host.get_cpu_info(s, host))["cpu_count"]
    ok(proxy.VM.set_VCPUs_max(s, vm, str(int(pcpus) + 1)))
    assert err(proxy.VM.start(s, vm, False, False)) == \
        ["HOST_NOT_ENOUGH_PCPUS", str(int(pcpus) + 1), pcpus]
    ok(proxy.VM.add_to_platform(s, vm, "vcpu-unrestricted", "true"))
    ok(proxy.VM.start(s, vm, False, False))
    assert err(proxy.VM.set_VCPUs_max(s, vm, "4")) == ["VM_BAD_POWER_STATE", vm, "halted",
                                                       "running"]
    assert err(proxy.VM.set_VCPUs_number_live(s, vm, "4"))[0] == "OPERATION_NOT_ALLOWED"
    ok(proxy.VM.set_VCPUs_number_live(s, vm, "2"))  # what the domain has
    # hot-plug up to VCPUs_max; the booted ones stay; no save with extra ones
    metrics = ok(proxy.VM.get_metrics(s, vm))
    ok(proxy.VM.set_VCPUs_number_live(s, vm, str(int(pcpus) + 1)))
    assert ok(proxy.VM_metrics.get_VCPUs_number(s, metrics)) == str(int(pcpus) + 1)
    e = err(proxy.VM.suspend(s, vm))
    assert e[0] == "OPERATION_NOT_ALLOWED" and "hot-plugged" in e[1]
    assert ok(proxy.VM.get_power_state(s, vm)) == "Running"
    assert err(proxy.VM.set_VCPUs_number_live(s, vm, "1"))[0] == "OPERATION_NOT_ALLOWED"
    assert err(proxy.VM.set_VCPUs_number_live(s, vm, "0"))[0] == "OPERATION_NOT_ALLOWED"
    ok(proxy.VM.set_VCPUs_number_live(s, vm, "2"))
    assert ok(proxy.VM_metrics.get_VCPUs_number(s, metrics)) == "2"
    assert err(proxy.VM.add_to_VCPUs_params_live(s, vm, "weight", "256")) == \
        ["NOT_IMPLEMENTED", "add_to_VCPUs_params_live"]
    ok(proxy.VM.hard_shutdown(s, vm))
    assert err(proxy.VM.set_VCPUs_number_live(s, vm, "2")) == \
        ["VM_BAD_POWER_STATE", vm, "running", "halted"]
    gone(api, vm)


def test_start_checks_vcpus_as_xapi(api):
    proxy, s = api
    more = new_vm(api, VCPUs_max="1", VCPUs_at_startup="2")
    assert err(proxy.VM.start(s, more, False, False)) == \
        ["VALUE_NOT_SUPPORTED", "VCPUs-at-startup", "2", "value greater than VCPUs-max"]
    none = new_vm(api, VCPUs_max="0", VCPUs_at_startup="0")
    assert err(proxy.VM.start(s, none, False, False)) == ["INVALID_VALUE", "VCPUs_max", "0"]
    gone(api, more, none)


# ---- templates -------------------------------------------------------------

def test_set_is_a_template_only_when_halted(api):
    proxy, s = api
    vm = running_vm(api)
    assert "make_into_template" not in ok(proxy.VM.get_allowed_operations(s, vm))
    assert err(proxy.VM.set_is_a_template(s, vm, True)) == \
        ["VM_BAD_POWER_STATE", vm, "halted", "running"]
    assert ok(proxy.VM.get_is_a_template(s, vm)) is False
    ok(proxy.VM.hard_shutdown(s, vm))
    assert "make_into_template" in ok(proxy.VM.get_allowed_operations(s, vm))
    ok(proxy.VM.set_is_a_template(s, vm, True))
    allowed = ok(proxy.VM.get_allowed_operations(s, vm))
    assert "start" not in allowed and "provision" in allowed
    assert err(proxy.VM.start(s, vm, False, False)) == ["VM_IS_TEMPLATE", vm, "start"]
    metrics = ok(proxy.VM.get_metrics(s, vm))  # made by its first start
    assert str(ok(proxy.VM_metrics.get_install_time(s, metrics))) < "2000"
    ok(proxy.VM.set_is_a_template(s, vm, False))  # XAPI's "install time"
    assert str(ok(proxy.VM_metrics.get_install_time(s, metrics))) > "2000"
    assert "start" in ok(proxy.VM.get_allowed_operations(s, vm))
    gone(api, vm)


def test_provision_makes_a_vm_clone_and_copy_keep_templates(api):
    proxy, s = api
    vm = new_vm(api)
    ok(proxy.VM.set_is_a_template(s, vm, True))
    clone = ok(proxy.VM.clone(s, vm, "clone of template"))
    copy = ok(proxy.VM.copy(s, vm, "copy of template", ""))
    assert ok(proxy.VM.get_is_a_template(s, clone)) is True
    assert ok(proxy.VM.get_is_a_template(s, copy)) is True
    ok(proxy.VM.provision(s, clone))
    assert ok(proxy.VM.get_is_a_template(s, clone)) is False
    assert "start" in ok(proxy.VM.get_allowed_operations(s, clone))
    ok(proxy.VM.start(s, clone, False, False))
    assert err(proxy.VM.provision(s, clone)) == ["VM_BAD_POWER_STATE", clone, "halted",
                                                 "running"]
    ok(proxy.VM.set_is_a_template(s, vm, False))
    ok(proxy.VM.set_is_a_template(s, copy, False))
    gone(api, vm, clone, copy)


def test_destroy_refused_while_running(api):
    proxy, s = api
    vm = running_vm(api)
    assert err(proxy.VM.destroy(s, vm)) == ["VM_BAD_POWER_STATE", vm, "halted, suspended",
                                            "running"]
    gone(api, vm)


# ---- the simpler setters ---------------------------------------------------

def test_order_and_delays_non_negative(api):
    proxy, s = api
    vm = new_vm(api)
    for name in ("order", "start_delay", "shutdown_delay"):
        setter = getattr(proxy.VM, "set_" + name)
        assert err(setter(s, vm, "-1")) == ["INVALID_VALUE", f"{name} must be non-negative", "-1"]
        ok(setter(s, vm, "7"))
        assert ok(getattr(proxy.VM, "get_" + name)(s, vm)) == "7"
    gone(api, vm)


def test_boot_policy_and_domain_type_follow_each_other(api):
    proxy, s = api
    vm = new_vm(api)
    ok(proxy.VM.set_HVM_boot_policy(s, vm, ""))
    assert ok(proxy.VM.get_domain_type(s, vm)) == "pv"
    ok(proxy.VM.set_HVM_boot_policy(s, vm, "BIOS order"))
    assert ok(proxy.VM.get_domain_type(s, vm)) == "hvm"
    ok(proxy.VM.set_domain_type(s, vm, "PV"))
    assert ok(proxy.VM.get_HVM_boot_policy(s, vm)) == ""
    ok(proxy.VM.set_domain_type(s, vm, "hvm"))
    assert ok(proxy.VM.get_HVM_boot_policy(s, vm)) == "BIOS order"
    assert err(proxy.VM.set_domain_type(s, vm, "unspecified")) == \
        ["INVALID_VALUE", "domain_type", "unspecified"]
    ok(proxy.VM.set_domain_type(s, vm, "pv"))  # no PV_kernel, and no bootloader is run
    assert err(proxy.VM.start(s, vm, False, False))[:3] == \
        ["VALUE_NOT_SUPPORTED", "domain_type", "pv"]
    ok(proxy.VM.set_PV_kernel(s, vm, "/boot/guest/vmlinuz"))
    assert err(proxy.VM.start(s, vm, False, False))[0] != "VALUE_NOT_SUPPORTED"
    gone(api, vm)


@pytest.mark.parametrize("fields", [
    {"domain_type": "pv"},
    {"HVM_boot_policy": ""},  # unspecified: XAPI boots it PV
])
def test_pv_bootloader_is_run(api, fields):
    """pygrub reads a kernel out of the guest's disk (test_pv_bootloader.py):
    without a disk it fails as XAPI's does."""
    proxy, s = api
    vm = new_vm(api, PV_bootloader="pygrub", **fields)
    assert err(proxy.VM.start(s, vm, False, False)) == \
        ["BOOTLOADER_FAILED", vm, "the VM has no disk to boot from"]
    assert ok(proxy.VM.get_power_state(s, vm)) == "Halted"
    gone(api, vm)


def test_actions_after_crash_refused_at_start_when_not_honoured(api):
    proxy, s = api
    vm = new_vm(api)
    ok(proxy.VM.set_actions_after_crash(s, vm, "rename_restart"))
    e = err(proxy.VM.start(s, vm, False, False))
    assert e[:3] == ["VALUE_NOT_SUPPORTED", "VM.actions_after_crash", "rename_restart"]
    # a dump needs a crash dump SR: the host's, else the pool's
    pool = ok(proxy.pool.get_all(s))[0]
    dump_sr = ok(proxy.pool.get_crash_dump_SR(s, pool))
    ok(proxy.pool.set_crash_dump_SR(s, pool, "OpaqueRef:NULL"))
    ok(proxy.VM.set_actions_after_crash(s, vm, "coredump_and_restart"))
    assert err(proxy.VM.start(s, vm, False, False)) == ["VM_NO_CRASHDUMP_SR", vm]
    ok(proxy.pool.set_crash_dump_SR(s, pool, dump_sr))
    ok(proxy.VM.set_actions_after_crash(s, vm, "restart"))
    ok(proxy.VM.start(s, vm, False, False))
    gone(api, vm)


@pytest.mark.parametrize("action,after", [("coredump_and_destroy", "Halted"),
                                          ("coredump_and_restart", "Running")])
def test_crash_dump_kept_as_a_crashdump(api, action, after):
    """The simulated guest crashes as it boots: its memory becomes a
    crashdump VDI in the pool's crash dump SR, then the action goes on."""
    proxy, s = api
    pool = ok(proxy.pool.get_all(s))[0]
    sr = ok(proxy.pool.get_crash_dump_SR(s, pool))
    vm = new_vm(api, actions_after_crash=action, other_config={"sim_guest": "panics"})
    ok(proxy.VM.start(s, vm, False, False))
    assert ok(proxy.VM.get_power_state(s, vm)) == after
    dumps = ok(proxy.VM.get_crash_dumps(s, vm))
    assert len(dumps) == 1
    rec = ok(proxy.crashdump.get_record(s, dumps[0]))
    assert rec["VM"] == vm
    vdi = ok(proxy.VDI.get_record(s, rec["VDI"]))
    assert vdi["type"] == "crashdump" and vdi["SR"] == sr
    assert vdi["name_label"] == "Crash dump of fields"
    assert dumps[0] in vdi["crash_dumps"]
    ok(proxy.crashdump.destroy(s, dumps[0]))
    assert err(proxy.VDI.get_record(s, rec["VDI"]))[0] == "HANDLE_INVALID"
    assert ok(proxy.VM.get_crash_dumps(s, vm)) == []
    gone(api, vm)


def test_vm_destroy_forgets_its_crashdumps_and_keeps_their_vdis(api):
    """As XAPI's GC: the records go with the VM, the dumps stay as VDIs."""
    proxy, s = api
    vm = new_vm(api, actions_after_crash="coredump_and_destroy",
                other_config={"sim_guest": "panics"})
    ok(proxy.VM.start(s, vm, False, False))
    dump = ok(proxy.VM.get_crash_dumps(s, vm))[0]
    vdi = ok(proxy.crashdump.get_VDI(s, dump))
    ok(proxy.VM.destroy(s, vm))
    assert err(proxy.crashdump.get_record(s, dump))[0] == "HANDLE_INVALID"
    assert ok(proxy.VDI.get_crash_dumps(s, vdi)) == []
    ok(proxy.VDI.destroy(s, vdi))


def test_bios_strings(api):
    proxy, s = api
    vm = new_vm(api)
    assert err(proxy.VM.set_bios_strings(s, vm, {"oem-1": "x"})) == \
        ["INVALID_VALUE", "oem-1", "Unknown key"]
    assert err(proxy.VM.set_bios_strings(s, vm, {"bios-vendor": ""})) == \
        ["INVALID_VALUE", "bios-vendor", "Value provided is empty"]
    long = "a" * 513
    assert err(proxy.VM.set_bios_strings(s, vm, {"bios-vendor": long})) == \
        ["INVALID_VALUE", "bios-vendor", long + " has length more than 512 characters"]
    assert err(proxy.VM.set_bios_strings(s, vm, {"bios-vendor": "a\tb"})) == \
        ["INVALID_VALUE", "bios-vendor", "a\tb has non-printable ASCII characters"]
    assert ok(proxy.VM.get_bios_strings(s, vm)) == {}
    ok(proxy.VM.set_bios_strings(s, vm, {"system-manufacturer": "Acme"}))
    strings = ok(proxy.VM.get_bios_strings(s, vm))
    assert strings["system-manufacturer"] == "Acme" and strings["bios-vendor"] == "Xen"
    assert strings["oem-1"] == "Xen" and len(strings) == 16
    assert err(proxy.VM.set_bios_strings(s, vm, {"bios-vendor": "x"})) == \
        ["VM_BIOS_STRINGS_ALREADY_SET"]
    host = ok(proxy.host.get_all(s))[0]
    assert err(proxy.VM.copy_bios_strings(s, vm, host)) == ["VM_BIOS_STRINGS_ALREADY_SET"]
    # SMBIOS tables now (test_vm_fields_qemu.py reads them back): it starts
    ok(proxy.VM.start(s, vm, False, False))
    other = new_vm(api)
    ok(proxy.VM.copy_bios_strings(s, other, host))
    assert ok(proxy.VM.get_affinity(s, other)) == host
    gone(api, vm, other)


def test_nvram_and_vendor_device_only_when_halted(api):
    proxy, s = api
    vm = new_vm(api)
    ok(proxy.VM.set_NVRAM(s, vm, {"EFI-variables": "AAAA"}))
    ok(proxy.VM.add_to_NVRAM(s, vm, "other", "x"))
    ok(proxy.VM.remove_from_NVRAM(s, vm, "other"))
    assert ok(proxy.VM.get_NVRAM(s, vm)) == {"EFI-variables": "AAAA"}
    e = err(proxy.VM.set_has_vendor_device(s, vm, True))
    assert e[:3] == ["VALUE_NOT_SUPPORTED", "has_vendor_device", "true"]
    ok(proxy.VM.set_has_vendor_device(s, vm, False))
    ok(proxy.VM.start(s, vm, False, False))
    assert err(proxy.VM.set_NVRAM(s, vm, {})) == ["VM_BAD_POWER_STATE", vm, "halted", "running"]
    assert err(proxy.VM.add_to_NVRAM(s, vm, "k", "v")) == \
        ["VM_BAD_POWER_STATE", vm, "halted", "running"]
    assert err(proxy.VM.set_has_vendor_device(s, vm, False)) == \
        ["VM_BAD_POWER_STATE", vm, "halted", "running"]
    gone(api, vm)


def test_firmware_values(api):
    proxy, s = api
    vm = new_vm(api, HVM_boot_params={"firmware": "coreboot"})
    assert err(proxy.VM.start(s, vm, False, False))[:3] == \
        ["INVALID_VALUE", "HVM_boot_params:firmware", "coreboot"]
    # uefi (test_vm_uefi_qemu.py boots it): the store from a bad NVRAM is refused
    uefi = new_vm(api, HVM_boot_params={"firmware": "uefi"})
    ok(proxy.VM.set_NVRAM(s, uefi, {"EFI-variables": "AAAA"}))
    e = err(proxy.VM.start(s, uefi, False, False))
    assert e[:2] == ["INVALID_VALUE", "NVRAM:EFI-variables"] or \
        e[:2] == ["VALUE_NOT_SUPPORTED", "HVM_boot_params:firmware"]  # no ovmf here
    assert ok(proxy.VM.get_power_state(s, uefi)) == "Halted"
    gone(api, vm, uefi)


SECBOOT_VARS = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"


@pytest.mark.skipif(not os.path.exists(SECBOOT_VARS), reason="ovmf not installed")
@pytest.mark.timeout(60)
def test_secure_boot_start_store_and_q35_limits(api):
    """platform:secureboot on UEFI (test_vm_uefi_qemu.py boots it): the store
    starts as the one with Microsoft's keys and comes back into NVRAM; a
    floppy is refused (q35 has none), and devices are not hot-plugged."""
    proxy, s = api
    sr = ok(proxy.pool.get_default_SR(s, ok(proxy.pool.get_all(s))[0]))
    vm = new_vm(api, HVM_boot_params={"firmware": "uefi"}, platform={"secureboot": "true"})
    vdi = ok(proxy.VDI.create(s, {"name_label": "sb", "SR": sr, "virtual_size": str(MiB),
                                  "type": "user", "sharable": False, "read_only": False,
                                  "other_config": {}}))
    record = {"VM": vm, "VDI": vdi, "userdevice": "1", "bootable": False, "mode": "RW",
              "type": "Floppy", "unpluggable": True, "empty": False, "other_config": {},
              "qos_algorithm_type": "", "qos_algorithm_params": {}}
    floppy = ok(proxy.VBD.create(s, record))
    e = err(proxy.VM.start(s, vm, False, False))
    assert e[:3] == ["VALUE_NOT_SUPPORTED", "VBD:type", "Floppy"]
    assert ok(proxy.VM.get_power_state(s, vm)) == "Halted"
    ok(proxy.VBD.destroy(s, floppy))
    ok(proxy.VM.start(s, vm, False, False))
    disk = ok(proxy.VBD.create(s, dict(record, type="Disk")))
    assert err(proxy.VBD.plug(s, disk))[0] == "OPERATION_NOT_ALLOWED"
    assert ok(proxy.VBD.get_currently_attached(s, disk)) is False
    net = ok(proxy.network.create(s, {"name_label": "sb-net", "other_config": {}}))
    vif = ok(proxy.VIF.create(s, {"VM": vm, "network": net, "device": "0", "MAC": "",
                                  "MTU": "1500", "other_config": {}, "qos_algorithm_type": "",
                                  "qos_algorithm_params": {}}))
    assert err(proxy.VIF.plug(s, vif))[0] == "OPERATION_NOT_ALLOWED"
    assert ok(proxy.VIF.get_currently_attached(s, vif)) is False
    ok(proxy.VIF.destroy(s, vif))
    ok(proxy.network.destroy(s, net))
    ok(proxy.VM.hard_shutdown(s, vm))
    with open(SECBOOT_VARS, "rb") as f:
        enrolled = f.read()
    assert base64.b64decode(ok(proxy.VM.get_NVRAM(s, vm))["EFI-variables"]) == enrolled
    # that store is the Secure Boot build's: without Secure Boot it is refused
    ok(proxy.VM.set_platform(s, vm, {"secureboot": "false"}))
    e = err(proxy.VM.start(s, vm, False, False))
    assert e[:2] == ["INVALID_VALUE", "NVRAM:EFI-variables"]
    # auto: Secure Boot where the host has the keys, as XAPI's pool certificates
    ok(proxy.VM.set_platform(s, vm, {"secureboot": "auto"}))
    ok(proxy.VM.start(s, vm, False, False))
    assert ok(proxy.VM.get_platform(s, vm)) == {"secureboot": "true"}  # recorded, as XAPI
    ok(proxy.VM.hard_shutdown(s, vm))
    ok(proxy.VBD.destroy(s, disk))
    gone(api, vm)
    ok(proxy.VDI.destroy(s, vdi))


def test_suspend_vdi_and_appliance(api):
    proxy, s = api
    vm = new_vm(api)
    assert err(proxy.VM.set_suspend_VDI(s, vm, "OpaqueRef:NULL")) == \
        ["VM_BAD_POWER_STATE", vm, "suspended", "halted"]
    appliance = ok(proxy.VM_appliance.create(s, {"name_label": "app"}))
    ok(proxy.VM.set_appliance(s, vm, appliance))
    assert ok(proxy.VM_appliance.get_VMs(s, appliance)) == [vm]
    ok(proxy.VM_appliance.destroy(s, appliance))
    assert ok(proxy.VM.get_appliance(s, vm)) == "OpaqueRef:NULL"
    ok(proxy.VM.set_is_a_template(s, vm, True))
    assert err(proxy.VM.set_appliance(s, vm, "OpaqueRef:NULL"))[0] == "OPERATION_NOT_ALLOWED"
    ok(proxy.VM.set_is_a_template(s, vm, False))
    gone(api, vm)


def test_suspend_vdi_replaced_only_by_an_identical_image(api):
    """XAPI's set_suspend_VDI compares the two VDIs' MD5s."""
    proxy, s = api
    vm = running_vm(api)
    ok(proxy.VM.suspend(s, vm))
    image = ok(proxy.VM.get_suspend_VDI(s, vm))
    sr = ok(proxy.VDI.get_SR(s, image))
    copy = ok(proxy.VDI.copy(s, image, sr))
    other = ok(proxy.VDI.create(s, {"SR": sr, "virtual_size": str(MiB), "type": "user",
                                    "name_label": "not the image", "sharable": False,
                                    "read_only": False, "other_config": {}}))
    ok(proxy.VM.set_suspend_VDI(s, vm, image))  # the same one: nothing to compare
    e = err(proxy.VM.set_suspend_VDI(s, vm, other))
    assert e[0] == "SUSPEND_VDI_REPLACEMENT_IS_NOT_IDENTICAL"
    uuids = [ok(proxy.VDI.get_uuid(s, v)) for v in (image, other)]
    assert [p.split(" : ")[0] for p in e[1:]] == uuids
    assert e[1].split(" : ")[1] != e[2].split(" : ")[1]
    assert ok(proxy.VM.get_suspend_VDI(s, vm)) == image
    ok(proxy.VM.set_suspend_VDI(s, vm, copy))
    assert ok(proxy.VM.get_suspend_VDI(s, vm)) == copy
    ok(proxy.VM.resume(s, vm, False, False))  # from the copy
    assert ok(proxy.VM.get_power_state(s, vm)) == "Running"
    ok(proxy.VM.hard_shutdown(s, vm))
    for v in (image, other):
        ok(proxy.VDI.destroy(s, v))
    gone(api, vm)


def test_checks_and_boot_record(api):
    proxy, s = api
    vm = new_vm(api)
    host = ok(proxy.host.get_all(s))[0]
    ok(proxy.VM.assert_can_boot_here(s, vm, host))
    assert ok(proxy.VM.get_possible_hosts(s, vm)) == [host]
    assert ok(proxy.VM.get_cooperative(s, vm)) is True
    assert err(proxy.VM.assert_operation_valid(s, vm, "pause")) == \
        ["VM_BAD_POWER_STATE", vm, "running", "halted"]
    assert err(proxy.VM.get_boot_record(s, vm)) == \
        ["VM_BAD_POWER_STATE", vm, "paused, running, suspended", "halted"]
    ok(proxy.VM.start(s, vm, False, False))
    assert ok(proxy.VM.get_boot_record(s, vm))["uuid"] == ok(proxy.VM.get_uuid(s, vm))
    ok(proxy.VM.assert_operation_valid(s, vm, "pause"))
    gone(api, vm)


# ---- VBDs ------------------------------------------------------------------

def test_vbd_device_fields_and_mode(api):
    proxy, s = api
    vm = new_vm(api)
    sr = ok(proxy.pool.get_default_SR(s, ok(proxy.pool.get_all(s))[0]))
    vdi = ok(proxy.VDI.create(s, {"name_label": "d", "SR": sr, "virtual_size": str(MiB),
                                  "type": "user", "sharable": False, "read_only": False,
                                  "other_config": {}}))
    record = {"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": True, "mode": "RW",
              "type": "Disk", "unpluggable": True, "empty": False, "other_config": {},
              "qos_algorithm_type": "", "qos_algorithm_params": {}}
    vbd = ok(proxy.VBD.create(s, record))
    cd = ok(proxy.VBD.create(s, dict(record, VDI="OpaqueRef:NULL", userdevice="3", type="CD",
                                     mode="RO", empty=True)))
    assert err(proxy.VBD.set_userdevice(s, vbd, "3")) == ["DEVICE_ALREADY_EXISTS", "3"]
    assert err(proxy.VBD.set_userdevice(s, vbd, "99")) == ["INVALID_DEVICE", "99"]
    ok(proxy.VBD.set_userdevice(s, vbd, "1"))
    assert err(proxy.VBD.set_type(s, cd, "Disk")) == ["VBD_NOT_REMOVABLE_MEDIA", cd]
    assert err(proxy.VBD.set_mode(s, cd, "RW")) == ["VBD_CDS_MUST_BE_READONLY"]
    ok(proxy.VBD.set_mode(s, vbd, "ro"))
    assert ok(proxy.VBD.get_mode(s, vbd)) == "RO"
    ok(proxy.VBD.set_mode(s, vbd, "RW"))
    ok(proxy.VM.start(s, vm, False, False))
    assert ok(proxy.VBD.get_currently_attached(s, vbd)) is True
    assert err(proxy.VBD.set_userdevice(s, vbd, "2")) == ["DEVICE_ALREADY_ATTACHED", vbd]
    assert err(proxy.VBD.set_mode(s, vbd, "RO")) == ["VM_BAD_POWER_STATE", vm, "halted",
                                                     "running"]
    assert ok(proxy.VBD.get_userdevice(s, vbd)) == "1"
    # destroy refused where XAPI refuses it: an attached VBD, a VDI in use
    assert err(proxy.VBD.destroy(s, vbd))[0] == "OPERATION_NOT_ALLOWED"
    assert err(proxy.VDI.destroy(s, vdi)) == ["VDI_IN_USE", vdi, "destroy"]
    gone(api, vm)
    ok(proxy.VDI.destroy(s, vdi))


# ---- platform keys --------------------------------------------------------
@pytest.mark.parametrize("key,value,code", [
    ("viridian", "true", "VALUE_NOT_SUPPORTED"),      # Hyper-V needs KVM; sim is TCG's model
    ("device_id", "0001", "VALUE_NOT_SUPPORTED"),
    ("nested-virt", "true", "VALUE_NOT_SUPPORTED"),
    ("vtpm", "maybe", "INVALID_VALUE"),
    ("secureboot", "true", "INVALID_VALUE"),        # on BIOS (test_secure_boot_* for UEFI)
    ("secureboot", "maybe", "INVALID_VALUE"),
    ("tsc_mode", "2", "VALUE_NOT_SUPPORTED"),
    ("parallel", "/dev/parport0", "VALUE_NOT_SUPPORTED"),
    ("hvm_serial", "tcp:1.2.3.4:7", "VALUE_NOT_SUPPORTED"),
    ("device-model", "qemu-trad", "VALUE_NOT_SUPPORTED"),
    ("vga", "qxl", "VALUE_NOT_SUPPORTED"),
    ("viridian_crash_ctl", "true", "VALUE_NOT_SUPPORTED"),  # without viridian
    ("acpi", "maybe", "INVALID_VALUE"),
    ("videoram", "1024", "INVALID_VALUE"),
    ("timeoffset", "soon", "INVALID_VALUE"),
    ("cores-per-socket", "3", "INVALID_VALUE"),  # not a divisor of VCPUs_max (2)
])
def test_platform_keys_qemu_is_not_given_are_refused_by_name(api, key, value, code):
    proxy, s = api
    vm = new_vm(api, platform={key: value})
    e = err(proxy.VM.start(s, vm, False, False))
    assert e[:3] == [code, "platform:" + key, value]
    assert ok(proxy.VM.get_power_state(s, vm)) == "Halted"
    gone(api, vm)


@pytest.mark.parametrize("key,value,code", [
    ("mask", "0,99999", "INVALID_VALUE"), ("mask", "x", "INVALID_VALUE"),
    ("weight", "0", "INVALID_VALUE"), ("weight", "65536", "INVALID_VALUE"),
    ("weight", "heavy", "INVALID_VALUE"), ("cap", "-1", "INVALID_VALUE"),
    ("cap", "201", "INVALID_VALUE")])  # two vCPUs: at most 200 %
def test_vcpus_params_refused_by_name(api, key, value, code):
    proxy, s = api
    vm = new_vm(api, VCPUs_params={key: value})
    assert err(proxy.VM.start(s, vm, False, False))[:3] == [code, "VCPUs_params:" + key, value]
    gone(api, vm)


def test_vcpus_weight_and_cap_start(api):
    proxy, s = api
    vm = new_vm(api, VCPUs_params={"weight": "512", "cap": "50"})
    ok(proxy.VM.start(s, vm, False, False))
    gone(api, vm)


def test_platform_keys_qemu_is_given_start(api):
    proxy, s = api
    vm = new_vm(api, platform={"acpi": "1", "apic": "true", "pae": "true", "nx": "false",
                               "hpet": "0", "usb": "true", "usb_tablet": "true", "vga": "std",
                               "videoram": "16", "timeoffset": "-3600", "cores-per-socket": "2",
                               "viridian": "false", "secureboot": "auto", "tsc_mode": "0",
                               "device-model": "qemu-upstream-compat", "no-such-key": "x"})
    ok(proxy.VM.start(s, vm, False, False))
    gone(api, vm)



def test_floppy_drives_and_vbd_qos(api):
    proxy, s = api
    vm = new_vm(api)
    sr = ok(proxy.pool.get_default_SR(s, ok(proxy.pool.get_all(s))[0]))
    vdi = ok(proxy.VDI.create(s, {"name_label": "floppy", "SR": sr, "virtual_size": str(MiB),
                                  "type": "user", "sharable": True, "read_only": False,
                                  "other_config": {}}))
    record = {"VM": vm, "VDI": vdi, "userdevice": "1", "bootable": False,
              "mode": "RO", "type": "Floppy", "unpluggable": True, "empty": False,
              "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}}
    a = ok(proxy.VBD.create(s, record))
    b = ok(proxy.VBD.create(s, dict(record, userdevice="2")))
    c = ok(proxy.VBD.create(s, dict(record, userdevice="4")))
    # two units on the PC's controller (A: and B:): a third is refused
    assert err(proxy.VM.start(s, vm, False, False)) == ["INVALID_DEVICE", "4"]
    ok(proxy.VBD.destroy(s, c))
    ok(proxy.VM.start(s, vm, False, False))
    ok(proxy.VM.hard_shutdown(s, vm))
    # XAPI's ionice: its sched and class checked; the disks of one QEMU agree
    ok(proxy.VBD.set_qos_algorithm_type(s, a, "ionice"))
    for params, refusal in (({"sched": "fast"}, ["INVALID_VALUE",
                                                   "VBD.qos_algorithm_params:sched", "fast"]),
                            ({"class": "8"}, ["INVALID_VALUE",
                                              "VBD.qos_algorithm_params:class", "8"])):
        ok(proxy.VBD.set_qos_algorithm_params(s, a, params))
        assert err(proxy.VM.start(s, vm, False, False))[:3] == refusal
    ok(proxy.VBD.set_qos_algorithm_params(s, a, {"sched": "idle"}))
    ok(proxy.VBD.set_qos_algorithm_type(s, b, "ionice"))
    ok(proxy.VBD.set_qos_algorithm_params(s, b, {"sched": "real-time", "class": "high"}))
    assert err(proxy.VM.start(s, vm, False, False))[:2] == \
        ["VALUE_NOT_SUPPORTED", "VBD.qos_algorithm_params"]
    ok(proxy.VBD.set_qos_algorithm_params(s, b, {"sched": "idle"}))
    ok(proxy.VM.start(s, vm, False, False))
    ok(proxy.VM.hard_shutdown(s, vm))
    ok(proxy.VBD.set_qos_algorithm_type(s, a, "weighted"))
    assert err(proxy.VM.start(s, vm, False, False))[:3] == \
        ["VALUE_NOT_SUPPORTED", "VBD.qos_algorithm_type", "weighted"]
    ok(proxy.VBD.set_qos_algorithm_type(s, a, "ratelimit"))  # a disk's only
    ok(proxy.VBD.set_qos_algorithm_params(s, a, {"kbps": "1024"}))
    assert err(proxy.VM.start(s, vm, False, False))[:3] == \
        ["VALUE_NOT_SUPPORTED", "VBD.qos_algorithm_type", "ratelimit"]
    ok(proxy.VBD.set_qos_algorithm_type(s, a, ""))
    ok(proxy.VBD.destroy(s, b))
    ok(proxy.VM.start(s, vm, False, False))
    # a floppy drive comes with the start only
    d = ok(proxy.VBD.create(s, dict(record, userdevice="2")))
    assert err(proxy.VBD.plug(s, d))[0] == "OPERATION_NOT_ALLOWED"
    gone(api, vm)
    ok(proxy.VDI.destroy(s, vdi))


@pytest.mark.parametrize("params,refused", [
    ({}, ["INVALID_VALUE", "VBD.qos_algorithm_params"]),
    ({"kbps": "0"}, ["INVALID_VALUE", "VBD.qos_algorithm_params:kbps", "0"]),
    ({"iops": "many"}, ["INVALID_VALUE", "VBD.qos_algorithm_params:iops", "many"]),
    ({"kbps": "10", "group": "a b"}, ["INVALID_VALUE", "VBD.qos_algorithm_params:group", "a b"]),
    ({"kbps": "10", "group": "web"}, None), ({"iops": "100"}, None)])
def test_vbd_ratelimit_params(api, params, refused):
    proxy, s = api
    vm = new_vm(api)
    sr = ok(proxy.pool.get_default_SR(s, ok(proxy.pool.get_all(s))[0]))
    vdi = ok(proxy.VDI.create(s, {"name_label": "limited", "SR": sr, "virtual_size": str(MiB),
                                  "type": "user", "sharable": False, "read_only": False,
                                  "other_config": {}}))
    ok(proxy.VBD.create(s, {"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": False,
                            "mode": "RW", "type": "Disk", "empty": False, "other_config": {},
                            "qos_algorithm_type": "ratelimit", "qos_algorithm_params": params}))
    if refused:
        assert err(proxy.VM.start(s, vm, False, False))[:len(refused)] == refused
    else:
        ok(proxy.VM.start(s, vm, False, False))
    gone(api, vm)
    ok(proxy.VDI.destroy(s, vdi))


def test_send_trigger_send_sysrq_and_query_services(api):
    proxy, s = api
    vm = new_vm(api)
    assert err(proxy.VM.send_trigger(s, vm, "nmi")) == ["VM_BAD_POWER_STATE", vm, "running",
                                                        "halted"]
    assert err(proxy.VM.send_sysrq(s, vm, "h"))[0] == "VM_BAD_POWER_STATE"
    ok(proxy.VM.start(s, vm, False, False))
    ok(proxy.VM.send_trigger(s, vm, "nmi"))
    ok(proxy.VM.send_sysrq(s, vm, "s"))
    assert err(proxy.VM.send_trigger(s, vm, "sleep"))[:3] == \
        ["VALUE_NOT_SUPPORTED", "trigger", "sleep"]
    assert err(proxy.VM.send_trigger(s, vm, "kick")) == ["INVALID_VALUE", "trigger", "kick"]
    for key in ("", "hh", "H", "%"):
        assert err(proxy.VM.send_sysrq(s, vm, key)) == ["INVALID_VALUE", "key", key]
    assert err(proxy.VM.query_services(s, vm)) == ["NOT_IMPLEMENTED", "query_services"]
    ok(proxy.VM.send_trigger(s, vm, "power"))  # the sim guest powers off at the button
    deadline = time.monotonic() + 30
    while ok(proxy.VM.get_power_state(s, vm)) != "Halted":
        assert time.monotonic() < deadline, "the power button did not halt the guest"
        time.sleep(0.05)
    ok(proxy.VM.destroy(s, vm))


def test_xenstore_data_keys_fw_cfg_cannot_name_are_refused(api):
    proxy, s = api
    long_key = "vm-data/" + "k" * 60
    vm = new_vm(api, xenstore_data={long_key: "v"})
    assert err(proxy.VM.start(s, vm, False, False))[:3] == \
        ["VALUE_NOT_SUPPORTED", "xenstore_data", long_key]
    ok(proxy.VM.set_xenstore_data(s, vm, {"vm-data/ok": "v"}))
    ok(proxy.VM.start(s, vm, False, False))
    gone(api, vm)
