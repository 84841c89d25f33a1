"""A real guest on a bond's network (xapid's own bond, on a kernel without
CONFIG_BONDING; test_network_bond has the set-up): the test guest pings
the peer beyond the bond once a second, and keeps getting answers after
the active member loses carrier. Needs QEMU/KVM or TCG and the test
guest (scripts/build-test-guest)."""
import os

import pytest

from netns import ip
from test_network import vif_record
from test_network_bond import PEER_ADDRESS, bond_lan_of, new_bond, rx, unplug_members
from test_network_links import netns  # noqa: F401
from test_network_qemu import GUEST_DIR, console, guest, guest_vm  # noqa: F401
from xapid_daemon import ok, wait_until


@pytest.fixture
def qemu_bond_lan(netns):
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("taps need /dev/net/tun")
    yield from bond_lan_of(netns, "qemu", ["--guest-kernel-dir", GUEST_DIR])


def answers(d, uuid):
    return console(d, uuid).count("XAPID-GUEST-PING ok")


@pytest.mark.timeout(400)
def test_guest_on_a_bond_keeps_reaching_the_lan_through_a_failover(netns, qemu_bond_lan,
                                                                    guest):
    d, members, _ = qemu_bond_lan
    api, s = d.login()
    bond, _, bridge = new_bond(api, s, members, "active-backup", address=None)
    net = ok(api.PIF.get_network(s, ok(api.Bond.get_master(s, bond))))
    vm, uuid = guest_vm(api, s, guest, "g", f"xapid.ip=10.77.0.5/24 xapid.pingloop={PEER_ADDRESS}")
    ok(api.VIF.create(s, vif_record(vm, net, "0")))
    ok(api.VM.start(s, vm, False, False))
    try:
        wait_until(lambda: answers(d, uuid) >= 2, timeout=240, what="the guest's answers")
        # The active member's peer end down: the answers go on, through eth2.
        before, seen = rx(netns, "p-eth2"), answers(d, uuid)
        ip("ip", "link", "set", "p-eth1", "down", ns=netns.peer)
        wait_until(lambda: answers(d, uuid) >= seen + 2, timeout=60,
                   what="answers after the failover")
        assert rx(netns, "p-eth2") > before
        ip("ip", "link", "set", "p-eth1", "up", ns=netns.peer)
    finally:
        ok(api.VM.hard_shutdown(s, vm))
    assert bridge in netns.links()
    ok(api.Bond.destroy(s, bond))
    unplug_members(api, s, members)
