"""The VM power-state machine through xmlrpc.client, on the sim driver
(same state machine as qemu, no guest): every transition, XAPI's errors
with their parameters, operation locking and allowed_operations."""
import time

from sim_daemon import api, daemon  # noqa: F401 (fixtures)
from xapid_daemon import err, ok, wait_until

MiB = 1 << 20


def new_vm(api, **fields):
    proxy, s = api
    record = {"name_label": "lifecycle", "memory_static_max": str(256 * MiB),
              "VCPUs_max": "1", "VCPUs_at_startup": "1",
              "actions_after_shutdown": "destroy", "actions_after_reboot": "restart",
              "actions_after_crash": "destroy"}
    record.update(fields)
    return ok(proxy.VM.create(s, record))


def power_state(api, vm):
    proxy, s = api
    return ok(proxy.VM.get_power_state(s, vm))


def test_software_version_names_the_driver(api):
    proxy, s = api
    host = ok(proxy.host.get_all(s))[0]
    version = ok(proxy.host.get_software_version(s, host))
    assert version["hypervisor"] == "sim"


def test_full_cycle(api):
    proxy, s = api
    vm = new_vm(api)
    assert sorted(ok(proxy.VM.get_allowed_operations(s, vm))) == \
        ["changing_NVRAM", "changing_VCPUs", "changing_dynamic_range", "changing_memory_limits",
         "changing_static_range", "clone", "copy", "create_vtpm", "destroy", "make_into_template",
         "power_state_reset", "snapshot", "start", "start_on"]
    ok(proxy.VM.start(s, vm, False, False))
    rec = ok(proxy.VM.get_record(s, vm))
    assert rec["power_state"] == "Running"
    host = ok(proxy.host.get_all(s))[0]
    assert rec["resident_on"] == host
    first_domid = int(rec["domid"])
    assert first_domid > 0
    assert "pause" in rec["allowed_operations"] and "start" not in rec["allowed_operations"]
    metrics = ok(proxy.VM_metrics.get_record(s, rec["metrics"]))
    assert metrics["VCPUs_number"] == "1" and metrics["memory_actual"] == str(256 * MiB)

    ok(proxy.VM.pause(s, vm))
    assert power_state(api, vm) == "Paused"
    assert ok(proxy.VM.get_allowed_operations(s, vm)).count("unpause") == 1
    ok(proxy.VM.unpause(s, vm))
    assert power_state(api, vm) == "Running"

    ok(proxy.VM.clean_reboot(s, vm))
    assert power_state(api, vm) == "Running"
    second = int(ok(proxy.VM.get_domid(s, vm)))
    assert second > first_domid  # a reboot is a new domain
    ok(proxy.VM.hard_reboot(s, vm))
    assert int(ok(proxy.VM.get_domid(s, vm))) > second

    ok(proxy.VM.clean_shutdown(s, vm))
    rec = ok(proxy.VM.get_record(s, vm))
    assert rec["power_state"] == "Halted" and rec["domid"] == "-1"
    assert rec["resident_on"] == "OpaqueRef:NULL" and rec["consoles"] == []
    ok(proxy.VM.start(s, vm, True, False))  # start_paused
    assert power_state(api, vm) == "Paused"
    ok(proxy.VM.hard_shutdown(s, vm))
    assert power_state(api, vm) == "Halted"
    ok(proxy.VM.start_on(s, vm, host, False, False))
    ok(proxy.VM.shutdown(s, vm))
    assert power_state(api, vm) == "Halted"
    ok(proxy.VM.destroy(s, vm))
    assert err(proxy.VM.get_record(s, vm)) == ["HANDLE_INVALID", "VM", vm]
    assert err(proxy.VM_metrics.get_record(s, rec["metrics"]))[0] == "HANDLE_INVALID"


