"""A sim-driver xapid of this tree's build for the benchmarks: started on
a free loopback port with root's password in its state dir."""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
XAPID = os.path.join(ROOT, "build", "xapid")
PASSWORD = "bench"


def start_sim_xapid(state, extra=(), prefix=()):
    """(process, port) once it says ready; prefix runs it under another
    program (sudo, valgrind), extra adds flags."""
    pw = os.path.join(state, "pw")
    with open(pw, "w") as f:
        f.write(PASSWORD + "\n")
    proc = subprocess.Popen(list(prefix) + [XAPID, "--state-dir", state, "--listen", "127.0.0.1:0",
                                            "--root-password-file", pw, "--hypervisor", "sim"]
                            + list(extra), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    port = None
    for line in proc.stdout:
        if b"listening on http://" in line:
            port = int(line.rsplit(b":", 1)[1])
        if b"ready" in line:
            return proc, port
    raise SystemExit("xapid did not start")
