"""POST /cli, XAPI's thin CLI protocol, spoken byte by byte by a raw
client (xe_wire.py) against a real daemon (sim driver): the greeting, the
framing of each command (golden bytes), authentication from the body's
username=/password= lines, a Prompt answered with a Blob, an HttpPut whose
transfer the test makes itself, and xe's error texts and exit codes."""
import http.client
import os
import re
import socket

import pytest

import xe_wire as w
from golden_files import check_golden
from xapid_daemon import PASSWORD, Daemon

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    sock = str(tmp_path_factory.mktemp("xe") / "xapi.sock")
    d = Daemon(extra_args=["--hypervisor", "sim", "--unix", sock])
    d.sock = sock
    yield d
    d.stop()


def tcp(daemon):
    return ("127.0.0.1", daemon.port)


def golden(name, text):
    check_golden(os.path.join("xe", name), text)


def raw_exchange(addr, args, user="root", password=PASSWORD):
    """Every byte the server sends for one command, with our greeting sent."""
    s = w.connect(addr)
    s.sendall(w.request(args, user, password))
    s.settimeout(30)
    got = b""
    sent_greeting = False
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
        if not sent_greeting and len(got) >= len(w.PREFIX) + 8:
            s.sendall(w.PREFIX + w.i32(0) + w.i32(2))
            sent_greeting = True
    s.close()
    return got


def framed(got):
    """The greeting, then one frame a line, each as hex and as decoded."""
    n = len(w.PREFIX) + 8
    lines = [f"greeting {got[:n].hex(' ', -4)}"]
    at = n
    while at < len(got):
        size = int.from_bytes(got[at:at + 4], "little", signed=True)
        payload = got[at + 4:at + 4 + size]
        lines.append(f"frame {got[at:at + 4 + size].hex(' ', -4)}")
        lines.append(f"  = {w.parse_command(payload[4:])!r}")
        at += 4 + size
    return "\n".join(lines) + "\n"


def test_greeting_then_framed_commands_golden(daemon):
    got = raw_exchange(tcp(daemon), ["vm-param-get", "uuid=no-such-vm", "param-name=name-label"])
    # no HTTP status line: the greeting first, version 0.2
    assert got.startswith(b"XenSource thin CLI protocol\x00\x00\x00\x00\x02\x00\x00\x00")
    golden("vm-param-get-bad-uuid.txt", framed(got))


def test_unknown_command_golden(daemon):
    got = raw_exchange(tcp(daemon), ["no-such-command"])
    golden("unknown-command.txt", framed(got))
    msgs, code = w.run(tcp(daemon), ["no-such-command"], password=PASSWORD)
    assert code == 1
    assert w.output(msgs, "PrintStderr") == "Unknown command: no-such-command\nFor usage run: 'xe help'\n"


def test_authentication(daemon):
    msgs, code = w.run(tcp(daemon), ["host-list", "--minimal"], password="wrong")
    assert code == 1
    assert w.output(msgs, "PrintStderr") == "Authentication failed\nFor usage run: 'xe help'\n"
    msgs, code = w.run(tcp(daemon), ["host-list", "--minimal"], user="", password="")
    assert (code, w.output(msgs, "PrintStderr")) == (
        1, "Username/password must be specified\nFor usage run: 'xe help'\n")
    msgs, code = w.run(tcp(daemon), ["host-list", "--minimal"], password=PASSWORD)
    assert code == 0 and UUID.fullmatch(w.output(msgs).strip())
    # the unix socket trusts its callers, as XAPI's
    msgs, code = w.run(daemon.sock, ["host-list", "--minimal"], password="anything")
    assert code == 0 and UUID.fullmatch(w.output(msgs).strip())


def test_required_parameter_and_syntax(daemon):
    msgs, code = w.run(daemon.sock, ["vm-param-get", "uuid=x"])
    assert (code, w.output(msgs, "PrintStderr")) == (
        1, "Required parameter not found: param-name\nFor usage run: 'xe help'\n")
    msgs, code = w.run(daemon.sock, ["name=value"])
    assert code == 1 and w.output(msgs, "PrintStderr").startswith("Syntax error: command name is missing")


def test_error_without_description_is_an_error_command(daemon):
    # a field no VM has: XAPI's "Missing parameter" has no description, so
    # the client gets Error(code, params)
    msgs, code = w.run(daemon.sock, ["vm-list", "no-such-field=1"])
    assert code == 1
    assert ("Error", ["Missing parameter", ["no-such-field"]]) in msgs


