"""Real guests: the test guest (scripts/build-test-guest: Debian's kernel
and a busybox initramfs) booted by xapid's qemu driver under TCG or KVM,
driven through xmlrpc.client. Checks what the guest prints on its serial
console, what QEMU says over QMP, and the records."""
import grp
import os
import signal
import subprocess
import time

import pytest

from qemu_guest import (GUEST_DIR, build_guest, domain_dir,  # noqa: F401 (for other modules)
                        console_log, qemu_daemon, qmp, wait_for)
from xapid_daemon import ok

MiB = 1 << 20


@pytest.fixture(scope="module")
def guest():
    build_guest()
    return os.path.join(GUEST_DIR, "vmlinuz"), os.path.join(GUEST_DIR, "initrd.img")


@pytest.fixture()
def daemon():
    with qemu_daemon() as d:
        yield d


def new_guest_vm(daemon, guest, args="", **fields):
    proxy, s = daemon.login()
    kernel, initrd = guest
    record = {"name_label": "test guest", "memory_static_max": str(192 * MiB),
              "VCPUs_max": "1", "VCPUs_at_startup": "1", "PV_kernel": kernel,
              "PV_ramdisk": initrd, "PV_args": "console=ttyS0 quiet panic=-1 " + args,
              "actions_after_shutdown": "destroy", "actions_after_reboot": "restart",
              "actions_after_crash": "destroy", "other_config": {"clean_shutdown_timeout": "60"}}
    record.update(fields)
    vm = ok(proxy.VM.create(s, record))
    return proxy, s, vm, ok(proxy.VM.get_uuid(s, vm))


def ready_count(daemon, uuid):
    return console_log(daemon, uuid).count("XAPID-GUEST-READY")


def wait_ready(daemon, uuid, count=1, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ready_count(daemon, uuid) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"guest did not print its ready line {count} times")


def qmp_status(daemon, uuid):
    return qmp(daemon, uuid, "query-status")["status"]


def qemu_pid(daemon, uuid):
    with open(os.path.join(domain_dir(daemon, uuid), "qemu.pid")) as f:
        return int(f.read())


def fdset_file(daemon, uuid, name, fdsets):
    """The file behind a block node's /dev/fdset/N (xapid opens every image
    for QEMU), given QMP's query-fdsets."""
    if not name.startswith("/dev/fdset/"):
        return name
    fds = next(s["fds"] for s in fdsets if s["fdset-id"] == int(name.rsplit("/", 1)[1]))
    return os.readlink(f"/proc/{qemu_pid(daemon, uuid)}/fd/{fds[0]['fd']}")


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def test_guest_full_cycle(daemon, guest):
    proxy, s, vm, uuid = new_guest_vm(daemon, guest)
    ok(proxy.VM.start(s, vm, False, False))
    wait_ready(daemon, uuid)
    rec = ok(proxy.VM.get_record(s, vm))
    assert rec["power_state"] == "Running"
    domid = int(rec["domid"])
    console = ok(proxy.console.get_record(s, rec["consoles"][0]))
    assert console["protocol"] == "rfb" and console["location"].startswith("https://")
    pid = qemu_pid(daemon, uuid)
    assert qmp_status(daemon, uuid) == "running"

    ok(proxy.VM.pause(s, vm))
    assert qmp_status(daemon, uuid) == "paused"
    ok(proxy.VM.unpause(s, vm))
    assert qmp_status(daemon, uuid) == "running"

    ok(proxy.VM.clean_reboot(s, vm))  # the guest powers off on the button, then boots again
    assert int(ok(proxy.VM.get_domid(s, vm))) > domid
    wait_ready(daemon, uuid, 2)
    assert qemu_pid(daemon, uuid) == pid

    ok(proxy.VM.clean_shutdown(s, vm))
    assert ok(proxy.VM.get_power_state(s, vm)) == "Halted"
    assert wait_for(lambda: not alive(pid), 10)

    ok(proxy.VM.start(s, vm, False, False))
    pid = qemu_pid(daemon, uuid)
    ok(proxy.VM.hard_shutdown(s, vm))
    assert not alive(pid) and ok(proxy.VM.get_power_state(s, vm)) == "Halted"
    ok(proxy.VM.destroy(s, vm))


