#!/usr/bin/env python3
"""HA restart time of a 3-host --pool-dqlite sim pool (docs/bench.md,
"HA restart"; docs/ha.md): HA on with a 10 s timeout, two protected VMs
(order 1 and 2) on a member, kill -9 of that member, then the time until
the first and the second run again on a survivor (polled every 10 ms at
the master). The killed host is started again and the next trial waits
until it is live. The peer is XAPI's published default: a host is
declared dead after its HA timeout, 60 s (xapi_globs.ml
ha_default_timeout_base), then its VMs are restarted; the restart part is
this pool's own VM.start, measured in the same run. Goal (issue 19):
under 15 s to the first VM with a 10 s timeout.

Usage: bench/ha_restart.py [--trials N] [--timeout S]
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
from test_pool_failover import log_has  # noqa: E402

XAPI_TIMEOUT_S = 60


def host(address, port):
    state = tempfile.mkdtemp(prefix="xapid-bench-ha-")
    return Daemon(state_dir=state, listen=f"{address}:{port}",
                  extra_args=["--hypervisor", "sim", "--no-metrics", "--member-timeout", "3",
                              "--pool-dqlite", "--unix", os.path.join(state, "xapi.sock")])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--timeout", type=int, default=10)
    args = ap.parse_args()
    port = free_port()
    hosts = [host(f"127.0.0.{n}", port) for n in (41, 42, 43)]
    try:
        master = hosts[0]
        for n, member in enumerate(hosts[1:]):
            join(member, master)
            wait_until(lambda: log_has(master, ") added") >= n + 1, what="node added")
        proxy, s = master.login()
        pool = ok(proxy.pool.get_all(s))[0]
        ok(proxy.pool.enable_ha(s, [], {"timeout": str(args.timeout)}))
        by_address = {ok(proxy.host.get_address(s, h)): h for h in ok(proxy.host.get_all(s))}
        # the restart's own cost: a plain VM.start in this pool
        plain = new_vm((proxy, s), "plain start")
        starts = []
        for _ in range(5):
            t0 = time.perf_counter()
            ok(proxy.VM.start(s, plain, False, False))
            starts.append(time.perf_counter() - t0)
            ok(proxy.VM.hard_shutdown(s, plain))
        start_s = statistics.median(starts)
        firsts, seconds = [], []
        for trial in range(args.trials):
            victim = hosts[1 + trial % 2]
            vh = by_address[victim.address]
            vms = []
            for order in (1, 2):
                vm = new_vm((proxy, s), f"protected {order}", order=str(order))
                ok(proxy.VM.set_ha_restart_priority(s, vm, "restart"))
                ok(proxy.VM.start_on(s, vm, vh, False, False))
                vms.append(vm)
            victim.kill9()
            t0 = time.perf_counter()
            back = {}

            def restarted():
                for vm in vms:
                    if vm in back:
                        continue
                    rec = ok(proxy.VM.get_record(s, vm))
                    if rec["power_state"] == "Running" and rec["resident_on"] != vh:
                        back[vm] = time.perf_counter() - t0
                return len(back) == len(vms)

            wait_until(restarted, timeout=args.timeout * 4 + 30, what="the VMs restarted")
            firsts.append(back[vms[0]])
            seconds.append(back[vms[1]])
            print(f"trial {trial + 1}: kill -9 of {victim.address} to the first protected VM "
                  f"running again {firsts[-1]:.2f} s, the second {seconds[-1]:.2f} s", flush=True)
            victim.start()
            metrics = ok(proxy.host.get_metrics(s, vh))
            wait_until(lambda: ok(proxy.host_metrics.get_live(s, metrics)) is True, timeout=60,
                       what="the member live again")
            for vm in vms:
                ok(proxy.VM.hard_shutdown(s, vm))
                ok(proxy.VM.destroy(s, vm))
        first = statistics.median(firsts)
        peer = XAPI_TIMEOUT_S + start_s
        print(f"HA restart (timeout {args.timeout} s), {len(firsts)} trials: first VM p50 "
              f"{first:.2f} s (max {max(firsts):.2f}), second p50 {statistics.median(seconds):.2f} s; "
              f"goal < 15 s: {'met' if max(firsts) < 15 else 'NOT met'}; "
              f"XAPI's default ({XAPI_TIMEOUT_S} s + this pool's VM.start {start_s * 1000:.0f} ms "
              f"= {peer:.2f} s): ratio {first / peer:.3f}")
        ok(proxy.pool.disable_ha(s))
    finally:
        for d in hosts:
            d.stop()
            if not os.environ.get("XAPID_KEEP_STATE"):
                shutil.rmtree(d.state_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
