"""VIF locking, allowed addresses, QoS, VIF.move, and VIFs copied by
VM.clone/copy/snapshot, as the API shows them (sim driver:
the checks and what is stored). What the host enforces on real taps is
test_vif_locking_qemu.py's."""
import os
import shutil

import pytest

from test_network import VM_RECORD, vif_record
from xapid_daemon import Daemon, err, ok


@pytest.fixture
def daemon():
    d = Daemon(extra_args=["--hypervisor", "sim"])
    yield d
    d.stop()


def vm_and_network(api, s):
    vm = ok(api.VM.create(s, VM_RECORD))
    net = ok(api.network.create(s, {"name_label": "n"}))
    return vm, net


def test_locked_vif_is_stored_with_its_addresses(daemon):
    api, s = daemon.login()
    vm, net = vm_and_network(api, s)
    rec = dict(vif_record(vm, net, "0"), locking_mode="locked",
               ipv4_allowed=["10.0.0.2", "10.1.0.0/16"], ipv6_allowed=["fd00::2"])
    vif = ok(api.VIF.create(s, rec))
    got = ok(api.VIF.get_record(s, vif))
    assert got["locking_mode"] == "locked"
    assert got["ipv4_allowed"] == ["10.0.0.2", "10.1.0.0/16"]
    assert got["ipv6_allowed"] == ["fd00::2"]
    # Bad addresses never reach the host: XAPI's error, nothing stored.
    for field, bad in (("ipv4_allowed", "10.0.0.256"), ("ipv4_allowed", "fd00::1"),
                       ("ipv4_allowed", "10.0.0.1; drop"), ("ipv6_allowed", "10.0.0.1"),
                       ("ipv6_allowed", "fd00::/129")):
        rec = dict(vif_record(vm, net, "1"), **{field: [bad]})
        assert err(api.VIF.create(s, rec)) == ["INVALID_IP_ADDRESS_SPECIFIED", field]
    assert len(ok(api.VM.get_VIFs(s, vm))) == 1


def test_locking_setters(daemon):
    api, s = daemon.login()
    vm, net = vm_and_network(api, s)
    vif = ok(api.VIF.create(s, vif_record(vm, net, "0")))
    assert ok(api.VIF.get_locking_mode(s, vif)) == "network_default"
    ok(api.VIF.set_locking_mode(s, vif, "locked"))
    assert ok(api.VIF.get_locking_mode(s, vif)) == "locked"
    assert err(api.VIF.set_locking_mode(s, vif, "open"))[0] in ("INVALID_VALUE",
                                                                 "ENUM_VALUE_INVALID")
    ok(api.VIF.set_ipv4_allowed(s, vif, ["10.0.0.2", "10.0.0.2", "10.0.0.3"]))
    assert ok(api.VIF.get_ipv4_allowed(s, vif)) == ["10.0.0.2", "10.0.0.3"]  # a set
    ok(api.VIF.add_ipv4_allowed(s, vif, "10.0.0.4"))
    ok(api.VIF.add_ipv4_allowed(s, vif, "10.0.0.4"))
    ok(api.VIF.remove_ipv4_allowed(s, vif, "10.0.0.2"))
    ok(api.VIF.remove_ipv4_allowed(s, vif, "10.9.9.9"))  # absent: nothing to do
    assert ok(api.VIF.get_ipv4_allowed(s, vif)) == ["10.0.0.3", "10.0.0.4"]
    assert err(api.VIF.add_ipv4_allowed(s, vif, "300.0.0.1")) == \
        ["INVALID_IP_ADDRESS_SPECIFIED", "ipv4_allowed"]
    assert err(api.VIF.set_ipv4_allowed(s, vif, ["10.0.0.5", "x"])) == \
        ["INVALID_IP_ADDRESS_SPECIFIED", "ipv4_allowed"]
    assert ok(api.VIF.get_ipv4_allowed(s, vif)) == ["10.0.0.3", "10.0.0.4"]
    ok(api.VIF.set_ipv6_allowed(s, vif, ["fd00::1"]))
    ok(api.VIF.add_ipv6_allowed(s, vif, "fd00::/64"))
    ok(api.VIF.remove_ipv6_allowed(s, vif, "fd00::1"))
    assert ok(api.VIF.get_ipv6_allowed(s, vif)) == ["fd00::/64"]
    assert err(api.VIF.add_ipv6_allowed(s, vif, "10.0.0.1")) == \
        ["INVALID_IP_ADDRESS_SPECIFIED", "ipv6_allowed"]


