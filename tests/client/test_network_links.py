"""PIFs on the host's links: PIF.introduce/plug/unplug/reconfigure_ip/
forget, the management PIF's address moved (and put back when it does not
come up), host.management_reconfigure with rollback, VLANs and bonds with
XAPI's refusals. The daemon runs in a network namespace the test makes
(tests/client/netns.py) where veths are its NICs; nothing is left behind.

802.1Q and bonding links are the kernel's where it has CONFIG_VLAN_8021Q
and CONFIG_BONDING; where the kernel lacks 802.1Q, xapid tags and untags
itself (checked on the wire); where it lacks bonding, xapid's own bonds
(their traffic and failover: test_network_bond) refuse lacp."""
import os
import subprocess

import pytest

from netns import NetNs, ip
from test_network import NsDaemon
from xapid_daemon import PASSWORD, err, ok, wait_until

WIRE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vlan_wire.py")

SEED_NICS = {"lo", "eth0"}


@pytest.fixture
def netns():
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    ns = NetNs()
    yield ns
    ns.remove()


def add_nic(ns, name, peer_up=True):
    """A veth `name` in the daemon's namespace, its peer p-<name> in the
    peer namespace (down: no carrier on `name`)."""
    ip("ip", "link", "add", name, "type", "veth", "peer", "name", f"p-{name}", "netns",
       ns.peer, ns=ns.name)
    ip("ip", "link", "set", name, "up", ns=ns.name)
    if peer_up:
        ip("ip", "link", "set", f"p-{name}", "up", ns=ns.peer)


def kernel_has(ns, kind):
    """Whether the kernel makes links of kind (vlan, bond) in ns."""
    args = {"vlan": ["link", "eth0", "name", "probe.7", "type", "vlan", "id", "7"],
            "bond": ["name", "probe7", "type", "bond"]}[kind]
    made = ip("ip", "link", "add", *args, ns=ns.name, check=False).returncode == 0
    if made:
        ip("ip", "link", "del", args[args.index("name") + 1], ns=ns.name)
    return made


def addr(ns, dev):
    """dev's IPv4 addresses as a set of a.b.c.d/n."""
    out = ip("ip", "-o", "-4", "addr", "show", "dev", dev, ns=ns.name).stdout
    return {line.split()[3] for line in out.splitlines()}


def default_route(ns):
    return ip("ip", "route", "show", "default", ns=ns.name).stdout.split()


def master(ns, dev):
    p = f"/sys/class/net/{dev}/master"
    out = ip("readlink", p, ns=ns.name, check=False).stdout.strip()
    return os.path.basename(out) if out else None


def link_flags(ns, dev):
    return int(ip("cat", f"/sys/class/net/{dev}/flags", ns=ns.name).stdout, 16)


def fdb_macs(ns, bridge):
    out = ip("bridge", "fdb", "show", "br", bridge, ns=ns.name).stdout
    return {line.split()[0] for line in out.splitlines()}


def wire_tag_of_arp(ns, bridge):
    """The VLAN id on p-eth1 of the ARP request the host sends from an
    address put on bridge."""
    cap = subprocess.Popen(["ip", "netns", "exec", ns.peer, "/usr/bin/python3", WIRE, "capture",
                            "p-eth1", "0806"], stdout=subprocess.PIPE, text=True)
    try:
        assert cap.stdout.readline().strip() == "ready"
        ip("ip", "addr", "add", "10.55.0.1/24", "dev", bridge, ns=ns.name)
        # A datagram to a neighbour makes the host ask for its MAC.
        ip("/usr/bin/python3", "-c", "import socket; socket.socket(socket.AF_INET, "
           "socket.SOCK_DGRAM).sendto(b'x', ('10.55.0.2', 9))", ns=ns.name)
        return cap.communicate(timeout=30)[0].strip()
    finally:
        if cap.poll() is None:
            cap.kill()
            cap.wait()


def wire_send(ns, tag, src):
    subprocess.run(["ip", "netns", "exec", ns.peer, "/usr/bin/python3", WIRE, "send", "p-eth1",
                    str(tag), src], check=True)


def bond_mode(ns):
    """The mode the kernel's bonding link bond0 reports."""
    return ip("cat", "/sys/class/net/bond0/bonding/mode", ns=ns.name).stdout.split()[0]


