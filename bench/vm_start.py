#!/usr/bin/env python3
"""VM lifecycle benchmark (issue: real VMs), printed as ratios measured in
the same run:

1. The test guest (scripts/build-test-guest) booted by xapid's qemu driver:
   VM.start until the API's reply, and until the guest's ready line on its
   serial console; VM.hard_shutdown until its reply.
2. The same kernel, initrd and memory launched as a bare qemu-system-x86_64
   (the peer): launch until the same ready line.
   And xapid's own QEMU command line (read back from /proc) launched by
   hand: the same virtual machine (VGA console, pvpanic, CPU model)
   without the toolstack, which tells the toolstack's share apart from
   the virtual hardware's.
3. The same guest as a transient libvirt domain (the other peer,
   bench/libvirt_peer.py): `virsh create` until its reply and until the
   ready line; `virsh destroy` until its reply. libvirt is installed with
   apt-get when missing; when it cannot be installed or started, the bench
   prints "libvirt: skipped (reason)" and goes on.
4. The sim driver: 1,000 VMs started through the API, total and per call.

Usage: bench/vm_start.py [--runs N] [--sim-vms N]   (after ninja -C build)
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xmlrpc.client

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "client"))
from xapid_daemon import REPO, Daemon  # noqa: E402
import libvirt_peer  # noqa: E402  (bench/, this script's directory)

MiB = 1 << 20
GUEST = os.path.join(REPO, "build", "test-guest")
ARGS = "console=ttyS0 quiet panic=-1"


def wait_line(path, count, deadline):
    while time.perf_counter() < deadline:
        if os.path.exists(path):
            with open(path, errors="replace") as f:
                if f.read().count("XAPID-GUEST-READY") >= count:
                    return time.perf_counter()
        time.sleep(0.005)
    raise SystemExit(f"no ready line in {path}")


def kvm_usable():
    """As xapid decides (src/xenops/host_accel.c): /dev/kvm and a CPU with
    VT-x or AMD-V; a nested host's software KVM (kvm-pvm) hangs stock guests."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    with open("/proc/cpuinfo") as f:
        return any(line.startswith("flags") and {"vmx", "svm"} & set(line.split(":", 1)[1].split())
                   for line in f)


def bare_qemu(kernel, initrd):
    d = tempfile.mkdtemp(prefix="bare-qemu-")
    log = os.path.join(d, "console.log")
    accel = "kvm" if kvm_usable() else "tcg"
    started = time.perf_counter()
    # QEMU's defaults: no -machine (the i440fx PC, as xapid's domains and
    # Xen HVM guests use) and no -cpu (qemu64).
    proc = subprocess.Popen(["qemu-system-x86_64", "-accel", accel, "-m", "192",
                             "-nodefaults", "-no-user-config", "-display", "none",
                             "-kernel", kernel, "-initrd", initrd, "-append", ARGS,
                             "-chardev", f"file,id=c,path={log}", "-serial", "chardev:c"])
    ready = wait_line(log, 1, started + 120)
    proc.kill()
    proc.wait()
    return ready - started


def same_model_qemu(argv, domain_dir):
    """xapid's own QEMU command line launched by hand: the same virtual
    machine, without the toolstack. Its files go to a directory of its own;
    the descriptors xapid hands over (monitor sockets, console log) become
    the paths QEMU would open itself (the launch is timed directly)."""
    d = tempfile.mkdtemp(prefix="same-model-qemu-")
    args, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "-add-fd":
            skip = True
            continue
        a = a.replace("path=/dev/fdset/1", f"path={d}/console.log")
        for name, fd in (("monitor", 3), ("qmp", 4)):
            a = a.replace(f"id={name},fd={fd},", f"id={name},path={d}/{name}.sock,")
        args.append(a.replace(domain_dir, d))
    log = os.path.join(d, "console.log")
    started = time.perf_counter()
    proc = subprocess.Popen(args)
    ready = wait_line(log, 1, started + 120)
    proc.kill()
    proc.wait()
    return ready - started


def xapid_cycle(daemon, api, session, vm, uuid):
    """(start reply, ready line, hard_shutdown reply) in seconds, and the
    QEMU command line xapid ran."""
    domain = os.path.join(daemon.state_dir, "domains", uuid)
    log = os.path.join(domain, "console.log")
    started = time.perf_counter()
    r = api.VM.start(session, vm, False, False)
    replied = time.perf_counter()
    assert r["Status"] == "Success", r
    ready = wait_line(log, 1, started + 120)
    with open(os.path.join(domain, "qemu.pid")) as f, \
            open(f"/proc/{int(f.read())}/cmdline", "rb") as c:
        argv = [a.decode() for a in c.read().split(b"\0") if a]
    t = time.perf_counter()
    r = api.VM.hard_shutdown(session, vm)
    shutdown = time.perf_counter() - t
    assert r["Status"] == "Success", r
    return (replied - started, ready - started, shutdown), argv