def test_reattach_after_kill9(daemon, guest):
    proxy, s, vm, uuid = new_guest_vm(daemon, guest)
    ok(proxy.VM.start(s, vm, False, False))
    wait_ready(daemon, uuid)
    domid = ok(proxy.VM.get_domid(s, vm))
    pid = qemu_pid(daemon, uuid)
    daemon.kill9()
    assert alive(pid)  # the guest outlives xapid
    daemon.start()
    proxy, s = daemon.login()
    rec = ok(proxy.VM.get_record(s, vm))
    assert rec["power_state"] == "Running" and rec["domid"] == domid
    ok(proxy.VM.pause(s, vm))  # still controllable
    assert qmp_status(daemon, uuid) == "paused"
    ok(proxy.VM.hard_shutdown(s, vm))
    assert wait_for(lambda: not alive(pid), 10)

    # A VM whose QEMU died while xapid was down comes back Halted.
    ok(proxy.VM.start(s, vm, False, False))
    pid = qemu_pid(daemon, uuid)
    daemon.kill9()
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not alive(pid), 10)
    daemon.start()
    proxy, s = daemon.login()
    assert ok(proxy.VM.get_power_state(s, vm)) == "Halted"
    ok(proxy.VM.destroy(s, vm))


def test_vcpu_mask_kept_across_a_restart_of_xapid(daemon, guest):
    """VCPUs_params:mask pins vCPUs hot-plugged after xapid was killed and
    started again (the mask is kept in the domain's directory)."""
    proxy, s, vm, uuid = new_guest_vm(daemon, guest, VCPUs_max="2",
                                      VCPUs_params={"mask": "1"})
    ok(proxy.VM.start(s, vm, False, False))
    wait_ready(daemon, uuid)

    def affinity():
        return [os.sched_getaffinity(c["thread-id"]) for c in qmp(daemon, uuid, "query-cpus-fast")]
    assert affinity() == [{1}]
    daemon.kill9()
    daemon.start()
    proxy, s = daemon.login()
    ok(proxy.VM.set_VCPUs_number_live(s, vm, "2"))
    assert affinity() == [{1}, {1}]
    ok(proxy.VM.hard_shutdown(s, vm))
    assert not os.path.exists(os.path.join(domain_dir(daemon, uuid), "vcpu-mask"))
    ok(proxy.VM.destroy(s, vm))


def test_guest_initiated_poweroff_and_reboot_are_seen(daemon, guest):
    proxy, s, vm, uuid = new_guest_vm(daemon, guest, "xapid.poweroff_after=1")
    event_from = getattr(proxy.event, "from")
    token = ok(event_from(s, ["vm"], "", 0.1))["token"]
    ok(proxy.VM.start(s, vm, False, False))
    halted = False
    deadline = time.time() + 120
    while not halted and time.time() < deadline:
        got = ok(event_from(s, ["vm"], token, 5.0))
        token = got["token"]
        halted = any(e["ref"] == vm and e["snapshot"]["power_state"] == "Halted"
                     for e in got["events"])
    assert halted, "the guest's poweroff was not seen as an event"
    assert ok(proxy.VM.get_domid(s, vm)) == "-1"
    ok(proxy.VM.destroy(s, vm))

    proxy, s, vm, uuid = new_guest_vm(daemon, guest, "xapid.reboot_after=1")
    ok(proxy.VM.start(s, vm, False, False))
    first = int(ok(proxy.VM.get_domid(s, vm)))
    wait_ready(daemon, uuid, 2)
    assert wait_for(lambda: int(ok(proxy.VM.get_domid(s, vm))) > first, 10)
    assert ok(proxy.VM.get_power_state(s, vm)) == "Running"
    ok(proxy.VM.hard_shutdown(s, vm))
    ok(proxy.VM.destroy(s, vm))


def test_qemu_runs_unprivileged_in_a_sandbox(daemon, guest):
    proxy, s, vm, uuid = new_guest_vm(daemon, guest)
    ok(proxy.VM.start(s, vm, False, False))
    pid = qemu_pid(daemon, uuid)
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
    assert int(status["Uid"].split()[0]) != 0
    assert int(status["Seccomp"].strip()) == 2  # -sandbox on: a seccomp filter
    # No capability at all (no DAC override either), nothing to gain by exec,
    # no group but kvm: QEMU opens no file of xapid's or the SR's by name.
    for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(status[cap].strip(), 16) == 0, (cap, status[cap])
    assert status["NoNewPrivs"].strip() == "1"
    groups = [int(g) for g in status["Groups"].split()]
    assert all(grp.getgrgid(g).gr_name == "kvm" for g in groups), groups
    # ... which it could not: the state dir (domain dir and SR in it) is root's
    assert os.stat(daemon.state_dir).st_mode & 0o007 == 0
    with open(f"/proc/{pid}/cmdline") as f:
        argv = f.read().split("\0")
    assert "-daemonize" not in argv
    assert not any(daemon.state_dir in a or any(g in a for g in guest) for a in argv), argv
    held = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    boot = ok(proxy.VM.get_PV_kernel(s, vm))
    assert boot in held or any(h.startswith("/memfd:") for h in held), held
    disks = [ok(proxy.VBD.get_VDI(s, v)) for v in ok(proxy.VM.get_VBDs(s, vm))]
    for vdi in disks:
        if vdi != "OpaqueRef:NULL":
            location = ok(proxy.VDI.get_location(s, vdi))
            assert any(h.endswith(location) for h in held), (location, held)
    ok(proxy.VM.hard_shutdown(s, vm))


