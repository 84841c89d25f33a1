"""Xen Orchestra's connector (npm xen-api 4.7.6) drives a real VM through its
lifecycle against xapid's qemu driver, as XO does: VM.create with a full
record, then Async calls watched through their tasks (start, pause, unpause,
clean_reboot, clean_shutdown, start, hard_shutdown, destroy), each state read
from the connector's object cache, which its event.from loop keeps; the
guest's ready line on its serial console; VM.pause on a Halted VM refused.
tests/xo/lifecycle.mjs does the driving and prints its findings. The guest
is scripts/build-test-guest's, booted from its uncompressed vmlinux (PVH:
about twice as fast to the ready line under TCG as vmlinuz)."""
import glob
import json
import os
import subprocess

import pytest

from xapid_daemon import PASSWORD
from qemu_guest import GUEST_DIR, build_guest, qemu_daemon
from test_vm_qemu import alive
from test_xen_orchestra import XO_DIR, connector  # noqa: F401 (fixture)

MiB = 1 << 20
RUNNING_OPS = {"pause", "clean_shutdown", "clean_reboot", "hard_shutdown", "hard_reboot"}


@pytest.fixture(scope="module")
def guest():
    build_guest()
    return os.path.join(GUEST_DIR, "vmlinux"), os.path.join(GUEST_DIR, "initrd.img")


@pytest.fixture()
def daemon():
    with qemu_daemon() as d:
        yield d


def qemu_pids(daemon):
    pids = []
    for pidfile in glob.glob(os.path.join(daemon.state_dir, "domains", "*", "qemu.pid")):
        try:
            pids.append(int(open(pidfile).read()))
        except (OSError, ValueError):
            pass
    return [p for p in pids if alive(p)]


@pytest.mark.parametrize("transport", ["json-rpc", "xml-rpc"])
def test_xo_drives_vm_lifecycle(daemon, guest, connector, transport):  # noqa: F811
    kernel, initrd = guest
    run = subprocess.run(["node", os.path.join(XO_DIR, "lifecycle.mjs"), daemon.url.rstrip("/"),
                          PASSWORD, transport, kernel, initrd, daemon.state_dir],
                         capture_output=True, text=True, timeout=240, cwd=XO_DIR)
    assert run.stdout, run.stderr
    f = json.loads(run.stdout.strip().splitlines()[-1])
    print(json.dumps(f, indent=1))
    assert "error" not in f, (f.get("error"), f.get("errorCode"), run.stderr)
    assert run.returncode == 0, run.stderr

    # The created VM, as the cache holds it.
    assert f["vmRefIsRef"] is True
    assert f["uuidMatches"] is True
    assert f["cachedMemoryStaticMax"] == 192 * MiB
    assert f["cachedPVArgs"] == "console=ttyS0 quiet panic=-1"

    # Each step's power state and domid, read from the cache after the
    # Async call's task resolved ("" for these void messages).
    assert f["states"] == {"create": "Halted", "start": "Running", "pause": "Paused",
                           "unpause": "Running", "clean_reboot": "Running",
                           "clean_shutdown": "Halted", "start_again": "Running",
                           "hard_shutdown": "Halted"}
    d = f["domids"]
    # No domain: -1, as XAPI's VM.create and halting VMs set it (0 is dom0's).
    assert d["create"] == -1 and d["clean_shutdown"] == -1 and d["hard_shutdown"] == -1
    assert d["start"] > 0
    assert d["pause"] == d["start"] and d["unpause"] == d["start"]
    # One new domain per start and per reboot (xapid counts domids from 1 as
    # Xen does; this daemon runs no other VM), and the rebooted guest keeps
    # the domain the reboot made.
    assert d["clean_reboot"] == d["start"] + 1
    assert d["clean_reboot_ready"] == d["clean_reboot"]
    assert d["start_again"] == d["clean_reboot"] + 1
    # Each (power_state, domid) the connector's cache went through.
    start, reboot, again = d["start"], d["clean_reboot"], d["start_again"]
    assert f["history"] == ["Halted/-1", f"Running/{start}", f"Paused/{start}",
                            f"Running/{start}", f"Running/{reboot}", "Halted/-1",
                            f"Running/{again}", "Halted/-1", "gone"]
    steps = f["steps"]
    for name in ("start", "pause", "unpause", "clean_reboot", "clean_shutdown", "start_again",
                 "hard_shutdown", "destroy"):
        assert steps[name]["result"] == "", (name, steps[name])
    # The cache following each task, and the steps' delays, are reached within
    # lifecycle.mjs's deadlines; how fast is for bench/ (no timing asserts here).
    assert f["readyLinesAfterReboot"] == 2
    assert f["residentOnHost"] is True
    assert f["residentOnAfterShutdown"] == "OpaqueRef:NULL"

    # What XO offers in each state comes from allowed_operations.
    ops = {k: set(v) for k, v in f["allowedOperations"].items()}
    for name in ("create", "clean_shutdown", "hard_shutdown"):
        assert {"start", "destroy"} <= ops[name] and not ops[name] & RUNNING_OPS, (name, ops[name])
    for name in ("start", "unpause", "clean_reboot", "start_again"):
        assert RUNNING_OPS <= ops[name] and "start" not in ops[name], (name, ops[name])
        assert not {"unpause", "destroy"} & ops[name], (name, ops[name])
    assert "unpause" in ops["pause"] and "hard_shutdown" in ops["pause"]
    assert not {"pause", "start", "clean_reboot"} & ops["pause"], ops["pause"]
    assert all(v == [] for v in f["currentOperations"].values()), f["currentOperations"]

    # VM.pause on a Halted VM: XAPI's VM_BAD_POWER_STATE(vm, expected, actual),
    # synchronously and as the failed task's error_info.
    bad = {"code": "VM_BAD_POWER_STATE", "params": [f["vmRef"], "running", "halted"]}
    assert {k: f["pauseHalted"].get(k) for k in bad} == bad, f["pauseHalted"]
    assert {k: f["pauseHaltedAsync"].get(k) for k in bad} == bad, f["pauseHaltedAsync"]
    assert f["pauseHalted"]["name"] == "XapiError"
    assert f["pauseHaltedAsync"]["name"] == "XapiError"
    assert f["stateAfterBadCall"] == "Halted"

    # Destroyed: gone from the cache and from the server.
    assert f["getRecordAfterDestroy"]["code"] == "HANDLE_INVALID"
    assert f["getRecordAfterDestroy"]["params"] == ["VM", f["vmRef"]]
    assert f["eventLoopError"] is None
    assert qemu_pids(daemon) == []