def management_pif(api, s):
    return next(p for p in ok(api.PIF.get_all(s)) if ok(api.PIF.get_management(s, p)))


def test_pif_introduce_plug_reconfigure_unplug_forget(netns):
    add_nic(netns, "eth1")
    mac = ip("cat", "/sys/class/net/eth1/address", ns=netns.name).stdout.strip()
    d = NsDaemon(netns, "sim")
    try:
        api, s = d.login()
        host = ok(api.host.get_all(s))[0]
        assert err(api.PIF.introduce(s, host, "zz", "eth1", True)) == ["MAC_INVALID", "zz"]
        assert err(api.PIF.introduce(s, host, "00:11:22:33:44:55", "eth1", True)) == \
            ["COULD_NOT_FIND_NETWORK_INTERFACE_WITH_SPECIFIED_DEVICE_NAME_AND_MAC_ADDRESS",
             "eth1", "00:11:22:33:44:55"]
        assert err(api.PIF.introduce(s, host, "", "eth0", True)) == \
            ["DUPLICATE_PIF_DEVICE_NAME", "eth0"]
        pif = ok(api.PIF.introduce(s, host, mac.upper(), "eth1", True))
        rec = ok(api.PIF.get_record(s, pif))
        assert (rec["device"], rec["MAC"], rec["physical"], rec["VLAN"]) == ("eth1", mac, True, "-1")
        assert rec["currently_attached"] is False and rec["management"] is False
        net = rec["network"]
        bridge = ok(api.network.get_bridge(s, net))
        assert bridge == "xenbr1"
        assert ok(api.PIF_metrics.get_carrier(s, rec["metrics"])) is True

        # Bad input changes nothing.
        assert err(api.PIF.reconfigure_ip(s, pif, "Static", "10.98.0.300", "255.255.255.0",
                                          "", "")) == ["INVALID_IP_ADDRESS_SPECIFIED", "IP"]
        assert err(api.PIF.reconfigure_ip(s, pif, "Static", "10.98.0.2", "255.0.255.0", "",
                                          "")) == ["INVALID_IP_ADDRESS_SPECIFIED", "netmask"]
        if not any(os.path.exists(os.path.join(p, "dhclient"))
                   for p in os.environ["PATH"].split(":")):
            assert err(api.PIF.reconfigure_ip(s, pif, "DHCP", "", "", "", ""))[0] == \
                "OPERATION_NOT_ALLOWED"
        assert ok(api.PIF.get_ip_configuration_mode(s, pif)) == "None"

        # Not attached: stored, applied at plug.
        ok(api.PIF.reconfigure_ip(s, pif, "Static", "10.98.0.2", "255.255.255.0", "",
                                  "10.98.0.53,fd00::1"))
        assert ok(api.PIF.get_DNS(s, pif)) == "10.98.0.53"
        assert bridge not in netns.links()
        ok(api.network.set_MTU(s, net, "9000"))
        ok(api.PIF.plug(s, pif))
        assert ok(api.PIF.get_currently_attached(s, pif)) is True
        assert ok(api.PIF.get_MTU(s, pif)) == "9000"
        assert master(netns, "eth1") == bridge
        assert addr(netns, bridge) == {"10.98.0.2/24"}
        for link in (bridge, "eth1"):
            assert ip("cat", f"/sys/class/net/{link}/mtu", ns=netns.name).stdout.strip() == "9000"
        ok(api.PIF.plug(s, pif))  # plugged already: nothing to do

        # Attached: applied at once.
        ok(api.PIF.reconfigure_ip(s, pif, "Static", "10.98.0.3", "255.255.0.0", "", ""))
        assert addr(netns, bridge) == {"10.98.0.3/16"}
        ok(api.PIF.reconfigure_ip(s, pif, "None", "", "", "", ""))
        assert addr(netns, bridge) == set()

        ok(api.PIF.unplug(s, pif))
        assert ok(api.PIF.get_currently_attached(s, pif)) is False
        assert bridge not in netns.links() and master(netns, "eth1") is None

        # The management PIF stays.
        mgmt = management_pif(api, s)
        for reply in (api.PIF.unplug(s, mgmt), api.PIF.forget(s, mgmt),
                      api.PIF.reconfigure_ip(s, mgmt, "None", "", "", "", "")):
            assert err(reply) == ["PIF_IS_MANAGEMENT_INTERFACE", mgmt]
        assert addr(netns, "eth0") == {"10.99.0.2/24"}

        metrics = ok(api.PIF.get_metrics(s, pif))
        ok(api.PIF.plug(s, pif))
        ok(api.PIF.forget(s, pif))  # brought down first
        assert err(api.PIF.get_device(s, pif))[0] == "HANDLE_INVALID"
        assert err(api.PIF_metrics.get_carrier(s, metrics))[0] == "HANDLE_INVALID"
        assert netns.links() == SEED_NICS | {"eth1"}
        unmanaged = ok(api.PIF.introduce(s, host, "", "eth1", False))
        assert ok(api.PIF.get_managed(s, unmanaged)) is False
        assert ok(api.network.get_bridge(s, ok(api.PIF.get_network(s, unmanaged)))) == ""
        assert err(api.PIF.plug(s, unmanaged)) == ["PIF_UNMANAGED", unmanaged]
    finally:
        d.stop()
    assert netns.links() == SEED_NICS | {"eth1"}


