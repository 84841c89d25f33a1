#!/usr/bin/env python3
"""host.call_plugin of the built-in echo plugin, round trip over XML-RPC on
a keep-alive connection, against its peer measured in the same run: a
bare fork+exec of the same script from the bench with the same argument
(what any plugin call must cost at least: a Python start-up and the
XenAPIPlugin dispatch). Printed: median and p90 of each, and the ratio of
the medians (see docs/bench.md).

Usage: bench/plugin_echo.py [--calls N]   (after ninja -C build)
"""
import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import xmlrpc.client

from sim_xapid import start_sim_xapid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON_DIR = os.path.join(ROOT, "python")
ECHO = os.path.join(PYTHON_DIR, "plugins", "echo")


def start_xapid(state):
    return start_sim_xapid(state, ["--unix", os.path.join(state, "xapi.sock")])


def summary(times):
    times = sorted(times)
    return statistics.median(times), times[int(len(times) * 0.9)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=200)
    args = ap.parse_args()
    state = tempfile.mkdtemp(prefix="xapid-bench-plugin-")
    proc, port = start_xapid(state)
    try:
        api = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/")
        s = api.session.login_with_password("root", "bench")["Value"]
        host = api.host.get_all(s)["Value"][0]
        env = {"PATH": "/sbin:/usr/sbin:/bin:/usr/bin", "PYTHONPATH": PYTHON_DIR,
               "PYTHONDONTWRITEBYTECODE": "1"}
        call = xmlrpc.client.dumps((s, {"a": "b"}), "main")
        via_xapid, bare = [], []
        for i in range(args.calls + 10):  # turns alternate; the first 10 warm up
            t = time.perf_counter()
            reply = api.host.call_plugin(s, host, "echo", "main", {"a": "b"})
            dt_x = time.perf_counter() - t
            assert reply["Value"] == "args were: {'a': 'b'}", reply
            t = time.perf_counter()
            out = subprocess.run([ECHO, call], env=env, capture_output=True, check=True).stdout
            dt_b = time.perf_counter() - t
            assert b"args were" in out
            if i >= 10:
                via_xapid.append(dt_x)
                bare.append(dt_b)
        (xm, xp), (bm, bp) = summary(via_xapid), summary(bare)
        print(f"host.call_plugin echo: median {xm * 1000:.1f} ms, p90 {xp * 1000:.1f} ms")
        print(f"bare fork+exec echo:   median {bm * 1000:.1f} ms, p90 {bp * 1000:.1f} ms")
        print(f"ratio (medians): {xm / bm:.2f}")
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
