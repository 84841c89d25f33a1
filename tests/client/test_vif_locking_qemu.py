"""What the host enforces on a real guest's tap (xapid's nftables table,
`table bridge xapid`): a locked VIF's frames from another MAC or another
address (IPv4 or IPv6) do not arrive while its allowed ones do, a disabled VIF passes
nothing, a rate limit drops a flood, VIF.move re-plugs the tap live, and
the rules follow live changes, a restart of xapid, and the VM's end. The
host side is the daemon's network namespace itself: the bridge gets an
address and pings the guests. Nothing is left behind (asserted)."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from netns import ip
from test_network import NsDaemon, vif_record
from test_network_qemu import GUEST_DIR, guest, guest_vm, netns, wait_console  # noqa: F401
from xapid_daemon import ok

HOST_IP = "10.0.0.1"
HOST_IP6 = "fd00::1"


def nft(ns):
    """xapid's table in ns as nft's JSON objects, or None if there is none."""
    out = ip("nft", "-j", "list", "table", "bridge", "xapid", ns=ns, check=False)
    return json.loads(out.stdout)["nftables"] if out.returncode == 0 else None


def chains(ns):
    return {o["chain"]["name"] for o in nft(ns) or [] if "chain" in o} - \
        {"prerouting", "forward", "output"}


def elements(ns, map_name):
    for o in nft(ns) or []:
        if "map" in o and o["map"]["name"] == map_name:
            return {e[0] for e in o["map"].get("elem", [])}
    return set()


def rules(ns, chain):
    return [o["rule"] for o in nft(ns) or [] if "rule" in o and o["rule"]["chain"] == chain]


def dropped(ns, chain):
    """Packets counted by the chain's counter rules."""
    n = 0
    for r in rules(ns, chain):
        for e in r["expr"]:
            if "counter" in e:
                n += e["counter"]["packets"]
    return n


def console_from(d, uuid, offset):
    path = os.path.join(d.state_dir, "domains", uuid, "console.log")
    with open(path, errors="replace") as f:
        return f.read()[offset:]


def console_len(d, uuid):
    return len(console_from(d, uuid, 0))