def test_management_pif_plug_moves_the_address_and_puts_it_back(netns):
    d = NsDaemon(netns, "sim")
    try:
        api, s = d.login()
        mgmt = management_pif(api, s)
        bridge = ok(api.network.get_bridge(s, ok(api.PIF.get_network(s, mgmt))))
        before = default_route(netns)
        assert "eth0" in before
        # No carrier on the NIC: the bridge cannot hold the address, so
        # it goes back to eth0 with the default route.
        ip("ip", "link", "set", "uplink", "down", ns=netns.peer)
        assert err(api.PIF.plug(s, mgmt))[0] == "PIF_CONFIGURATION_ERROR"
        assert ok(api.PIF.get_currently_attached(s, mgmt)) is False
        assert addr(netns, "eth0") == {"10.99.0.2/24"}
        assert default_route(netns)[:5] == before[:5]  # "linkdown" while the peer is
        assert bridge not in netns.links() and master(netns, "eth0") is None

        ip("ip", "link", "set", "uplink", "up", ns=netns.peer)
        ok(api.PIF.plug(s, mgmt))
        assert ok(api.PIF.get_currently_attached(s, mgmt)) is True
        assert master(netns, "eth0") == bridge
        assert addr(netns, bridge) == {"10.99.0.2/24"} and addr(netns, "eth0") == set()
        assert default_route(netns)[:5] == ["default", "via", "10.99.0.1", "dev", bridge]
        assert err(api.PIF.unplug(s, mgmt)) == ["PIF_IS_MANAGEMENT_INTERFACE", mgmt]
        # Attached: a new address and gateway at once, and the host's address.
        ok(api.PIF.reconfigure_ip(s, mgmt, "Static", "10.99.0.7", "255.255.255.0", "10.99.0.1",
                                  ""))
        assert addr(netns, bridge) == {"10.99.0.7/24"}
        assert default_route(netns)[:5] == ["default", "via", "10.99.0.1", "dev", bridge]
        assert ok(api.host.get_address(s, ok(api.host.get_all(s))[0])) == "10.99.0.7"
    finally:
        d.stop()


def test_management_reconfigure_rolls_back_then_moves(netns):
    add_nic(netns, "eth1", peer_up=False)
    add_nic(netns, "eth2")
    d = NsDaemon(netns, "sim")
    try:
        api, s = d.login()
        host = ok(api.host.get_all(s))[0]
        mgmt = management_pif(api, s)
        new = ok(api.PIF.introduce(s, host, "", "eth1", True))
        bare = ok(api.PIF.introduce(s, host, "", "eth2", True))
        assert err(api.host.management_reconfigure(s, bare)) == \
            ["PIF_HAS_NO_NETWORK_CONFIGURATION", bare]
        ok(api.PIF.reconfigure_ip(s, new, "Static", "10.98.0.2", "255.255.255.0", "10.98.0.1",
                                  ""))
        before = default_route(netns)
        # eth1 has no carrier: the address never comes up, all is undone.
        assert err(api.host.management_reconfigure(s, new))[:2] == \
            ["PIF_CONFIGURATION_ERROR", new]
        assert default_route(netns)[:5] == before[:5]
        assert ok(api.PIF.get_management(s, mgmt)) is True
        assert ok(api.PIF.get_management(s, new)) is False
        assert ok(api.PIF.get_currently_attached(s, new)) is False
        assert "xenbr1" not in netns.links() and master(netns, "eth1") is None
        assert ok(api.host.get_address(s, host)) == "10.99.0.2"

        ip("ip", "link", "set", "p-eth1", "up", ns=netns.peer)
        ok(api.host.management_reconfigure(s, new))
        assert ok(api.PIF.get_management(s, new)) is True
        assert ok(api.PIF.get_management(s, mgmt)) is False
        assert ok(api.host.get_address(s, host)) == "10.98.0.2"
        assert addr(netns, "xenbr1") == {"10.98.0.2/24"}
        assert default_route(netns)[:5] == ["default", "via", "10.98.0.1", "dev", "xenbr1"]
        ok(api.host.management_reconfigure(s, new))  # already: no action
        assert err(api.PIF.unplug(s, new)) == ["PIF_IS_MANAGEMENT_INTERFACE", new]
    finally:
        d.stop()


