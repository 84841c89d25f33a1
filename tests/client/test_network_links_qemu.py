"""Test guests on PIF networks: a guest reaches a host-side veth through a
plugged PIF's bridge with MTU 9000 end to end; guests on VLAN networks over
a veth trunk reach each other on the same tag and not across tags (needs
the kernel's 802.1Q support). The daemon runs in a network namespace the
test makes; nothing is left behind."""
import os
import time

import pytest

from netns import NetNs, ip
from test_network import NsDaemon, vif_record
from test_network_links import SEED_NICS, add_nic, fdb_macs, master
from test_network_qemu import GUEST_DIR, guest, guest_vm, wait_console  # noqa: F401
from xapid_daemon import ok


@pytest.fixture
def netns():
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        pytest.skip("bridges and taps need root and /dev/net/tun")
    ns = NetNs()
    yield ns
    ns.remove()


def test_guest_reaches_a_host_veth_on_a_pif_bridge_with_mtu_9000(netns, guest):
    add_nic(netns, "eth1")
    ip("ip", "link", "set", "p-eth1", "mtu", "9000", ns=netns.peer)
    ip("ip", "addr", "add", "10.97.0.1/24", "dev", "p-eth1", ns=netns.peer)
    d = NsDaemon(netns, "qemu", ["--guest-kernel-dir", GUEST_DIR])
    try:
        api, s = d.login()
        host = ok(api.host.get_all(s))[0]
        pif = ok(api.PIF.introduce(s, host, "", "eth1", True))
        net = ok(api.PIF.get_network(s, pif))
        ok(api.network.set_MTU(s, net, "9000"))
        ok(api.PIF.plug(s, pif))
        bridge = ok(api.network.get_bridge(s, net))
        vm, uuid = guest_vm(api, s, guest, "wire", "xapid.ip=10.97.0.2/24 xapid.ping=10.97.0.1")
        vif = ok(api.VIF.create(s, vif_record(vm, net, "0")))
        ok(api.VM.start(s, vm, False, False))
        text = wait_console(d, uuid, "XAPID-GUEST-PING-OK 10.97.0.1")
        assert f"eth0={ok(api.VIF.get_MAC(s, vif))}@9000" in text
        assert master(netns, f"xv{uuid[:8]}.0") == bridge
        ok(api.VM.hard_shutdown(s, vm))
        ok(api.PIF.unplug(s, pif))
        assert netns.links() == SEED_NICS | {"eth1"}
    finally:
        d.stop()
    assert netns.links() == SEED_NICS | {"eth1"}


def test_guests_on_vlans_over_a_trunk(netns, guest):
    # eth1 and eth2 are the two ends of one veth: a trunk between two NICs.
    ip("ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth2", ns=netns.name)
    d = NsDaemon(netns, "qemu", ["--guest-kernel-dir", GUEST_DIR])
    try:
        api, s = d.login()
        host = ok(api.host.get_all(s))[0]
        p1 = ok(api.PIF.introduce(s, host, "", "eth1", True))
        p2 = ok(api.PIF.introduce(s, host, "", "eth2", True))
        nets = {n: ok(api.network.create(s, {"name_label": n})) for n in ("a10", "b10", "c20")}
        vlans = [ok(api.VLAN.create(s, p1, "10", nets["a10"])),
                 ok(api.VLAN.create(s, p2, "10", nets["b10"])),
                 ok(api.VLAN.create(s, p2, "20", nets["c20"]))]
        for dev in ("eth1", "eth2"):
            ip("ip", "link", "set", dev, "up", ns=netns.name)
        vms = {}
        for name, args in (("a10", "xapid.ip=10.0.10.2/24"),
                           ("b10", "xapid.ip=10.0.10.3/24 xapid.ping=10.0.10.2"),
                           ("c20", "xapid.ip=10.0.10.4/24 xapid.ping=10.0.10.2")):
            vm, uuid = guest_vm(api, s, guest, name, args)
            vif = ok(api.VIF.create(s, vif_record(vm, nets[name], "0")))
            vms[name] = (vm, uuid, ok(api.VIF.get_MAC(s, vif)))
            ok(api.VM.start(s, vm, False, False))
        wait_console(d, vms["b10"][1], "XAPID-GUEST-PING-OK 10.0.10.2")
        # c20 sends (its own bridge learns its MAC) but nothing of it
        # reaches a10's bridge on the other tag.
        c_bridge = ok(api.network.get_bridge(s, nets["c20"]))
        a_bridge = ok(api.network.get_bridge(s, nets["a10"]))
        deadline = time.time() + 120
        while vms["c20"][2] not in fdb_macs(netns, c_bridge) and time.time() < deadline:
            time.sleep(0.2)
        assert vms["c20"][2] in fdb_macs(netns, c_bridge)
        assert vms["b10"][2] in fdb_macs(netns, a_bridge)
        assert vms["c20"][2] not in fdb_macs(netns, a_bridge)
        assert "XAPID-GUEST-PING-OK" not in wait_console(d, vms["c20"][1], "XAPID-GUEST-NET")
        for vm, _, _ in vms.values():
            ok(api.VM.hard_shutdown(s, vm))
        for vlan in vlans:
            ok(api.VLAN.destroy(s, vlan))
        assert netns.links() == SEED_NICS | {"eth1", "eth2"}
    finally:
        d.stop()
    assert netns.links() == SEED_NICS | {"eth1", "eth2"}
