#!/usr/bin/env python3
"""The cost of the hostile-peer limits (body cap, header deadline, caps on
connections, XML element and JSON value counts), as ratios against a peer
build without them, measured in the same run: RPC rates
(session.get_this_host, VM.get_record) with bench/http_load, and
VM.get_all_records of N VMs read by curl, in wall time and in xapid's CPU
time per call (which the other load of a shared machine hardly moves, where
it can halve a rate). The two daemons are measured in
turn, ROUNDS times each (A B, B A, ...); the figure is the median of the
rounds' ratios.

Usage: bench/limits_ab.py --peer PEER_BUILD_DIR [--seconds S] [--vms N] [--rounds R]
(PEER_BUILD_DIR holds a build of the parent commit, e.g. of
`git archive 8075332`; docs/bench.md has the figures.)"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import xmlrpc.client

import run
from bench_vm import VM_RECORD

def start(xapid):
    state = tempfile.mkdtemp(prefix="xapid-ab-")
    pw = os.path.join(state, "pw")
    with open(pw, "w") as f:
        f.write("benchpw")
    port = run.free_port()
    proc = subprocess.Popen([xapid, "--state-dir", state, "--listen", f"127.0.0.1:{port}",
                             "--root-password-file", pw, "--hypervisor", "sim"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    run.wait_ready(proc)
    return proc, port, state


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_request(pid, port, body, seconds):
    """(rate, xapid's CPU µs per request): the CPU figure hardly moves with
    the other load of a shared machine, the rate does."""
    before = cpu_seconds(pid)
    measured = run.rate(port, body, 2, seconds)
    return measured, (cpu_seconds(pid) - before) / (measured * seconds) * 1e6


def curl_median(url, body, runs=7):
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(body)
    times = []
    for _ in range(runs):
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{time_total}",
                              "--data-binary", f"@{f.name}", url],
                             check=True, capture_output=True, text=True).stdout
        times.append(float(out))
    os.unlink(f.name)
    return sorted(times)[runs // 2]


def measure(xapid, seconds, vms):
    proc, port, state = start(xapid)
    url = f"http://127.0.0.1:{port}/"
    api = xmlrpc.client.ServerProxy(url)
    session = api.session.login_with_password("root", "benchpw")["Value"]
    dom0 = api.VM.get_all(session)["Value"][0]
    out = {}
    out["get_this_host"], out["get_this_host_cpu_us"] = cpu_per_request(
        proc.pid, port, run.call_body("session.get_this_host", session, session), seconds)
    out["get_record"], out["get_record_cpu_us"] = cpu_per_request(
        proc.pid, port, run.call_body("VM.get_record", session, dom0), seconds)

    def creator():
        proxy = xmlrpc.client.ServerProxy(url)
        for _ in range(vms // 4):
            proxy.VM.create(session, VM_RECORD)

    workers = [threading.Thread(target=creator) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    before = cpu_seconds(proc.pid)
    out["all_records_xml"] = curl_median(url, run.call_body("VM.get_all_records", session))
    out["all_records_xml_cpu_ms"] = (cpu_seconds(proc.pid) - before) / 7 * 1e3
    before = cpu_seconds(proc.pid)
    out["all_records_json"] = curl_median(url + "jsonrpc", json.dumps(
        {"jsonrpc": "2.0", "method": "VM.get_all_records", "params": [session],
         "id": 1}).encode())
    out["all_records_json_cpu_ms"] = (cpu_seconds(proc.pid) - before) / 7 * 1e3
    proc.terminate()
    proc.wait()
    subprocess.run(["rm", "-rf", state])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer", required=True, help="build directory of the peer")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--vms", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args()
    builds = {"xapid": os.path.join(run.BUILD, "xapid"),
              "peer": os.path.join(os.path.abspath(args.peer), "xapid")}
    results = {name: [] for name in builds}
    order = list(builds)
    for _ in range(args.rounds):  # A B, then B A: drift falls on both
        for name in order:
            results[name].append(measure(builds[name], args.seconds, args.vms))
        order.reverse()
    # Each round's pair was measured side by side: the median of the
    # rounds' ratios is the figure (speed: above 1 is faster than the peer).
    def ratio(key, faster_is_higher):
        rs = sorted((x[key] / p[key]) if faster_is_higher else (p[key] / x[key])
                    for x, p in zip(results["xapid"], results["peer"]) if x[key] and p[key])
        if not rs:  # too short to measure (CPU time comes in clock ticks)
            return float("nan"), []
        return statistics.median(rs), rs

    def median(name, key):
        return statistics.median(r[key] for r in results[name])

    for key in ("get_this_host", "get_record"):
        m, rs = ratio(key, True)
        print(f"{key}: {median('xapid', key):.0f} req/s, peer {median('peer', key):.0f} req/s "
              f"(medians); ratio {m:.3f} (rounds {', '.join(f'{r:.2f}' for r in rs)}) "
              f"(goal >= 0.95)")
    for key in ("get_this_host_cpu_us", "get_record_cpu_us", "all_records_xml_cpu_ms",
                "all_records_json_cpu_ms"):
        m, rs = ratio(key, False)
        unit = key.rsplit("_", 1)[1].replace("us", "µs")
        print(f"xapid CPU per {key[:-7]}: {median('xapid', key):.1f} {unit}, peer "
              f"{median('peer', key):.1f} {unit} (medians); peer/xapid {m:.3f} "
              f"(rounds {', '.join(f'{r:.2f}' for r in rs)}) (goal >= 0.95)")
    for key in ("all_records_xml", "all_records_json"):
        m, rs = ratio(key, False)
        print(f"VM.get_all_records {args.vms} VMs {key[12:]}: {median('xapid', key) * 1000:.0f} "
              f"ms, peer {median('peer', key) * 1000:.0f} ms (medians); speed ratio {m:.3f} "
              f"(rounds {', '.join(f'{r:.2f}' for r in rs)}) (goal >= 0.95)")
    print("all rounds:", json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())
