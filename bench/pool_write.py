#!/usr/bin/env python3
"""A pool write against a standalone host's (see docs/bench.md, "Pool
writes"): VM.set_name_label timed back to back on one keep-alive
connection, on a standalone sim host (SQLite), at the master of a 3-host
--pool-dqlite sim pool (a Raft commit on 2 of 3 voters) and on a member
of it (shipped to the master, acknowledged once the member's replica has
it). Rounds alternate the three; printed: p50 and p99 of each and the
ratios against standalone, all measured in this run.

Usage: bench/pool_write.py [--writes N] [--rounds R]
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "client"))
os.environ.setdefault("XAPID_BIN", os.path.join(ROOT, "build", "xapid"))

from xapid_daemon import PASSWORD, Daemon, free_port, new_vm, ok, wait_until  # noqa: E402
from test_pool import joined, login_member  # noqa: E402


def host(address, port, dqlite):
    state = tempfile.mkdtemp(prefix="xapid-bench-")
    extra = ["--hypervisor", "sim", "--no-metrics", "--unix", os.path.join(state, "xapi.sock")]
    return Daemon(state_dir=state, listen=f"{address}:{port}",
                  extra_args=extra + (["--pool-dqlite"] if dqlite else []))


def timed(proxy, s, vm, n, tag):
    out = []
    for i in range(n):
        t = time.perf_counter()
        ok(proxy.VM.set_name_label(s, vm, f"{tag}-{i}"))
        out.append(time.perf_counter() - t)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--writes", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    port = free_port()
    alone = host("127.0.0.7", free_port(), False)
    pool = [host(f"127.0.0.{n}", port, True) for n in (4, 5, 6)]
    try:
        master = pool[0]
        for member in pool[1:]:
            mp, ms = member.login()
            ok(mp.pool.join(ms, master.address, "root", PASSWORD))
            wait_until(lambda: joined(member), what="a member")
        ap_, as_ = alone.login()
        mp, ms = master.login()
        vm_alone, vm_pool = new_vm((ap_, as_)), new_vm((mp, ms))
        b = pool[1]
        bs = login_member(b)
        bp = b.proxy()
        wait_until(lambda: vm_pool in ok(bp.VM.get_all(bs)), what="the VM at the member")
        runs = {"standalone": [], "master": [], "member": []}
        for r in range(a.rounds):
            runs["standalone"] += timed(ap_, as_, vm_alone, a.writes, f"a{r}")
            runs["master"] += timed(mp, ms, vm_pool, a.writes, f"m{r}")
            runs["member"] += timed(bp, bs, vm_pool, a.writes, f"b{r}")
        q = {k: (statistics.median(v), statistics.quantiles(v, n=100)[98]) for k, v in runs.items()}
        base = q["standalone"]
        for k, (p50, p99) in q.items():
            print(f"{k:10s} p50 {p50 * 1e3:7.2f} ms  p99 {p99 * 1e3:7.2f} ms  "
                  f"ratio p50 {p50 / base[0]:5.2f}  p99 {p99 / base[1]:5.2f}")
    finally:
        for d in [alone] + pool:
            d.stop()
            shutil.rmtree(d.state_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
