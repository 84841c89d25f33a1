#!/usr/bin/env python3
"""A large sim pool on this box (see docs/bench.md, "Pool scale"): N sim
daemons on 127.0.0.20 and up (default 16, at most 80) with --pool-dqlite
(3 voters, the rest standbys), against one standalone sim host on
127.0.0.99 (the peer, measured in the same run). Printed:
- join time per host: pool.join until the joiner answers as a member
  with the pool in its replica (sequential; first, median, last);
- 10,000 VMs made by VM.create spread over the hosts (each host makes its
  share, a member's shipped to the master; affinity = the host), then
  VM.get_all_records at the master read by curl (median of 7) against the
  same on the standalone host holding as many VMs (the ratio);
- event.from latency on the members for a change made at the master:
  every member has an event.from(["vm"]) waiting, the master renames a
  VM, the time until each member's call returns it (rounds; p50, p99),
  against the same on the standalone host (a change there, seen by an
  event.from waiting there);
- RSS of each member holding the pool (median, max), the master's, and
  the standalone host's holding as many VMs.

Usage: bench/pool_scale.py [--hosts N] [--vms N] [--rounds R]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xmlrpc.client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "client"))
os.environ.setdefault("XAPID_BIN", os.path.join(ROOT, "build", "xapid"))

from xapid_daemon import PASSWORD, Daemon, free_port, ok, wait_until  # noqa: E402
from test_pool import joined  # noqa: E402
from bench_vm import VM_RECORD  # noqa: E402

def host(address, port, pool):
    state = tempfile.mkdtemp(prefix="xapid-bench-scale-")
    # Every daemon on this box dials the others from 127.0.0.1 (the source
    # address loopback picks), where a LAN's hosts each have their own: the
    # per-address cap (100) would refuse the master's 50th member.
    extra = ["--hypervisor", "sim", "--no-metrics", "--member-timeout", "30",
             "--http-max-connections-per-ip", "1000", "--unix", os.path.join(state, "xapi.sock")]
    return Daemon(state_dir=state, listen=f"{address}:{port}",
                  extra_args=extra + (["--pool-dqlite"] if pool else []))


def session(d):
    reply = d.proxy().session.login_with_password("root", PASSWORD)
    if reply["Status"] == "Success":
        return reply["Value"]
    return ok(d.proxy().session.slave_local_login_with_password("root", PASSWORD))


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def create_vms(makers, total):
    """makers: [(daemon, session, affinity)]; each makes its share."""
    share = total // len(makers)
    failures = []
    retried = []

    def make(d, s, affinity):
        proxy = d.proxy()
        record = dict(VM_RECORD, affinity=affinity)
        for i in range(share):
            # A change of master under load (seen at 64 hosts) refuses
            # writes for a while: retried, and counted.
            deadline = time.monotonic() + 120
            while True:
                try:
                    r = proxy.VM.create(s, dict(record, name_label=f"bench {d.address} {i}"))
                except OSError as e:
                    r = {"Status": "Failure", "ErrorDescription": [type(e).__name__]}
                if r["Status"] == "Success":
                    break
                retried.append(r["ErrorDescription"][0])
                if time.monotonic() > deadline:
                    failures.append(r)
                    return
                time.sleep(0.5)
    threads = [threading.Thread(target=make, args=m) for m in makers]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit(f"VM.create failed: {failures[0]}")
    if retried:
        print(f"VM.create retried {len(retried)} times: {sorted(set(retried))}")
    return share * len(makers), time.perf_counter() - t0


def current_master(hosts):
    """The host that takes TCP logins now, with a session there."""
    for d in hosts:
        try:
            reply = d.proxy().session.login_with_password("root", PASSWORD)
        except OSError:
            continue
        if reply["Status"] == "Success":
            return d, reply["Value"]
    return None


def curl_median(d, s, runs=7):
    body = xmlrpc.client.dumps((s,), "VM.get_all_records").encode()
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(body)
    times = []
    size = 0
    for _ in range(runs):
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w",
                              "%{time_total} %{size_download}", "--data-binary",
                              f"@{f.name}", d.url], check=True, capture_output=True,
                             text=True).stdout.split()
        times.append(float(out[0]))
        size = int(out[1])
    os.unlink(f.name)
    return statistics.median(times), size


def token_now(d, s):
    return ok(d.proxy().event.__getattr__("from")(s, ["pool"], "", 0.0))["token"]


def event_latencies(changer, cs, watchers, vm, rounds):
    """Per round: every watcher (daemon, session) waits in event.from for
    vm; changer renames it; the time from the rename's start to each
    watcher's return with the new name."""
    out = []
    for r in range(rounds):
        label = f"event round {r}"
        seen = {}
        ready = threading.Barrier(len(watchers) + 1)

        def watch(d, s, k):
            proxy = d.proxy()
            token = token_now(d, s)
            ready.wait()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                reply = ok(proxy.event.__getattr__("from")(s, ["vm"], token, 30.0))
                token = reply["token"]
                for ev in reply["events"]:
                    if ev["ref"] == vm and ev.get("snapshot", {}).get("name_label") == label:
                        seen[k] = time.perf_counter()
                        return
        threads = [threading.Thread(target=watch, args=(d, s, k))
                   for k, (d, s) in enumerate(watchers)]
        for t in threads:
            t.start()
        ready.wait()
        time.sleep(0.2)  # every watcher inside its event.from
        t0 = time.perf_counter()
        ok(changer.proxy().VM.set_name_label(cs, vm, label))
        for t in threads:
            t.join()
        out += [seen[k] - t0 for k in range(len(watchers)) if k in seen]
        if len(seen) != len(watchers):
            print(f"round {r}: {len(watchers) - len(seen)} watchers did not see the change")
    return sorted(out)


