"""Bonds on a kernel without bonding (CONFIG_BONDING): xapid's own, a veth
pair whose hidden end tc BPF programs join to the members (see
src/network/bond_bpf.c). The daemon runs in a namespace (netns.py) where
two veths are the members; their peers are ports of a Linux bridge in the
peer namespace that holds 10.77.0.1, the far end pinged through the bond
from the bond's bridge. Frames are counted on the peer ends. Where the
kernel has bonding, test_network_links checks the kernel's bonds and
these tests are skipped."""
import subprocess

import pytest

from netns import ip
from test_network import NsDaemon
from test_network_links import (WIRE, SEED_NICS, add_nic, addr, fdb_macs, kernel_has,  # noqa: F401
                                master, netns)
from xapid_daemon import err, ok, wait_until

PEER_ADDRESS = "10.77.0.1"
# Two source MACs that balance-slb's hash (bond_bpf.c load_send) puts on
# the first and the second of two members with carrier.
MAC_ON_FIRST, MAC_ON_SECOND = "02:00:00:00:00:10", "02:00:00:00:00:11"


def slb_member(mac, members_up):
    b = bytes(int(x, 16) for x in mac.split(":"))
    x = int.from_bytes(b[2:6], "big") ^ int.from_bytes(b[0:2], "big")
    x ^= x >> 16
    x ^= x >> 8
    return (x & 0xFF) % members_up


def peer_bridge(ns):
    """p-eth1 and p-eth2 into a bridge holding PEER_ADDRESS."""
    ip("ip", "link", "add", "pbr", "type", "bridge", "forward_delay", "0", ns=ns.peer)
    for port in ("p-eth1", "p-eth2"):
        ip("ip", "link", "set", port, "master", "pbr", ns=ns.peer)
    ip("ip", "addr", "add", f"{PEER_ADDRESS}/24", "dev", "pbr", ns=ns.peer)
    ip("ip", "link", "set", "pbr", "up", ns=ns.peer)
    return ip("cat", "/sys/class/net/pbr/address", ns=ns.peer).stdout.strip()


def rx(ns, port):
    return int(ip("cat", f"/sys/class/net/{port}/statistics/rx_packets", ns=ns.peer).stdout)


# ICMP echo requests, each answered within a second (the host has no ping).
PING = """
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(1)
def checksum(b):
    n = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    n = (n >> 16) + (n & 0xFFFF)
    return ~(n + (n >> 16)) & 0xFFFF
for seq in range(int(sys.argv[2])):
    body = struct.pack("!BBHHH", 8, 0, 0, 0x7a11, seq) + b"xapid bond"
    s.sendto(body[:2] + struct.pack("!H", checksum(body)) + body[4:], (sys.argv[1], 0))
    while True:
        try:
            data = s.recv(2048)
        except socket.timeout:
            sys.exit(1)
        icmp = data[(data[0] & 15) * 4:]
        if icmp[0] == 0 and struct.unpack("!HH", icmp[4:8]) == (0x7a11, seq):
            break
"""


def pings(ns, count=3):
    """count echo requests to the peer from the daemon's namespace, each
    answered."""
    return ip("/usr/bin/python3", "-c", PING, PEER_ADDRESS, str(count), ns=ns.name,
              check=False).returncode == 0


def send_frames(ns, bridge, src, dst, count):
    """count frames (ethertype 0x88b5) from src to dst put on bridge by a
    packet socket: the bridge forwards them into the bond."""
    code = ("import socket\n"
            f"s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(({bridge!r}, 0))\n"
            f"f = bytes.fromhex({dst.replace(':', '')!r}) + bytes.fromhex("
            f"{src.replace(':', '')!r}) + b'\\x88\\xb5' + b'xapid' * 12\n"
            f"for _ in range({count}): s.send(f)\n")
    ip("/usr/bin/python3", "-c", code, ns=ns.name)


