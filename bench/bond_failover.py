#!/usr/bin/env python3
"""Active-backup failover of xapid's own bonds (kernels without
CONFIG_BONDING, src/network/bond_bpf.c; issue 13): how long traffic stops
when the active member loses carrier, against Linux bonding's miimon of
100 ms (its detection bound; the kernel is not there to measure here).

The set-up of tests/client/test_network_bond.py: the daemon in a network
namespace, two veth members whose peers are ports of a bridge holding
10.77.0.1 in the peer namespace, 10.77.0.2 on the bond's bridge. Per run
a pinger in the daemon's namespace sends an ICMP echo request every
millisecond and notes when each reply comes; the peer end of the active
member is taken down (then up again, and the primary is active again
before the next run). The outage is the longest gap between two replies
around the cut.

Usage: bench/bond_failover.py [--runs N]   (root, after ninja -C build)
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "client"))
os.environ.setdefault("XAPID_BIN", os.path.join(HERE, "..", "build", "xapid"))
from netns import NetNs, ip  # noqa: E402
from test_network import NsDaemon  # noqa: E402
from test_network_bond import new_bond, peer_bridge, pings, rx  # noqa: E402
from test_network_links import add_nic  # noqa: E402
from xapid_daemon import ok, wait_until  # noqa: E402

# Echo requests every millisecond for `seconds`; prints each reply's
# CLOCK_MONOTONIC time (shared by all namespaces).
PINGER = """
import socket, struct, sys, time, select
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
def checksum(b):
    n = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    n = (n >> 16) + (n & 0xFFFF)
    return ~(n + (n >> 16)) & 0xFFFF
end = time.monotonic() + float(sys.argv[2])
seq, nxt = 0, time.monotonic()
print("ready", flush=True)
while time.monotonic() < end:
    now = time.monotonic()
    if now >= nxt:
        body = struct.pack("!BBHHH", 8, 0, 0, 0x7a12, seq & 0xFFFF) + b"bond"
        s.sendto(body[:2] + struct.pack("!H", checksum(body)) + body[4:], (sys.argv[1], 0))
        seq, nxt = seq + 1, nxt + 0.001
    if select.select([s], [], [], max(0, nxt - time.monotonic()))[0]:
        data = s.recv(2048)
        icmp = data[(data[0] & 15) * 4:]
        if icmp[0] == 0 and icmp[4:6] == b"\\x7a\\x12":
            print(time.monotonic(), flush=True)
"""


def outage(ns):
    p = subprocess.Popen(["ip", "netns", "exec", ns.name, "/usr/bin/python3", "-c", PINGER,
                          "10.77.0.1", "1.5"], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    first = float(p.stdout.readline())  # replies come
    while float(p.stdout.readline()) < first + 0.3:
        pass
    cut = time.monotonic()
    ip("ip", "link", "set", "p-eth1", "down", ns=ns.peer)
    times = [float(line) for line in p.stdout]
    p.wait()
    after = [t for t in times if t > cut]
    assert after, "no reply after the cut"
    gaps = [b - a for a, b in zip([cut] + after, after)]
    return max(gaps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    ns = NetNs()
    d = None
    try:
        for n in ("eth1", "eth2"):
            add_nic(ns, n)
        peer_bridge(ns)
        d = NsDaemon(ns, "sim")
        api, s = d.login()
        host = ok(api.host.get_all(s))[0]
        members = [ok(api.PIF.introduce(s, host, "", n, True)) for n in ("eth1", "eth2")]
        new_bond(api, s, members, "active-backup")
        wait_until(lambda: pings(ns), what="replies through the bond")
        figures = []
        for _ in range(args.runs):
            figures.append(outage(ns) * 1000)
            ip("ip", "link", "set", "p-eth1", "up", ns=ns.peer)
            # The primary is active again once its peer counts the pings.
            before = rx(ns, "p-eth1")
            wait_until(lambda: pings(ns) and rx(ns, "p-eth1") > before,
                       what="the primary active again")
        print(f"outage on failover, ms: median {statistics.median(figures):.1f}, "
              f"min {min(figures):.1f}, max {max(figures):.1f} over {args.runs} runs "
              f"(Linux bonding's miimon: 100)")
    finally:
        if d:
            d.stop()
        ns.remove()


if __name__ == "__main__":
    main()
