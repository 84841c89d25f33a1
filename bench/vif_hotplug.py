#!/usr/bin/env python3
"""VIF hot-plug until the guest sees the link, printed as a ratio against
libvirt's `virsh attach-interface` measured in the same run (issue 13).

The test guest runs with xapid.linkwatch=1: it brings every new NIC up and
prints XAPID-GUEST-LINK <name> up once the NIC has carrier (and ... gone
when it leaves), looking every 20 ms. Each side is timed from its call
until that line shows in the guest's serial log (polled every 5 ms):

1. xapid (qemu driver, in a network namespace this bench makes): one
   running guest; per run VIF.create + VIF.plug on an internal network,
   then VIF.unplug + VIF.destroy (not timed) until the guest says gone.
2. libvirt (the host's libvirtd or a private one, bench/libvirt_peer.py):
   the same kernel, initrd and arguments as a transient domain; per run
   `virsh attach-interface --type bridge --model virtio --live` on a bridge
   this bench makes, then `virsh detach-interface` (not timed).

Usage: bench/vif_hotplug.py [--runs N]   (root, after ninja -C build)
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "client"))
sys.path.insert(0, HERE)
import libvirt_peer  # noqa: E402
from netns import NetNs  # noqa: E402
from test_network import NsDaemon, vif_record  # noqa: E402
from xapid_daemon import REPO, ok  # noqa: E402

MiB = 1 << 20
GUEST = os.path.join(REPO, "build", "test-guest")
ARGS = "console=ttyS0 quiet panic=-1 cryptomgr.notests xapid.linkwatch=1"
BRIDGE = f"brhp{os.getpid() % 10000}"


def count(path, text):
    try:
        with open(path, errors="replace") as f:
            return f.read().count(text)
    except FileNotFoundError:
        return 0


def wait_count(path, text, n, deadline):
    """Polls path until text shows n times: the time it did."""
    while time.perf_counter() < deadline:
        if count(path, text) >= n:
            return time.perf_counter()
        time.sleep(0.005)
    raise SystemExit(f"no {n}x {text!r} in {path}")


def xapid_runs(ns, runs):
    d = NsDaemon(ns, "qemu", ["--guest-kernel-dir", GUEST])
    times = []
    try:
        api, s = d.login()
        net = ok(api.network.create(s, {"name_label": "hotplug"}))
        vm = ok(api.VM.create(s, {
            "name_label": "hotplug", "memory_static_max": str(192 * MiB), "VCPUs_max": "1",
            "VCPUs_at_startup": "1", "PV_kernel": os.path.join(GUEST, "vmlinuz"),
            "PV_ramdisk": os.path.join(GUEST, "initrd.img"), "PV_args": ARGS,
            "other_config": {}}))
        ok(api.VM.start(s, vm, False, False))
        domain = os.path.join(d.state_dir, "domains", ok(api.VM.get_uuid(s, vm)))
        log = os.path.join(domain, "console.log")
        wait_count(log, "XAPID-GUEST-READY", 1, time.perf_counter() + 300)
        with open(os.path.join(domain, "qemu.pid")) as f:
            with open(f"/proc/{int(f.read())}/cmdline") as c:
                kvm = "accel=kvm" in c.read()
        for i in range(runs):
            started = time.perf_counter()
            vif = ok(api.VIF.create(s, vif_record(vm, net, "0")))
            ok(api.VIF.plug(s, vif))
            times.append(wait_count(log, "XAPID-GUEST-LINK eth0 up", i + 1, started + 120) -
                         started)
            ok(api.VIF.unplug(s, vif))
            wait_count(log, "XAPID-GUEST-LINK eth0 gone", i + 1, time.perf_counter() + 120)
            ok(api.VIF.destroy(s, vif))
        ok(api.VM.hard_shutdown(s, vm))
        return times, kvm
    finally:
        d.stop()


def virsh(lv, *args):
    r = libvirt_peer.virsh(lv.uri, *args, timeout=120)
    if r.returncode != 0:
        raise libvirt_peer.Skip(f"virsh {args[0]} failed: {r.stderr.strip()}")


def libvirt_runs(lv, runs, kvm):
    lv.prepare_guest(os.path.join(GUEST, "vmlinuz"), os.path.join(GUEST, "initrd.img"))
    name = f"xapid-hotplug-{os.getpid()}"
    log = os.path.join(lv.dir, "hotplug.log")
    xml = os.path.join(lv.dir, f"{name}.xml")
    with open(xml, "w") as f:
        f.write(lv.domain_xml(name, log, ARGS, kvm))
    subprocess.run(["ip", "link", "add", BRIDGE, "type", "bridge"], check=True)
    subprocess.run(["ip", "link", "set", BRIDGE, "up"], check=True)
    times = []
    try:
        virsh(lv, "create", xml)
        lv.domains.append(name)
        wait_count(log, "XAPID-GUEST-READY", 1, time.perf_counter() + 300)
        mac = "52:54:00:00:aa:01"
        for i in range(runs):
            started = time.perf_counter()
            virsh(lv, "attach-interface", "--domain", name, "--type", "bridge", "--source",
                  BRIDGE, "--model", "virtio", "--mac", mac, "--live")
            times.append(wait_count(log, "XAPID-GUEST-LINK eth0 up", i + 1, started + 120) -
                         started)
            virsh(lv, "detach-interface", "--domain", name, "--type", "bridge", "--mac", mac,
                  "--live")
            wait_count(log, "XAPID-GUEST-LINK eth0 gone", i + 1, time.perf_counter() + 120)
        virsh(lv, "destroy", name)
        lv.domains.remove(name)
        return times
    finally:
        subprocess.run(["ip", "link", "del", BRIDGE], check=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    subprocess.run([os.path.join(REPO, "scripts", "build-test-guest"), GUEST], check=True,
                   stdout=subprocess.DEVNULL)
    libvirt_peer.ensure_installed()  # before any timing
    ns = NetNs()
    try:
        xs, kvm = xapid_runs(ns, args.runs)
        assert ns.links() == {"lo", "eth0"}
    finally:
        ns.remove()
    lv = libvirt_peer.Libvirt()
    try:
        ls = libvirt_runs(lv, args.runs, kvm)  # the accelerator xapid's guest had
        desc = lv.describe()
    finally:
        lv.close()
    mx, ml = statistics.median(xs), statistics.median(ls)
    print(f"VIF hot-plug until the guest has carrier, virtio-net, {args.runs} runs each, "
          f"{'KVM' if kvm else 'TCG'}")
    print(f"  xapid VIF.create+plug: median {mx * 1000:.0f} ms "
          f"(runs: {', '.join(f'{x * 1000:.0f}' for x in xs)})")
    print(f"  {desc} attach-interface: median {ml * 1000:.0f} ms "
          f"(runs: {', '.join(f'{x * 1000:.0f}' for x in ls)})")
    print(f"  ratio libvirt / xapid (above 1: xapid is faster): {ml / mx:.2f}")


if __name__ == "__main__":
    main()
