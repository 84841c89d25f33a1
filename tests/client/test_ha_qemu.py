"""HA with the real test guest (docs/ha.md): two QEMU xapids and a sim
witness (disabled: the third Raft voter, it runs nothing), each in a
network namespace of its own on one LAN bridge, --pool-dqlite, HA on
with a 10 s timeout, a shared SR in a directory all see. The guest,
protected, runs on b with its disk on the shared SR. kill -9 of b's xapid
and its QEMU: the guest runs again on a (its console says so), a's QEMU
alone holds the image (qemu-img check is refused the lock). Then b's link
goes down with the guest on it: b's QEMU is gone (by pid) before a starts
it again. Never two QEMUs of the guest alive at once; nothing left
behind."""
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from netns import ip, unix_proxy
from test_network import NsDaemon
from test_network_qemu import GUEST_DIR, guest_vm, wait_console
from test_pool_failover import log_has
from xapid_daemon import PASSWORD, REPO, free_port, ok, wait_until

pytestmark = [pytest.mark.timeout(900), pytest.mark.plain_build]

MiB = 1 << 20
NET = "10.77.5"
TIMEOUT = 10
MARGIN = 3  # max(2 s, timeout / 4)


class Ns:
    def __init__(self, name):
        self.name = name


@pytest.fixture(scope="module")
def lan():
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        pytest.skip("namespaces and bridges need root")
    subprocess.run([os.path.join(REPO, "scripts", "build-test-guest"), GUEST_DIR], check=True,
                   stdout=subprocess.DEVNULL)
    tag = os.getpid()
    names = {"lan": f"ha-ql{tag}", 2: f"ha-qa{tag}", 3: f"ha-qb{tag}", 4: f"ha-qw{tag}"}
    try:
        for ns in names.values():
            ip("ip", "netns", "add", ns)
        ip("ip", "link", "add", "lan", "type", "bridge", ns=names["lan"])
        ip("ip", "addr", "add", f"{NET}.1/24", "dev", "lan", ns=names["lan"])
        ip("ip", "link", "set", "lan", "up", ns=names["lan"])
        for n in (2, 3, 4):
            ns = names[n]
            ip("ip", "link", "add", "eth0", "type", "veth", "peer", "name", f"up{n}", "netns",
               names["lan"], ns=ns)
            ip("ip", "link", "set", "lo", "up", ns=ns)
            ip("ip", "addr", "add", f"{NET}.{n}/24", "dev", "eth0", ns=ns)
            ip("ip", "link", "set", "eth0", "up", ns=ns)
            ip("ip", "link", "set", f"up{n}", "master", "lan", "up", ns=names["lan"])
        yield names
    finally:
        for ns in names.values():
            ip("ip", "netns", "del", ns, check=False)
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert not any(ns in left for ns in names.values())


def unix_login(d):
    return ok(unix_proxy(d.sock).session.login_with_password("root", PASSWORD))


def hosts_seen(d, n):
    try:
        reply = unix_proxy(d.sock).session.login_with_password("root", PASSWORD)
    except OSError:
        return False  # restarting
    if reply["Status"] != "Success":
        return False  # HOST_STILL_BOOTING
    return len(ok(unix_proxy(d.sock).host.get_all(reply["Value"]))) == n


@pytest.fixture(scope="module")
def pool(lan):
    port = free_port()
    shared = tempfile.mkdtemp(prefix="xapid-ha-shared-")
    hosts = []
    try:
        for n, hv in ((2, "qemu"), (3, "qemu"), (4, "sim")):
            hosts.append(NsDaemon(Ns(lan[n]), hv,
                                  ["--guest-kernel-dir", GUEST_DIR, "--sr-root", shared,
                                   "--member-timeout", "3", "--pool-dqlite"],
                                  listen=f"{NET}.{n}:{port}"))
        a, b, w = hosts
        for k, member in enumerate((b, w)):
            ok(unix_proxy(member.sock).pool.join(unix_login(member), f"{NET}.2", "root",
                                                 PASSWORD))
            wait_until(lambda: hosts_seen(member, k + 2), timeout=120, what="a member")
            wait_until(lambda: log_has(a, ") added") >= k + 1, timeout=60,
                       what="its node added")
        yield {"a": a, "b": b, "w": w, "shared": shared}
    finally:
        failures = []
        for d in hosts:
            try:
                d.stop()
            except Exception as e:
                failures.append(e)
            shutil.rmtree(d.state_dir, ignore_errors=True)
        shutil.rmtree(shared, ignore_errors=True)
        if failures:
            raise failures[0]


def qemu_pid(d, uuid):
    """The pid of d's QEMU of the guest while it lives, else None."""
    try:
        pid = int(open(os.path.join(d.state_dir, "domains", uuid, "qemu.pid")).read())
    except (OSError, ValueError):
        return None
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return pid if uuid.encode() in f.read() else None
    except OSError:
        return None


