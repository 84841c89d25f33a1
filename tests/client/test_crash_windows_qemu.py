"""Crash windows with a real guest: xapid is killed (kill -9, through the
test-only XAPID_CRASH_AT hook) right after each write commit of VM.start,
VM.suspend, VM.resume, VM.checkpoint and VM.hard_shutdown in turn,
restarted, and checked: the VM's power state is what its QEMU process
says (Running or Paused: a live QEMU whose guest still runs; Halted: no
QEMU; Suspended: no QEMU and a saved image), no other QEMU is left, and
no operation lock is held. (Only this daemon's QEMUs count: other tests
may run guests on the same host.)"""
import http.client
import os
import time
import xmlrpc.client

import pytest

from test_vm_qemu import daemon, domain_dir, guest, new_guest_vm, ok, wait_ready  # noqa: F401

# Skipped under the sanitizer (below): the plain pass of scripts/test runs it.
pytestmark = pytest.mark.plain_build

NULL = "OpaqueRef:NULL"


def qemu_processes():
    """pid -> command line of every QEMU on the host."""
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            continue
        if argv and argv[0].endswith(b"qemu-system-x86_64") and state not in ("Z", "X"):
            found[int(pid)] = b" ".join(argv).decode(errors="replace")
    return found


def holds_files_in(pid, directory):
    """Whether the process has a file under directory open (a QEMU of
    this daemon's holds its console log and images)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(directory + "/"):
                return True
        except FileNotFoundError:
            pass
    return False


def qemus_of(daemon, uuid):
    return [pid for pid, cmd in qemu_processes().items() if f" -uuid {uuid} " in cmd]


def heartbeats(daemon, uuid):
    path = os.path.join(domain_dir(daemon, uuid), "console.log")
    if not os.path.exists(path):
        return 0
    with open(path, errors="replace") as f:
        return f.read().count("XAPID-GUEST-ALIVE")


def violations(daemon, proxy, s, vm, uuid, others_before):
    found = []
    rec = ok(proxy.VM.get_record(s, vm))
    state, pids = rec["power_state"], qemus_of(daemon, uuid)
    if state in ("Running", "Paused") and len(pids) != 1:
        found.append(f"{state} with {len(pids)} QEMU processes")
    if state in ("Halted", "Suspended") and pids:
        found.append(f"{state} but QEMU {pids} runs")
    if state == "Suspended":
        image = rec["suspend_VDI"]
        if image == NULL:
            found.append("Suspended without a suspend_VDI")
        else:
            v = ok(proxy.VDI.get_record(s, image))
            sr = ok(proxy.PBD.get_device_config(s, ok(proxy.SR.get_PBDs(s, v["SR"]))[0]))
            path = os.path.join(sr["location"], v["location"])
            if not os.path.exists(path) or os.path.getsize(path) == 0:
                found.append("Suspended but its image is missing or empty")
    elif rec["suspend_VDI"] != NULL:
        found.append(f"{state} but holds a suspend_VDI")
    if state == "Running":
        try:
            wait_heartbeat(daemon, uuid)
        except AssertionError:
            found.append("Running but the guest does not run")
    if rec["current_operations"]:
        found.append(f"still locked: {rec['current_operations']}")
    for snap in rec["snapshots"]:
        srec = ok(proxy.VM.get_record(s, snap))
        if srec["name_label"] == "cp" and srec["power_state"] != "Suspended":
            found.append("a checkpoint without its memory")
    mine = {pid for pid in qemu_processes() if holds_files_in(pid, daemon.state_dir)}
    strays = mine - others_before - set(pids)
    if strays:
        found.append(f"stray QEMU processes {sorted(strays)}")
    return found


def wait_heartbeat(daemon, uuid):
    beats = heartbeats(daemon, uuid)
    deadline = time.time() + 60
    while heartbeats(daemon, uuid) <= beats:
        assert time.time() < deadline, "the guest does not run"
        time.sleep(0.2)


def bring_to(daemon, proxy, s, vm, uuid, state):
    now = ok(proxy.VM.get_power_state(s, vm))
    if now == "Paused":
        ok(proxy.VM.unpause(s, vm))
        now = "Running"
    if state == "Halted":
        if now != "Halted":
            ok(proxy.VM.hard_shutdown(s, vm))
        return
    if now == "Halted":
        ok(proxy.VM.start(s, vm, False, False))
        wait_ready(daemon, uuid)
    elif now == "Suspended" and state == "Running":
        ok(proxy.VM.resume(s, vm, False, False))
        wait_heartbeat(daemon, uuid)
    if state == "Suspended" and now != "Suspended":
        ok(proxy.VM.suspend(s, vm))


OPERATIONS = {
    "VM.start": ("Halted", lambda p, s, vm: p.VM.start(s, vm, False, False)),
    "VM.suspend": ("Running", lambda p, s, vm: p.VM.suspend(s, vm)),
    "VM.resume": ("Suspended", lambda p, s, vm: p.VM.resume(s, vm, False, False)),
    "VM.checkpoint": ("Running", lambda p, s, vm: p.VM.checkpoint(s, vm, "cp")),
    "VM.hard_shutdown": ("Running", lambda p, s, vm: p.VM.hard_shutdown(s, vm)),
}


@pytest.fixture(scope="module")
def reports():
    lines = []
    yield lines
    print("\ncrash windows with a real guest:\n" + "\n".join(lines))


@pytest.mark.skipif(os.environ.get("XAPID_SANITIZED") == "1",
                    reason="the plain pass covers it (each trial restarts xapid and QEMU)")
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_kill_after_each_commit_leaves_the_vm_as_its_qemu(daemon, guest, name, reports):  # noqa: F811
    initial, operation = OPERATIONS[name]
    others = set(qemu_processes())
    proxy, s, vm, uuid = new_guest_vm(daemon, guest)
    trials, found = 0, []
    for k in range(1, 40):
        proxy, s = daemon.login()
        bring_to(daemon, proxy, s, vm, uuid, initial)
        daemon.stop()
        os.environ["XAPID_CRASH_AT"] = f"after:{k}"
        try:
            daemon.start()
        finally:
            del os.environ["XAPID_CRASH_AT"]
        try:
            p, ts = daemon.login()
            ok(operation(p, ts, vm))
            crashed = False
        except (ConnectionError, OSError, http.client.HTTPException,
                xmlrpc.client.ProtocolError):
            crashed = True
        if crashed:
            daemon.proc.wait(timeout=30)
            assert daemon.proc.returncode == -9
        else:  # still armed: its next commit would kill it
            daemon.kill9()
        daemon.log.close()
        daemon.start()
        proxy, s = daemon.login()
        trials += 1
        found += [f"after:{k}: {v}" for v in violations(daemon, proxy, s, vm, uuid, others)]
        if not crashed:
            break
    reports.append(f"  {name}: {trials} trials, {len(found)} invariant violations")
    bring_to(daemon, proxy, s, vm, uuid, "Halted")
    assert found == [], found