def test_default_locking_mode_refused_while_a_vif_is_attached(daemon):
    api, s = daemon.login()
    vm, net = vm_and_network(api, s)
    vif = ok(api.VIF.create(s, vif_record(vm, net, "0")))
    assert ok(api.network.get_default_locking_mode(s, net)) == "unlocked"
    ok(api.network.set_default_locking_mode(s, net, "disabled"))
    assert ok(api.network.get_default_locking_mode(s, net)) == "disabled"
    ok(api.VM.start(s, vm, False, False))
    assert err(api.network.set_default_locking_mode(s, net, "unlocked")) == \
        ["VIF_IN_USE", net, vif]
    assert ok(api.network.get_default_locking_mode(s, net)) == "disabled"
    ok(api.VM.hard_shutdown(s, vm))
    ok(api.network.set_default_locking_mode(s, net, "unlocked"))


def test_qos_checks(daemon):
    api, s = daemon.login()
    vm, net = vm_and_network(api, s)
    rec = dict(vif_record(vm, net, "0"), qos_algorithm_type="ratelimit",
               qos_algorithm_params={"kbps": "1024"})
    vif = ok(api.VIF.create(s, rec))
    assert ok(api.VIF.get_qos_algorithm_params(s, vif)) == {"kbps": "1024"}
    cases = [({"kbps": "fast"}, ["INVALID_VALUE", "qos_algorithm_params:kbps", "fast"]),
             ({"kbps": "-1"}, ["INVALID_VALUE", "qos_algorithm_params:kbps", "-1"]),
             ({}, ["INVALID_VALUE", "qos_algorithm_params:kbps", ""]),
             ({"kbps": "10", "timeslice_us": "x"},
              ["INVALID_VALUE", "qos_algorithm_params:timeslice_us", "x"])]
    for params, error in cases:
        assert err(api.VIF.set_qos_algorithm_params(s, vif, params)) == error
    assert err(api.VIF.add_to_qos_algorithm_params(s, vif, "burst", "1"))[0] == \
        "VALUE_NOT_SUPPORTED"
    assert err(api.VIF.set_qos_algorithm_type(s, vif, "shaper"))[0] == "VALUE_NOT_SUPPORTED"
    assert ok(api.VIF.get_qos_algorithm_type(s, vif)) == "ratelimit"
    assert ok(api.VIF.get_qos_algorithm_params(s, vif)) == {"kbps": "1024"}
    ok(api.VIF.add_to_qos_algorithm_params(s, vif, "timeslice_us", "20000"))
    ok(api.VIF.remove_from_qos_algorithm_params(s, vif, "timeslice_us"))
    ok(api.VIF.set_qos_algorithm_type(s, vif, ""))  # none: any params are unused
    ok(api.VIF.set_qos_algorithm_params(s, vif, {}))


def test_vif_metrics_is_removed_as_in_xapi(daemon):
    # XAPI removed VIF_metrics in favour of RRDs (datamodel: Removed in
    # Tampa): neither the class nor VIF.metrics is served.
    api, s = daemon.login()
    vm, net = vm_and_network(api, s)
    vif = ok(api.VIF.create(s, vif_record(vm, net, "0")))
    assert "metrics" not in ok(api.VIF.get_record(s, vif))
    assert err(api.VIF_metrics.get_all(s))[0] == "MESSAGE_METHOD_UNKNOWN"