def test_pv_kernel_outside_the_kernel_dirs_is_refused(daemon, guest, tmp_path):
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(open(guest[0], "rb").read())
    proxy, s, vm, uuid = new_guest_vm(daemon, guest, PV_kernel=str(kernel))
    reply = proxy.VM.start(s, vm, False, False)
    assert reply["Status"] == "Failure"
    code, field, path, reason = reply["ErrorDescription"]
    assert (code, field, path) == ("INVALID_VALUE", "PV_kernel", str(kernel))
    assert "allowed kernel directories" in reason
    assert ok(proxy.VM.get_power_state(s, vm)) == "Halted"
    assert not os.path.exists(os.path.join(domain_dir(daemon, uuid), "qemu.pid"))
    # A symlink inside an allowed directory to a file outside is refused too.
    link = os.path.join(GUEST_DIR, "outside-link")
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(kernel, link)
    try:
        ok(proxy.VM.set_PV_kernel(s, vm, link))
        reply = proxy.VM.start(s, vm, False, False)
        assert reply["Status"] == "Failure" and reply["ErrorDescription"][0] == "INVALID_VALUE"
    finally:
        os.unlink(link)


def test_orphan_qemu_of_an_unknown_uuid_is_stopped_at_startup(daemon, guest):
    proxy, s, vm, uuid = new_guest_vm(daemon, guest)
    ok(proxy.VM.start(s, vm, False, False))
    daemon.kill9()
    # A domain directory xapid knows no VM for, with a live QEMU in it.
    stray_uuid = "0b5e0000-0000-4000-8000-00000000dead"
    stray_dir = domain_dir(daemon, stray_uuid)
    os.makedirs(stray_dir)
    stray = subprocess.Popen(["qemu-system-x86_64", "-uuid", stray_uuid, "-machine", "pc,accel=tcg",
                              "-nodefaults", "-display", "none", "-S"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        with open(os.path.join(stray_dir, "qemu.pid"), "w") as f:
            f.write(f"{stray.pid}\n")
        daemon.start()
        proxy, s = daemon.login()
        assert stray.wait(timeout=30) is not None
        assert not os.path.exists(stray_dir)
        # The resident VM was reattached over a new monitor connection.
        assert ok(proxy.VM.get_power_state(s, vm)) == "Running"
        assert alive(qemu_pid(daemon, uuid))
        ok(proxy.VM.pause(s, vm))
        assert qmp_status(daemon, uuid) == "paused"
        ok(proxy.VM.hard_shutdown(s, vm))
    finally:
        if stray.poll() is None:
            stray.kill()
            stray.wait()


def halt_in_store(db, uuid):
    return db.execute("UPDATE VM SET power_state = 'Halted', resident_on = 'OpaqueRef:NULL' "
                      "WHERE uuid = ?", (uuid,)).rowcount


def test_domain_of_a_vm_not_resident_here_is_stopped_at_startup(daemon, guest):
    # The start intent: a QEMU whose VM record never said Running (xapid
    # killed between the spawn and the database update) is stopped by the
    # next start-up, its directory removed, the VM left Halted.
    proxy, s, vm, uuid = new_guest_vm(daemon, guest)
    ok(proxy.VM.start(s, vm, False, False))
    pid = qemu_pid(daemon, uuid)
    daemon.kill9()
    # Play the crash between spawn and the database update: the record
    # says Halted (VM.start's write undone), the intent is still on disk.
    import sqlite3
    db = sqlite3.connect(os.path.join(daemon.state_dir, "xapid.db"))
    open(os.path.join(domain_dir(daemon, uuid), "start-intent"), "w").close()
    rows = halt_in_store(db, uuid)
    db.commit()
    db.close()
    assert rows == 1
    daemon.start()
    proxy, s = daemon.login()
    assert wait_for(lambda: not alive(pid))
    assert not os.path.exists(domain_dir(daemon, uuid))
    assert ok(proxy.VM.get_power_state(s, vm)) == "Halted"
