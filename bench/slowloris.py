#!/usr/bin/env python3
"""A well-behaved client's VM.get_record latency while 1,000 slowloris
connections from the same box hold the server, as a ratio against its
latency on the idle server, measured in the same run.

The load (a separate process, so that it does not share the client's
interpreter): 1,000 connections from 127.0.0.2-127.0.0.11 (100 each, the
default per-address cap), each sending a request line and then one header
byte a second, never the end of its headers; a connection the server
closes or refuses is opened again after a second. The client holds one
keep-alive connection from 127.0.0.1, opened before the load, and calls
VM.get_record on the control domain back to back.

Usage: bench/slowloris.py [--seconds S] [--cycles C] [--connections N] [--xapid BINARY]"""
import argparse
import errno
import http.client
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import time
import xmlrpc.client

import run


def load(port, connections, sources):
    """Runs until killed: keeps `connections` half-open connections."""
    sel = selectors.DefaultSelector()
    pending = []  # (due, source): connections to open again
    now = time.monotonic()
    for i in range(connections):
        pending.append((now, sources[i % len(sources)]))
    conns = {}  # socket -> [source, next byte due]
    while True:
        now = time.monotonic()
        again = [p for p in pending if p[0] > now]
        for _, source in (p for p in pending if p[0] <= now):
            s = socket.socket()
            s.setblocking(False)
            s.bind((source, 0))
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            except OSError:
                s.close()
                again.append((now + 1, source))
                continue
            conns[s] = [source, now, b"GET / HTTP/1.1\r\nHost: x\r\n"]
            sel.register(s, selectors.EVENT_READ)
        pending = again
        for s, state in list(conns.items()):
            if state[1] <= now:
                try:
                    s.send(state[2] if state[2] else b"a")
                    state[2] = b""
                    state[1] = now + 1
                except (BlockingIOError, InterruptedError):
                    state[1] = now + 0.1
                except OSError:
                    sel.unregister(s)
                    s.close()
                    del conns[s]
                    pending.append((now + 1, state[0]))
        for key, _ in sel.select(timeout=0.1):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:  # closed or refused by the server
                sel.unregister(s)
                state = conns.pop(s)
                s.close()
                pending.append((time.monotonic() + 1, state[0]))


def latencies(conn, body, seconds):
    out = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        conn.request("POST", "/", body, {"Content-Type": "text/xml"})
        reply = conn.getresponse().read()
        out.append(time.perf_counter() - start)
        assert b"Success" in reply
    return sorted(out)


def pct(values, p):
    return values[min(len(values) - 1, int(len(values) * p))]


def threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10, help="per phase")
    ap.add_argument("--cycles", type=int, default=3, help="idle and loaded phases, in turn")
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--xapid", default=os.path.join(run.BUILD, "xapid"))
    ap.add_argument("--load", type=int, help=argparse.SUPPRESS)  # the load process: port
    args = ap.parse_args()
    sources = [f"127.0.0.{i}" for i in range(2, 12)]
    if args.load:
        load(args.load, args.connections, sources)
        return 0
    state = tempfile.mkdtemp(prefix="xapid-slowloris-")
    pw = os.path.join(state, "pw")
    with open(pw, "w") as f:
        f.write("benchpw")
    port = run.free_port()
    xapid = subprocess.Popen([args.xapid, "--state-dir", state, "--listen",
                              f"127.0.0.1:{port}", "--root-password-file", pw,
                              "--hypervisor", "sim"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    run.wait_ready(xapid)
    api = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/")
    session = api.session.login_with_password("root", "benchpw")["Value"]
    dom0 = api.VM.get_all(session)["Value"][0]
    body = run.call_body("VM.get_record", session, dom0)
    # The client's connection is opened before the load and kept: with
    # the load at the server's caps, a new one would be refused.
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.connect()
    idle, loaded, held = [], [], []
    # Idle and loaded phases in turn, so that the other load of a shared
    # machine falls on both alike.
    for _ in range(args.cycles):
        idle += latencies(conn, body, args.seconds)
        attack = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--load",
                                   str(port), "--connections", str(args.connections)])
        # Let the load reach the server's caps (timing only, no assertion).
        ramp_end = time.monotonic() + 20
        while threads(xapid.pid) < 0.9 * min(args.connections, 800) and \
                time.monotonic() < ramp_end:
            time.sleep(0.2)
        held.append(threads(xapid.pid))
        loaded += latencies(conn, body, args.seconds)
        held.append(threads(xapid.pid))
        attack.kill()
        attack.wait()
    conn.close()
    idle.sort()
    loaded.sort()
    rss = run.current_rss_mb(xapid.pid)
    xapid.terminate()
    xapid.wait()
    subprocess.run(["rm", "-rf", state])
    i99, l99 = pct(idle, 0.99), pct(loaded, 0.99)
    print(f"idle:      {len(idle)} calls, p50 {pct(idle, 0.5) * 1e3:.3f} ms, "
          f"p99 {i99 * 1e3:.3f} ms")
    print(f"slowloris: {len(loaded)} calls, p50 {pct(loaded, 0.5) * 1e3:.3f} ms, "
          f"p99 {l99 * 1e3:.3f} ms; xapid threads under load {min(held)}-{max(held)}, "
          f"RSS at the end {rss:.1f} MB")
    print(f"p99 ratio loaded/idle: {l99 / i99:.2f} (goal <= 2)")


if __name__ == "__main__":
    sys.exit(main())
