"""`xe console` against a real guest: build/xe, on a terminal (a pty the
test makes), takes the VM's text console through HttpConnect and shows
the guest's serial output; Ctrl-] ends it and xe exits 0."""
import os
import pty
import select
import subprocess
import time

from test_vm_qemu import daemon, guest, new_guest_vm, ok, wait_ready  # noqa: F401 (fixtures)
from test_xe_client import XE
from xapid_daemon import PASSWORD


def read_until(fd, text, timeout):
    got = b""
    deadline = time.time() + timeout
    while text not in got and time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the pty's other end closed
                break
            if not chunk:
                break
            got += chunk
    return got


def test_xe_console_shows_the_guest_and_ends_at_ctrl_bracket(daemon, guest):  # noqa: F811
    proxy, s, vm, uuid = new_guest_vm(daemon, guest)
    ok(proxy.VM.start(s, vm, False, False))
    try:
        wait_ready(daemon, uuid)
        master, slave = pty.openpty()
        p = subprocess.Popen([XE, "-s", "127.0.0.1", "-p", str(daemon.port), "--nossl",
                              "-u", "root", "-pw", PASSWORD, "console", f"uuid={uuid}"],
                             stdin=slave, stdout=slave, stderr=slave, close_fds=True)
        os.close(slave)
        try:
            seen = read_until(master, b"XAPID-GUEST-ALIVE", 60)
            assert b"Connecting to console on VM" in seen, seen
            assert b"XAPID-GUEST-ALIVE" in seen, seen  # the guest's heartbeat, live
            os.write(master, b"\x1d")  # Ctrl-]
            assert p.wait(timeout=30) == 0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            os.close(master)
        assert ok(proxy.VM.get_power_state(s, vm)) == "Running"
    finally:
        ok(proxy.VM.hard_shutdown(s, vm))