def only_through(ns, port, traffic):
    """Whether traffic() succeeds with nothing arriving on the other
    member's peer end."""
    other = "p-eth2" if port == "p-eth1" else "p-eth1"
    before = rx(ns, other)
    return traffic() and rx(ns, other) == before


def frames_reach(ns, port, bridge, src, dst, count=50):
    """Whether count frames from src all arrive on port."""
    before = rx(ns, port)
    send_frames(ns, bridge, src, dst, count)
    return rx(ns, port) - before >= count


def ipv6_off(ns, dev):
    """Whether dev's own IPv6 is off (a member's, so that it sends nothing)."""
    return ip("cat", f"/proc/sys/net/ipv6/conf/{dev}/disable_ipv6", ns=ns.name).stdout.strip() \
        == "1"


def filters(ns, dev):
    return ip("tc", "filter", "show", "dev", dev, "ingress", ns=ns.name, check=False).stdout


def bond_lan_of(netns, hypervisor, extra_args=()):
    """The set-up: a daemon of hypervisor with eth1 and eth2 introduced
    (the members), their peers on the peer's bridge; yields the daemon,
    the members' PIFs and the peer bridge's MAC, then checks that nothing
    is left."""
    if kernel_has(netns, "bond"):
        pytest.skip("the kernel has bonding: test_network_links checks its bonds")
    for n in ("eth1", "eth2"):
        add_nic(netns, n)
    peer_mac = peer_bridge(netns)
    d = NsDaemon(netns, hypervisor, extra_args)
    try:
        api, s = d.login()
        host = ok(api.host.get_all(s))[0]
        members = [ok(api.PIF.introduce(s, host, "", n, True)) for n in ("eth1", "eth2")]
        yield d, members, peer_mac
    finally:
        d.stop()
    assert netns.links() == SEED_NICS | {"eth1", "eth2"}
    for n in ("eth1", "eth2"):
        assert "xapid-bond" not in filters(netns, n)


@pytest.fixture
def bond_lan(netns):
    yield from bond_lan_of(netns, "sim")


def unplug_members(api, s, members):
    for p in members:
        ok(api.PIF.unplug(s, p))


def new_bond(api, s, members, mode, address="10.77.0.2"):
    """A bond of mode on a new network (MTU 1400), address on its bridge
    unless None: the Bond, its master PIF and the bridge."""
    net = ok(api.network.create(s, {"name_label": f"bond {mode}", "MTU": "1400"}))
    bond = ok(api.Bond.create(s, net, members, "", mode, {}))
    master_pif = ok(api.Bond.get_master(s, bond))
    if address:
        ok(api.PIF.reconfigure_ip(s, master_pif, "Static", address, "255.255.255.0", "", ""))
    return bond, master_pif, ok(api.network.get_bridge(s, net))


