#!/usr/bin/env python3
"""The cost of the hostile-peer limits (body cap, header deadline, caps on
connections, XML element and JSON value counts), as ratios against a peer
build without them, measured in the same run: RPC rates
(session.get_this_host, VM.get_record) with bench/http_load, and
VM.get_all_records of N VMs read by curl. The two daemons are measured in
turn, ROUNDS times each (A B A B ...), and the best of each is compared.

Usage: bench/limits_ab.py --peer PEER_BUILD_DIR [--seconds S] [--vms N] [--rounds R]
(PEER_BUILD_DIR holds a build of the parent commit, e.g. of
`git archive 8075332`; docs/bench.md has the figures.)"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import xmlrpc.client

import run

RECORD = {"name_label": "bench", "name_description": "", "user_version": "1",
          "is_a_template": False, "memory_static_max": "268435456",
          "memory_dynamic_max": "268435456", "memory_dynamic_min": "268435456",
          "memory_static_min": "16777216", "VCPUs_max": "1", "VCPUs_at_startup": "1",
          "actions_after_shutdown": "destroy", "actions_after_reboot": "restart",
          "actions_after_crash": "restart", "PV_bootloader": "", "PV_kernel": "",
          "PV_ramdisk": "", "PV_args": "", "PV_bootloader_args": "",
          "PV_legacy_args": "", "HVM_boot_policy": "BIOS order",
          "HVM_boot_params": {"order": "dc"}, "platform": {"acpi": "1"},
          "PCI_bus": "", "other_config": {"bench": "true"}, "recommendations": "",
          "VCPUs_params": {}, "affinity": "OpaqueRef:NULL"}


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
    out = {"get_this_host": run.rate(port, run.call_body("session.get_this_host", session,
                                                         session), 2, seconds),
           "get_record": run.rate(port, run.call_body("VM.get_record", session, dom0), 2,
                                  seconds)}

    def creator():
        proxy = xmlrpc.client.ServerProxy(url)
        for _ in range(vms // 4):
            proxy.VM.create(session, RECORD)

    workers = [threading.Thread(target=creator) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out["all_records_xml"] = curl_median(url, run.call_body("VM.get_all_records", session))
    out["all_records_json"] = curl_median(url + "jsonrpc", json.dumps(
        {"jsonrpc": "2.0", "method": "VM.get_all_records", "params": [session],
         "id": 1}).encode())
    proc.terminate()
    proc.wait()
    subprocess.run(["rm", "-rf", state])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer", required=True, help="build directory of the peer")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--vms", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    builds = {"xapid": os.path.join(run.BUILD, "xapid"),
              "peer": os.path.join(os.path.abspath(args.peer), "xapid")}
    results = {name: [] for name in builds}
    for _ in range(args.rounds):
        for name, binary in builds.items():
            results[name].append(measure(binary, args.seconds, args.vms))
    best = {name: {"get_this_host": max(r["get_this_host"] for r in rs),
                   "get_record": max(r["get_record"] for r in rs),
                   "all_records_xml": min(r["all_records_xml"] for r in rs),
                   "all_records_json": min(r["all_records_json"] for r in rs)}
            for name, rs in results.items()}
    x, p = best["xapid"], best["peer"]
    for key in ("get_this_host", "get_record"):
        print(f"{key}: {x[key]:.0f} req/s, peer {p[key]:.0f} req/s, ratio {x[key] / p[key]:.3f} "
              f"(goal >= 0.95)")
    for key in ("all_records_xml", "all_records_json"):
        print(f"VM.get_all_records {args.vms} VMs {key[12:]}: {x[key] * 1000:.0f} ms, peer "
              f"{p[key] * 1000:.0f} ms, ratio {p[key] / x[key]:.3f} of the peer's speed "
              f"(goal >= 0.95)")
    print("all rounds:", json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())