def test_bad_power_states(api):
    proxy, s = api
    vm = new_vm(api)
    assert err(proxy.VM.pause(s, vm)) == ["VM_BAD_POWER_STATE", vm, "running", "halted"]
    assert err(proxy.VM.unpause(s, vm)) == ["VM_BAD_POWER_STATE", vm, "paused", "halted"]
    assert err(proxy.VM.clean_shutdown(s, vm)) == \
        ["VM_BAD_POWER_STATE", vm, "running", "halted"]
    assert err(proxy.VM.hard_shutdown(s, vm)) == \
        ["VM_BAD_POWER_STATE", vm, "paused, running, suspended", "halted"]
    assert err(proxy.VM.hard_reboot(s, vm)) == \
        ["VM_BAD_POWER_STATE", vm, "paused, running", "halted"]
    ok(proxy.VM.start(s, vm, False, False))
    assert err(proxy.VM.start(s, vm, False, False)) == \
        ["VM_BAD_POWER_STATE", vm, "halted", "running"]
    assert err(proxy.VM.destroy(s, vm)) == \
        ["VM_BAD_POWER_STATE", vm, "halted, suspended", "running"]
    ok(proxy.VM.pause(s, vm))
    assert err(proxy.VM.clean_reboot(s, vm)) == ["VM_BAD_POWER_STATE", vm, "running", "paused"]
    ok(proxy.VM.hard_shutdown(s, vm))
    ok(proxy.VM.destroy(s, vm))


def test_templates_and_control_domain(api):
    proxy, s = api
    template = new_vm(api, is_a_template=True)
    assert err(proxy.VM.start(s, template, False, False)) == \
        ["VM_IS_TEMPLATE", template, "start"]
    assert "start" not in ok(proxy.VM.get_allowed_operations(s, template))
    ok(proxy.VM.destroy(s, template))  # not a default template
    dom0 = [v for v, r in ok(proxy.VM.get_all_records(s)).items() if r["is_control_domain"]][0]
    assert err(proxy.VM.hard_shutdown(s, dom0))[0] == "OPERATION_NOT_ALLOWED"
    assert err(proxy.VM.power_state_reset(s, dom0)) == ["CANNOT_RESET_CONTROL_DOMAIN", dom0]


def test_unknown_refs_and_limits(api):
    proxy, s = api
    assert err(proxy.VM.start(s, "OpaqueRef:nope", False, False)) == \
        ["HANDLE_INVALID", "VM", "OpaqueRef:nope"]
    small = new_vm(api, memory_static_max=str(1 * MiB))
    assert err(proxy.VM.start(s, small, False, False)) == ["VM_MEMORY_SIZE_TOO_LOW", small]
    huge = new_vm(api, memory_static_max=str(1 << 50))
    e = err(proxy.VM.start(s, huge, False, False))
    overhead = int(ok(proxy.VM.compute_memory_overhead(s, huge)))  # counted at VM.start
    assert e[0] == "HOST_NOT_ENOUGH_FREE_MEMORY" and e[1] == str((1 << 50) + overhead)
    host = ok(proxy.host.get_all(s))[0]
    assert int(e[2]) == int(ok(proxy.host.compute_free_memory(s, host)))
    no_acpi = new_vm(api, platform={"acpi": "0"})
    ok(proxy.VM.start(s, no_acpi, False, False))
    assert err(proxy.VM.clean_shutdown(s, no_acpi)) == ["VM_LACKS_FEATURE", no_acpi]
    ok(proxy.VM.shutdown(s, no_acpi))  # falls back to hard
    assert power_state(api, no_acpi) == "Halted"
    for vm in (small, huge, no_acpi):
        ok(proxy.VM.destroy(s, vm))


def test_free_memory_follows_starts(api):
    proxy, s = api
    host = ok(proxy.host.get_all(s))[0]
    before = int(ok(proxy.host.compute_free_memory(s, host)))
    vm = new_vm(api)
    ok(proxy.VM.start(s, vm, False, False))
    overhead = int(ok(proxy.VM.compute_memory_overhead(s, vm)))
    assert int(ok(proxy.host.compute_free_memory(s, host))) == before - 256 * MiB - overhead
    ok(proxy.VM.hard_shutdown(s, vm))
    assert int(ok(proxy.host.compute_free_memory(s, host))) == before
    ok(proxy.VM.destroy(s, vm))


def wait_task(api, task, timeout=30):
    proxy, s = api
    deadline = time.time() + timeout
    while time.time() < deadline:
        rec = ok(proxy.task.get_record(s, task))
        if rec["status"] not in ("pending", "cancelling"):
            return rec
        time.sleep(0.02)
    raise AssertionError("task did not finish")


