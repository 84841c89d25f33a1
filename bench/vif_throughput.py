#!/usr/bin/env python3
"""Guest-to-guest TCP throughput over a bridge, printed as a ratio against
a peer measured in the same run (issue 13: the toolstack adds no cost to
the data path).

1. xapid (qemu driver, in a network namespace this bench makes): two test
   guests on one internal network, virtio-net; the receiver takes one TCP
   connection (xapid.recv), the sender writes N KiB of zeros to it with
   busybox dd | nc (xapid.send) and reports the guest's uptime before and
   after: throughput = N KiB / (t1 - t0).
2. The peer: the same kernel, initrd and arguments in two QEMU processes
   wired by hand: a bridge and two taps made with ip, -netdev
   tap,ifname=...,script=no and the same NIC model (virtio-net-pci), with
   xapid's -machine and -cpu (read back from its QEMU) so that only the
   wiring differs.
3. With --same-hardware, a third set-up: the hand-wired pair given xapid's
   other virtual hardware too (read back from xapid's QEMU: -vga, -vnc,
   -sandbox, -action, pvpanic, the balloon, the virtio-serial controller),
   so that the ratio against it is the data path's alone (the same tap,
   bridge and NIC), while the ratio against 2. also counts what those
   emulated devices cost a TCG guest.

Usage: bench/vif_throughput.py [--runs N] [--kib N]   (root, after ninja -C build)
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "client"))
from netns import NetNs, ip  # noqa: E402
from test_network import NsDaemon, vif_record  # noqa: E402
from xapid_daemon import REPO, ok  # noqa: E402

MiB = 1 << 20
GUEST = os.path.join(REPO, "build", "test-guest")
ARGS = "console=ttyS0 quiet panic=-1 cryptomgr.notests"
PORT = 5001


def wait_sent(path, recv_path, kib, deadline):
    """The sender's seconds, once the receiver has counted every byte."""
    while time.time() < deadline:
        if os.path.exists(path) and os.path.exists(recv_path):
            with open(path, errors="replace") as f:
                m = re.search(r"XAPID-GUEST-SENT ([0-9.]+) ([0-9.]+)", f.read())
            with open(recv_path, errors="replace") as f:
                r = re.search(r"XAPID-GUEST-RECEIVED (\d+)", f.read())
            if m and r:
                if int(r.group(1)) != kib * 1024:
                    raise SystemExit(f"the receiver got {r.group(1)} of {kib * 1024} bytes")
                return float(m.group(2)) - float(m.group(1))
        time.sleep(0.1)
    raise SystemExit(f"no XAPID-GUEST-SENT/RECEIVED in {path}, {recv_path}")


def wait_net(path, deadline):
    """The receiver is listening before the sender starts: a SYN to a
    guest still booting costs a retransmission (a second) in the figure."""
    while time.time() < deadline:
        if os.path.exists(path):
            with open(path, errors="replace") as f:
                if "XAPID-GUEST-NET" in f.read():
                    return
        time.sleep(0.05)
    raise SystemExit(f"no XAPID-GUEST-NET in {path}")


def guest_args(role, kib):
    if role == "recv":
        return f"{ARGS} xapid.ip=10.0.0.2/24 xapid.recv={PORT}"
    return f"{ARGS} xapid.ip=10.0.0.3/24 xapid.send=10.0.0.2:{PORT}:{kib}"


HARDWARE_OPTIONS = ("-vga", "-vnc", "-sandbox", "-action")
HARDWARE_DEVICES = ("pvpanic", "virtio-balloon-pci", "virtio-serial-pci")


def hardware_of(argv):
    """xapid's virtual hardware other than disks, NICs and its sockets."""
    kept = []
    for opt, value in zip(argv, argv[1:]):
        if opt in HARDWARE_OPTIONS or (
                opt == "-device" and value.split(",")[0] in HARDWARE_DEVICES):
            kept += [opt, value]
    return kept


def xapid_run(ns, kib, extra=()):
    """One transfer between two xapid guests; returns (seconds, machine,
    cpu, accel, hardware)."""
    d = NsDaemon(ns, "qemu", ["--guest-kernel-dir", GUEST] + list(extra))
    try:
        api, s = d.login()
        net = ok(api.network.create(s, {"name_label": "bench"}))
        uuids, vms = [], []
        for role in ("recv", "send"):
            vm = ok(api.VM.create(s, {
                "name_label": role, "memory_static_max": str(192 * MiB), "VCPUs_max": "1",
                "VCPUs_at_startup": "1", "PV_kernel": os.path.join(GUEST, "vmlinuz"),
                "PV_ramdisk": os.path.join(GUEST, "initrd.img"),
                "PV_args": guest_args(role, kib), "actions_after_shutdown": "destroy",
                "other_config": {}}))
            ok(api.VIF.create(s, vif_record(vm, net, "0")))
            ok(api.VM.start(s, vm, False, False))
            uuids.append(ok(api.VM.get_uuid(s, vm)))
            vms.append(vm)
            if role == "recv":
                wait_net(os.path.join(d.state_dir, "domains", uuids[0], "console.log"),
                         time.time() + 300)
        domain = os.path.join(d.state_dir, "domains", uuids[1])
        seconds = wait_sent(os.path.join(domain, "console.log"),
                            os.path.join(d.state_dir, "domains", uuids[0], "console.log"), kib,
                            time.time() + 600)
        pid = int(open(os.path.join(domain, "qemu.pid")).read())
        argv = open(f"/proc/{pid}/cmdline").read().split("\0")
        machine = argv[argv.index("-machine") + 1] if "-machine" in argv else "pc"
        cpu = argv[argv.index("-cpu") + 1] if "-cpu" in argv else "qemu64"
        accel = argv[argv.index("-accel") + 1] if "-accel" in argv else "tcg"
        for vm in vms:
            ok(api.VM.hard_shutdown(s, vm))
        return seconds, machine, cpu, accel, hardware_of(argv)
    finally:
        d.stop()


