#!/usr/bin/env python3
"""VM.clone benchmark (issue: storage), measured in one run:

1. A template with a 10 GiB disk holding DATA_MIB of written data (qemu-io
   writes a pattern into the qcow2 VDI through the image format, as a guest
   would) is cloned with VM.clone through the API: time to the reply and
   bytes the SR's file system gained (a clone must not copy data).
2. The peer: copying that disk the way a toolstack without shared images
   would, `qemu-img convert -O qcow2` of the same image on the same disk:
   time and bytes written.
Printed as figures and ratios (clone / full copy).

Usage: bench/vm_clone.py [--runs N] [--data-mib N]   (after ninja -C build)
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "client"))
from xapid_daemon import Daemon  # noqa: E402

GiB = 1 << 30
MiB = 1 << 20


def ok(reply):
    if reply["Status"] != "Success":
        raise SystemExit(f"API error: {reply['ErrorDescription']}")
    return reply["Value"]


def used_bytes(path):
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def sync():
    os.sync()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--data-mib", type=int, default=1024)
    args = parser.parse_args()
    if not shutil.which("qemu-io"):
        raise SystemExit("qemu-io (qemu-utils) is needed")
    d = Daemon(extra_args=["--hypervisor", "sim"])
    try:
        proxy, s = d.login()
        pool = list(ok(proxy.pool.get_all_records(s)).values())[0]
        sr = pool["default_SR"]
        sr_dir = ok(proxy.PBD.get_device_config(s, ok(proxy.SR.get_PBDs(s, sr))[0]))["location"]
        vdi = ok(proxy.VDI.create(s, {"name_label": "template disk", "SR": sr,
                                      "virtual_size": str(10 * GiB), "type": "system",
                                      "sharable": False, "read_only": False,
                                      "other_config": {}}))
        path = os.path.join(sr_dir, ok(proxy.VDI.get_location(s, vdi)))
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a 0 {args.data_mib}M",
                        path], check=True, stdout=subprocess.DEVNULL)
        ok(proxy.VDI.update(s, vdi))
        template = ok(proxy.VM.create(s, {
            "name_label": "10 GiB template", "is_a_template": True,
            "memory_static_max": str(256 * MiB), "VCPUs_max": "1", "VCPUs_at_startup": "1",
            "actions_after_shutdown": "destroy", "actions_after_reboot": "restart",
            "actions_after_crash": "destroy"}))
        ok(proxy.VBD.create(s, {"VM": template, "VDI": vdi, "userdevice": "0",
                                "bootable": True, "mode": "RW", "type": "Disk",
                                "unpluggable": True, "empty": False, "other_config": {},
                                "qos_algorithm_type": "", "qos_algorithm_params": {}}))

        clone_times, clone_bytes, copy_times, copy_bytes = [], [], [], []
        for run in range(args.runs):
            sync()
            before = used_bytes(sr_dir)
            t0 = time.perf_counter()
            ok(proxy.VM.clone(s, template, f"clone {run}"))
            clone_times.append(time.perf_counter() - t0)
            sync()
            clone_bytes.append(used_bytes(sr_dir) - before)

            # the current image of the template's disk (its chain read as one)
            current = os.path.join(sr_dir, ok(proxy.VDI.get_location(s, vdi)))
            target = os.path.join(sr_dir, f".bench-copy-{run}.qcow2")
            sync()
            before = used_bytes(sr_dir)
            t0 = time.perf_counter()
            subprocess.run(["qemu-img", "convert", "-U", "-O", "qcow2", current, target],
                           check=True)
            sync()
            copy_times.append(time.perf_counter() - t0)
            copy_bytes.append(used_bytes(sr_dir) - before)
            os.unlink(target)

        ct, cb = statistics.median(clone_times), statistics.median(clone_bytes)
        pt, pb = statistics.median(copy_times), statistics.median(copy_bytes)
        print(f"template disk: 10 GiB virtual, {args.data_mib} MiB written; medians of "
              f"{args.runs} runs")
        print(f"xapid VM.clone reply:            {ct * 1000:8.1f} ms, "
              f"{cb / MiB:8.2f} MiB written")
        print(f"full copy (qemu-img convert):    {pt * 1000:8.1f} ms, "
              f"{pb / MiB:8.2f} MiB written")
        print(f"ratio clone / full copy: time {ct / pt:.4f}, bytes {max(cb, 0) / pb:.4f}")
    finally:
        d.stop()


if __name__ == "__main__":
    main()