def test_vlan_checks_and_links(netns):
    add_nic(netns, "eth1")
    add_nic(netns, "eth2")
    has_vlan = kernel_has(netns, "vlan")  # else xapid's own 802.1Q (vlan_bpf.c)
    d = NsDaemon(netns, "sim")
    try:
        api, s = d.login()
        host = ok(api.host.get_all(s))[0]
        pif = ok(api.PIF.introduce(s, host, "", "eth1", True))
        own_net = ok(api.PIF.get_network(s, pif))
        foreign = ok(api.PIF.introduce(s, host, "", "eth2", False))
        net = ok(api.network.create(s, {"name_label": "v5"}))
        for tag in ("-1", "4095"):
            assert err(api.VLAN.create(s, pif, tag, net)) == ["VLAN_TAG_INVALID", tag]
        assert err(api.VLAN.create(s, pif, "5", own_net)) == \
            ["NETWORK_ALREADY_CONNECTED", host, pif]
        assert err(api.VLAN.create(s, foreign, "5", net)) == ["PIF_UNMANAGED", foreign]
        assert err(api.PIF.create_VLAN(s, "nosuch", net, host, "5")) == \
            ["INVALID_VALUE", "device", "nosuch"]
        assert err(api.PIF.destroy(s, pif)) == ["PIF_IS_PHYSICAL"]
        assert err(api.VLAN.create(s, "OpaqueRef:nope", "5", net)) == \
            ["HANDLE_INVALID", "PIF", "OpaqueRef:nope"]
        vlan = ok(api.VLAN.create(s, pif, "5", net))
        vrec = ok(api.VLAN.get_record(s, vlan))
        assert vrec["tagged_PIF"] == pif and vrec["tag"] == "5"
        untagged = ok(api.PIF.get_record(s, vrec["untagged_PIF"]))
        tagged = ok(api.PIF.get_record(s, pif))
        assert (untagged["device"], untagged["VLAN"], untagged["MAC"], untagged["physical"]) == \
            ("eth1", "5", "fe:ff:ff:ff:ff:ff", False)
        assert untagged["VLAN_master_of"] == vlan and tagged["VLAN_slave_of"] == [vlan]
        assert untagged["metrics"] == tagged["metrics"] and untagged["network"] == net
        assert untagged["currently_attached"] is True
        bridge = ok(api.network.get_bridge(s, net))
        if has_vlan:
            detail = ip("ip", "-d", "link", "show", "eth1.5", ns=netns.name).stdout
            assert "vlan protocol 802.1Q id 5" in detail and "eth1.5@eth1" in detail
        assert master(netns, "eth1.5") == bridge
        if not has_vlan:  # a real NIC must pass the guests' MACs up
            assert link_flags(netns, "eth1") & 0x100  # IFF_PROMISC
        # On the wire (p-eth1, eth1's peer): what the bridge sends leaves
        # tagged 5; what comes tagged 5 reaches the bridge, tag 6 does not.
        assert wire_tag_of_arp(netns, bridge) == "5"
        wire_send(netns, 6, "02:00:00:00:00:06")
        wire_send(netns, 5, "02:00:00:00:00:05")
        wait_until(lambda: "02:00:00:00:00:05" in fdb_macs(netns, bridge), what="the tagged frame")
        assert "02:00:00:00:00:06" not in fdb_macs(netns, bridge)
        assert err(api.VLAN.create(s, pif, "5", ok(api.network.create(s, {"name_label": "x"})))) \
            == ["PIF_VLAN_EXISTS", "eth1"]
        assert err(api.VLAN.create(s, vrec["untagged_PIF"], "6",
                                   ok(api.network.create(s, {"name_label": "y"})))) == \
            ["PIF_IS_VLAN", vrec["untagged_PIF"]]
        assert err(api.PIF.forget(s, pif)) == ["PIF_VLAN_STILL_EXISTS", pif]
        ok(api.VLAN.destroy(s, vlan))
        assert ok(api.VLAN.get_all(s)) == [] and "eth1.5" not in netns.links()
        assert bridge not in netns.links()
        assert not link_flags(netns, "eth1") & 0x100
        pifs = ok(api.pool.create_VLAN(s, "eth1", net, "7"))
        assert ok(api.PIF.get_VLAN(s, pifs[0])) == "7" and "eth1.7" in netns.links()
        assert err(api.VLAN.create(s, pif, "8", net)) == ["NETWORK_ALREADY_CONNECTED", host, pifs[0]]
        ok(api.PIF.destroy(s, pifs[0]))
        assert "eth1.7" not in netns.links()
        untagged = ok(api.PIF.create_VLAN(s, "eth1", net, host, "8"))
        assert ok(api.PIF.get_VLAN(s, untagged)) == "8" and "eth1.8" in netns.links()
        ok(api.PIF.destroy(s, untagged))
        pifs = ok(api.pool.create_VLAN_from_PIF(s, pif, net, "9"))
        assert ok(api.PIF.get_device(s, pifs[0])) == "eth1" and "eth1.9" in netns.links()
        ok(api.VLAN.destroy(s, ok(api.PIF.get_VLAN_master_of(s, pifs[0]))))
        assert ok(api.PIF.get_VLAN_slave_of(s, pif)) == []
    finally:
        d.stop()
    assert netns.links() == SEED_NICS | {"eth1", "eth2"}


