"""Failed logins are answered after a penalty that grows per source
address and is served by the failing request alone: other addresses and
the unix socket log in at once, and one address cannot pile up sleeping
requests. The penalties are read from the daemon's log, never timed."""
import http.client
import os
import re
import shutil
import threading
import time
import xmlrpc.client

import pytest

from xapid_daemon import Daemon, PASSWORD


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self):
        import socket
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.path)


def login_from(daemon, source, password, timeout=30):
    """The reply of a login sent from the given source address (a unix
    socket path or a loopback IP)."""
    if source.startswith("/"):
        conn = UnixHTTPConnection(source)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=timeout,
                                          source_address=(source, 0))
    conn.request("POST", "/", xmlrpc.client.dumps(("root", password),
                                                  "session.login_with_password"))
    reply = xmlrpc.client.loads(conn.getresponse().read())[0][0]
    conn.close()
    return reply


def log_text(daemon):
    daemon.log.flush()
    with open(os.path.join(daemon.state_dir, "xapid.log"), errors="replace") as f:
        return f.read()


def penalties(daemon, addr):
    """(failures in a row, delay in ms) of each penalty logged for addr."""
    return [(int(n), int(ms)) for n, ms in re.findall(
        r"login failure (\d+) in a row from " + re.escape(addr) + r": answering in (\d+) ms",
        log_text(daemon))]


def start(tmp_path, delay_ms):
    sock = str(tmp_path / "xapi.sock")
    d = Daemon(extra_args=["--hypervisor", "sim", "--unix", sock,
                           "--login-failure-delay", str(delay_ms)])
    d.unix_path = sock
    return d


def test_penalty_grows_per_address_and_success_clears_it(tmp_path):
    d = start(tmp_path, 1)
    try:
        for _ in range(3):
            reply = login_from(d, "127.0.0.2", "wrong")
            assert reply["ErrorDescription"] == ["SESSION_AUTHENTICATION_FAILED", "root",
                                                 "Authentication failure"]
        assert penalties(d, "127.0.0.2") == [(1, 1), (2, 2), (3, 4)]
        login_from(d, "127.0.0.3", "wrong")
        assert penalties(d, "127.0.0.3") == [(1, 1)]  # its own count
        # The right password still logs in, as with XAPI, and clears the count.
        assert login_from(d, "127.0.0.2", PASSWORD)["Status"] == "Success"
        login_from(d, "127.0.0.2", "wrong")
        assert penalties(d, "127.0.0.2")[-1] == (1, 1)
        # The unix socket is pre-authenticated: never penalised.
        assert login_from(d, d.unix_path, "anything")["Status"] == "Success"
        assert "from an unknown address" not in log_text(d)
    finally:
        d.stop()
        shutil.rmtree(d.state_dir, ignore_errors=True)


def test_waiting_failures_delay_no_one_else(tmp_path):
    """Four failures from one address wait out a long penalty; meanwhile
    other clients log in, and a fifth attempt from that address is
    answered at once without its password being checked."""
    d = start(tmp_path, 600000)
    waiting = []
    try:
        def fail_and_wait():
            try:
                login_from(d, "127.0.0.4", "wrong", 120)
            except (OSError, http.client.HTTPException):
                pass  # the daemon is killed before it answers

        for _ in range(4):
            t = threading.Thread(target=fail_and_wait, daemon=True)
            t.start()
            waiting.append(t)
        deadline = time.time() + 30
        while len(penalties(d, "127.0.0.4")) < 4 and time.time() < deadline:
            time.sleep(0.05)  # polling the log for a condition, not ordering by sleep
        assert sorted(n for n, _ in penalties(d, "127.0.0.4")) == [1, 2, 3, 4]
        assert login_from(d, "127.0.0.5", PASSWORD)["Status"] == "Success"
        assert login_from(d, d.unix_path, "x")["Status"] == "Success"
        assert penalties(d, "127.0.0.5") == []
        reply = login_from(d, "127.0.0.4", PASSWORD)
        assert reply["ErrorDescription"][0] == "SESSION_AUTHENTICATION_FAILED"
        assert "login from 127.0.0.4 refused unchecked" in log_text(d)
        assert all(t.is_alive() for t in waiting)  # still serving their penalty
    finally:
        d.kill9()  # the waiting answers would take 10 minutes
        d.stop()
        for t in waiting:
            t.join(timeout=30)
        shutil.rmtree(d.state_dir, ignore_errors=True)