def test_active_backup_fails_over_and_back(netns, bond_lan):
    d, (a, b), _ = bond_lan
    api, s = d.login()
    bond, master_pif, bridge = new_bond(api, s, [a, b], "active-backup")
    rec = ok(api.Bond.get_record(s, bond))
    assert rec["primary_slave"] == a and rec["mode"] == "active-backup"
    assert rec["links_up"] == "2" and rec["properties"] == {}
    pif = ok(api.PIF.get_record(s, master_pif))
    assert pif["device"] == "bond0" and pif["MAC"] == ok(api.PIF.get_MAC(s, a))
    assert pif["currently_attached"] is True and pif["MTU"] == "1400"
    assert ip("cat", "/sys/class/net/bond0/address", ns=netns.name).stdout.strip() == pif["MAC"]
    for link in ("bond0", "eth1", "eth2"):
        assert ip("cat", f"/sys/class/net/{link}/mtu", ns=netns.name).stdout.strip() == "1400"
    assert master(netns, "bond0") == bridge and addr(netns, bridge) == {"10.77.0.2/24"}
    assert master(netns, "eth1") is None and master(netns, "eth2") is None
    assert "xapid-bond" in filters(netns, "eth1") and "xapid-bond" in filters(netns, "eth2")
    assert ipv6_off(netns, "eth1") and ipv6_off(netns, "eth2") and ipv6_off(netns, "xb-bond0")

    # Through the primary only: the backup sends nothing.
    assert wait_until(lambda: pings(netns), what="a reply through the bond")
    before = rx(netns, "p-eth2")
    assert pings(netns, 20)
    assert rx(netns, "p-eth2") == before

    # The primary loses carrier: the backup carries the traffic, and the
    # switch is told the bridge's MACs through it (a RARP frame each).
    cap = subprocess.Popen(["ip", "netns", "exec", netns.peer, "/usr/bin/python3", WIRE,
                            "capture", "p-eth2", "8035"], stdout=subprocess.PIPE, text=True)
    try:
        assert cap.stdout.readline().strip() == "ready"
        ip("ip", "link", "set", "p-eth1", "down", ns=netns.peer)
        assert cap.communicate(timeout=30)[0].strip() == "none"  # untagged
    finally:
        if cap.poll() is None:
            cap.kill()
            cap.wait()
    before = rx(netns, "p-eth2")
    assert wait_until(lambda: pings(netns), what="a reply through the backup")
    assert rx(netns, "p-eth2") > before
    wait_until(lambda: ok(api.Bond.get_links_up(s, bond)) == "1", what="links_up 1")

    # The primary comes back and is preferred again.
    ip("ip", "link", "set", "p-eth1", "up", ns=netns.peer)
    wait_until(lambda: ok(api.Bond.get_links_up(s, bond)) == "2", what="links_up 2")
    wait_until(lambda: only_through(netns, "p-eth1", lambda: pings(netns)),
               what="replies through the primary only")
    before = rx(netns, "p-eth2")
    assert pings(netns, 20)
    assert rx(netns, "p-eth2") == before

    # After kill -9 the links stay and are watched again.
    d.kill9()
    d.start()
    api, s = d.login()
    assert master(netns, "bond0") == bridge
    ip("ip", "link", "set", "p-eth1", "down", ns=netns.peer)
    assert wait_until(lambda: pings(netns), what="a reply through the backup after a restart")
    ip("ip", "link", "set", "p-eth1", "up", ns=netns.peer)

    # What a run that stopped between making a bond and recording it left
    # (a bond link, a member's program) is removed at the next start.
    ip("ip", "link", "add", "bond7", "type", "veth", "peer", "name", "xb-bond7", ns=netns.name)
    ip("ip", "link", "add", "eth3", "type", "veth", "peer", "name", "p-eth3", ns=netns.name)
    ip("tc", "qdisc", "add", "dev", "eth3", "clsact", ns=netns.name)
    ip("tc", "filter", "add", "dev", "eth3", "ingress", "prio", str(0xb00d), "bpf", "bytecode",
       "1,6 0 0 0", ns=netns.name)
    c = ok(api.PIF.introduce(s, ok(api.host.get_all(s))[0], "", "eth3", True))
    assert "bpf" in filters(netns, "eth3")
    d.kill9()
    d.start()
    api, s = d.login()
    assert "bond7" not in netns.links() and "xb-bond7" not in netns.links()
    assert "bpf" not in filters(netns, "eth3") and "xb-bond0" in netns.links()
    ok(api.PIF.forget(s, c))
    ip("ip", "link", "del", "eth3", ns=netns.name)

    # lacp is refused, nothing changed.
    e = err(api.Bond.set_mode(s, bond, "lacp"))
    assert e[0] == "OPERATION_NOT_ALLOWED" and "lacp" in e[1]
    assert ok(api.Bond.get_mode(s, bond)) == "active-backup" and "bond0" in netns.links()

    ok(api.Bond.destroy(s, bond))
    assert ok(api.Bond.get_all(s)) == []
    assert "bond0" not in netns.links() and "xb-bond0" not in netns.links()
    assert ok(api.PIF.get_bond_slave_of(s, a)) == "OpaqueRef:NULL"
    assert ok(api.PIF.get_IP(s, a)) == "10.77.0.2"
    # The members are back on their own networks' bridges, as with XAPI.
    assert master(netns, "eth1") == ok(api.network.get_bridge(s, ok(api.PIF.get_network(s, a))))
    unplug_members(api, s, [a, b])
    assert "xapid-bond" not in filters(netns, "eth1") and not ipv6_off(netns, "eth1")
    assert not int(ip("cat", "/sys/class/net/eth1/flags", ns=netns.name).stdout, 16) & 0x100


