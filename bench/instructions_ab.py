#!/usr/bin/env python3
"""Instructions per call, xapid against a peer build, both under
valgrind's callgrind in the same run: a figure the rest of a shared
machine's load cannot move (rates and CPU times can; this VM has no
hardware counters). It counts xapid's user-space instructions only:
syscalls are compared by bench/limits_ab.py's CPU times and by
`strace -c` (docs/bench.md).

For each call (session.get_this_host, VM.get_record, VM.get_all_records of
--vms VMs), the daemon answers --warmup calls over one keep-alive
connection, its counters are zeroed (callgrind_control -z), it answers
--calls more, and the counters are dumped: instructions / calls.

Usage: bench/instructions_ab.py --peer PEER_BUILD_DIR [--calls N] [--vms N]
(PEER_BUILD_DIR holds a build of an older commit, e.g. of
`git archive 8075332`; needs Debian's valgrind.)"""
import argparse
import glob
import http.client
import os
import subprocess
import sys
import tempfile
import xmlrpc.client

import run
from limits_ab import RECORD


def instructions(dump):
    with open(dump) as f:
        for line in f:
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise SystemExit(f"{dump}: no summary line")


class Daemon:
    def __init__(self, xapid, out, extra):
        self.state = tempfile.mkdtemp(prefix="xapid-cg-")
        pw = os.path.join(self.state, "pw")
        with open(pw, "w") as f:
            f.write("benchpw")
        self.port = run.free_port()
        self.out = out
        self.proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", xapid,
             "--state-dir", self.state, "--listen", f"127.0.0.1:{self.port}",
             "--root-password-file", pw, "--hypervisor", "sim"] + extra,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        run.wait_ready(self.proc)
        self.api = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{self.port}/")
        self.session = self.api.session.login_with_password("root", "benchpw")["Value"]
        self.dumps = 0

    def per_call(self, body, warmup, calls):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)

        size = 0

        def send(n):
            nonlocal size
            for _ in range(n):
                conn.request("POST", "/", body, {"Content-Type": "text/xml"})
                reply = conn.getresponse().read()
                if b"Success" not in reply:
                    raise SystemExit(reply[:300])
                size = len(reply)
        send(warmup)
        subprocess.run(["callgrind_control", "-z", str(self.proc.pid)], check=True,
                       capture_output=True)
        send(calls)
        subprocess.run(["callgrind_control", "-d", str(self.proc.pid)], check=True,
                       capture_output=True)
        conn.close()
        self.dumps += 1
        return instructions(f"{self.out}.{self.dumps}") / calls, size

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        subprocess.run(["rm", "-rf", self.state])
        for f in glob.glob(self.out + "*"):
            os.unlink(f)


def measure(xapid, tag, calls, vms, extra):
    d = Daemon(xapid, os.path.join(tempfile.gettempdir(), f"xapid-cg-{tag}-{os.getpid()}.out"),
               extra)
    try:
        out = {}
        out["get_this_host"] = d.per_call(
            run.call_body("session.get_this_host", d.session, d.session), 100, calls)
        template = d.api.VM.get_all(d.session)["Value"][0]
        out["get_record"] = d.per_call(run.call_body("VM.get_record", d.session, template),
                                       100, calls)
        for _ in range(vms):
            d.api.VM.create(d.session, RECORD)
        out["get_all_records"] = d.per_call(run.call_body("VM.get_all_records", d.session),
                                            2, max(calls // 200, 3))
        return out
    finally:
        d.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer", required=True, help="build directory of the peer")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--vms", type=int, default=1000)
    args = ap.parse_args()
    # The peer predates metrics; their cost is bench/metrics_cost.py's figure.
    mine = measure(os.path.join(run.BUILD, "xapid"), "xapid", args.calls, args.vms,
                   ["--no-metrics"])
    peer = measure(os.path.join(os.path.abspath(args.peer), "xapid"), "peer", args.calls,
                   args.vms, [])
    for key in mine:
        name = key if key != "get_all_records" else f"get_all_records ({args.vms} VMs)"
        (mi, mb), (pi, pb) = mine[key], peer[key]
        print(f"{name}: xapid {mi:,.0f} instructions per call, peer {pi:,.0f}; peer/xapid "
              f"{pi / mi:.3f} (goal >= 0.95); replies {mb:,} and {pb:,} bytes, per byte "
              f"{(pi / pb) / (mi / mb):.3f}")


if __name__ == "__main__":
    sys.exit(main())
