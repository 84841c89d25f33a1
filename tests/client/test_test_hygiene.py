"""The test harness's own guarantees: xapid binds a free port itself and says
which (no pick-then-bind race), and a sanitizer report in a daemon's log
fails the test."""
import http.client
import subprocess

import pytest

from xapid_daemon import PASSWORD, XAPID, Daemon, listening_port


def test_listen_on_port_zero_prints_the_port_bound(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    proc = subprocess.Popen([XAPID, "--state-dir", str(tmp_path / "state"), "--hypervisor", "sim",
                             "--listen", "127.0.0.1:0", "--listen", "127.0.0.1:0",
                             "--listen-tls", "127.0.0.1:0", "--root-password-file", str(pw)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "xapid: ready" in line:
                break
        http_ports = [listening_port(line) for line in lines if "http://" in line]
        https = [line for line in lines if "https://" in line]
        assert len(http_ports) == 2 and 0 not in http_ports and len(set(http_ports)) == 2, lines
        assert len(https) == 1 and not https[0].rstrip().endswith(":0"), lines
        for port in http_ports:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/", body=b"<methodCall><methodName>session.login_with_password"
                         b"</methodName><params><param><value>root</value></param><param><value>"
                         + PASSWORD.encode() + b"</value></param></params></methodCall>",
                         headers={"Content-Type": "text/xml"})
            assert b"Success" in conn.getresponse().read()
    finally:
        proc.terminate()
        proc.wait()


def test_two_daemons_get_their_own_ports():
    a, b = Daemon(extra_args=["--hypervisor", "sim"]), Daemon(extra_args=["--hypervisor", "sim"])
    try:
        assert a.port != b.port
        a.login()
        b.login()
    finally:
        a.stop()
        b.stop()


@pytest.mark.parametrize("report", [
    b"==4242==ERROR: AddressSanitizer: heap-use-after-free on address 0x6020",
    b"==4242==ERROR: LeakSanitizer: detected memory leaks",
    b"../src/api/task.c:99:5: runtime error: signed integer overflow",
])
def test_a_sanitizer_report_in_the_log_fails_the_test(report):
    d = Daemon(extra_args=["--hypervisor", "sim"])
    d.stop()
    d.check_log()  # a clean log passes
    with open(d.log_path, "ab") as f:
        f.write(b"\n" + report + b"\n")
    with pytest.raises(AssertionError, match="sanitizer report"):
        d.check_log()
