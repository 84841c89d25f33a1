#!/usr/bin/env python3
"""XVA export and import throughput over loopback (see docs/bench.md).

A VM (sim driver) with one 1 GiB disk, half zeros and half random data,
goes out through GET /export (curl -o, the file fsynced) and back in
through PUT /import (curl -T; xapid fsyncs each disk before the import
ends). The peer, as the issue asks, is `tar` of the same raw image through
the same HTTP stack (bench/file_server: libmicrohttpd set up as xapid's, a
plain file behind it): the export peer is a GET of the tar (made
beforehand) from file_server into a file fsynced, the import peer a PUT
of the tar to file_server (write + fsync). Then the
zstd export (use_compression=zstd, level 1) against `zstd -1` of the raw
image: size and time. Turns alternate within each run; medians are
printed with the ratios peer / xapid (goal >= 0.8).

Usage: bench/xva.py [--runs N] [--size-mib N]   (after ninja -C build)
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time

from vdi_transfer import BUILD, MiB, Xapi, free_port, ok, start_xapid


def timed(*commands, cwd=None):
    subprocess.run(["sync"], check=True)  # start with nothing dirty
    start = time.perf_counter()
    for cmd in commands:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=cwd,
                       shell=isinstance(cmd, str))
    return time.perf_counter() - start


def make_disk(path, size):
    """Half zeros (left as a hole), half random."""
    with open(path, "wb") as f:
        f.truncate(size)
        f.seek(size // 2)
        for _ in range(size // 2 // (4 * MiB)):
            f.write(os.urandom(4 * MiB))


def new_vm(x, size):
    vm = ok(x.api.VM.create(x.s, {"name_label": "bench", "memory_static_max": str(256 * MiB),
                                  "VCPUs_max": "1", "VCPUs_at_startup": "1"}))
    vdi = x.new_vdi(size)
    ok(x.api.VBD.create(x.s, {"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": True,
                              "mode": "RW", "type": "Disk", "unpluggable": True, "empty": False,
                              "other_config": {}, "qos_algorithm_type": "",
                              "qos_algorithm_params": {}}))
    return vm, vdi


def drop_vm(x, vm):
    for vbd in ok(x.api.VM.get_VBDs(x.s, vm)):
        vdi = ok(x.api.VBD.get_VDI(x.s, vbd))
        ok(x.api.VBD.destroy(x.s, vbd))
        ok(x.api.VDI.destroy(x.s, vdi))
    ok(x.api.VM.destroy(x.s, vm))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size-mib", type=int, default=1024)
    args = ap.parse_args()
    for tool in ("curl", "tar", "zstd"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed (scripts/install-deps)")
    size = args.size_mib * MiB
    work = tempfile.mkdtemp(prefix="xapid-bench-xva-")
    proc = peer = None
    try:
        proc, port = start_xapid(os.path.join(work, "state"))
        x = Xapi(port)
        raw = os.path.join(work, "disk.raw")
        make_disk(raw, size)
        vm, vdi = new_vm(x, size)
        subprocess.run(["curl", "-sSf", "-o", "/dev/null", "-T", raw, x.url("import_raw_vdi", vdi)],
                       check=True)
        peer_port = free_port()
        peer_file = os.path.join(work, "peer.tar")
        peer = subprocess.Popen([os.path.join(BUILD, "file_server"), str(peer_port), peer_file],
                                stdout=subprocess.PIPE)
        assert b"ready" in peer.stdout.readline()
        peer_url = f"http://127.0.0.1:{peer_port}/disk.tar"
        export_url = f"{x.base}/export?session_id={x.s}&ref={vm}"
        import_url = f"{x.base}/import?session_id={x.s}&sr_id={x.sr}"
        xva = os.path.join(work, "export.xva")
        tar = os.path.join(work, "disk.tar")
        t = {k: [] for k in ("peer_export", "peer_import", "export", "import", "zstd_export",
                             "zstd_cli")}
        sizes = {}
        for run in range(args.runs):
            # the peer: tar of the raw image through the same HTTP stack, out
            # (GET of the tar, made beforehand, into a file fsynced) and in
            # (PUT of it: the server writes and fsyncs it)
            subprocess.run(["tar", "cf", peer_file, "-C", work, "disk.raw"], check=True)
            t["peer_export"].append(timed(["curl", "-sSf", "-o", tar, peer_url], ["sync", tar]))
            os.unlink(peer_file)
            t["peer_import"].append(timed(["curl", "-sSf", "-T", tar, peer_url]))
            os.unlink(tar)
            os.unlink(peer_file)
            t["export"].append(timed(["curl", "-sSf", "-o", xva, export_url], ["sync", xva]))
            before = set(ok(x.api.VM.get_all(x.s)))
            t["import"].append(timed(["curl", "-sS", "-o", "/dev/null", "-T", xva, import_url]))
            new = set(ok(x.api.VM.get_all(x.s))) - before
            assert len(new) == 1, "the import made no VM"
            if run == 0:
                out = os.path.join(work, "check.raw")
                new_vdi = ok(x.api.VBD.get_VDI(x.s, ok(x.api.VM.get_VBDs(x.s, new.pop()))[0]))
                subprocess.run(["curl", "-sSf", "-o", out, x.url("export_raw_vdi", new_vdi)],
                               check=True)
                subprocess.run(["cmp", raw, out], check=True)
                os.unlink(out)
            for other in set(ok(x.api.VM.get_all(x.s))) - before:
                drop_vm(x, other)
            sizes["xva"] = os.path.getsize(xva)
            os.unlink(xva)
            zxva = xva + ".zst"
            t["zstd_export"].append(timed(["curl", "-sSf", "-o", zxva,
                                           export_url + "&use_compression=zstd"]))
            sizes["zstd_export"] = os.path.getsize(zxva)
            os.unlink(zxva)
            zraw = raw + ".zst"
            t["zstd_cli"].append(timed(["zstd", "-1", "-q", "-f", raw, "-o", zraw]))
            sizes["zstd_cli"] = os.path.getsize(zraw)
            os.unlink(zraw)
        med = {k: statistics.median(v) for k, v in t.items()}
        mbs = lambda s: size / MiB / s
        print(f"{args.size_mib} MiB disk (half zeros, half random), {args.runs} runs, medians; "
              "seconds per run: " + ", ".join(f"{k} {[round(v, 2) for v in vs]}"
                                              for k, vs in t.items()))
        print(f"peer GET of the tar: {mbs(med['peer_export']):5.0f} MB/s; "
              f"xapid export {mbs(med['export']):5.0f} MB/s; "
              f"ratio {med['peer_export'] / med['export']:.2f} (goal >= 0.8)")
        print(f"peer PUT of the tar: {mbs(med['peer_import']):5.0f} MB/s; "
              f"xapid import {mbs(med['import']):5.0f} MB/s; "
              f"ratio {med['peer_import'] / med['import']:.2f} (goal >= 0.8)")
        print(f"zstd export {sizes['zstd_export'] / MiB:.0f} MiB in {med['zstd_export']:.2f} s; "
              f"zstd -1 of the raw image {sizes['zstd_cli'] / MiB:.0f} MiB in "
              f"{med['zstd_cli']:.2f} s; size ratio {sizes['zstd_export'] / sizes['zstd_cli']:.3f}, "
              f"time ratio zstd/xapid {med['zstd_cli'] / med['zstd_export']:.2f}")
        print(f"plain XVA: {sizes['xva'] / MiB:.0f} MiB for the {args.size_mib} MiB disk "
              "(zero blocks left out)")
    finally:
        if peer:
            peer.terminate()
            peer.wait()
        if proc:
            proc.terminate()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
