#!/usr/bin/env python3
"""The cost of metrics, against its peer measured in the same run: the
same xapid with the sampler off (--no-metrics), each holding N running sim
VMs (2 vCPUs, a disk and a NIC each: 9 sources per VM, sampled every 5 s).

1. xapid's CPU use over S seconds with no client, as a share of one core,
   on and off; the difference is what sampling costs.
2. VM.get_record latency (median and p99 of sequential calls on one
   keep-alive connection, B blocks of 5 s each) on and off: ratio of the
   p99s.
3. One /rrd_updates (host and every VM, 5 s rows of the last 10 minutes,
   JSON) against one VM.get_all_records of the same VMs: ratio.
4. The bytes a VM's archive takes (from /proc/PID/status: VmRSS on minus
   off, per VM).

Both daemons run at once; the latencies are measured in alternating 5 s
blocks, so that the shared machine's other load falls on both.

Usage: bench/metrics_cost.py [--vms N] [--seconds S] [--blocks B]   (after ninja -C build)
"""
import argparse
import base64
import http.client
import os
import shutil
import statistics
import tempfile
import time
import xmlrpc.client

from sim_xapid import PASSWORD as PW, start_sim_xapid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MiB = 1 << 20


def start(extra):
    state = tempfile.mkdtemp(prefix="xapid-metrics-bench-")
    proc, port = start_sim_xapid(state, extra)
    return proc, port, state


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


def get_record_latencies(port, session, vms, seconds):
    """Latencies of sequential VM.get_record calls over `seconds`."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    times = []
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline:
        body = xmlrpc.client.dumps((session, vms[i % len(vms)]), "VM.get_record").encode()
        i += 1
        t = time.perf_counter()
        conn.request("POST", "/", body, {"Content-Type": "text/xml"})
        conn.getresponse().read()
        times.append(time.perf_counter() - t)
    conn.close()
    return times


def summary(times):
    times = sorted(times)
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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--vms", type=int, default=100)
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument("--blocks", type=int, default=6, help="alternating get_record blocks of 5 s")
    args = p.parse_args()
    # Both daemons at once, measured over the same windows (alternating
    # blocks for the latencies): the shared machine's other load hits both.
    daemons = {"on": start([]), "off": start(["--no-metrics"])}
    try:
        setup = {k: populate(port, args.vms) for k, (_, port, _) in daemons.items()}
        time.sleep(11)  # two sampling rounds: every archive exists
        before = {k: cpu_seconds(proc.pid) for k, (proc, _, _) in daemons.items()}
        time.sleep(args.seconds)
        cpu = {k: (cpu_seconds(proc.pid) - before[k]) / args.seconds
               for k, (proc, _, _) in daemons.items()}
        lat = {"on": [], "off": []}
        for _ in range(args.blocks):
            for k in ("on", "off"):
                s, vms = setup[k]
                lat[k] += get_record_latencies(daemons[k][1], s, vms, 5)
        rss = {k: rss_kib(proc.pid) for k, (proc, _, _) in daemons.items()}
        port = daemons["on"][1]
        rrd = [timed_get(port, "/rrd_updates?start=-600&host=true&json=true&cf=AVERAGE")
               for _ in range(5)]
        body = xmlrpc.client.dumps((setup["on"][0],), "VM.get_all_records").encode()
        records = [timed_get(port, "/", body) for _ in range(5)]
    finally:
        for proc, _, state in daemons.values():
            proc.terminate()
            proc.wait()
            shutil.rmtree(state, ignore_errors=True)
    on_med, on_p99 = summary(lat["on"])
    off_med, off_p99 = summary(lat["off"])
    rrd_t = statistics.median(t for t, _ in rrd)
    rec_t = statistics.median(t for t, _ in records)
    print(f"metrics with {args.vms} running sim VMs (9 sources each), {args.seconds} s idle:")
    print(f"  xapid CPU: sampling {cpu['on'] * 100:.3f}% of a core, off {cpu['off'] * 100:.3f}%; "
          f"cost {(cpu['on'] - cpu['off']) * 100:.3f}% of a core (goal < 1%)")
    print(f"  VM.get_record ({len(lat['on'])} / {len(lat['off'])} calls): on median "
          f"{on_med * 1e6:.0f} us p99 {on_p99 * 1e6:.0f} us, off median {off_med * 1e6:.0f} us "
          f"p99 {off_p99 * 1e6:.0f} us; p99 ratio {on_p99 / off_p99:.3f} (goal <= 1.10)")
    print(f"  /rrd_updates (host + {args.vms} VMs, 5 s rows of 10 min, {rrd[0][1]} bytes) "
          f"{rrd_t * 1e3:.2f} ms vs VM.get_all_records {rec_t * 1e3:.2f} ms; "
          f"ratio {rrd_t / rec_t:.3f}")
    print(f"  RSS: on {rss['on']} KiB, off {rss['off']} KiB: "
          f"{(rss['on'] - rss['off']) / args.vms:.1f} KiB per VM")


if __name__ == "__main__":
    main()