def test_balance_slb_spreads_source_macs(netns, bond_lan):
    d, (a, b), peer_mac = bond_lan
    api, s = d.login()
    bond, _, bridge = new_bond(api, s, [a, b], "balance-slb")
    assert ok(api.Bond.get_mode(s, bond)) == "balance-slb"
    assert wait_until(lambda: pings(netns), what="a reply through the bond")
    assert (slb_member(MAC_ON_FIRST, 2), slb_member(MAC_ON_SECOND, 2)) == (0, 1)
    for mac, port, other in ((MAC_ON_FIRST, "p-eth1", "p-eth2"),
                             (MAC_ON_SECOND, "p-eth2", "p-eth1")):
        before, other_before = rx(netns, port), rx(netns, other)
        send_frames(netns, bridge, mac, peer_mac, 50)
        assert rx(netns, port) - before >= 50
        assert rx(netns, other) - other_before < 50

    # A switch floods a frame for an unknown MAC back to the other member:
    # the bond does not take its own frames back (Open vSwitch's SLB rule),
    # so the bridge never learns its own senders behind the bond.
    for mac in (MAC_ON_FIRST, MAC_ON_SECOND):
        before = rx(netns, "p-eth1") + rx(netns, "p-eth2")
        send_frames(netns, bridge, mac, "02:00:00:00:00:99", 50)
        assert rx(netns, "p-eth1") + rx(netns, "p-eth2") - before >= 50
        assert mac not in fdb_macs(netns, bridge)

    # One member left: every source goes through it.
    ip("ip", "link", "set", "p-eth1", "down", ns=netns.peer)
    wait_until(lambda: ok(api.Bond.get_links_up(s, bond)) == "1",
               what="links_up 1")
    wait_until(lambda: frames_reach(netns, "p-eth2", bridge, MAC_ON_FIRST, peer_mac),
               what="the first MAC's frames through the member left")
    assert wait_until(lambda: pings(netns), what="a reply through the member left")
    ip("ip", "link", "set", "p-eth1", "up", ns=netns.peer)

    # Back to active-backup and to balance-slb: the programs follow.
    ok(api.Bond.set_mode(s, bond, "active-backup"))
    assert wait_until(lambda: pings(netns), what="a reply in active-backup")
    before = rx(netns, "p-eth2")
    send_frames(netns, bridge, MAC_ON_SECOND, peer_mac, 50)
    assert rx(netns, "p-eth2") - before < 50
    ok(api.Bond.destroy(s, bond))
    assert "bond0" not in netns.links()
    unplug_members(api, s, [a, b])


def test_lacp_refused_and_nothing_recorded(netns, bond_lan):
    d, (a, b), _ = bond_lan
    api, s = d.login()
    net = ok(api.network.create(s, {"name_label": "lacp"}))
    ok(api.PIF.plug(s, b))
    e = err(api.Bond.create(s, net, [a, b], "", "lacp", {}))
    assert e[0] == "OPERATION_NOT_ALLOWED" and "lacp" in e[1]
    assert ok(api.Bond.get_all(s)) == []
    assert ok(api.PIF.get_bond_slave_of(s, a)) == "OpaqueRef:NULL"
    assert ok(api.PIF.get_currently_attached(s, b)) is True
    assert master(netns, "eth2") == ok(api.network.get_bridge(s, ok(api.PIF.get_network(s, b))))
    assert "bond0" not in netns.links()
    ok(api.PIF.unplug(s, b))
