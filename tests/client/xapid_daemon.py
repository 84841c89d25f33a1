"""Starts a real xapid on a free loopback port with its own state dir."""
import os
import signal
import socket
import subprocess
import tempfile
import time
import xmlrpc.client

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
XAPID = os.environ.get("XAPID_BIN", os.path.join(REPO, "build", "xapid"))
PASSWORD = "xapid-test-pw"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    def __init__(self, state_dir=None, extra_args=(), cmd_prefix=()):
        self.state_dir = state_dir or tempfile.mkdtemp(prefix="xapid-test-")
        self.password_file = os.path.join(self.state_dir, "pw")
        with open(self.password_file, "w") as f:
            f.write(PASSWORD + "\n")
        self.extra_args = list(extra_args)
        self.cmd_prefix = list(cmd_prefix)  # e.g. ["ip", "netns", "exec", ns]
        self.proc = None
        self.start()

    def start(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = open(os.path.join(self.state_dir, "xapid.log"), "ab")
        self.proc = subprocess.Popen(
            self.cmd_prefix + [XAPID, "--state-dir", self.state_dir, "--listen", f"127.0.0.1:{self.port}",
             "--root-password-file", self.password_file] + self.extra_args,
            stdout=subprocess.PIPE, stderr=self.log)
        deadline = time.time() + 20
        for line in self.proc.stdout:
            if b"xapid: ready" in line:
                return
            if time.time() > deadline:
                break
        raise RuntimeError(f"xapid did not start; see {self.state_dir}/xapid.log")

    def proxy(self):
        return xmlrpc.client.ServerProxy(self.url)

    def login(self):
        api = self.proxy()
        reply = api.session.login_with_password("root", PASSWORD)
        assert reply["Status"] == "Success", reply
        return api, reply["Value"]

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def ok(reply):
    """The Value of a successful XenAPI reply (fails the test otherwise)."""
    assert reply["Status"] == "Success", reply
    return reply["Value"]


def err(reply):
    """The ErrorDescription of a failed XenAPI reply (fails the test otherwise)."""
    assert reply["Status"] == "Failure", reply
    return reply["ErrorDescription"]
