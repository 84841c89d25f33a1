"""The management network of a host whose management NIC is no bridge's
port: its record says guests attach through macvtap (and what that means),
a VM with a VIF on it starts without the host's address moving, and a NIC
that is another bridge's port is refused (sim domains, in a network namespace; the
real guest is test_first_vm_qemu.py)."""
import os

import pytest

from netns import NetNs, ip
from test_network import VM_RECORD, NsDaemon, vif_record
from xapid_daemon import err, ok


@pytest.fixture
def netns():
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    ns = NetNs()
    yield ns
    ns.remove()


def management(api, s):
    pif = next(p for p in ok(api.PIF.get_all(s)) if ok(api.PIF.get_management(s, p)))
    return pif, ok(api.PIF.get_network(s, pif))


def eth0_address(ns):
    return ip("ip", "-o", "-4", "addr", "show", "dev", "eth0", ns=ns.name).stdout.split()[3]


def test_first_vm_starts_on_the_management_network_through_macvtap(netns):
    d = NsDaemon(netns, "sim")
    try:
        api, s = d.login()
        pif, net = management(api, s)
        assert ok(api.PIF.get_currently_attached(s, pif)) is False
        other = ok(api.network.get_other_config(s, net))
        assert other["xapid-attach"] == "macvtap"
        assert "cannot reach its guests over eth0" in other["xapid-attach-note"]
        vm = ok(api.VM.create(s, VM_RECORD))
        vif = ok(api.VIF.create(s, vif_record(vm, net, "0")))
        ok(api.VM.start(s, vm, False, False))
        assert ok(api.VIF.get_currently_attached(s, vif)) is True
        assert eth0_address(netns) == "10.99.0.2/24"
        assert netns.links() == {"lo", "eth0"}  # no bridge made, nothing moved
        ok(api.VM.hard_shutdown(s, vm))
        # A NIC that is some other bridge's port cannot carry macvtaps.
        ip("ip", "link", "add", "br9", "type", "bridge", ns=netns.name)
        ip("ip", "link", "set", "eth0", "master", "br9", ns=netns.name)
        assert err(api.VM.start(s, vm, False, False)) == ["REQUIRED_PIF_IS_UNPLUGGED", pif]
        ip("ip", "link", "del", "br9", ns=netns.name)
        ok(api.VM.start(s, vm, False, False))
        ok(api.VM.hard_shutdown(s, vm))
    finally:
        d.stop()


def test_plugging_the_management_pif_makes_the_network_a_bridge(netns):
    d = NsDaemon(netns, "sim")
    try:
        api, s = d.login()
        pif, net = management(api, s)
        vm = ok(api.VM.create(s, VM_RECORD))
        ok(api.VIF.create(s, vif_record(vm, net, "0")))
        ok(api.VM.start(s, vm, False, False))
        ok(api.PIF.plug(s, pif))
        other = ok(api.network.get_other_config(s, net))
        assert other["xapid-attach"] == "bridge" and "xapid-attach-note" not in other
        assert err(api.PIF.unplug(s, pif)) == ["PIF_IS_MANAGEMENT_INTERFACE", pif]
        ok(api.VM.hard_shutdown(s, vm))
        # The record survives a restart as it is.
        d.stop()
        d.start()
        api, s = d.login()
        assert ok(api.network.get_other_config(s, net))["xapid-attach"] == "bridge"
    finally:
        d.stop()