def peer_run(ns, kib, machine, cpu, accel, extra=()):
    """The same transfer between two QEMUs wired by hand."""
    work = tempfile.mkdtemp(prefix="vif-peer-")
    n = ns.name
    ip("ip", "link", "add", "brpeer", "type", "bridge", ns=n)
    ip("ip", "link", "set", "brpeer", "up", ns=n)
    procs = []
    try:
        for i, role in enumerate(("recv", "send")):
            tap = f"tappeer{i}"
            ip("ip", "tuntap", "add", "dev", tap, "mode", "tap", "vnet_hdr", ns=n)
            ip("ip", "link", "set", tap, "master", "brpeer", "up", ns=n)
            log = os.path.join(work, f"{role}.log")
            procs.append(subprocess.Popen(
                ["ip", "netns", "exec", n, "qemu-system-x86_64"] +
                ([] if "accel=" in machine else ["-accel", accel]) +
                ["-machine", machine, "-cpu", cpu, "-m", "192", "-nodefaults", "-no-user-config",
                 "-display", "none", "-kernel", os.path.join(GUEST, "vmlinuz"),
                 "-initrd", os.path.join(GUEST, "initrd.img"),
                 "-append", guest_args(role, kib),
                 "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no",
                 "-device", f"virtio-net-pci,netdev=n0,mac=02:00:00:00:10:0{i}",
                 "-chardev", f"file,id=c,path={log}", "-serial", "chardev:c"] +
                [a.replace("WORK", work) for a in extra]))
            if role == "recv":
                wait_net(log, time.time() + 300)
        return wait_sent(os.path.join(work, "send.log"), os.path.join(work, "recv.log"), kib,
                         time.time() + 600)
    finally:
        for p in procs:
            p.kill()
            p.wait()
        for i in range(2):
            ip("ip", "link", "del", f"tappeer{i}", ns=n, check=False)
        ip("ip", "link", "del", "brpeer", ns=n, check=False)
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--kib", type=int, default=131072)
    ap.add_argument("--peer-extra", default="",
                    help="more QEMU arguments for the hand-wired peer only (A/B of a part "
                         "of xapid's command line); WORK is its directory")
    ap.add_argument("--xapid-extra", default="",
                    help="more xapid arguments (e.g. --no-metrics: A/B of the sampler)")
    ap.add_argument("--same-hardware", action="store_true",
                    help="also the hand-wired pair with xapid's other virtual hardware")
    ap.add_argument("--peer-only", action="store_true",
                    help="only the hand-wired peer (with xapid's -machine/-cpu under TCG)")
    args = ap.parse_args()
    subprocess.run([os.path.join(REPO, "scripts", "build-test-guest"), GUEST], check=True,
                   stdout=subprocess.DEVNULL)
    ns = NetNs()
    try:
        xs, ps, hs = [], [], []
        extra = args.peer_extra.split()
        machine, cpu, accel = "pc,accel=tcg", "qemu64,+ssse3,+sse4.1,+sse4.2,+popcnt", "tcg"
        for _ in range(args.runs):  # interleaved, so load drifts hit every set-up
            if not args.peer_only:
                seconds, machine, cpu, accel, hardware = xapid_run(ns, args.kib,
                                                                   args.xapid_extra.split())
                xs.append(args.kib / 1024 / seconds)
            ps.append(args.kib / 1024 / peer_run(ns, args.kib, machine, cpu, accel, extra))
            if args.same_hardware and not args.peer_only:
                hs.append(args.kib / 1024 /
                          peer_run(ns, args.kib, machine, cpu, accel, extra + hardware))
        assert ns.links() == {"lo", "eth0"}
    finally:
        ns.remove()
    mp = statistics.median(ps)
    if args.peer_only:
        print(f"hand-wired {' '.join(extra)}: {mp:.1f} MiB/s (runs: "
              f"{', '.join(f'{p:.1f}' for p in ps)})")
        return
    mx = statistics.median(xs)
    print(f"guest-to-guest TCP, {args.kib} KiB, virtio-net, {accel}, -cpu {cpu}")
    print(f"  xapid:        {mx:.1f} MiB/s (runs: {', '.join(f'{x:.1f}' for x in xs)})")
    print(f"  hand-wired:   {mp:.1f} MiB/s (runs: {', '.join(f'{p:.1f}' for p in ps)})")
    print(f"  ratio xapid / hand-wired: {mx / mp:.3f} (goal >= 0.95); paired: "
          f"{statistics.median(x / p for x, p in zip(xs, ps)):.3f}")
    if hs:
        mh = statistics.median(hs)
        print(f"  hand-wired with xapid's hardware ({' '.join(hardware)}):")
        print(f"                {mh:.1f} MiB/s (runs: {', '.join(f'{h:.1f}' for h in hs)})")
        print(f"  ratio xapid / hand-wired with xapid's hardware: {mx / mh:.3f} "
              f"(goal >= 0.95); paired: {statistics.median(x / h for x, h in zip(xs, hs)):.3f}")


if __name__ == "__main__":
    main()
