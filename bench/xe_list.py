#!/usr/bin/env python3
"""xe's cost (issue 16), against peers measured in the same run:

1. `xe vm-list` with N VMs (default 1,000, made through VM.create on a sim
   daemon), wall time of the whole process, against the same listing
   through Python's xmlrpc.client (VM.get_all_records, the non-templates'
   uuid, name-label and power-state formatted as xe does), started as a
   process too. Printed: medians and the ratio.
2. xe's start-up: an empty command (`xe help --minimal`, no login, one
   round trip on the unix socket) against a fork+exec of /bin/true.

Usage: bench/xe_list.py [--vms N] [--runs R]   (after ninja -C build)
"""
import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import xmlrpc.client

from bench_vm import VM_RECORD
from sim_xapid import start_sim_xapid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
XE = os.path.join(ROOT, "build", "xe")

PEER = r'''
import sys, xmlrpc.client
api = xmlrpc.client.ServerProxy(sys.argv[1])
s = api.session.login_with_password("root", "bench")["Value"]
recs = api.VM.get_all_records(s)["Value"]
out = []
for r in recs.values():
    if r["is_a_template"]:
        continue
    out.append("uuid ( RO)           : %s\n     name-label ( RW): %s\n    power-state ( RO): %s\n\n"
               % (r["uuid"], r["name_label"], r["power_state"].lower()))
sys.stdout.write("\n".join(out))
api.session.logout(s)
'''

RECORD = dict(VM_RECORD, other_config={})


def timed(cmd, env=None):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vms", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    state = tempfile.mkdtemp(prefix="xapid-bench-xe-")
    sock = os.path.join(state, "xapi.sock")
    proc, port = start_sim_xapid(state, ["--unix", sock])
    try:
        url = f"http://127.0.0.1:{port}/"
        api = xmlrpc.client.ServerProxy(url)
        session = api.session.login_with_password("root", "bench")["Value"]

        def creator(n):
            proxy = xmlrpc.client.ServerProxy(url)
            for _ in range(n):
                assert proxy.VM.create(session, RECORD)["Status"] == "Success"
        workers = [threading.Thread(target=creator, args=(args.vms // 4,)) for _ in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        env = dict(os.environ, XAPID_SOCKET=sock)
        # same output, or the comparison means nothing
        a = subprocess.run([XE, "vm-list"], env=env, capture_output=True, text=True).stdout
        b = subprocess.run(["python3", "-c", PEER, url], capture_output=True, text=True).stdout
        assert a.count("uuid ( RO)") == b.count("uuid ( RO)") >= args.vms, (a[:200], b[:200])
        xe_list, peer_list, xe_empty, true_exec = [], [], [], []
        for _ in range(args.runs):  # alternating, so that load affects both alike
            xe_list.append(timed([XE, "vm-list"], env))
            peer_list.append(timed(["python3", "-c", PEER, url]))
            xe_empty.append(timed([XE, "help", "--minimal"], env))
            true_exec.append(timed(["/bin/true"]))
        m = statistics.median
        print(f"xe vm-list, {args.vms} VMs:            {m(xe_list) * 1e3:7.1f} ms (median of {args.runs})")
        print(f"python xmlrpc.client listing:      {m(peer_list) * 1e3:7.1f} ms")
        print(f"ratio xe / xmlrpc.client:          {m(xe_list) / m(peer_list):7.2f}")
        print(f"xe empty command (help --minimal): {m(xe_empty) * 1e3:7.2f} ms")
        print(f"fork+exec of /bin/true:            {m(true_exec) * 1e3:7.2f} ms")
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
