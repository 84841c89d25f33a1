#!/usr/bin/env python3
"""The cost of metrics, against its peer measured in the same run: the
same xapid with the sampler off (--no-metrics), each holding N running sim
VMs (2 vCPUs, a disk and a NIC each: 9 sources per VM, sampled every 5 s).

1. xapid's CPU use over S seconds with no client, as a share of one core,
   on and off; the difference is what sampling costs.
2. VM.get_record latency (median and p99 of C sequential calls on one
   keep-alive connection) on and off: ratio of the p99s.
3. One /rrd_updates (host and every VM, 5 s rows of the last 10 minutes,
   JSON) against one VM.get_all_records of the same VMs: ratio.
4. The bytes a VM's archive takes (from /proc/PID/status: VmRSS on minus
   off, per VM).

Usage: bench/metrics_cost.py [--vms N] [--seconds S] [--calls C]   (after ninja -C build)
"""
import argparse
import base64
import http.client
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import xmlrpc.client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
XAPID = os.path.join(ROOT, "build", "xapid")
PW = "bench"
MiB = 1 << 20


def start(extra):
    state = tempfile.mkdtemp(prefix="xapid-metrics-bench-")
    with open(os.path.join(state, "pw"), "w") as f:
        f.write(PW + "\n")
    proc = subprocess.Popen([XAPID, "--state-dir", state, "--listen", "127.0.0.1:0",
                             "--root-password-file", os.path.join(state, "pw"),
                             "--hypervisor", "sim"] + extra,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    port = None
    for line in proc.stdout:
        if b"listening on http://" in line:
            port = int(line.rsplit(b":", 1)[1])
        if b"ready" in line:
            return proc, port, state
    raise SystemExit("xapid did not start")


def ok(reply):
    assert reply["Status"] == "Success", reply
    return reply["Value"]


def populate(port, n):
    api = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/")
    s = ok(api.session.login_with_password("root", PW))
    sr = next(ref for ref, r in ok(api.SR.get_all_records(s)).items() if r["content_type"] != "iso")
    net = ok(api.network.create(s, {"name_label": "bench", "other_config": {}}))
    vms = []
    for i in range(n):
        vm = ok(api.VM.create(s, {
            "name_label": f"m{i}", "memory_static_max": str(64 * MiB), "VCPUs_max": "2",
            "VCPUs_at_startup": "2", "actions_after_shutdown": "destroy",
            "actions_after_reboot": "restart", "actions_after_crash": "destroy"}))
        vdi = ok(api.VDI.create(s, {"SR": sr, "virtual_size": str(MiB), "type": "user",
                                    "sharable": False, "read_only": False, "other_config": {},
                                    "name_label": f"d{i}"}))
        ok(api.VBD.create(s, {"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": True,
                              "mode": "RW", "type": "Disk", "empty": False, "other_config": {},
                              "qos_algorithm_type": "", "qos_algorithm_params": {}}))
        ok(api.VIF.create(s, {"VM": vm, "network": net, "device": "0", "MAC": "", "MTU": "1500",
                              "other_config": {}, "qos_algorithm_type": "",
                              "qos_algorithm_params": {}}))
        ok(api.VM.start(s, vm, False, False))
        vms.append(vm)
    return s, vms


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def get_record_latencies(port, session, vms, calls):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    times = []
    for i in range(calls):
        body = xmlrpc.client.dumps((session, vms[i % len(vms)]), "VM.get_record").encode()
        t = time.perf_counter()
        conn.request("POST", "/", body, {"Content-Type": "text/xml"})
        conn.getresponse().read()
        times.append(time.perf_counter() - t)
    conn.close()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99)]


def timed_get(port, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    auth = base64.b64encode(f"root:{PW}".encode()).decode()
    t = time.perf_counter()
    if body is None:
        conn.request("GET", path, headers={"Authorization": "Basic " + auth})
    else:
        conn.request("POST", path, body, {"Content-Type": "text/xml"})
    data = conn.getresponse().read()
    elapsed = time.perf_counter() - t
    conn.close()
    return elapsed, len(data)


def measure(extra, args):
    proc, port, state = start(extra)
    try:
        session, vms = populate(port, args.vms)
        time.sleep(11)  # two sampling rounds: every archive exists
        before = cpu_seconds(proc.pid)
        time.sleep(args.seconds)
        cpu = (cpu_seconds(proc.pid) - before) / args.seconds
        median, p99 = get_record_latencies(port, session, vms, args.calls)
        result = {"cpu": cpu, "median": median, "p99": p99, "rss": rss_kib(proc.pid)}
        if not extra:
            rrd = [timed_get(port, "/rrd_updates?start=-600&host=true&json=true&cf=AVERAGE")
                   for _ in range(5)]
            body = xmlrpc.client.dumps((session,), "VM.get_all_records").encode()
            records = [timed_get(port, "/", body) for _ in range(5)]
            result["rrd_updates"] = statistics.median(t for t, _ in rrd)
            result["rrd_bytes"] = rrd[0][1]
            result["get_all_records"] = statistics.median(t for t, _ in records)
        return result
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(state, ignore_errors=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--vms", type=int, default=100)
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument("--calls", type=int, default=3000)
    args = p.parse_args()
    on = measure([], args)
    off = measure(["--no-metrics"], args)
    print(f"metrics with {args.vms} running sim VMs, {args.seconds} s idle:")
    print(f"  xapid CPU: sampling {on['cpu'] * 100:.3f}% of a core, off {off['cpu'] * 100:.3f}%; "
          f"cost {(on['cpu'] - off['cpu']) * 100:.3f}% of a core (goal < 1%)")
    print(f"  VM.get_record: on median {on['median'] * 1e6:.0f} us p99 {on['p99'] * 1e6:.0f} us, "
          f"off median {off['median'] * 1e6:.0f} us p99 {off['p99'] * 1e6:.0f} us; "
          f"p99 ratio {on['p99'] / off['p99']:.3f} (goal <= 1.10)")
    print(f"  /rrd_updates (host + {args.vms} VMs, 120 rows, {on['rrd_bytes']} bytes) "
          f"{on['rrd_updates'] * 1e3:.2f} ms vs VM.get_all_records {on['get_all_records'] * 1e3:.2f} ms;"
          f" ratio {on['rrd_updates'] / on['get_all_records']:.3f}")
    print(f"  RSS: on {on['rss']} KiB, off {off['rss']} KiB: "
          f"{(on['rss'] - off['rss']) / args.vms:.1f} KiB per VM")


if __name__ == "__main__":
    main()