def test_bond_checks_and_links(netns):
    for n in ("eth1", "eth2", "eth3"):
        add_nic(netns, n)
    has_bond = kernel_has(netns, "bond")
    d = NsDaemon(netns, "sim")
    try:
        api, s = d.login()
        host = ok(api.host.get_all(s))[0]
        a = ok(api.PIF.introduce(s, host, "", "eth1", True))
        b = ok(api.PIF.introduce(s, host, "", "eth2", True))
        c = ok(api.PIF.introduce(s, host, "", "eth3", False))
        mgmt = management_pif(api, s)
        net = ok(api.network.create(s, {"name_label": "bond"}))
        assert err(api.Bond.create(s, net, [], "", "active-backup", {})) == \
            ["PIF_BOND_NEEDS_MORE_MEMBERS"]
        assert err(api.Bond.create(s, ok(api.PIF.get_network(s, a)), [a, b], "",
                                   "active-backup", {})) == ["NETWORK_ALREADY_CONNECTED", host, a]
        assert err(api.Bond.create(s, net, [a, b], "nope", "active-backup", {})) == \
            ["MAC_INVALID", "nope"]
        assert err(api.Bond.create(s, net, [a, b], "", "active-backup", {"x": "y"})) == \
            ["INVALID_VALUE", "properties", "x = y"]
        assert err(api.Bond.create(s, net, [a, b], "", "lacp",
                                   {"hashing_algorithm": "md5"})) == \
            ["INVALID_VALUE", "properties", "hashing_algorithm = md5"]
        assert err(api.Bond.create(s, net, [a, c], "", "active-backup", {})) == \
            ["PIF_UNMANAGED", c]
        assert err(api.Bond.create(s, net, [a, mgmt], "", "active-backup", {})) == \
            ["PIF_IS_MANAGEMENT_INTERFACE", mgmt]
        for p, address in ((a, "10.98.0.2"), (b, "10.98.1.2")):
            ok(api.PIF.reconfigure_ip(s, p, "Static", address, "255.255.255.0", "", ""))
        assert err(api.Bond.create(s, net, [a, b], "", "active-backup", {})) == \
            ["PIF_BOND_MORE_THAN_ONE_IP"]
        ok(api.PIF.reconfigure_ip(s, b, "None", "", "", "", ""))
        ok(api.PIF.plug(s, b))
        bond = ok(api.Bond.create(s, net, [a, b], "", "active-backup", {}))
        rec = ok(api.Bond.get_record(s, bond))
        master_pif = ok(api.PIF.get_record(s, rec["master"]))
        assert sorted(rec["slaves"]) == sorted([a, b]) and rec["primary_slave"] == a
        assert rec["mode"] == "active-backup" and rec["auto_update_mac"] is True
        assert rec["links_up"] == "2"
        assert master_pif["device"] == "bond0" and master_pif["bond_master_of"] == [bond]
        assert master_pif["MAC"] == ok(api.PIF.get_MAC(s, a))
        assert master_pif["IP"] == "10.98.0.2" and ok(api.PIF.get_IP(s, a)) == ""
        assert master_pif["currently_attached"] is True
        assert ok(api.PIF.get_bond_slave_of(s, a)) == bond
        bridge = ok(api.network.get_bridge(s, net))
        assert master(netns, "bond0") == bridge
        if has_bond:
            assert bond_mode(netns) == "active-backup"
            assert master(netns, "eth1") == "bond0" and master(netns, "eth2") == "bond0"
        else:  # xapid's own (test_network_bond): the members are no ports
            assert master(netns, "eth1") is None and master(netns, "eth2") is None
        assert addr(netns, bridge) == {"10.98.0.2/24"}
        other = ok(api.network.create(s, {"name_label": "o"}))
        assert err(api.Bond.create(s, other, [a], "", "active-backup", {})) == \
            ["PIF_ALREADY_BONDED", a]
        assert err(api.VLAN.create(s, a, "5", other)) == ["CANNOT_ADD_VLAN_TO_BOND_SLAVE", a]
        assert err(api.PIF.plug(s, a)) == ["CANNOT_PLUG_BOND_SLAVE", a]
        if has_bond:
            ok(api.Bond.set_mode(s, bond, "lacp"))
            assert ok(api.Bond.get_properties(s, bond)) == \
                {"hashing_algorithm": "tcpudp_ports", "lacp-time": "slow",
                 "lacp-fallback-ab": "true"}
            assert bond_mode(netns) == "802.3ad"
        else:
            assert err(api.Bond.set_mode(s, bond, "lacp"))[0] == "OPERATION_NOT_ALLOWED"
            assert ok(api.Bond.get_mode(s, bond)) == "active-backup"
        ok(api.Bond.set_mode(s, bond, "balance-slb"))
        if has_bond:
            assert bond_mode(netns) == "balance-alb"
        ok(api.Bond.destroy(s, bond))
        assert ok(api.Bond.get_all(s)) == [] and "bond0" not in netns.links()
        assert ok(api.PIF.get_IP(s, a)) == "10.98.0.2"
        assert ok(api.PIF.get_bond_slave_of(s, a)) == "OpaqueRef:NULL"
        for p in (a, b):
            ok(api.PIF.unplug(s, p))
    finally:
        d.stop()
    assert netns.links() == SEED_NICS | {"eth1", "eth2", "eth3"}


