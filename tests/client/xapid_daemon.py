"""Starts a real xapid on a free loopback port with its own state dir, and
fails the test when the daemon's log holds a sanitizer report."""
import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import xmlrpc.client

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
XAPID = os.environ.get("XAPID_BIN", os.path.join(REPO, "build", "xapid"))
PASSWORD = "xapid-test-pw"


# What AddressSanitizer, LeakSanitizer and UBSan print when they find a fault
# (a sanitizer build of xapid writes them to its stderr, STATE_DIR/xapid.log).
SANITIZER_REPORT = re.compile(rb"ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error: "
                              rb"|UndefinedBehaviorSanitizer")
LISTENING = re.compile(rb"xapid: listening on http://[^\s]*:(\d+)")
LISTENING_TLS = re.compile(rb"xapid: listening on https://[^\s]*:(\d+)")


def listening_port(line):
    """The port of an "xapid: listening on http://HOST:PORT" line, else None."""
    m = LISTENING.search(line if isinstance(line, bytes) else line.encode())
    return int(m.group(1)) if m else None


def free_port():
    """A port free now, which another process may take before it is bound:
    prefer "--listen 127.0.0.1:0" and listening_port() on xapid's output."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_made_state_dirs = []  # Daemons whose state dir this module made


@atexit.register
def _remove_made_state_dirs():
    """Tests leave nothing behind: the state dirs made here go when the test
    run ends (XAPID_KEEP_STATE=1 keeps them to read their xapid.log)."""
    if os.environ.get("XAPID_KEEP_STATE"):
        return
    for d in _made_state_dirs:
        if d.proc and d.proc.poll() is None:
            try:
                d.stop()
            except AssertionError:
                pass  # its test, which left it running, has already ended
        shutil.rmtree(d.state_dir, ignore_errors=True)


class Daemon:
    def __init__(self, state_dir=None, extra_args=(), cmd_prefix=(), listen="127.0.0.1:0"):
        if state_dir is None:
            state_dir = tempfile.mkdtemp(prefix="xapid-test-")
            _made_state_dirs.append(self)
        self.state_dir = state_dir
        self.password_file = os.path.join(self.state_dir, "pw")
        with open(self.password_file, "w") as f:
            f.write(PASSWORD + "\n")
        self.extra_args = list(extra_args)
        self.cmd_prefix = list(cmd_prefix)  # e.g. ["ip", "netns", "exec", ns]
        self.listen = listen  # "127.0.0.2:PORT": a pool's hosts share one port
        self.proc = None
        self.start()

    def start(self):
        # xapid binds a free port itself and prints it: no window in which
        # another process can take a port picked for it.
        self.log_path = os.path.join(self.state_dir, "xapid.log")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.cmd_prefix + [XAPID, "--state-dir", self.state_dir, "--listen", self.listen,
             "--root-password-file", self.password_file] + self.extra_args,
            stdout=subprocess.PIPE, stderr=self.log)
        self.port = None
        self.tls_port = None  # with --listen-tls
        for line in self.proc.stdout:
            if self.port is None:
                self.port = listening_port(line)
            tls = LISTENING_TLS.search(line)
            if tls:
                self.tls_port = int(tls.group(1))
            if b"xapid: ready" in line and self.port:
                self.address = self.listen.rsplit(":", 1)[0]
                self.url = f"http://{self.address}:{self.port}/"
                return
        self.proc.wait()
        self.log.close()
        self.check_log()
        raise RuntimeError(f"xapid did not start; see {self.log_path}")

    def check_log(self):
        """Fails when a sanitizer reported a fault in any run of this daemon."""
        with open(self.log_path, "rb") as f:
            text = f.read()
        m = SANITIZER_REPORT.search(text)
        if m:
            start = max(0, text.rfind(b"\n", 0, max(0, m.start() - 200)))
            excerpt = text[start:start + 4000].decode(errors="replace")
            raise AssertionError(f"sanitizer report in {self.log_path}:\n{excerpt}")

    def wait_for_stdout(self, marker, timeout):
        """Reads the daemon's stdout (past its first "ready") until a line
        holding marker: True, or False at timeout or end of output."""
        found = threading.Event()

        def read():
            for line in self.proc.stdout:
                if marker in line:
                    found.set()
                    return
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        return found.is_set()

    def log_tail(self, size=4000):
        """The end of xapid.log, for a failing test's message."""
        with open(self.log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode(errors="replace")

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
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        self.check_log()


def ok(reply):
    """The Value of a successful XenAPI reply (fails the test otherwise)."""
    assert reply["Status"] == "Success", reply
    return reply["Value"]


def err(reply):
    """The ErrorDescription of a failed XenAPI reply (fails the test otherwise)."""
    assert reply["Status"] == "Failure", reply
    return reply["ErrorDescription"]


def new_vm(api, name="vm", **fields):
    """A halted VM of 256 MiB and one vCPU made by VM.create (fields
    override the record's); its ref."""
    proxy, s = api
    record = {"name_label": name, "memory_static_max": str(256 << 20), "VCPUs_max": "1",
              "VCPUs_at_startup": "1", "actions_after_shutdown": "destroy",
              "actions_after_reboot": "restart", "actions_after_crash": "destroy"}
    record.update(fields)
    return ok(proxy.VM.create(s, record))


def wait_until(condition, timeout=30, what="the condition"):
    """Polls condition() until it returns a true value (returned) or timeout
    seconds pass (fails the test): ordering by state, not by sleeping."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.01)
