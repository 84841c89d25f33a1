#!/usr/bin/env python3
"""Read latency while storage work runs (see docs/bench.md): does blocking
work (qemu-img, statvfs) happen under the database's write lock?

One client times VM.get_record over a keep-alive connection, back to back
(or paced, --interval-ms), first alone (idle), then while a second client loops VDI.resize (one VDI grown by
1 MiB a turn) and VDI.create + VDI.snapshot + two VDI.destroy (each turn a
fresh VDI, so no chain grows). Every read waits for the write lock to be
free, so a write transaction that runs qemu-img shows up in the reader's
p99. Printed: p50 and p99 idle and loaded, and loaded p99 / idle p99, for
this build and for a peer binary (--peer, e.g. a build of an earlier
commit) measured in the same run, turns alternating; and a control, this
build's reader while the same qemu-img commands run straight from the
bench (no xapid work): on 2 shared cores the CPU they take is felt by the
reader whatever the locking.

Usage: bench/write_lock.py [--peer PATH] [--seconds S] [--rounds N] [--interval-ms MS]
"""
import argparse
import http.client
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import xmlrpc.client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
XAPID = os.path.join(ROOT, "build", "xapid")
MiB = 1 << 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_xapid(binary, state):
    os.makedirs(state)
    pw = os.path.join(state, "pw")
    with open(pw, "w") as f:
        f.write("bench\n")
    port = free_port()
    proc = subprocess.Popen([binary, "--state-dir", state, "--listen", f"127.0.0.1:{port}",
                             "--root-password-file", pw, "--hypervisor", "sim"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    for line in proc.stdout:
        if b"ready" in line:
            return proc, port
    raise SystemExit(f"{binary} exited before it was ready")


def ok(reply):
    assert reply["Status"] == "Success", reply
    return reply["Value"]


def new_vdi(api, s, sr, size):
    return ok(api.VDI.create(s, {"name_label": "bench", "SR": sr, "virtual_size": str(size),
                                 "type": "user", "sharable": False, "read_only": False,
                                 "other_config": {}}))


def read_latencies(port, body, seconds, interval):
    """VM.get_record back to back (interval 0), or one every interval
    seconds, each timed from when it was due (a read held up delays those
    queued behind it: they count too; on a loaded machine the client's own
    wake-ups count as well)."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    out = []
    start = time.perf_counter()
    due = start
    while due < start + seconds:
        now = time.perf_counter()
        if interval and now < due:
            time.sleep(due - now)
        if not interval:
            due = time.perf_counter()
        conn.request("POST", "/", body, {"Content-Type": "text/xml"})
        data = conn.getresponse().read()
        out.append(time.perf_counter() - due)
        assert b"Success" in data
        due += interval
    conn.close()
    return out


def writer(port, s, sr, stop, turns):
    api = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/")
    grown = new_vdi(api, s, sr, 64 * MiB)
    size = 64 * MiB
    while not stop.is_set():
        size += MiB
        ok(api.VDI.resize(s, grown, str(size)))
        vdi = new_vdi(api, s, sr, 64 * MiB)
        snap = ok(api.VDI.snapshot(s, vdi, {}))
        ok(api.VDI.destroy(s, snap))
        ok(api.VDI.destroy(s, vdi))
        turns[0] += 1


def qemu_img_only(work, stop, turns):
    """The qemu-img work of one writer turn, run straight (no xapid): what
    the storage loop costs the reader in CPU alone, on a shared machine."""
    grown = os.path.join(work, "grown.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", grown, str(64 * MiB)], check=True)
    size = 64 * MiB
    run = lambda *a: subprocess.run(["qemu-img", *a], check=True, stdout=subprocess.DEVNULL)
    while not stop.is_set():
        size += MiB
        run("resize", "-q", "-f", "qcow2", grown, str(size))
        run("info", "-U", "-f", "qcow2", grown)
        base = os.path.join(work, "base.qcow2")
        run("create", "-q", "-f", "qcow2", base, str(64 * MiB))
        for leaf in ("a", "b"):
            path = os.path.join(work, leaf + ".qcow2")
            run("create", "-q", "-f", "qcow2", "-u", "-b", "base.qcow2", "-F", "qcow2", path,
                str(64 * MiB))
            run("info", "-U", "-f", "qcow2", path)
            os.unlink(path)
        os.unlink(base)
        turns[0] += 1


def p(values, q):
    """The q-th per-mille latency in ms."""
    return statistics.quantiles(values, n=1000)[q - 1] * 1000


def measure(binary, seconds, control, interval):
    work = tempfile.mkdtemp(prefix="xapid-bench-lock-")
    proc = None
    try:
        proc, port = start_xapid(binary, os.path.join(work, "state"))
        api = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/")
        s = ok(api.session.login_with_password("root", "bench"))
        pool = ok(api.pool.get_all(s))[0]
        sr = ok(api.pool.get_default_SR(s, pool))
        vm = ok(api.VM.create(s, {"name_label": "reader", "memory_static_max": str(256 * MiB),
                                  "VCPUs_max": "1", "VCPUs_at_startup": "1"}))
        body = xmlrpc.client.dumps((s, vm), "VM.get_record").encode()
        read_latencies(port, body, 0.5, interval)  # warm up
        idle = read_latencies(port, body, seconds, interval)
        stop, turns = threading.Event(), [0]
        t = (threading.Thread(target=qemu_img_only, args=(work, stop, turns)) if control else
             threading.Thread(target=writer, args=(port, s, sr, stop, turns)))
        t.start()
        loaded = read_latencies(port, body, seconds, interval)
        stop.set()
        t.join()
        return idle, loaded, turns[0]
    finally:
        if proc:
            proc.terminate()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer", help="another xapid binary measured in the same run")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--interval-ms", type=float, default=0)
    args = ap.parse_args()
    binaries = [("this build", XAPID, False)] + \
        ([("peer", args.peer, False)] if args.peer else []) + [("qemu-img only", XAPID, True)]
    results = {name: ([], [], 0) for name, _, _ in binaries}
    for _ in range(args.rounds):
        for name, binary, control in binaries:
            idle, loaded, turns = measure(binary, args.seconds, control,
                                          args.interval_ms / 1000)
            i, l, n = results[name]
            results[name] = (i + idle, l + loaded, n + turns)
    print("VM.get_record latency in ms, idle and under the storage loop")
    print(f"{'':14} {'idle p50':>9} {'idle p99':>9} {'load p50':>9} {'load p99':>9} "
          f"{'load p99.9':>10} {'load max':>9} {'p99 ratio':>9} {'turns/s':>8}")
    for name, (idle, loaded, turns) in results.items():
        print(f"{name:14} {p(idle, 500):9.2f} {p(idle, 990):9.2f} {p(loaded, 500):9.2f} "
              f"{p(loaded, 990):9.2f} {p(loaded, 999):10.2f} {max(loaded) * 1000:9.2f} "
              f"{p(loaded, 990) / p(idle, 990):9.2f} "
              f"{turns / (args.rounds * args.seconds):8.1f}")


if __name__ == "__main__":
    main()
