#!/usr/bin/env python3
"""VDI import and export throughput over loopback (see docs/bench.md).

curl uploads a 1 GiB raw disk of random data to PUT /import_raw_vdi (into
a fresh VDI, which stands alone and so becomes a raw file written
directly, no qemu-nbd; xapid fsyncs it before it answers) and
downloads it again from GET /export_raw_vdi into a file that is then
fsynced (and once more into /dev/null: the transfer alone). The goal's
peer is the same curl against bench/file_server (libmicrohttpd set up as
xapid's, a plain file behind it: write() + fsync, pread). Further peers,
measured in the same run on the same disk, are plain copies of the same
file ending in an fsync: `cp` (coreutils 9: copy_file_range, the data never
leaves the kernel) and `dd bs=4M conv=fsync` (read and write through a
process, as any transfer must). Turns alternate within each run; medians
are printed with the ratios xapid / peer. Then the RSS of xapid is sampled
during the import of a 4 GiB sparse disk (all 4 GiB go over the wire): it
must stay flat.

Usage: bench/vdi_transfer.py [--runs N] [--size-mib N]   (after ninja -C build)
"""
import argparse
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
BUILD = os.path.join(ROOT, "build")
XAPID = os.path.join(BUILD, "xapid")
MiB = 1 << 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_xapid(state):
    os.makedirs(state)
    pw = os.path.join(state, "pw")
    with open(pw, "w") as f:
        f.write("bench\n")
    port = free_port()
    proc = subprocess.Popen([XAPID, "--state-dir", state, "--listen", f"127.0.0.1:{port}",
                             "--root-password-file", pw, "--hypervisor", "sim"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    for line in proc.stdout:
        if b"ready" in line:
            return proc, port
    raise SystemExit("xapid exited before it was ready")


def ok(reply):
    assert reply["Status"] == "Success", reply
    return reply["Value"]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Xapi:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        self.api = xmlrpc.client.ServerProxy(self.base + "/")
        self.s = ok(self.api.session.login_with_password("root", "bench"))
        pool = ok(self.api.pool.get_all(self.s))[0]
        self.sr = ok(self.api.pool.get_default_SR(self.s, pool))

    def new_vdi(self, size):
        return ok(self.api.VDI.create(self.s, {
            "name_label": "bench", "SR": self.sr, "virtual_size": str(size), "type": "user",
            "sharable": False, "read_only": False, "other_config": {}, "xenstore_data": {},
            "sm_config": {}, "tags": []}))

    def destroy(self, vdi):
        ok(self.api.VDI.destroy(self.s, vdi))

    def url(self, path, vdi):
        return f"{self.base}/{path}?session_id={self.s}&vdi={vdi}"


def timed(*commands):
    subprocess.run(["sync"], check=True)  # start with nothing dirty
    start = time.perf_counter()
    for cmd in commands:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def make_random_file(path, size):
    with open(path, "wb") as f:
        for _ in range(size // (4 * MiB)):
            f.write(os.urandom(4 * MiB))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--sparse-gib", type=int, default=4)
    args = ap.parse_args()
    if not shutil.which("curl"):
        raise SystemExit("curl is needed (scripts/install-deps)")
    size = args.size_mib * MiB
    work = tempfile.mkdtemp(prefix="xapid-bench-transfer-")
    proc = None
    try:
        proc, port = start_xapid(os.path.join(work, "state"))
        x = Xapi(port)
        src = os.path.join(work, "disk.raw")
        make_random_file(src, size)
        imports, exports, nulls, copies, dds = [], [], [], [], []
        peer_puts, peer_gets = [], []
        peer_port = free_port()
        peer_file = os.path.join(work, "peer.raw")
        peer = subprocess.Popen([os.path.join(BUILD, "file_server"), str(peer_port), peer_file],
                                stdout=subprocess.PIPE)
        assert b"ready" in peer.stdout.readline()
        peer_url = f"http://127.0.0.1:{peer_port}/disk"
        for run in range(args.runs):
            # the peer: the same curl and HTTP stack with a plain file behind
            peer_puts.append(timed(["curl", "-sSf", "-T", src, peer_url]))
            out = os.path.join(work, "peer-export.raw")
            peer_gets.append(timed(["curl", "-sSf", "-o", out, peer_url], ["sync", out]))
            os.unlink(out)
            os.unlink(peer_file)
            vdi = x.new_vdi(size)
            imports.append(timed(["curl", "-sSf", "-T", src, x.url("import_raw_vdi", vdi)]))
            out = os.path.join(work, "export.raw")
            exports.append(timed(["curl", "-sSf", "-o", out, x.url("export_raw_vdi", vdi)],
                                 ["sync", out]))
            if run == 0:
                subprocess.run(["cmp", src, out], check=True)
            os.unlink(out)
            nulls.append(timed(["curl", "-sSf", "-o", "/dev/null", x.url("export_raw_vdi", vdi)]))
            x.destroy(vdi)
            dst = os.path.join(work, "copy.raw")
            copies.append(timed(["cp", src, dst], ["sync", dst]))
            os.unlink(dst)
            dds.append(timed(["dd", f"if={src}", f"of={dst}", "bs=4M", "conv=fsync",
                              "status=none"]))
            os.unlink(dst)
        peer.terminate()
        peer.wait()
        mbs = lambda seconds: size / MiB / seconds
        put, get = statistics.median(peer_puts), statistics.median(peer_gets)
        imp, exp, null, cp, dd = (statistics.median(v)
                                  for v in (imports, exports, nulls, copies, dds))
        runs = lambda v: [round(t, 2) for t in v]
        print(f"{args.size_mib} MiB random raw disk, {args.runs} runs, medians; seconds per run: "
              f"import {runs(imports)}, export {runs(exports)}, export to /dev/null "
              f"{runs(nulls)}, cp {runs(copies)}, dd {runs(dds)}")
        print(f"peer curl -T to a plain file server (write + fsync): {mbs(put):5.0f} MB/s")
        print(f"peer curl -o from a plain file server (file fsynced): {mbs(get):5.0f} MB/s")
        print(f"import ratio to the plain file server: {put / imp:.2f} (goal >= 0.8)")
        print(f"export ratio to the plain file server: {get / exp:.2f} (goal >= 0.8)")
        print(f"peer cp + fsync (in-kernel copy):     {mbs(cp):5.0f} MB/s")
        print(f"peer dd bs=4M conv=fsync:             {mbs(dd):5.0f} MB/s")
        print(f"import (curl -T, raw leaf, fsynced):  {mbs(imp):5.0f} MB/s  "
              f"ratio {cp / imp:.2f} to cp, {dd / imp:.2f} to dd")
        print(f"export (curl -o, file fsynced):        {mbs(exp):5.0f} MB/s  "
              f"ratio {cp / exp:.2f} to cp, {dd / exp:.2f} to dd")
        print(f"export (curl -o /dev/null):            {mbs(null):5.0f} MB/s")
        os.unlink(src)

        # Memory during a large sparse import: everything goes over the wire.
        sparse = os.path.join(work, "sparse.raw")
        with open(sparse, "wb") as f:
            f.truncate(args.sparse_gib << 30)
            for gib in range(args.sparse_gib):
                f.seek(gib << 30)
                f.write(os.urandom(MiB))
        vdi = x.new_vdi(args.sparse_gib << 30)
        before = rss_mb(proc.pid)
        samples, done = [], threading.Event()

        def sample():
            while not done.is_set():
                samples.append(rss_mb(proc.pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        seconds = timed(["curl", "-sSf", "-T", sparse, x.url("import_raw_vdi", vdi)])
        done.set()
        sampler.join()
        print(f"{args.sparse_gib} GiB sparse import: {seconds:.1f} s "
              f"({(args.sparse_gib << 30) / MiB / seconds:.0f} MB/s); xapid RSS {before:.1f} MB "
              f"before, {max(samples):.1f} MB at most during it "
              f"(growth {max(samples) - before:.1f} MB, {len(samples)} samples)")
    finally:
        if proc:
            proc.terminate()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