def image_held_by_one_qemu(image):
    probe = subprocess.run(["qemu-img", "info", "--force-share", image],
                           capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr
    locked = subprocess.run(["qemu-img", "check", image], capture_output=True, text=True)
    return locked.returncode != 0 and "lock" in locked.stderr


def test_the_real_guest_runs_again_after_its_host_dies_or_is_cut_off(pool, lan):
    a, b, w = pool["a"], pool["b"], pool["w"]
    api = unix_proxy(a.sock)
    s = unix_login(a)
    hosts = {ok(api.host.get_address(s, h)): h for h in ok(api.host.get_all(s))}
    ah, bh, wh = hosts[f"{NET}.2"], hosts[f"{NET}.3"], hosts[f"{NET}.4"]
    ok(api.host.disable(s, wh))  # the witness votes, runs nothing
    location = os.path.join(pool["shared"], "sr")
    sr = ok(api.SR.create(s, ah, {"location": location}, "0", "shared", "", "file", "", True,
                          {}))
    vdi = ok(api.VDI.create(s, {"SR": sr, "virtual_size": str(16 * MiB), "type": "user",
                                "sharable": False, "read_only": False, "other_config": {},
                                "name_label": "the protected guest's disk"}))
    image = os.path.join(location, ok(api.VDI.get_location(s, vdi)))
    vm, uuid = guest_vm(api, s, (os.path.join(GUEST_DIR, "vmlinuz"),
                                 os.path.join(GUEST_DIR, "initrd.img")), "protected", "")
    ok(api.VBD.create(s, {"VM": vm, "VDI": vdi, "userdevice": "1", "bootable": False,
                          "mode": "RW", "type": "Disk", "empty": False, "other_config": {},
                          "qos_algorithm_type": "", "qos_algorithm_params": {}}))
    assert ok(api.VM.assert_agile(s, vm)) == ""  # its disk on the shared SR, no VIF
    pool_ref = ok(api.pool.get_all(s))[0]
    ok(api.pool.enable_ha(s, [], {"timeout": str(TIMEOUT)}))
    wait_until(lambda: all(log_has(d, "ha: armed") for d in (a, b, w)), what="every host armed")
    time.sleep(2)
    ok(api.VM.set_ha_restart_priority(s, vm, "restart"))
    try:
        ok(api.VM.start_on(s, vm, bh, False, False))
        wait_console(b, uuid, "XAPID-GUEST-ALIVE", timeout=300)
        old = qemu_pid(b, uuid)
        assert old and image_held_by_one_qemu(image)

        # 1. b dies: xapid and its QEMU at once.
        b.kill9()
        os.kill(old, signal.SIGKILL)
        killed = time.monotonic()
        wait_until(lambda: qemu_pid(b, uuid) is None, timeout=10, what="b's QEMU gone")

        def running_on_a():
            assert qemu_pid(b, uuid) is None
            return ok(api.VM.get_resident_on(s, vm)) == ah and \
                ok(api.VM.get_power_state(s, vm)) == "Running"

        wait_until(running_on_a, timeout=TIMEOUT + MARGIN + 60, what="the guest restarted on a")
        back = time.monotonic() - killed
        wait_console(a, uuid, "XAPID-GUEST-ALIVE", timeout=300)
        alive = time.monotonic() - killed
        print(f"\nha (real guest): kill -9 of its host to Running on a {back:.2f} s, its "
              f"console alive {alive:.2f} s (timeout {TIMEOUT} s)")
        assert qemu_pid(a, uuid) and image_held_by_one_qemu(image)
        b.start()
        wait_until(lambda: hosts_seen(b, 3), timeout=120, what="b a member again")
        metrics = ok(api.host.get_metrics(s, bh))
        wait_until(lambda: ok(api.host_metrics.get_live(s, metrics)) is True, timeout=60,
                   what="b live again")
        wait_until(lambda: log_has(b, "ha: armed") >= 2, what="b armed again")
        time.sleep(2)

        # 2. The guest back on b, then b's link down.
        ok(api.VM.pool_migrate(s, vm, bh, {"live": "true"}))
        wait_until(lambda: qemu_pid(b, uuid) and not qemu_pid(a, uuid), timeout=60,
                   what="the guest on b alone")
        old = qemu_pid(b, uuid)
        ip("ip", "link", "set", "up3", "down", ns=lan["lan"])
        cut = time.monotonic()
        seen = {}

        def restarted():
            gone = qemu_pid(b, uuid) is None
            if gone:
                seen.setdefault("fenced", time.monotonic() - cut)
            if qemu_pid(a, uuid):
                assert gone, "a started the guest while b's QEMU still lived"
                seen["restarted"] = time.monotonic() - cut
                return True
            return False

        wait_until(restarted, timeout=TIMEOUT + MARGIN + 60, what="the guest restarted on a")
        print(f"ha (real guest): b's link down to its QEMU gone {seen['fenced']:.2f} s, to a's "
              f"QEMU {seen['restarted']:.2f} s")
        assert seen["fenced"] < TIMEOUT
        wait_console(a, uuid, "XAPID-GUEST-ALIVE", timeout=300)
        assert image_held_by_one_qemu(image)
        ip("ip", "link", "set", "up3", "up", ns=lan["lan"])
        wait_until(lambda: log_has(b, "serving again"), timeout=60, what="b back")
        assert qemu_pid(b, uuid) is None
    finally:
        ok(api.VM.set_ha_restart_priority(s, vm, ""))
        if ok(api.VM.get_power_state(s, vm)) == "Running":
            ok(api.VM.hard_shutdown(s, vm))
        ok(api.pool.disable_ha(s))
    ok(api.VM.destroy(s, vm))
    ok(api.VDI.destroy(s, vdi))