def wait_pings(d, uuid, state, n=3, since=0, timeout=120, kind="PING"):
    """Until the guest's ping loop (xapid.pingloop, or xapid.pingloop6 with
    kind PING6) has shown state (ok or lost) n times in a row since console
    offset since."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        seen = re.findall(rf"XAPID-GUEST-{kind} (ok|lost)", console_from(d, uuid, since))
        if len(seen) >= n and all(x == state for x in seen[-n:]):
            return
        time.sleep(0.2)
    raise AssertionError(f"guest {uuid}: no {n} pings {state} in a row: {seen[-10:]}")


def chain_of(tap):
    return "vif_" + tap.replace(".", "_")


def master(ns, link):
    out = ip("readlink", f"/sys/class/net/{link}/master", ns=ns, check=False).stdout.strip()
    return os.path.basename(out) if out else ""


def test_locked_and_disabled_vifs(netns, guest):  # noqa: F811
    ns = netns.name
    d = NsDaemon(netns, "qemu", ["--guest-kernel-dir", GUEST_DIR])
    try:
        api, s = d.login()
        net = ok(api.network.create(s, {"name_label": "private"}))
        bridge = ok(api.network.get_bridge(s, net))
        loop = f"xapid.pingloop={HOST_IP}"
        a, ua = guest_vm(api, s, guest, "a", f"xapid.ip=10.0.0.2/24 {loop} "
                         f"xapid.ip6=fd00::2/64 xapid.pingloop6={HOST_IP6}")
        spoof_mac = "02:00:00:00:00:99"
        b, ub = guest_vm(api, s, guest, "b", f"xapid.ip=10.0.0.4/24 xapid.mac={spoof_mac} {loop}")
        # a's IPv6 address is not the one allowed: a spoofer over IPv6.
        va = ok(api.VIF.create(s, dict(vif_record(a, net, "0"), locking_mode="locked",
                                       ipv4_allowed=["10.0.0.2"], ipv6_allowed=["fd00::3"])))
        vb = ok(api.VIF.create(s, dict(vif_record(b, net, "0"), locking_mode="locked",
                                       ipv4_allowed=["10.0.0.4"])))
        ta, tb = f"xv{ua[:8]}.0", f"xv{ub[:8]}.0"
        ok(api.VM.start(s, a, False, False))
        ok(api.VM.start(s, b, False, False))
        # The rules were set before the taps joined the bridge.
        assert chains(ns) == {chain_of(ta), chain_of(tb)}
        assert elements(ns, "from_vif") == {ta, tb}
        ip("ip", "addr", "add", f"{HOST_IP}/24", "dev", bridge, ns=ns)
        ip("ip", "-6", "addr", "add", f"{HOST_IP6}/64", "dev", bridge, "nodad", ns=ns)

        # a sends from its MAC and its address: its pings are answered.
        wait_pings(d, ua, "ok")
        # Not its IPv6 pings, from an address it may not use (neither its
        # neighbour solicitations): they do not arrive, until it may.
        wait_pings(d, ua, "lost", n=4, kind="PING6")
        assert "XAPID-GUEST-PING6 ok" not in console_from(d, ua, 0)
        mark = console_len(d, ua)
        ok(api.VIF.add_ipv6_allowed(s, va, "fd00::2"))
        wait_pings(d, ua, "ok", since=mark, kind="PING6")
        # b sends from another MAC: nothing of it arrives (its ARP neither).
        wait_console(d, ub, f"eth0={spoof_mac}")
        wait_pings(d, ub, "lost", n=4)
        assert "XAPID-GUEST-PING ok" not in console_from(d, ub, 0)
        assert dropped(ns, chain_of(tb)) >= 4
        # Unlocked, the same frames pass: it was the rule that held them.
        mark = console_len(d, ub)
        ok(api.VIF.set_locking_mode(s, vb, "unlocked"))
        assert chain_of(tb) not in chains(ns) and tb not in elements(ns, "from_vif")
        wait_pings(d, ub, "ok", since=mark)

        # a's address is no longer allowed: its pings stop arriving.
        mark = console_len(d, ua)
        ok(api.VIF.set_ipv4_allowed(s, va, ["10.0.0.3"]))
        wait_pings(d, ua, "lost", since=mark)
        assert dropped(ns, chain_of(ta)) > 0  # its rules are new: counted from 0
        mark = console_len(d, ua)
        ok(api.VIF.add_ipv4_allowed(s, va, "10.0.0.2"))
        wait_pings(d, ua, "ok", since=mark)
        # Locked with nothing allowed: no IP traffic at all (XAPI's rule).
        mark = console_len(d, ua)
        ok(api.VIF.set_ipv4_allowed(s, va, []))
        wait_pings(d, ua, "lost", since=mark)

        # Disabled: off the bridge, and nothing to or from it.
        ok(api.VIF.set_ipv4_allowed(s, va, ["10.0.0.2"]))
        mark = console_len(d, ua)
        ok(api.VIF.set_locking_mode(s, va, "disabled"))
        assert master(ns, ta) == "" and ta in elements(ns, "to_vif")
        wait_pings(d, ua, "lost", since=mark)
        mark = console_len(d, ua)
        ok(api.VIF.set_locking_mode(s, va, "locked"))
        assert master(ns, ta) == bridge and ta not in elements(ns, "to_vif")
        wait_pings(d, ua, "ok", since=mark)

        # A crash of xapid leaves the rules in force; b stops while it is
        # away; the restart keeps a's rules (its pings go on) and drops b's.
        ok(api.VIF.set_locking_mode(s, vb, "locked"))
        d.kill9()
        assert chains(ns) == {chain_of(ta), chain_of(tb)}
        pid = int(open(os.path.join(d.state_dir, "domains", ub, "qemu.pid")).read())
        os.kill(pid, signal.SIGKILL)
        deadline = time.time() + 30
        while tb in netns.links() and time.time() < deadline:
            time.sleep(0.05)
        mark = console_len(d, ua)
        d.start()
        api, s = d.login()
        assert chains(ns) == {chain_of(ta)}
        assert elements(ns, "from_vif") == {ta}
        assert ok(api.VM.get_power_state(s, b)) == "Halted"
        wait_pings(d, ua, "ok", since=mark)

        ok(api.VM.hard_shutdown(s, a))
        assert chains(ns) == set()
        assert elements(ns, "from_vif") == set() and elements(ns, "to_vif") == set()
        assert netns.links() == {"lo", "eth0"}
    finally:
        d.stop()
    assert netns.links() == {"lo", "eth0"}


LISTENER = """
import json, socket, sys, time
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2])))
srv.listen(1)
print("listening", flush=True)
conn, _ = srv.accept()
total, first, last = 0, None, None
while True:
    data = conn.recv(65536)
    if not data:
        break
    last = time.monotonic()
    first = first or last
    total += len(data)