def test_plugged_pifs_come_back_after_their_links_went(netns):
    add_nic(netns, "eth1")
    add_nic(netns, "eth2")
    d = NsDaemon(netns, "sim")
    try:
        api, s = d.login()
        host = ok(api.host.get_all(s))[0]
        pif = ok(api.PIF.introduce(s, host, "", "eth1", True))
        gone = ok(api.PIF.introduce(s, host, "", "eth2", True))
        ok(api.PIF.reconfigure_ip(s, pif, "Static", "10.98.0.2", "255.255.255.0", "", ""))
        ok(api.PIF.plug(s, pif))
        ok(api.PIF.plug(s, gone))
        net = ok(api.network.create(s, {"name_label": "v5"}))
        vlan = ok(api.VLAN.create(s, pif, "5", net))
        vlan_bridge = ok(api.network.get_bridge(s, net))
        d.kill9()
        # As after a reboot: bridges, VLAN link and programs gone; eth2 too.
        for link in ("xenbr1", "xenbr2", vlan_bridge, "eth1.5", "eth2"):
            ip("ip", "link", "del", link, ns=netns.name)
        ip("tc", "qdisc", "del", "dev", "eth1", "clsact", ns=netns.name)
        d.start()
        api, s = d.login()
        assert ok(api.PIF.get_currently_attached(s, pif)) is True
        assert master(netns, "eth1") == "xenbr1" and addr(netns, "xenbr1") == {"10.98.0.2/24"}
        assert master(netns, "eth1.5") == vlan_bridge
        assert wire_tag_of_arp(netns, vlan_bridge) == "5"
        assert ok(api.PIF.get_currently_attached(s, gone)) is False
        assert "xenbr2" not in netns.links()
        ok(api.VLAN.destroy(s, vlan))
        ok(api.PIF.unplug(s, pif))
    finally:
        d.stop()
    assert netns.links() == SEED_NICS | {"eth1"}