def pct(xs, p):
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=16)
    ap.add_argument("--vms", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    assert 2 <= args.hosts <= 80
    port = free_port()
    daemons = []
    try:
        # The peer: one standalone host with as many VMs.
        alone = host("127.0.0.99", port, pool=False)
        daemons.append(alone)
        s_alone = session(alone)
        made, secs = create_vms([(alone, s_alone, "OpaqueRef:NULL")] * 4, args.vms)
        print(f"standalone: VM.create x{made} (4 clients) {secs:.1f} s", flush=True)
        alone_gar, alone_size = curl_median(alone, s_alone)
        alone_rss = rss_mb(alone.proc.pid)
        alone_vm = ok(alone.proxy().VM.get_by_name_label(s_alone, "bench 127.0.0.99 0"))[0]
        alone_ev = event_latencies(alone, s_alone, [(alone, s_alone)], alone_vm, args.rounds)

        hosts = [host(f"127.0.0.{20 + n}", port, pool=True) for n in range(args.hosts)]
        daemons += hosts
        master = hosts[0]
        joins = []
        for member in hosts[1:]:
            proxy, s = member.login()
            t0 = time.perf_counter()
            # Under load a login at the master may fail while its password
            # hash cannot be read from dqlite (docs/pool.md, "A deposed
            # master's logins"): a join is tried again a few times.
            for _ in range(5):
                reply = proxy.pool.join(s, master.address, "root", PASSWORD)
                if reply["Status"] == "Success":
                    break
                print(f"join {len(joins) + 1} refused, again: {reply['ErrorDescription']}")
                time.sleep(1)
            if reply["Status"] != "Success":
                raise SystemExit(f"join {len(joins) + 1} failed: {reply}; the master's exit "
                                 f"status: {master.proc.poll()}")
            try:
                wait_until(lambda: joined(member), timeout=120, what=f"{member.address} joined")
            except AssertionError:
                print(f"{member.address}'s log:\n{member.log_tail()}\nthe master's log:\n"
                      f"{master.log_tail()}\nthe master's exit status: {master.proc.poll()}")
                raise
            joins.append(time.perf_counter() - t0)
            print(f"join {len(joins)}: {joins[-1]:.2f} s", flush=True)
        ms = session(master)
        refs = {rec["address"]: ref
                for ref, rec in ok(master.proxy().host.get_all_records(ms)).items()}
        sessions = [ms] + [session(d) for d in hosts[1:]]
        makers = [(d, s, refs.get(d.address, "OpaqueRef:NULL"))
                  for d, s in zip(hosts, sessions)]
        made, secs = create_vms(makers, args.vms)
        print(f"pool: VM.create x{made} spread over {args.hosts} hosts {secs:.1f} s", flush=True)
        founder = master
        master, ms = wait_until(lambda: current_master(hosts), timeout=120, what="a master")
        if master is not founder:
            print(f"the master is now {master.address} (was {founder.address})")
            sessions = [session(d) for d in hosts]
        members = [(d, s) for d, s in zip(hosts, sessions) if d is not master]
        pool_gar, pool_size = curl_median(master, ms)
        vm = ok(master.proxy().VM.get_by_name_label(ms, f"bench {founder.address} 0"))[0]
        pool_ev = event_latencies(master, ms, members, vm, args.rounds)
        member_rss = sorted(rss_mb(d.proc.pid) for d, _ in members)
        master_rss = rss_mb(master.proc.pid)

        print(f"\n{args.hosts}-host --pool-dqlite sim pool, {made} VMs")
        print(f"join time per host: first {joins[0]:.2f} s, median "
              f"{statistics.median(joins):.2f} s, last {joins[-1]:.2f} s, max {max(joins):.2f} s")
        print(f"VM.get_all_records (curl, median of 7): master {pool_gar * 1000:.0f} ms "
              f"({pool_size / 1e6:.0f} MB), standalone {alone_gar * 1000:.0f} ms "
              f"({alone_size / 1e6:.0f} MB), ratio {pool_gar / alone_gar:.2f} (goal < 100 ms)")
        print(f"event.from on {len(hosts) - 1} members for a change at the master, "
              f"{len(pool_ev)} samples: p50 {statistics.median(pool_ev) * 1000:.1f} ms, "
              f"p99 {pct(pool_ev, 0.99) * 1000:.1f} ms; standalone (change and watcher on one "
              f"host) p50 {statistics.median(alone_ev) * 1000:.1f} ms, ratio "
              f"{statistics.median(pool_ev) / statistics.median(alone_ev):.1f}")
        print(f"RSS: member median {statistics.median(member_rss):.1f} MB, max "
              f"{member_rss[-1]:.1f} MB; master {master_rss:.1f} MB; standalone with as many "
              f"VMs {alone_rss:.1f} MB")
    finally:
        for d in daemons:
            d.stop()
            if not os.environ.get("XAPID_KEEP_STATE"):
                shutil.rmtree(d.state_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