print(json.dumps({"bytes": total, "seconds": (last or 0) - (first or 0)}), flush=True)
"""


def test_ratelimit_and_move(netns, guest):  # noqa: F811
    ns = netns.name
    d = NsDaemon(netns, "qemu", ["--guest-kernel-dir", GUEST_DIR])
    listener = None
    try:
        api, s = d.login()
        net = ok(api.network.create(s, {"name_label": "one"}))
        net2 = ok(api.network.create(s, {"name_label": "two"}))
        bridge, bridge2 = ok(api.network.get_bridge(s, net)), ok(api.network.get_bridge(s, net2))
        kib = 2048
        vm, uuid = guest_vm(api, s, guest, "q", f"xapid.ip=10.0.0.2/24 xapid.pingloop={HOST_IP} "
                                                f"xapid.send={HOST_IP}:5001:{kib}")
        kbps = 256
        vif = ok(api.VIF.create(s, dict(vif_record(vm, net, "0"),
                                        qos_algorithm_type="ratelimit",
                                        qos_algorithm_params={"kbps": str(kbps)})))
        tap = f"xv{uuid[:8]}.0"
        ok(api.VM.start(s, vm, False, False))
        # The rate is XAPI's: kbps KiB/s, credit over 50 ms (here below a
        # GSO segment, so 128 KiB).
        (limit,) = [e["limit"] for r in rules(ns, chain_of(tap)) for e in r["expr"]
                    if "limit" in e]
        rate, burst = kbps * 1024, 128 * 1024
        unit = {"bytes": 1, "kbytes": 1024, "mbytes": 1024 * 1024}
        assert limit["rate"] * unit[limit["rate_unit"]] == rate
        assert limit["burst"] * unit[limit.get("burst_unit", "bytes")] == burst
        assert limit["per"] == "second" and limit["inv"] is True
        ip("ip", "addr", "add", f"{HOST_IP}/24", "dev", bridge, ns=ns)
        listener = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", LISTENER,
                                     HOST_IP, "5001"], stdout=subprocess.PIPE, text=True)
        assert listener.stdout.readline().strip() == "listening"
        wait_console(d, uuid, "XAPID-GUEST-SENT", timeout=300)
        got = json.loads(listener.stdout.readline())
        listener.wait(timeout=30)
        assert got["bytes"] == kib * 1024
        measured = got["bytes"] / max(got["seconds"], 0.001)
        print(f"\nratelimit {kbps} KiB/s: the guest sent {kib} KiB in {got['seconds']:.1f} s "
              f"= {measured / 1024:.0f} KiB/s")
        # What the limit let through: within its rate and burst (a generous
        # margin for how TCP paces itself), and it did drop.
        assert got["bytes"] <= burst + 1.5 * rate * got["seconds"] + 64 * 1024
        assert dropped(ns, chain_of(tap)) > 0
        # Without QoS the chain goes, live.
        ok(api.VIF.set_qos_algorithm_type(s, vif, ""))
        assert chain_of(tap) not in chains(ns)

        # VIF.move re-plugs the tap on the other bridge; the guest keeps
        # its NIC and its pings are answered there.
        wait_pings(d, uuid, "ok")
        ok(api.VIF.move(s, vif, net2))
        assert master(ns, tap) == bridge2
        assert bridge not in netns.links()  # the empty bridge went
        mark = console_len(d, uuid)
        ip("ip", "addr", "add", f"{HOST_IP}/24", "dev", bridge2, ns=ns)
        wait_pings(d, uuid, "ok", since=mark)
        assert ok(api.VIF.get_network(s, vif)) == net2
        assert ok(api.network.get_VIFs(s, net2)) == [vif]

        # Its rules go with the NIC when it is unplugged.
        ok(api.VIF.set_qos_algorithm_type(s, vif, "ratelimit"))
        assert chains(ns) == {chain_of(tap)}
        ok(api.VIF.unplug(s, vif))
        assert chains(ns) == set() and elements(ns, "from_vif") == set()
        assert tap not in netns.links()

        ok(api.VM.hard_shutdown(s, vm))
        assert chains(ns) == set()
        assert netns.links() == {"lo", "eth0"}
    finally:
        if listener and listener.poll() is None:
            listener.kill()
            listener.wait()
        d.stop()
    assert netns.links() == {"lo", "eth0"}
