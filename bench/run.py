#!/usr/bin/env python3
"""Foundation benchmarks, printed as ratios against peers measured in the
same run (see docs/bench.md):

1. RPC rate of session.get_this_host and VM.get_record over keep-alive with
   2 client threads, against bare_server (libmicrohttpd answering a fixed
   200-byte body in the same threading mode): the loopback bound.
2. VM.get_all_records latency with 10,000 VMs created through VM.create.
3. Peak RSS (VmHWM) of xapid holding those VMs.

Usage: bench/run.py [--seconds S] [--vms N]   (after ninja -C build)
"""
import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import xmlrpc.client

import events
from bench_vm import VM_RECORD

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(proc):
    for line in proc.stdout:
        if b"ready" in line:
            return
    raise SystemExit("process exited before it was ready")


def call_body(method, *params):
    return xmlrpc.client.dumps(tuple(params), method).encode()


def rate(port, body, threads, seconds):
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(body)
    out = subprocess.run([os.path.join(BUILD, "http_load"), "127.0.0.1", str(port), "/",
                          f.name, str(threads), str(seconds)],
                         check=True, capture_output=True, text=True).stdout
    os.unlink(f.name)
    return float(out)


def raw_post(port, body):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    start = time.perf_counter()
    conn.request("POST", "/", body, {"Content-Type": "text/xml"})
    data = conn.getresponse().read()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed, data


def current_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--vms", type=int, default=10000)
    ap.add_argument("--skip-events", action="store_true")
    args = ap.parse_args()

    def bare_rate_for(body_bytes):
        port = free_port()
        bare = subprocess.Popen([os.path.join(BUILD, "bare_server"), str(port),
                                 str(body_bytes)], stdout=subprocess.PIPE)
        wait_ready(bare)
        measured = rate(port, b"x" * 200, 2, args.seconds)
        bare.terminate()
        bare.wait()
        return measured

    bare_rate = bare_rate_for(200)

    state = tempfile.mkdtemp(prefix="xapid-bench-")
    pw = os.path.join(state, "pw")
    with open(pw, "w") as f:
        f.write("benchpw")
    port = free_port()
    xapid = subprocess.Popen([os.path.join(BUILD, "xapid"), "--state-dir", state,
                              "--listen", f"127.0.0.1:{port}", "--root-password-file", pw],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    wait_ready(xapid)
    url = f"http://127.0.0.1:{port}/"
    api = xmlrpc.client.ServerProxy(url)
    session = api.session.login_with_password("root", "benchpw")["Value"]
    event_lines = []
    if not args.skip_events:
        events.run(url, session, event_lines.append, BUILD)
    dom0 = api.VM.get_all(session)["Value"][0]
    this_host_rate = rate(port, call_body("session.get_this_host", session, session), 2,
                          args.seconds)
    get_record_rate = rate(port, call_body("VM.get_record", session, dom0), 2, args.seconds)
    record_reply_bytes = len(raw_post(port, call_body("VM.get_record", session, dom0))[1])

    record = VM_RECORD
    create_started = time.perf_counter()
    per_thread = args.vms // 4

    def creator():
        proxy = xmlrpc.client.ServerProxy(url)
        for _ in range(per_thread):
            r = proxy.VM.create(session, record)
            if r["Status"] != "Success":
                raise SystemExit(f"VM.create failed: {r}")

    workers = [threading.Thread(target=creator) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    create_seconds = time.perf_counter() - create_started
    created = per_thread * 4

    # curl reads the reply as fast as loopback allows, so the figure is the
    # server's; median of 7 on fresh connections, XML-RPC and JSON-RPC.
    def curl_times(path, body):
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(body)
        runs = []
        for _ in range(7):
            out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w",
                                  "%{time_starttransfer} %{time_total} %{size_download}",
                                  "--data-binary", f"@{f.name}", url.rstrip("/") + path],
                                 check=True, capture_output=True, text=True).stdout.split()
            runs.append((float(out[1]), float(out[0]), int(out[2])))
        os.unlink(f.name)
        runs.sort()
        return runs[3]

    rss_holding = current_rss_mb(xapid.pid)
    xml_total, xml_first, xml_size = curl_times("/", call_body("VM.get_all_records", session))
    json_total, json_first, json_size = curl_times("/jsonrpc", json.dumps(
        {"jsonrpc": "2.0", "method": "VM.get_all_records", "params": [session],
         "id": 1}).encode())
    rss = peak_rss_mb(xapid.pid)
    xapid.terminate()
    xapid.wait()
    bare_record_size_rate = bare_rate_for(record_reply_bytes)

    print(f"loopback bound (bare libmicrohttpd, 200-byte body, 2 threads): {bare_rate:.0f} req/s")
    print(f"session.get_this_host: {this_host_rate:.0f} req/s  ratio {this_host_rate / bare_rate:.2f} (goal >= 0.5)")
    print(f"VM.get_record:         {get_record_rate:.0f} req/s  ratio {get_record_rate / bare_rate:.2f} (goal >= 0.5)")
    print(f"  (bare server with the same {record_reply_bytes}-byte reply: {bare_record_size_rate:.0f} req/s, "
          f"ratio {get_record_rate / bare_record_size_rate:.2f})")
    print(f"VM.create x{created} (4 Python clients): {create_seconds:.1f} s, {created / create_seconds:.0f}/s")
    print(f"VM.get_all_records with {created} VMs, XML-RPC: {xml_total * 1000:.0f} ms "
          f"(first byte {xml_first * 1000:.0f} ms, {xml_size / 1e6:.1f} MB) (goal < 100 ms)")
    print(f"VM.get_all_records with {created} VMs, JSON-RPC: {json_total * 1000:.0f} ms "
          f"(first byte {json_first * 1000:.0f} ms, {json_size / 1e6:.1f} MB)")
    for line in event_lines:
        print(line)
    print(f"xapid RSS holding {created} VMs: {rss_holding:.1f} MB; peak RSS over the run "
          f"(replies included): {rss:.1f} MB (goal < 50 MB)")


if __name__ == "__main__":
    sys.exit(main())
