"""The real test guest of the *_qemu modules: its files
(scripts/build-test-guest), a daemon with the qemu driver that leaves no
QEMU behind, a domain's serial console and its QMP monitor."""
import contextlib
import glob
import json
import os
import signal
import socket
import subprocess
import time

from xapid_daemon import REPO, Daemon

GUEST_DIR = os.environ.get("XAPID_TEST_GUEST", os.path.join(REPO, "build", "test-guest"))


def build_guest():
    """Makes the guest's kernel and initramfs in GUEST_DIR (once; later calls are quick)."""
    subprocess.run([os.path.join(REPO, "scripts", "build-test-guest"), GUEST_DIR], check=True,
                   stdout=subprocess.DEVNULL)


@contextlib.contextmanager
def qemu_daemon(*extra_args):
    """A daemon booting guests from GUEST_DIR; at the end it stops, and any
    QEMU it left running is killed."""
    d = Daemon(extra_args=["--guest-kernel-dir", GUEST_DIR, *extra_args])
    try:
        yield d
    finally:
        d.stop()
        for pidfile in glob.glob(os.path.join(d.state_dir, "domains", "*", "qemu.pid")):
            try:
                os.kill(int(open(pidfile).read()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass


def domain_dir(daemon, uuid):
    return os.path.join(daemon.state_dir, "domains", uuid)


def console_log(daemon, uuid):
    """What the guest has written on its serial console so far."""
    try:
        with open(os.path.join(domain_dir(daemon, uuid), "console.log"), errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def wait_for(predicate, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def qmp(daemon, uuid, command, arguments=None):
    """One command on the domain's QMP monitor: its return value. QEMU
    serves one client per QMP socket, so the socket is closed after, or
    xapid would find the monitor busy."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.path.join(domain_dir(daemon, uuid), "qmp.sock"))
    f = s.makefile("rw")
    try:
        json.loads(f.readline())
        for c, a in (("qmp_capabilities", None), (command, arguments)):
            f.write(json.dumps({"execute": c, **({"arguments": a} if a else {})}) + "\n")
            f.flush()
            while True:
                reply = json.loads(f.readline())
                if "return" in reply or "error" in reply:
                    break
        return reply["return"]
    finally:
        f.close()
        s.close()