def dhclient_pid(ns_name, bridge):
    """The pid in xapid's dhclient pid file for bridge in ns, or None."""
    inode = os.stat(f"/run/netns/{ns_name}").st_ino
    path = f"/run/xapid-dhclient-{inode}-{bridge}.pid"
    return int(open(path).read()) if os.path.exists(path) else None


@pytest.mark.skipif(not os.path.exists("/usr/sbin/dhclient"), reason="needs isc-dhcp-client")
def test_reconfigure_ip_dhcp_gets_a_lease_and_releases_it(netns, tmp_path):
    add_nic(netns, "eth1")
    ip("ip", "addr", "add", "10.96.0.1/24", "dev", "p-eth1", ns=netns.peer)
    conf = tmp_path / "udhcpd.conf"
    conf.write_text(f"start 10.96.0.10\nend 10.96.0.10\ninterface p-eth1\n"
                    f"lease_file {tmp_path}/leases\npidfile {tmp_path}/udhcpd.pid\n"
                    "option subnet 255.255.255.0\n")
    server = subprocess.Popen(["ip", "netns", "exec", netns.peer, "busybox", "udhcpd", "-f",
                               str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    d = NsDaemon(netns, "sim")
    try:
        api, s = d.login()
        host = ok(api.host.get_all(s))[0]
        pif = ok(api.PIF.introduce(s, host, "", "eth1", True))
        ok(api.PIF.plug(s, pif))
        ok(api.PIF.reconfigure_ip(s, pif, "DHCP", "", "", "", ""))
        assert ok(api.PIF.get_IP(s, pif)) == "10.96.0.10"
        assert ok(api.PIF.get_netmask(s, pif)) == "255.255.255.0"
        assert addr(netns, "xenbr1") == {"10.96.0.10/24"}
        pid = dhclient_pid(netns.name, "xenbr1")
        assert pid and os.path.exists(f"/proc/{pid}")
        ok(api.PIF.reconfigure_ip(s, pif, "None", "", "", "", ""))  # released, dhclient gone
        assert addr(netns, "xenbr1") == set()
        assert dhclient_pid(netns.name, "xenbr1") is None
        wait_until(lambda: not os.path.exists(f"/proc/{pid}"), what="dhclient to exit")
        ok(api.PIF.unplug(s, pif))
    finally:
        d.stop()
        server.kill()
        server.wait()
        left = dhclient_pid(netns.name, "xenbr1")  # only if the test failed half-way
        if left:
            os.kill(left, 9)
            inode = os.stat(f"/run/netns/{netns.name}").st_ino
            for leaf in ("pid", "leases"):
                os.unlink(f"/run/xapid-dhclient-{inode}-xenbr1.{leaf}")
    assert netns.links() == SEED_NICS | {"eth1"}


def test_a_vlan_whose_commit_fails_leaves_no_link(netns, tmp_path):
    add_nic(netns, "eth1")
    faults = tmp_path / "faults"
    faults.write_text("")
    os.environ["XAPID_SQLITE_FAULTS"] = str(faults)
    try:
        d = NsDaemon(netns, "sim")
    finally:
        del os.environ["XAPID_SQLITE_FAULTS"]
    try:
        api, s = d.login()
        host = ok(api.host.get_all(s))[0]
        pif = ok(api.PIF.introduce(s, host, "", "eth1", True))
        net = ok(api.network.create(s, {"name_label": "v5"}))
        faults.write_text("ioerr")
        assert err(api.VLAN.create(s, pif, "5", net))[0] == "INTERNAL_ERROR"
        assert err(api.PIF.create_VLAN(s, "eth1", net, host, "5"))[0] == "INTERNAL_ERROR"
        faults.write_text("")
        assert ok(api.VLAN.get_all(s)) == []
        assert netns.links() == SEED_NICS | {"eth1"}  # no VLAN link, no bridge
        ok(api.VLAN.create(s, pif, "5", net))  # works again
    finally:
        d.stop()


def test_management_pif_plug_applies_a_static_address_set_while_unplugged(netns):
    d = NsDaemon(netns, "sim")
    try:
        api, s = d.login()
        mgmt = management_pif(api, s)
        bridge = ok(api.network.get_bridge(s, ok(api.PIF.get_network(s, mgmt))))
        ok(api.PIF.reconfigure_ip(s, mgmt, "Static", "10.99.0.9", "255.255.255.0", "10.99.0.1",
                                  ""))
        assert addr(netns, "eth0") == {"10.99.0.2/24"}  # unplugged: stored only
        ok(api.PIF.plug(s, mgmt))
        assert addr(netns, bridge) == {"10.99.0.9/24"} and addr(netns, "eth0") == set()
        assert default_route(netns)[:5] == ["default", "via", "10.99.0.1", "dev", bridge]
    finally:
        d.stop()


def reaches(ns, host, port):
    """Whether a TCP connection from inside ns to host:port is accepted."""
    probe = ("import socket, sys\n"
             "try:\n"
             f"    socket.create_connection(({host!r}, {port}), timeout=10).close()\n"
             "except ConnectionRefusedError:\n"
             "    sys.exit(3)\n")
    rc = ip("/usr/bin/python3", "-c", probe, ns=ns.name, check=False).returncode
    assert rc in (0, 3), rc
    return rc == 0


def over_tcp(ns, port, method):
    """The Status of method(session) called from inside ns on 10.99.0.2:port,
    on one HTTP/1.1 connection (login, then the call)."""
    probe = ("import xmlrpc.client\n"
             f"p = xmlrpc.client.ServerProxy('http://10.99.0.2:{port}/')\n"
             f"s = p.session.login_with_password('root', {PASSWORD!r})['Value']\n"
             f"print(p.{method}(s)['Status'])\n")
    return ip("/usr/bin/python3", "-c", probe, ns=ns.name).stdout.strip()


def test_management_disable_stops_the_management_listeners(netns):
    # The namespace has its own ports: fixed ones are free there.
    d = NsDaemon(netns, "sim", extra_args=["--listen", "10.99.0.2:8441", "--listen", ":8442"])
    try:
        api, s = d.login()
        host = ok(api.host.get_all(s))[0]
        mgmt = management_pif(api, s)
        assert reaches(netns, "10.99.0.2", 8441) and reaches(netns, "10.99.0.2", 8442)
        # Called over the management interface itself: the reply still
        # comes back on the open connection.
        assert over_tcp(netns, 8441, "host.management_disable") == "Success"
        # XAPI's: no PIF is management, the host keeps its address, the
        # server listens on loopback only; the unix socket goes on.
        assert [p for p in ok(api.PIF.get_all(s)) if ok(api.PIF.get_management(s, p))] == []
        assert ok(api.host.get_address(s, host)) == "10.99.0.2"
        assert not reaches(netns, "10.99.0.2", 8441)
        assert not reaches(netns, "10.99.0.2", 8442)
        assert reaches(netns, "127.0.0.1", 8442) and reaches(netns, "127.0.0.1", d.port)
        ok(api.host.management_disable(s))  # again: nothing changes
        assert not reaches(netns, "10.99.0.2", 8441)
        # It holds across a restart, as XAPI's inventory does.
        d.stop()
        d.start()
        api, s = d.login()
        assert not reaches(netns, "10.99.0.2", 8441)
        assert not reaches(netns, "10.99.0.2", 8442) and reaches(netns, "127.0.0.1", 8442)
        assert [p for p in ok(api.PIF.get_all(s)) if ok(api.PIF.get_management(s, p))] == []
        # PIF.reconfigure_ip of a PIF that is no longer management leaves
        # the listeners off; host.management_reconfigure turns them on
        # again, on the same ports.
        ok(api.PIF.reconfigure_ip(s, mgmt, "Static", "10.99.0.2", "255.255.255.0", "10.99.0.1",
                                  ""))
        assert not reaches(netns, "10.99.0.2", 8441)
        ok(api.host.management_reconfigure(s, mgmt))
        assert ok(api.PIF.get_management(s, mgmt)) is True
        assert reaches(netns, "10.99.0.2", 8441) and reaches(netns, "10.99.0.2", 8442)
        assert over_tcp(netns, 8441, "host.get_all") == "Success"
    finally:
        d.stop()
