#!/usr/bin/env python3
"""Failover time of a --pool-dqlite sim pool (see docs/bench.md, "Master
failover"): N hosts on 127.0.0.10 and up (default 3; 3 voters, the rest
standbys), kill -9 of the master, then the time until a write
(VM.set_name_label) is accepted by the new master, polled every 10 ms
over the survivors, and the time until each survivor names the new
master (its TCP login's HOST_IS_SLAVE; the standbys' among them); the
killed host is started again (it comes back as a member) and the next
trial begins once the pool agrees on its master. There is no peer for
this on this box: the figures are absolute (XAPI's HA, for comparison,
declares a host dead after its HA timeout, 60 s by default:
xapi_globs.ml ha_default_timeout_base).

Usage: bench/pool_failover.py [--trials N] [--hosts N] [--member-timeout S]
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

from xapid_daemon import Daemon, free_port, new_vm, ok, wait_until  # noqa: E402
from test_pool import join  # noqa: E402
from test_pool_failover import log_has, master_of, session_on, settled  # noqa: E402


def host(address, port, member_timeout):
    state = tempfile.mkdtemp(prefix="xapid-bench-failover-")
    return Daemon(state_dir=state, listen=f"{address}:{port}",
                  extra_args=["--hypervisor", "sim", "--no-metrics", "--member-timeout",
                              str(member_timeout), "--pool-dqlite", "--http-max-connections-per-ip",
                              "1000", "--unix", os.path.join(state, "xapi.sock")])


def accepted_write(hosts, vm, label):
    for d in hosts:
        try:
            if master_of(d) != d.address:
                continue
            if d.proxy().VM.set_name_label(session_on(d), vm, label)["Status"] == "Success":
                return d
        except (OSError, AssertionError):
            pass
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--hosts", type=int, default=3)
    ap.add_argument("--member-timeout", type=int, default=3)
    args = ap.parse_args()
    assert 3 <= args.hosts <= 40
    port = free_port()
    hosts = [host(f"127.0.0.{10 + n}", port, args.member_timeout) for n in range(args.hosts)]
    try:
        for n, member in enumerate(hosts[1:]):
            join(member, hosts[0])
            wait_until(lambda: log_has(hosts[0], ") added") >= n + 1, what="node added")
        proxy, s = hosts[0].login()
        vm = new_vm((proxy, s), "failover bench")
        times = []
        follows = []  # per trial: seconds from the kill until every survivor followed
        for trial in range(args.trials):
            master = wait_until(lambda: settled(hosts), timeout=60, what="a settled pool")
            survivors = [d for d in hosts if d is not master]
            master.kill9()
            t0 = time.perf_counter()
            new = wait_until(lambda: accepted_write(survivors, vm, f"trial {trial}"),
                             timeout=60, what="a write at a new master")
            times.append(time.perf_counter() - t0)
            behind = set(survivors)
            last = 0.0
            while behind and time.perf_counter() - t0 < 120:
                for d in list(behind):
                    if master_of(d) == new.address:
                        behind.discard(d)
                        last = time.perf_counter() - t0
                time.sleep(0.01)
            follows.append(last if not behind else float("inf"))
            print(f"trial {trial + 1}: {times[-1] * 1000:.0f} ms ({master.address} -> "
                  f"{new.address}); every survivor named it after {follows[-1] * 1000:.0f} ms"
                  + (f" ({len(behind)} never did in 120 s)" if behind else ""), flush=True)
            master.start()
        times.sort()
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(f"failover (kill -9 to the first accepted write), {len(times)} trials: "
              f"p50 {statistics.median(times) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
              f"min {times[0] * 1000:.0f} ms; XAPI HA timeout for comparison: 60 s")
        follows.sort()
        print(f"every one of {args.hosts - 1} survivors naming the new master: p50 "
              f"{statistics.median(follows) * 1000:.0f} ms, max {follows[-1] * 1000:.0f} ms, "
              f"min {follows[0] * 1000:.0f} ms")
    finally:
        for d in hosts:
            d.stop()
            shutil.rmtree(d.state_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