def new_vm(daemon, name):
    msgs, code = w.run(daemon.sock, ["vm-install", "template=Other install media",
                                     f"new-name-label={name}"])
    assert code == 0, msgs
    return w.output(msgs).strip()


def test_prompt_answered_by_a_blob(daemon):
    uuid = new_vm(daemon, "prompted")
    msgs, code = w.run(daemon.sock, ["vm-uninstall", f"uuid={uuid}"], prompt_answer="no")
    assert code == 0
    assert ("Prompt", []) in msgs
    assert "Aborted (you typed: 'no')" in w.output(msgs)
    msgs, code = w.run(daemon.sock, ["vm-list", f"uuid={uuid}", "--minimal"])
    assert w.output(msgs).strip() == uuid  # still there
    msgs, code = w.run(daemon.sock, ["vm-uninstall", f"uuid={uuid}"], prompt_answer="yes")
    assert code == 0 and "All objects destroyed" in w.output(msgs)
    msgs, code = w.run(daemon.sock, ["vm-list", f"uuid={uuid}", "--minimal"])
    assert w.output(msgs).strip() == ""


def test_http_put_transfer(daemon):
    msgs, _ = w.run(daemon.sock, ["sr-list", "name-label=Local storage", "--minimal"])
    sr = w.output(msgs).strip()
    msgs, code = w.run(daemon.sock, ["vdi-create", f"sr-uuid={sr}", "name-label=put", "virtual-size=1MiB"])
    vdi = w.output(msgs).strip()
    data = bytes(range(256)) * 4096
    s = w.connect(daemon.sock)
    s.sendall(w.request(["vdi-import", f"uuid={vdi}", "filename=disk.raw", "format=raw"]))
    r = w.Reader(s)
    assert r.exact(len(w.PREFIX) + 8) == w.PREFIX + w.i32(0) + w.i32(2)
    s.sendall(w.PREFIX + w.i32(0) + w.i32(2))
    name, (filename, path) = w.parse_command(r.exact(r.int())[4:])
    assert (name, filename) == ("HttpPut", "disk.raw")
    assert re.fullmatch(r"/cli_upload/[0-9a-f]{32}", path)
    # as XenServer's xe: the headers, then the status line, then the body
    put = socket.create_connection(("127.0.0.1", daemon.port))
    put.sendall(f"PUT {path} HTTP/1.0\r\nContent-length: {len(data)}\r\n\r\n".encode())
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += put.recv(1)
    assert head.startswith(b"HTTP/1.1 200 ")
    put.sendall(data)
    put.close()
    s.sendall(w.RESPONSE_OK)
    rest = []
    while True:
        rest.append(w.parse_command(r.exact(r.int())[4:]))
        if rest[-1][0] == "Exit":
            break
    s.close()
    assert rest == [("Exit", [0])]
    # the path served once, and only while the command waited
    again = socket.create_connection(("127.0.0.1", daemon.port))
    again.sendall(f"PUT {path} HTTP/1.0\r\nContent-length: 1\r\n\r\n".encode())
    assert again.recv(100).startswith(b"HTTP/1.1 404")
    again.close()
    _, session = daemon.login()
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port)
    conn.request("GET", f"/export_raw_vdi?session_id={session}&vdi={vdi}&format=raw")
    assert conn.getresponse().read() == data


def test_http_put_refused_by_the_client(daemon):
    msgs, _ = w.run(daemon.sock, ["sr-list", "name-label=Local storage", "--minimal"])
    sr = w.output(msgs).strip()
    msgs, _ = w.run(daemon.sock, ["vdi-create", f"sr-uuid={sr}", "name-label=refused", "virtual-size=1MiB"])
    vdi = w.output(msgs).strip()
    msgs, code = w.run(daemon.sock, ["vdi-import", f"uuid={vdi}", "filename=/nonexistent"])
    assert code == 1
    assert w.output(msgs, "PrintStderr").startswith("Error: VDI import failed")
    # the task made for the transfer is gone
    msgs, _ = w.run(daemon.sock, ["task-list", "--minimal"])
    assert w.output(msgs).strip() == ""


def test_body_limit(daemon):
    s = socket.create_connection(("127.0.0.1", daemon.port))
    s.sendall(b"POST /cli HTTP/1.0\r\ncontent-length: 300000\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 413")
    s.close()
