#!/usr/bin/env python3
"""message.create against a write of the object database (see
docs/bench.md, "Messages"): on one sim host, timed back to back on one
keep-alive connection, rounds alternating: VM.set_name_label (a commit of
xapid.db), message.create with few messages held, and message.create at
the cap (10000 held: each create also removes the oldest, in the same
transaction). Then, on the host holding 10000 messages and 10000 VMs
(VM.create), the wall time of one raw POST (the whole reply read, not
parsed) of message.get_all_records against VM.get_all_records. Printed:
p50 and p99 of each and ratios, all measured in this run.

Usage: bench/messages.py [--writes N] [--rounds R]
"""
import argparse
import http.client
import os
import statistics
import sys
import time
import xmlrpc.client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "client"))
os.environ.setdefault("XAPID_BIN", os.path.join(ROOT, "build", "xapid"))

from xapid_daemon import Daemon, new_vm, ok  # noqa: E402

LIMIT = 10000


def timed(fn, n):
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t)
    return out


def raw_post(d, body):
    conn = http.client.HTTPConnection(d.address, d.port)
    t = time.perf_counter()
    conn.request("POST", "/", body)
    size = len(conn.getresponse().read())
    conn.close()
    return time.perf_counter() - t, size


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--writes", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    few = Daemon(extra_args=["--hypervisor", "sim", "--no-metrics"])
    full = Daemon(extra_args=["--hypervisor", "sim", "--no-metrics"])
    try:
        pf, sf = few.login()
        pc, sc = full.login()
        vm = new_vm((pf, sf), "bench")
        hu_f = ok(pf.host.get_uuid(sf, ok(pf.host.get_all(sf))[0]))
        hu_c = ok(pc.host.get_uuid(sc, ok(pc.host.get_all(sc))[0]))
        for i in range(LIMIT):
            ok(pc.message.create(sc, "FILL", "5", "Host", hu_c, f"fill {i}"))
        assert len(ok(pc.message.get_all(sc))) == LIMIT
        res = {"db write": [], "create": [], "create at cap": []}
        for r in range(a.rounds):
            res["db write"] += timed(lambda i: ok(pf.VM.set_name_label(sf, vm, f"r{r}-{i}")),
                                     a.writes)
            res["create"] += timed(lambda i: ok(pf.message.create(sf, "B", "5", "Host", hu_f,
                                                                  f"r{r}-{i}")), a.writes)
            ok(pf.message.destroy_many(sf, ok(pf.message.get_all(sf))))
            res["create at cap"] += timed(
                lambda i: ok(pc.message.create(sc, "B", "5", "Host", hu_c, f"r{r}-{i}")),
                a.writes)
        assert len(ok(pc.message.get_all(sc))) == LIMIT
        for i in range(LIMIT):
            new_vm((pc, sc), f"vm {i}")
        reads = {}
        for method in ("message.get_all_records", "VM.get_all_records"):
            body = xmlrpc.client.dumps((sc,), method).encode()
            got = [raw_post(full, body) for _ in range(20)]
            reads[method] = ([t for t, _ in got], got[0][1])
        base = statistics.median(res["db write"])
        for k, v in res.items():
            print(f"{k:16s} p50 {statistics.median(v) * 1e3:7.3f} ms  p99 "
                  f"{pct(v, 0.99) * 1e3:7.3f} ms  p50/db write {statistics.median(v) / base:5.2f}")
        for k, (v, size) in reads.items():
            print(f"{k:24s} 10000 records, {size / 1e6:5.1f} MB: p50 "
                  f"{statistics.median(v) * 1e3:7.2f} ms  p99 {pct(v, 0.99) * 1e3:7.2f} ms")
        m, v = (statistics.median(reads[k][0]) for k in reads)
        print(f"message/VM get_all_records p50 {m / v:5.2f}")
    finally:
        few.stop()
        full.stop()


if __name__ == "__main__":
    main()
