#!/usr/bin/env python3
"""The cost of users other than root, against peers measured in the same
run on the same daemon (sim hypervisor, external authentication PAM):

1. RPC rate of a cheap read (VM.get_record on one keep-alive connection,
   sequential) in a pool-admin subject's session, whose every call goes
   through the RBAC check, against root's session, which bypasses it (the
   local superuser): ratio of the rates (goal: within 3%). Blocks of N
   calls alternate between the two so that the machine's other load falls
   on both; the figure is the median of the blocks' ratios.
2. The same for a side-effecting call (VM.set_name_description), whose
   line also goes to the audit log in both sessions.
3. session.login_with_password of a Linux user through PAM (pam_unix
   here: /etc/shadow's yescrypt hash) against root's login (xapid's own
   yescrypt check), each followed by its logout: ratio of the medians.

With --callgrind, 1 and 2 are instead counted in instructions per call
(xapid under valgrind's callgrind, counters zeroed after a warm-up and
dumped after the calls, as bench/instructions_ab.py): a figure a loaded
machine cannot move; login times are then not measured.

Makes a Linux user xapidt_bench (removed at the end): run as root.
Usage: bench/rbac_cost.py [--calls N] [--blocks B] [--logins L] [--callgrind]
(after ninja -C build)
"""
import argparse
import http.client
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import xmlrpc.client

from sim_xapid import PASSWORD as PW, XAPID, start_sim_xapid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER, USER_PW = "xapidt_bench", "Pw-xapidt-bench"


def start(state, prefix=()):
    return start_sim_xapid(state, ["--no-metrics"], prefix)


def ok(reply):
    assert reply["Status"] == "Success", reply
    return reply["Value"]


class Conn:
    """One keep-alive connection sending a prepared XML-RPC body."""

    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port)

    def call(self, body):
        self.c.request("POST", "/", body, {"Content-Type": "text/xml"})
        r = self.c.getresponse()
        data = r.read()
        assert b"Success" in data, data[:300]
        return data


def rate(conn, body, n):
    t0 = time.perf_counter()
    for _ in range(n):
        conn.call(body)
    return n / (time.perf_counter() - t0)


def compare(port, bodies, calls, blocks):
    """Median over blocks of rate(subject)/rate(root), and the mean rates."""
    conns = {k: Conn(port) for k in bodies}
    for k in bodies:  # warm up
        rate(conns[k], bodies[k], calls // 4 or 1)
    ratios, rates = [], {k: [] for k in bodies}
    for b in range(blocks):
        order = ["root", "subject"] if b % 2 == 0 else ["subject", "root"]
        got = {k: rate(conns[k], bodies[k], calls) for k in order}
        for k in got:
            rates[k].append(got[k])
        ratios.append(got["subject"] / got["root"])
    return statistics.median(ratios), {k: statistics.mean(v) for k, v in rates.items()}


def instructions_per_call(pid, out, dumps, conn, body, calls):
    for _ in range(calls // 10 or 1):
        conn.call(body)
    subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
    for _ in range(calls):
        conn.call(body)
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
    with open(f"{out}.{dumps}") as f:
        for line in f:
            if line.startswith("summary:"):
                return int(line.split()[1]) / calls
    raise SystemExit("no callgrind summary")


def login_times(api, name, password, n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        s = ok(api.session.login_with_password(name, password, "1.0", "bench"))
        out.append(time.perf_counter() - t0)
        ok(api.session.logout(s))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--blocks", type=int, default=10)
    ap.add_argument("--logins", type=int, default=40)
    ap.add_argument("--callgrind", action="store_true")
    args = ap.parse_args()
    subprocess.run(["userdel", USER], stderr=subprocess.DEVNULL)
    subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", USER], check=True)
    state = tempfile.mkdtemp(prefix="xapid-rbac-bench-")
    proc = None
    try:
        subprocess.run(["chpasswd"], input=f"{USER}:{USER_PW}\n".encode(), check=True)
        out = os.path.join(state, "callgrind.out")
        proc, port = start(state, ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
                           if args.callgrind else [])
        api = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/")
        root = ok(api.session.login_with_password("root", PW))
        pool = ok(api.pool.get_all(root))[0]
        ok(api.pool.enable_external_auth(root, pool, {}, "bench", "PAM"))
        sid = ok(api.auth.get_subject_identifier(root, USER))
        subject = ok(api.subject.create(root, {"subject_identifier": sid}))
        admin = ok(api.role.get_by_name_label(root, "pool-admin"))[0]
        ok(api.subject.add_to_roles(root, subject, admin))
        user = ok(api.session.login_with_password(USER, USER_PW, "1.0", "bench"))
        vm = ok(api.VM.create(root, {
            "name_label": "bench", "memory_static_max": str(64 << 20), "VCPUs_max": "1",
            "VCPUs_at_startup": "1", "actions_after_shutdown": "destroy",
            "actions_after_reboot": "restart", "actions_after_crash": "destroy"}))

        def body(method, s, *rest):
            return xmlrpc.client.dumps((s, vm) + rest, method).encode()

        if args.callgrind:
            dumps = 0
            conn = Conn(port)
            for method, rest in (("VM.get_record", ()), ("VM.set_name_description", ("d",))):
                got = {}
                for who, s in (("root", root), ("subject", user)):
                    dumps += 1
                    got[who] = instructions_per_call(proc.pid, out, dumps, conn,
                                                     body(method, s, *rest), args.calls)
                print(f"{method}: root {got['root']:,.0f} instructions per call, pool-admin "
                      f"subject {got['subject']:,.0f}: subject/root "
                      f"{got['subject'] / got['root']:.4f}")
            got = {}
            for who, name, pw in (("root", "root", PW), ("PAM", USER, USER_PW)):
                subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True,
                               capture_output=True)
                login_times(api, name, pw, args.logins)
                subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True,
                               capture_output=True)
                dumps += 1
                with open(f"{out}.{dumps}") as f:
                    got[who] = next(int(line.split()[1]) for line in f
                                    if line.startswith("summary:")) / args.logins
            print(f"login+logout: root {got['root']:,.0f} instructions, PAM user "
                  f"{got['PAM']:,.0f}: PAM/root {got['PAM'] / got['root']:.2f}")
            return
        print(f"xapid {XAPID}; {args.blocks} blocks of {args.calls} calls, sequential, "
              "one keep-alive connection each")
        for method, rest in (("VM.get_record", ()), ("VM.set_name_description", ("d",))):
            ratio, rates = compare(port, {"root": body(method, root, *rest),
                                          "subject": body(method, user, *rest)},
                                   args.calls, args.blocks)
            print(f"{method}: root {rates['root']:.0f}/s, pool-admin subject "
                  f"{rates['subject']:.0f}/s: subject/root {ratio:.3f} (median of blocks)")
        pam = login_times(api, USER, USER_PW, args.logins)
        own = login_times(api, "root", PW, args.logins)
        print(f"login+logout x{args.logins}: PAM user median {statistics.median(pam) * 1000:.1f} ms,"
              f" root median {statistics.median(own) * 1000:.1f} ms: PAM/root "
              f"{statistics.median(pam) / statistics.median(own):.2f}")
    finally:
        if proc:
            proc.terminate()
            proc.wait()
        shutil.rmtree(state, ignore_errors=True)
        subprocess.run(["userdel", USER], stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