def test_operation_locking(api):
    """A clean shutdown that the guest ignores holds the VM's operation
    lock until its timeout: meanwhile another operation gets
    OTHER_OPERATION_IN_PROGRESS, the lock shows in current_operations and
    allowed_operations, and hard_shutdown may still run (XAPI allows it
    concurrently) and ends the wait."""
    proxy, s = api
    vm = new_vm(api, other_config={"clean_shutdown_timeout": "20", "sim_guest": "ignores-acpi"})
    ok(proxy.VM.start(s, vm, False, False))
    task = ok(proxy.Async.VM.clean_shutdown(s, vm))
    deadline = time.time() + 5
    while ok(proxy.VM.get_current_operations(s, vm)) == {} and time.time() < deadline:
        time.sleep(0.01)
    assert ok(proxy.VM.get_current_operations(s, vm)) == {task: "clean_shutdown"}
    allowed = ok(proxy.VM.get_allowed_operations(s, vm))
    assert "pause" not in allowed and "hard_shutdown" in allowed
    assert err(proxy.VM.pause(s, vm)) == \
        ["OTHER_OPERATION_IN_PROGRESS", "VM", vm, "clean_shutdown", task]
    ok(proxy.VM.hard_shutdown(s, vm))
    rec = wait_task(api, task)  # ended by the hard shutdown, not its 20 s timeout:
    assert rec["status"] == "success"  # the VM is halted, as asked
    assert power_state(api, vm) == "Halted"
    assert ok(proxy.VM.get_current_operations(s, vm)) == {}
    assert "start" in ok(proxy.VM.get_allowed_operations(s, vm))
    ok(proxy.VM.destroy(s, vm))


def test_clean_shutdown_timeout_and_cancel(api):
    proxy, s = api
    vm = new_vm(api, other_config={"clean_shutdown_timeout": "1", "sim_guest": "ignores-acpi"})
    ok(proxy.VM.start(s, vm, False, False))
    started = time.time()
    assert err(proxy.VM.clean_shutdown(s, vm)) == ["VM_SHUTDOWN_TIMEOUT", vm, "1"]
    assert time.time() - started >= 1  # not early; its precision is for bench/
    assert power_state(api, vm) == "Running"
    ok(proxy.VM.set_other_config(s, vm, {"clean_shutdown_timeout": "60",
                                         "sim_guest": "ignores-acpi"}))
    task = ok(proxy.Async.VM.clean_shutdown(s, vm))
    wait_until(lambda: ok(proxy.VM.get_current_operations(s, vm)) == {task: "clean_shutdown"},
               what="the clean shutdown")
    ok(proxy.task.cancel(s, task))
    rec = wait_task(api, task)
    assert rec["status"] == "cancelled", (rec["status"], rec["error_info"])
    assert power_state(api, vm) == "Running"
    ok(proxy.VM.set_other_config(s, vm, {"clean_shutdown_timeout": "1",
                                         "sim_guest": "ignores-acpi"}))
    ok(proxy.VM.shutdown(s, vm))  # clean times out, hard follows
    assert power_state(api, vm) == "Halted"
    ok(proxy.VM.destroy(s, vm))


def test_async_lifecycle_with_progress(api):
    proxy, s = api
    vm = new_vm(api)
    task = ok(proxy.Async.VM.start(s, vm, False, False))
    rec = wait_task(api, task)
    assert rec["status"] == "success" and rec["progress"] == 1.0
    assert rec["name_label"] == "Async.VM.start"
    assert power_state(api, vm) == "Running"
    task = ok(proxy.Async.VM.start(s, vm, False, False))
    rec = wait_task(api, task)
    assert rec["status"] == "failure"
    assert rec["error_info"] == ["VM_BAD_POWER_STATE", vm, "halted", "running"]
    task = ok(proxy.Async.VM.hard_shutdown(s, vm))
    assert wait_task(api, task)["status"] == "success"
    ok(proxy.VM.destroy(s, vm))


def test_power_state_changes_are_events(api):
    proxy, s = api
    vm = new_vm(api)
    event_from = getattr(proxy.event, "from")
    first = ok(event_from(s, ["vm"], "", 0.1))
    ok(proxy.VM.start(s, vm, False, False))
    got = ok(event_from(s, ["vm"], first["token"], 5.0))
    states = [e["snapshot"]["power_state"] for e in got["events"] if e["ref"] == vm]
    assert states and states[-1] == "Running"
    ok(proxy.VM.hard_shutdown(s, vm))
    ok(proxy.VM.destroy(s, vm))
