"""What the installed service relies on, against the daemon under test (the
sanitized one in CI): xapid --config FILE takes its settings from the file
with the command line's flags winning, refuses a key it does not know, and
tells NOTIFY_SOCKET READY=1 once the API answers (again after
host.restart_agent re-executed it) and STOPPING=1 at a stop."""
import os
import socket
import subprocess
import xmlrpc.client

import pytest

from xapid_daemon import PASSWORD, SANITIZER_REPORT, XAPID, listening_port, ok

pytestmark = pytest.mark.timeout(120)


def write_conf(tmp_path, text):
    path = tmp_path / "xapid.conf"
    path.write_text(text)
    return str(path)


def test_unknown_key_stops_the_start(tmp_path):
    conf = write_conf(tmp_path, "[xapid]\nstate-dir = %s\nlisten-tsl = 127.0.0.1:0\n"
                      % (tmp_path / "state"))
    r = subprocess.run([XAPID, "--config", conf], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert f"{conf}: listen-tsl is not a setting of xapid" in r.stderr
    assert not (tmp_path / "state").exists()


def test_config_flags_win_and_notify(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "pw").write_text(PASSWORD + "\n")
    # The file's listen is taken over by the command line's; the rest is the file's.
    conf = write_conf(tmp_path, f"""# as /etc/xapid/xapid.conf, on loopback
[xapid]
state-dir = {state}
runtime-dir = {tmp_path / "run"}
listen = 127.0.0.1:1
listen-tls = 127.0.0.1:0
unix = {state / "xapi.sock"}
root-password-file = {state / "pw"}
hypervisor = sim
no-metrics = true
""")
    notify_path = str(tmp_path / "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(60)
    env = dict(os.environ, NOTIFY_SOCKET=notify_path)
    with open(state / "xapid.log", "ab") as log:
        proc = subprocess.Popen([XAPID, "--config", conf, "--listen", "127.0.0.1:0"],
                                stdout=subprocess.PIPE, stderr=log, env=env)
    try:
        port = tls = None
        for line in proc.stdout:
            port = port or listening_port(line)
            tls = tls or b"listening on https://" in line
            if b"xapid: ready" in line:
                break
        assert port and port != 1 and tls
        assert notify.recv(4096) == b"READY=1"
        proxy = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/")
        s = ok(proxy.session.login_with_password("root", PASSWORD))
        host = ok(proxy.host.get_all(s))[0]
        assert os.path.exists(state / "xapi.sock") and os.path.exists(state / "xapid.db")
        # host.restart_agent: the same process, ready again.
        ok(proxy.host.restart_agent(s, host))
        assert notify.recv(4096) == b"READY=1"
        assert proc.poll() is None
        proxy = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/")
        ok(proxy.session.login_with_password("root", PASSWORD))
        proc.terminate()
        assert proc.wait(timeout=60) == 0
        assert notify.recv(4096) == b"STOPPING=1"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()
    with open(state / "xapid.log", "rb") as f:
        assert not SANITIZER_REPORT.search(f.read())
