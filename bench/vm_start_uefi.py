#!/usr/bin/env python3
"""VM.start benchmarks of issue 15, printed as ratios against a peer
measured in the same run, the peers taking turns within each run:

1. UEFI: the test guest (scripts/build-test-guest; its kernel is an EFI
   stub) started by xapid with HVM_boot_params:firmware=uefi, VM.start
   until the guest's ready line, against a bare qemu-system-x86_64 with the
   same OVMF (Debian's ovmf: OVMF_CODE.fd read-only, a fresh copy of
   OVMF_VARS.fd), kernel, initrd and memory, launch until the same line.
   Goal: ratio <= 1.05.
2. 4 vCPUs and 1 GiB: the same guest under SeaBIOS started by xapid
   against a transient libvirt domain of the same shape (bench/libvirt_peer.py;
   skipped with its reason when libvirt cannot run here).

Usage: bench/vm_start_uefi.py [--runs N]   (after ninja -C build)
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "client"))
from xapid_daemon import REPO, Daemon  # noqa: E402
import libvirt_peer  # noqa: E402
from vm_start import ARGS, kvm_usable, wait_line  # noqa: E402

MiB = 1 << 20
GUEST = os.path.join(REPO, "build", "test-guest")
OVMF_CODE, OVMF_VARS = "/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"


def bare_uefi(kernel, initrd):
    d = tempfile.mkdtemp(prefix="bare-uefi-")
    vars_copy = shutil.copy(OVMF_VARS, os.path.join(d, "vars.fd"))
    log = os.path.join(d, "console.log")
    accel = "kvm" if kvm_usable() else "tcg"
    started = time.perf_counter()
    proc = subprocess.Popen(["qemu-system-x86_64", "-accel", accel, "-m", "256",
                             "-nodefaults", "-no-user-config", "-display", "none",
                             "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
                             "-drive", f"if=pflash,format=raw,file={vars_copy}",
                             "-kernel", kernel, "-initrd", initrd, "-append", ARGS,
                             "-chardev", f"file,id=c,path={log}", "-serial", "chardev:c"])
    ready = wait_line(log, 1, started + 180)
    proc.kill()
    proc.wait()
    shutil.rmtree(d)
    return ready - started


def xapid_ready(daemon, api, session, vm, uuid):
    log = os.path.join(daemon.state_dir, "domains", uuid, "console.log")
    started = time.perf_counter()
    r = api.VM.start(session, vm, False, False)
    assert r["Status"] == "Success", r
    ready = wait_line(log, 1, started + 180)
    r = api.VM.hard_shutdown(session, vm)
    assert r["Status"] == "Success", r
    return ready - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    subprocess.run([os.path.join(REPO, "scripts", "build-test-guest"), GUEST], check=True,
                   stdout=subprocess.DEVNULL)
    kernel, initrd = os.path.join(GUEST, "vmlinuz"), os.path.join(GUEST, "initrd.img")
    lv, lv_skipped = None, None
    try:
        libvirt_peer.ensure_installed()
        lv = libvirt_peer.Libvirt()
        lv.prepare_guest(kernel, initrd)
        lv.memory_mib, lv.vcpus = 1024, 4
    except libvirt_peer.Skip as e:
        lv_skipped = str(e)
    daemon = Daemon(extra_args=["--guest-kernel-dir", GUEST])
    uefi, bare, big, lv_big = [], [], [], []
    try:
        api, session = daemon.login()
        common = {"PV_kernel": kernel, "PV_ramdisk": initrd, "PV_args": ARGS,
                  "actions_after_shutdown": "destroy"}
        uefi_vm = api.VM.create(session, dict(common, name_label="bench uefi",
                                              memory_static_max=str(256 * MiB),
                                              VCPUs_max="1", VCPUs_at_startup="1",
                                              HVM_boot_params={"firmware": "uefi"}))["Value"]
        big_vm = api.VM.create(session, dict(common, name_label="bench 4x1G",
                                             memory_static_max=str(1024 * MiB),
                                             VCPUs_max="4", VCPUs_at_startup="4",
                                             platform={"vcpu-unrestricted": "true"}))["Value"]
        uefi_uuid = api.VM.get_uuid(session, uefi_vm)["Value"]
        big_uuid = api.VM.get_uuid(session, big_vm)["Value"]
        for i in range(args.runs):
            bare.append(bare_uefi(kernel, initrd))
            uefi.append(xapid_ready(daemon, api, session, uefi_vm, uefi_uuid))
            big.append(xapid_ready(daemon, api, session, big_vm, big_uuid))
            if lv is not None:
                try:
                    lv_big.append(lv.cycle(i, ARGS, kvm_usable(), wait_line)[1])
                except libvirt_peer.Skip as e:
                    lv_skipped = str(e)
                    lv.close()
                    lv = None
        for vm in (uefi_vm, big_vm):
            api.VM.destroy(session, vm)
    finally:
        try:
            if lv is not None:
                lv_what = lv.describe()
                lv.close()
        finally:
            daemon.stop()
    paired = statistics.median(x / b for x, b in zip(uefi, bare))
    print(f"UEFI (OVMF), start to ready line: xapid {statistics.median(uefi):.2f} s, bare QEMU "
          f"{statistics.median(bare):.2f} s (medians of {args.runs}); median of paired ratios "
          f"{paired:.3f} (goal <= 1.05)")
    if lv_skipped is None and lv_big:
        lv_paired = statistics.median(x / v for x, v in zip(big, lv_big))
        print(f"4 vCPUs, 1 GiB, start to ready line: xapid {statistics.median(big):.2f} s, "
              f"libvirt ({lv_what}) {statistics.median(lv_big):.2f} s; median of paired "
              f"ratios {lv_paired:.3f}")
    else:
        print(f"4 vCPUs, 1 GiB: xapid {statistics.median(big):.2f} s; libvirt: skipped "
              f"({lv_skipped})")


if __name__ == "__main__":
    main()