def sim_starts(n):
    daemon = Daemon(extra_args=["--hypervisor", "sim"])
    try:
        api, session = daemon.login()
        vms = [api.VM.create(session, {"name_label": f"sim{i}", "memory_static_max": str(16 * MiB),
                                       "VCPUs_at_startup": "1"})["Value"] for i in range(n)]
        latencies = []
        lock = threading.Lock()

        def starter(chunk):
            proxy = xmlrpc.client.ServerProxy(daemon.url)
            for vm in chunk:
                t = time.perf_counter()
                r = proxy.VM.start(session, vm, False, False)
                dt = time.perf_counter() - t
                assert r["Status"] == "Success", r
                with lock:
                    latencies.append(dt)

        started = time.perf_counter()
        threads = [threading.Thread(target=starter, args=(vms[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        total = time.perf_counter() - started
        latencies.sort()
        return total, latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    finally:
        daemon.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sim-vms", type=int, default=1000)
    args = parser.parse_args()
    subprocess.run([os.path.join(REPO, "scripts", "build-test-guest"), GUEST], check=True,
                   stdout=subprocess.DEVNULL)
    kernel, initrd = os.path.join(GUEST, "vmlinuz"), os.path.join(GUEST, "initrd.img")
    try:
        libvirt_peer.ensure_installed()  # before any timing: apt-get is not measured
        libvirt_skipped = None
    except libvirt_peer.Skip as e:
        libvirt_skipped = str(e)

    # The peers take turns within each run (bare QEMU, xapid, libvirt), so
    # that load from elsewhere on this shared machine hits all three alike.
    bare, same_model, cycles, lv_cycles = [], [], [], []
    lv = None
    daemon = Daemon(extra_args=["--guest-kernel-dir", GUEST])
    try:
        api, session = daemon.login()
        vm = api.VM.create(session, {"name_label": "bench", "memory_static_max": str(192 * MiB),
                                     "VCPUs_at_startup": "1", "VCPUs_max": "1",
                                     "PV_kernel": kernel, "PV_ramdisk": initrd,
                                     "PV_args": ARGS})["Value"]
        uuid = api.VM.get_uuid(session, vm)["Value"]
        if libvirt_skipped is None:
            try:
                lv = libvirt_peer.Libvirt()  # started (and QEMU probed) before any timing
                lv.prepare_guest(kernel, initrd)
            except libvirt_peer.Skip as e:
                libvirt_skipped = str(e)
        for i in range(args.runs):
            bare.append(bare_qemu(kernel, initrd))
            cycle, argv = xapid_cycle(daemon, api, session, vm, uuid)
            cycles.append(cycle)
            same_model.append(same_model_qemu(argv, os.path.join(daemon.state_dir, "domains",
                                                                 uuid)))
            if lv is not None:
                try:
                    lv_cycles.append(lv.cycle(i, ARGS, kvm_usable(), wait_line))
                except libvirt_peer.Skip as e:
                    libvirt_skipped = str(e)
                    lv.close()
                    lv = None
        api.VM.destroy(session, vm)
    finally:
        try:
            if lv is not None:
                lv_what = lv.describe()
                lv.close()
        finally:
            daemon.stop()
    reply = statistics.median(c[0] for c in cycles)
    ready = statistics.median(c[1] for c in cycles)
    shutdown = statistics.median(c[2] for c in cycles)
    bare_ready = statistics.median(bare)
    # Each run's xapid boot divided by the bare boot just before it: load
    # from elsewhere on a shared machine comes and goes over minutes, so
    # neighbours in time compare better than medians taken apart.
    paired = statistics.median(c[1] / b for c, b in zip(cycles, bare))
    same_ready = statistics.median(same_model)
    same_paired = statistics.median(c[1] / b for c, b in zip(cycles, same_model))
    if libvirt_skipped is None:
        lv_reply = statistics.median(c[0] for c in lv_cycles)
        lv_ready = statistics.median(c[1] for c in lv_cycles)
        lv_destroy = statistics.median(c[2] for c in lv_cycles)
        lv_paired = statistics.median(c[1] / lc[1] for c, lc in zip(cycles, lv_cycles))
    print(f"bare qemu-system-x86_64, launch to ready line: {bare_ready:.2f} s (median of {args.runs})")
    print(f"xapid VM.start: reply {reply * 1000:.0f} ms, ready line {ready:.2f} s, "
          f"ratio to bare QEMU {ready / bare_ready:.3f}, median of paired runs {paired:.3f} "
          f"(goal <= 1.05)")
    print(f"xapid's QEMU command line launched by hand (same virtual machine, no toolstack): "
          f"ready line {same_ready:.2f} s; xapid / it {ready / same_ready:.3f}, "
          f"median of paired runs {same_paired:.3f}")
    print(f"xapid VM.hard_shutdown reply: {shutdown * 1000:.0f} ms (goal < 200 ms)")
    if libvirt_skipped is None:
        print(f"libvirt ({lv_what}, {'kvm' if kvm_usable() else 'qemu/TCG'} domain): "
              f"virsh create reply {lv_reply * 1000:.0f} ms, launch to ready line "
              f"{lv_ready:.2f} s (median of {args.runs}; {lv_ready / bare_ready:.3f} of bare QEMU)")
        print(f"libvirt virsh destroy reply: {lv_destroy * 1000:.0f} ms")
        print(f"xapid / libvirt: start to ready line {ready / lv_ready:.3f} "
              f"(median of paired runs {lv_paired:.3f}), "
              f"VM.start reply / virsh create reply {reply / lv_reply:.3f}, "
              f"hard_shutdown / destroy {shutdown / lv_destroy:.3f}")
    else:
        print(f"libvirt: skipped ({libvirt_skipped})")
    total, p50, p99 = sim_starts(args.sim_vms)
    print(f"sim driver: {args.sim_vms} VM.start calls (4 clients) in {total:.2f} s, "
          f"p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms per call")


if __name__ == "__main__":
    main()