def test_vif_move(daemon):
    api, s = daemon.login()
    vm, net = vm_and_network(api, s)
    net2 = ok(api.network.create(s, {"name_label": "other"}))
    vif = ok(api.VIF.create(s, vif_record(vm, net, "0")))
    ok(api.VIF.move(s, vif, net2))  # halted: the record only
    assert ok(api.VIF.get_network(s, vif)) == net2
    assert ok(api.network.get_VIFs(s, net)) == []
    ok(api.VM.start(s, vm, False, False))
    ok(api.VIF.move(s, vif, net))  # live
    assert ok(api.VIF.get_network(s, vif)) == net
    assert ok(api.VIF.get_currently_attached(s, vif)) is True
    assert err(api.VIF.move(s, vif, "OpaqueRef:nope"))[0] == "HANDLE_INVALID"
    # A network whose PIF on this host is unplugged takes a live NIC through
    # macvtap when the PIF is a NIC that is no bridge's port, else not.
    pif = next(p for p in ok(api.PIF.get_all(s)) if ok(api.PIF.get_management(s, p)))
    if not ok(api.PIF.get_currently_attached(s, pif)):
        host = ok(api.VM.get_resident_on(s, vm))
        pif_net = ok(api.PIF.get_network(s, pif))
        device = ok(api.PIF.get_device(s, pif))
        if os.path.exists(f"/sys/class/net/{device}/master"):
            assert err(api.VIF.move(s, vif, pif_net)) == \
                ["HOST_CANNOT_ATTACH_NETWORK", host, pif_net]
            assert ok(api.VIF.get_network(s, vif)) == net
        else:  # the sim domain's NIC: no host link is made
            ok(api.VIF.move(s, vif, pif_net))
            assert ok(api.VIF.get_network(s, vif)) == pif_net
            ok(api.VIF.move(s, vif, net))
    ok(api.VM.hard_shutdown(s, vm))


def test_vm_create_gives_a_mac_seed_and_clones_copy_vifs(daemon):
    api, s = daemon.login()
    vm, net = vm_and_network(api, s)
    seed = ok(api.VM.get_other_config(s, vm))["mac_seed"]
    assert len(seed) == 36
    given = ok(api.VM.create(s, dict(VM_RECORD, other_config={"mac_seed": "mine"})))
    assert ok(api.VM.get_other_config(s, given))["mac_seed"] == "mine"
    rec = dict(vif_record(vm, net, "1"), locking_mode="locked", ipv4_allowed=["10.0.0.2"])
    vif = ok(api.VIF.create(s, rec))
    mac = ok(api.VIF.get_MAC(s, vif))
    clone = ok(api.VM.clone(s, vm, "clone"))
    snap = ok(api.VM.snapshot(s, vm, "snap"))
    assert ok(api.VM.get_other_config(s, clone))["mac_seed"] != seed
    assert ok(api.VM.get_other_config(s, snap))["mac_seed"] == seed
    (cv,) = ok(api.VM.get_VIFs(s, clone))
    (sv,) = ok(api.VM.get_VIFs(s, snap))
    c, sr = ok(api.VIF.get_record(s, cv)), ok(api.VIF.get_record(s, sv))
    for r in (c, sr):
        assert r["device"] == "1" and r["network"] == net and r["locking_mode"] == "locked"
        assert r["ipv4_allowed"] == ["10.0.0.2"] and r["currently_attached"] is False
    assert sr["MAC"] == mac  # a snapshot keeps its MACs
    assert c["MAC"] != mac and c["MAC_autogenerated"] is True
    assert int(c["MAC"][:2], 16) & 0x03 == 0x02


def test_locked_refused_where_nftables_cannot_be_used():
    # Without CAP_NET_ADMIN nftables refuses xapid: what needs its rules is
    # refused, never stored unenforced; disabled needs none (the tap stays
    # off the bridge).
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv")
    d = Daemon(extra_args=["--hypervisor", "sim"],
               cmd_prefix=["setpriv", "--bounding-set=-net_admin", "--"])
    try:
        api, s = d.login()
        vm, net = vm_and_network(api, s)
        e = err(api.VIF.create(s, dict(vif_record(vm, net, "0"), locking_mode="locked")))
        assert e[:3] == ["VALUE_NOT_SUPPORTED", "locking_mode", "locked"]
        assert "nftables" in e[3]
        rec = dict(vif_record(vm, net, "0"), qos_algorithm_type="ratelimit",
                   qos_algorithm_params={"kbps": "100"})
        assert err(api.VIF.create(s, rec))[:3] == \
            ["VALUE_NOT_SUPPORTED", "qos_algorithm_type", "ratelimit"]
        assert ok(api.VM.get_VIFs(s, vm)) == []
        vif = ok(api.VIF.create(s, vif_record(vm, net, "0")))
        assert err(api.VIF.set_locking_mode(s, vif, "locked"))[0] == "VALUE_NOT_SUPPORTED"
        assert ok(api.VIF.get_locking_mode(s, vif)) == "network_default"
        ok(api.VIF.set_locking_mode(s, vif, "disabled"))
    finally:
        d.stop()


