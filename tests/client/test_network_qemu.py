"""Real guests on a real bridge: two test guests on one internal network
ping each other. The daemon runs inside a network namespace the test makes
(tests/client/netns.py), so its bridges and taps never touch the host's
links; after the guests stop, no bridge or tap is left."""
import os
import signal
import subprocess
import time

import pytest

from netns import NetNs, ip
from test_network import NsDaemon, vif_record
from xapid_daemon import REPO, ok

MiB = 1 << 20
GUEST_DIR = os.environ.get("XAPID_TEST_GUEST", os.path.join(REPO, "build", "test-guest"))


@pytest.fixture(scope="module")
def guest():
    subprocess.run([os.path.join(REPO, "scripts", "build-test-guest"), GUEST_DIR], check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.join(GUEST_DIR, "vmlinuz"), os.path.join(GUEST_DIR, "initrd.img")


@pytest.fixture
def netns():
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        pytest.skip("bridges and taps need root and /dev/net/tun")
    ns = NetNs()
    yield ns
    ns.remove()


def console(d, uuid):
    path = os.path.join(d.state_dir, "domains", uuid, "console.log")
    if not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        return f.read()


def wait_console(d, uuid, marker, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = console(d, uuid)
        if marker in text:
            return text
        time.sleep(0.2)
    raise AssertionError(f"no {marker!r} on the console of {uuid}:\n{console(d, uuid)[-2000:]}")


def guest_vm(api, s, guest, name, args, platform=None):
    kernel, initrd = guest
    vm = ok(api.VM.create(s, {
        "name_label": name, "memory_static_max": str(192 * MiB), "VCPUs_max": "1",
        "VCPUs_at_startup": "1", "PV_kernel": kernel, "PV_ramdisk": initrd,
        "PV_args": "console=ttyS0 quiet panic=-1 cryptomgr.notests " + args,
        "actions_after_shutdown": "destroy", "actions_after_reboot": "restart",
        "actions_after_crash": "destroy", "platform": platform or {},
        "other_config": {"clean_shutdown_timeout": "60"}}))
    return vm, ok(api.VM.get_uuid(s, vm))


def test_two_guests_on_an_internal_network_ping_each_other(netns, guest):
    d = NsDaemon(netns, "qemu", ["--guest-kernel-dir", GUEST_DIR])
    try:
        api, s = d.login()
        net = ok(api.network.create(s, {"name_label": "private", "MTU": "1400"}))
        bridge = ok(api.network.get_bridge(s, net))
        assert bridge == "xapi0"
        assert bridge not in netns.links()  # made when a guest first needs it
        a, ua = guest_vm(api, s, guest, "a", "xapid.ip=10.0.0.2/24")
        b, ub = guest_vm(api, s, guest, "b", "xapid.ip=10.0.0.3/24 xapid.ping=10.0.0.2",
                         platform={"nic_type": "e1000"})
        va = ok(api.VIF.create(s, vif_record(a, net, "0")))
        vb = ok(api.VIF.create(s, vif_record(b, net, "0")))
        ok(api.VM.start(s, a, False, False))
        ok(api.VM.start(s, b, False, False))
        links = netns.links()
        taps = {f"xv{ua[:8]}.0", f"xv{ub[:8]}.0"}
        assert bridge in links and taps <= links
        assert ok(api.VIF.get_currently_attached(s, va)) is True
        text = wait_console(d, ub, "XAPID-GUEST-PING-OK 10.0.0.2")
        # The guests' MACs are the VIFs'; virtio-net tells its guest the
        # network's MTU (e1000 cannot).
        assert f"eth0={ok(api.VIF.get_MAC(s, vb))}@1500" in text
        text_a = wait_console(d, ua, "XAPID-GUEST-NET")
        assert f"eth0={ok(api.VIF.get_MAC(s, va))}@1400" in text_a
        assert ok(api.VIF.get_MTU(s, va)) == "1400"
        for link in [bridge] + sorted(taps):
            assert ip("cat", f"/sys/class/net/{link}/mtu", ns=netns.name).stdout.strip() == "1400"
        ok(api.VM.hard_shutdown(s, b))
        assert f"xv{ub[:8]}.0" not in netns.links()  # the tap went with QEMU
        assert bridge in netns.links()  # still used by a
        ok(api.VM.hard_shutdown(s, a))
        assert ok(api.VIF.get_currently_attached(s, va)) is False
        assert netns.links() == {"lo", "eth0"}  # no bridge, no tap left
        ok(api.network.destroy(s, net))
    finally:
        d.stop()
    assert netns.links() == {"lo", "eth0"}


def nics_line(text):
    lines = [l for l in text.splitlines() if l.startswith("XAPID-GUEST-NICS")]
    return lines[-1].split()[1:] if lines else None


def wait_nics(d, uuid, names, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if nics_line(console(d, uuid)) == names:
            return
        time.sleep(0.2)
    raise AssertionError(f"guest NICs {nics_line(console(d, uuid))}, expected {names}")


def test_vif_hotplug_seen_in_the_guest(netns, guest):
    d = NsDaemon(netns, "qemu", ["--guest-kernel-dir", GUEST_DIR])
    try:
        api, s = d.login()
        net = ok(api.network.create(s, {"name_label": "private"}))
        bridge = ok(api.network.get_bridge(s, net))
        vm, uuid = guest_vm(api, s, guest, "hot", "")
        ok(api.VM.start(s, vm, False, False))
        wait_nics(d, uuid, [])
        assert bridge not in netns.links()
        vif = ok(api.VIF.create(s, vif_record(vm, net, "2")))
        ok(api.VIF.plug(s, vif))
        assert ok(api.VIF.get_currently_attached(s, vif)) is True
        tap = f"xv{uuid[:8]}.2"
        assert {bridge, tap} <= netns.links()
        wait_nics(d, uuid, ["eth0"])
        ok(api.VIF.unplug(s, vif))
        assert ok(api.VIF.get_currently_attached(s, vif)) is False
        wait_nics(d, uuid, [])
        assert netns.links() == {"lo", "eth0"}  # tap and bridge gone
        ok(api.VIF.plug(s, vif))  # again, on a new tap
        wait_nics(d, uuid, ["eth0"])
        ok(api.VM.hard_shutdown(s, vm))
        assert netns.links() == {"lo", "eth0"}
    finally:
        d.stop()
    assert netns.links() == {"lo", "eth0"}


def test_bridge_of_a_vm_that_stopped_while_xapid_was_away_is_removed(netns, guest):
    d = NsDaemon(netns, "qemu", ["--guest-kernel-dir", GUEST_DIR])
    try:
        api, s = d.login()
        net = ok(api.network.create(s, {"name_label": "private"}))
        bridge = ok(api.network.get_bridge(s, net))
        vm, uuid = guest_vm(api, s, guest, "away", "")
        vif = ok(api.VIF.create(s, vif_record(vm, net, "0")))
        ok(api.VM.start(s, vm, False, False))
        assert {bridge, f"xv{uuid[:8]}.0"} <= netns.links()
        d.kill9()
        pidfile = os.path.join(d.state_dir, "domains", uuid, "qemu.pid")
        pid = int(open(pidfile).read())
        os.kill(pid, signal.SIGKILL)
        # The kernel removes the tap a little after QEMU's fd closes.
        deadline = time.time() + 30
        while f"xv{uuid[:8]}.0" in netns.links() and time.time() < deadline:
            time.sleep(0.05)
        assert f"xv{uuid[:8]}.0" not in netns.links()  # the tap went with QEMU
        assert bridge in netns.links()
        d.start()
        api, s = d.login()
        assert ok(api.VM.get_power_state(s, vm)) == "Halted"
        assert ok(api.VIF.get_currently_attached(s, vif)) is False
        assert netns.links() == {"lo", "eth0"}
    finally:
        d.stop()
    assert netns.links() == {"lo", "eth0"}
