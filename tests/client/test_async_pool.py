"""Async calls that wait on a guest do not hold back others: with more
clean shutdowns of guests that ignore the power button than the pool has
workers, a short Async call and an Async hard_shutdown still complete
while every clean shutdown is still waiting."""
import time

import pytest

from xapid_daemon import Daemon, ok

MiB = 1024 * 1024
WORKERS = 8  # task.c's TASK_WORKERS


@pytest.fixture(scope="module")
def api():
    d = Daemon(extra_args=["--hypervisor", "sim"])
    yield d.login()
    d.stop()


def wait_task(api, task, deadline_s=30):
    proxy, s = api
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        rec = ok(proxy.task.get_record(s, task))
        if rec["status"] not in ("pending", "cancelling"):
            return rec
        time.sleep(0.02)
    raise AssertionError(f"task {task} still pending")


def test_guest_waits_do_not_occupy_the_pool(api):
    proxy, s = api
    vms = []
    for i in range(WORKERS + 2):
        vm = ok(proxy.VM.create(s, {
            "name_label": f"deaf{i}", "memory_static_max": str(64 * MiB),
            "VCPUs_max": "1", "VCPUs_at_startup": "1",
            "actions_after_shutdown": "destroy", "actions_after_reboot": "restart",
            "actions_after_crash": "destroy",
            "other_config": {"sim_guest": "ignores-acpi", "clean_shutdown_timeout": "600"}}))
        ok(proxy.VM.start(s, vm, False, False))
        vms.append(vm)
    cleans = {vm: ok(proxy.Async.VM.clean_shutdown(s, vm)) for vm in vms}
    # Every clean shutdown is running (holding its VM's lock), none done.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(
            ok(proxy.VM.get_current_operations(s, vm)) == {} for vm in vms):
        time.sleep(0.02)
    for vm in vms:
        assert ok(proxy.VM.get_current_operations(s, vm)) == {cleans[vm]: "clean_shutdown"}

    short = wait_task(api, ok(proxy.Async.network.create(s, {"name_label": "short"})))
    assert short["status"] == "success"
    hard = wait_task(api, ok(proxy.Async.VM.hard_shutdown(s, vms[0])))
    assert hard["status"] == "success", hard["error_info"]
    assert ok(proxy.VM.get_power_state(s, vms[0])) == "Halted"
    # the others still wait on their guests
    for vm in vms[1:]:
        assert ok(proxy.task.get_status(s, cleans[vm])) == "pending"

    for vm in vms[1:]:
        ok(proxy.VM.hard_shutdown(s, vm))
    for vm in vms:
        assert wait_task(api, cleans[vm])["status"] == "success"
        ok(proxy.VM.destroy(s, vm))