def test_revert_puts_the_snapshots_vifs_back(daemon):
    api, s = daemon.login()
    vm, net = vm_and_network(api, s)
    vif = ok(api.VIF.create(s, dict(vif_record(vm, net, "0"), locking_mode="locked")))
    mac = ok(api.VIF.get_MAC(s, vif))
    snap = ok(api.VM.snapshot(s, vm, "snap"))
    ok(api.VIF.destroy(s, vif))
    ok(api.VIF.create(s, vif_record(vm, net, "3")))
    ok(api.VM.revert(s, snap))
    (back,) = ok(api.VM.get_VIFs(s, vm))
    rec = ok(api.VIF.get_record(s, back))
    assert (rec["device"], rec["MAC"], rec["locking_mode"]) == ("0", mac, "locked")
    assert len(ok(api.VM.get_VIFs(s, snap))) == 1  # the snapshot keeps its own


def test_configure_ip_checked_then_refused_as_xapi_for_a_guest_without_the_feature(daemon):
    """XAPI stores VIF.configure_ipv4/6 for its guest tools to apply (from
    xenstore); qemu-ga cannot, so XAPI's answer for a guest without
    feature-static-ip-setting, after XAPI's checks, and nothing stored."""
    api, s = daemon.login()
    vm, net = vm_and_network(api, s)
    vif = ok(api.VIF.create(s, vif_record(vm, net, "0")))
    before = ok(api.VIF.get_record(s, vif))
    assert before["ipv4_configuration_mode"] == "None" and before["ipv4_addresses"] == []
    for call, family in ((api.VIF.configure_ipv4, "4"), (api.VIF.configure_ipv6, "6")):
        address, gateway = (("10.0.0.2/24", "10.0.0.1") if family == "4"
                            else ("fd00::2/64", "fd00::1"))
        assert err(call(s, vif, "Static", address, gateway)) == ["VM_LACKS_FEATURE", vm]
        assert err(call(s, vif, "None", "", "")) == ["VM_LACKS_FEATURE", vm]
        # XAPI's checks come first: a CIDR is required, the gateway an address.
        bare = address.split("/")[0]
        for bad in (bare, "", "x/24", address.split("/")[0] + "/200",
                    "fd00::2/64" if family == "4" else "10.0.0.2/24"):
            assert err(call(s, vif, "Static", bad, gateway)) == \
                ["INVALID_CIDR_ADDRESS_SPECIFIED", "address"], bad
        assert err(call(s, vif, "Static", address, "10.0.0.256")) == \
            ["INVALID_IP_ADDRESS_SPECIFIED", "gateway"]
        assert err(call(s, vif, "Static", address, "")) == ["VM_LACKS_FEATURE", vm]
        assert err(call(s, vif, "Bogus", address, gateway))[0] in ("INVALID_VALUE",
                                                                   "ENUM_VALUE_INVALID")
    # A locked VIF may only be given one of its allowed addresses.
    ok(api.VIF.set_locking_mode(s, vif, "locked"))
    ok(api.VIF.set_ipv4_allowed(s, vif, ["10.0.0.2"]))
    ok(api.VIF.set_ipv6_allowed(s, vif, ["fd00::2"]))
    assert err(api.VIF.configure_ipv4(s, vif, "Static", "10.0.0.3/24", "")) == \
        ["ADDRESS_VIOLATES_LOCKING_CONSTRAINT", "10.0.0.3/24"]
    assert err(api.VIF.configure_ipv6(s, vif, "Static", "fd00:0::3/64", "")) == \
        ["ADDRESS_VIOLATES_LOCKING_CONSTRAINT", "fd00:0::3/64"]
    assert err(api.VIF.configure_ipv4(s, vif, "Static", "10.0.0.2/24", "")) == \
        ["VM_LACKS_FEATURE", vm]
    assert err(api.VIF.configure_ipv6(s, vif, "Static", "fd00:0::2/64", "")) == \
        ["VM_LACKS_FEATURE", vm]
    after = ok(api.VIF.get_record(s, vif))
    for field in ("ipv4_configuration_mode", "ipv4_addresses", "ipv4_gateway",
                  "ipv6_configuration_mode", "ipv6_addresses", "ipv6_gateway"):
        assert after[field] == before[field], field
