"""Consoles: a running VM's rfb and vt100 console records, located at
https://<host address>/console?uuid=<console uuid> as XAPI's, and /console
proxied to the test guest's QEMU: CONNECT (XAPI's 200 OK, then raw RFB)
and WebSocket (websocket-client, Debian's python3-websocket, with the
"binary" subprotocol Xen Orchestra's noVNC asks for), over HTTP and
HTTPS. The RFB handshake and a framebuffer update are checked byte by
byte; a bad session is refused with no byte of the VM; the vt100 console
shows what the guest prints on its serial port, to several clients at once,
and what any of them types reaches the guest; every console connection
ends when the VM suspends or shuts down."""
import base64
import glob
import os
import socket
import ssl
import struct
import time

import pytest
import websocket

from qemu_guest import qemu_daemon
from test_vm_qemu import (alive, guest, new_guest_vm,  # noqa: F401 (guest)
                          qemu_pid, wait_ready)
from xapid_daemon import PASSWORD, Daemon, ok, wait_until

TIMEOUT = 180  # s for any one read from a guest booted under TCG on a loaded host
CONNECT_ANSWER = (b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n"
                  b"Cache-Control: no-cache, no-store\r\n\r\n")


# ---- clients ------------------------------------------------------------------

class Stream:
    """Exact reads over a socket, or over a WebSocket's binary messages."""

    def __init__(self, sock=None, ws=None, pending=b""):
        self.sock, self.ws, self.buf = sock, ws, pending

    def _more(self):
        if self.sock:
            chunk = self.sock.recv(65536)
        else:
            opcode, chunk = self.ws.recv_data()
            assert opcode == websocket.ABNF.OPCODE_BINARY, (opcode, chunk)
        if not chunk:
            raise EOFError
        self.buf += chunk

    def recv(self, n):
        while len(self.buf) < n:
            self._more()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def recv_until(self, marker):
        while marker not in self.buf:
            self._more()
        return self.buf

    def send(self, data):
        if self.sock:
            self.sock.sendall(data)
        else:
            self.ws.send_binary(data)


def tcp(d, tls=False):
    sock = socket.create_connection(("127.0.0.1", d.tls_port if tls else d.port), timeout=TIMEOUT)
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        sock = ctx.wrap_socket(sock)
    return sock


def connect(d, query, version="1.1", headers=(), tls=False):
    """CONNECT /console?query: (the answer's head, a Stream of what follows)."""
    sock = tcp(d, tls)
    lines = [f"CONNECT /console?{query} HTTP/{version}", "Host: 127.0.0.1", *headers, "", ""]
    sock.sendall("\r\n".join(lines).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", Stream(sock=sock, pending=rest)


def read_to_end(sock):
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def ws_connect(d, query, tls=False, **options):
    scheme, port = ("wss", d.tls_port) if tls else ("ws", d.port)
    sslopt = {"cert_reqs": ssl.CERT_NONE, "check_hostname": False} if tls else None
    return websocket.create_connection(f"{scheme}://127.0.0.1:{port}/console?{query}",
                                       timeout=TIMEOUT, sslopt=sslopt, **options)


def rfb(stream):
    """RFB 3.8 with security None up to one framebuffer update of the whole
    screen (raw pixels, as no SetEncodings was sent): (width, height, name)."""
    assert stream.recv(12) == b"RFB 003.008\n"
    stream.send(b"RFB 003.008\n")
    types = stream.recv(stream.recv(1)[0])
    assert 1 in types, types  # None: QEMU's VNC without a password
    stream.send(b"\x01")
    assert stream.recv(4) == b"\0\0\0\0"  # SecurityResult OK
    stream.send(b"\x01")  # ClientInit, shared
    width, height = struct.unpack(">HH", stream.recv(4))
    pixel_format = stream.recv(16)
    name = stream.recv(struct.unpack(">I", stream.recv(4))[0]).decode()
    assert width > 0 and height > 0
    stream.send(struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))  # FramebufferUpdateRequest
    message, _, rects = struct.unpack(">BBH", stream.recv(4))
    assert message == 0 and rects >= 1  # FramebufferUpdate
    covered = 0
    for _ in range(rects):
        x, y, w, h, encoding = struct.unpack(">HHHHi", stream.recv(12))
        assert encoding == 0 and x + w <= width and y + h <= height
        stream.recv(w * h * pixel_format[0] // 8)
        covered += w * h
    assert covered > 0
    return width, height, name


def basic_auth(user="root", password=PASSWORD):
    return "Authorization: Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# ---- without a guest: refusals ------------------------------------------------------

@pytest.fixture()
def sim():
    d = Daemon(extra_args=["--hypervisor", "sim"])
    yield d
    d.stop()


def status_of(head):
    return int(head.split(b" ", 2)[1])


def test_refusals_without_a_running_console(sim):
    proxy, s = sim.login()
    vm = ok(proxy.VM.create(s, {"name_label": "halted", "memory_static_max": str(64 << 20),
                                "VCPUs_max": "1", "VCPUs_at_startup": "1"}))
    uuid = ok(proxy.VM.get_uuid(s, vm))
    # No session, a bad one, a bad password: 401 (asking for basic auth).
    for query, headers in ((f"uuid={uuid}", ()), (f"uuid={uuid}&session_id=OpaqueRef:nope", ()),
                           (f"uuid={uuid}", (basic_auth(password="wrong"),)),
                           (f"uuid={uuid}", ("Cookie: session_id=OpaqueRef:nope",))):
        head, stream = connect(sim, query, headers=headers)
        assert status_of(head) == 401 and b"WWW-Authenticate: Basic" in head, head
        stream.sock.close()
    # Authenticated, but nothing to reach: 500 as XAPI (the reason in the body).
    for query, code in ((f"uuid={uuid}&session_id={s}", b"VM_BAD_POWER_STATE"),
                        (f"ref={vm}&session_id={s}", b"VM_BAD_POWER_STATE"),
                        (f"uuid=00000000-0000-0000-0000-000000000000&session_id={s}",
                         b"UUID_INVALID"),
                        (f"ref=OpaqueRef:nope&session_id={s}", b"HANDLE_INVALID"),
                        (f"session_id={s}", b"HANDLE_INVALID")):
        head, stream = connect(sim, query)
        assert status_of(head) == 500, head
        assert code in stream.buf + read_to_end(stream.sock)
        stream.sock.close()
    # A simulated domain has no screen: no console records, nothing to connect to.
    ok(proxy.VM.start(s, vm, False, False))
    assert ok(proxy.VM.get_consoles(s, vm)) == []
    head, stream = connect(sim, f"ref={vm}&session_id={s}")
    assert status_of(head) == 500, head
    stream.sock.close()


# ---- a real guest ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def running(guest):  # noqa: F811 (the fixture imported above)
    with qemu_daemon("--listen-tls", "127.0.0.1:0") as d:
        proxy, s, vm, uuid = new_guest_vm(d, guest, name_label="console guest")
        ok(proxy.VM.start(s, vm, False, False))
        wait_ready(d, uuid)
        yield d, proxy, s, vm, uuid


def consoles(proxy, s, vm):
    """protocol -> record of the VM's consoles."""
    records = [ok(proxy.console.get_record(s, c)) for c in ok(proxy.VM.get_consoles(s, vm))]
    by_protocol = {r["protocol"]: r for r in records}
    assert len(by_protocol) == len(records)
    return by_protocol


def test_console_records_are_located_at_this_hosts_https_url(running):
    d, proxy, s, vm, uuid = running
    host = ok(proxy.host.get_all(s))[0]
    address = ok(proxy.host.get_address(s, host))
    records = consoles(proxy, s, vm)
    assert sorted(records) == ["rfb", "vt100"]
    for r in records.values():
        assert r["VM"] == vm
        assert r["location"] == f"https://{address}/console?uuid={r['uuid']}"
        assert d.state_dir not in r["location"] and "sock" not in r["location"]


def test_connect_gives_rfb_and_a_framebuffer_update(running):
    d, proxy, s, vm, uuid = running
    head, stream = connect(d, f"uuid={uuid}&session_id={s}")
    assert head == CONNECT_ANSWER  # XAPI's bytes exactly
    width, height, name = rfb(stream)
    assert "console guest" in name  # QEMU names the display after -name
    stream.sock.close()


def test_connect_http10_cookie_basic_auth_and_refs(running):
    d, proxy, s, vm, uuid = running
    rfb_console = consoles(proxy, s, vm)["rfb"]
    console_ref = ok(proxy.console.get_by_uuid(s, rfb_console["uuid"]))
    # Xen Orchestra's fallback: HTTP/1.0 with the session in a cookie, and
    # still "HTTP/1.1 200 OK" back, as XAPI answers.
    for query, headers in ((f"ref={vm}", (f"Cookie: session_id={s}",)),
                           (f"ref={console_ref}", (basic_auth(),)),
                           (f"uuid={rfb_console['uuid']}&session_id={s}", ())):
        head, stream = connect(d, query, version="1.0", headers=headers)
        assert head == CONNECT_ANSWER
        assert stream.recv(12) == b"RFB 003.008\n"
        stream.sock.close()


def test_bad_session_is_refused_with_no_byte_of_the_vm(running):
    d, proxy, s, vm, uuid = running
    for query in (f"uuid={uuid}", f"uuid={uuid}&session_id=OpaqueRef:nope"):
        head, stream = connect(d, query)
        rest = read_to_end(stream.sock)
        assert status_of(head) == 401, head
        assert b"RFB" not in head + stream.buf + rest
        stream.sock.close()
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        ws_connect(d, f"uuid={uuid}", subprotocols=["binary"], cookie="session_id=OpaqueRef:nope")
    assert refused.value.status_code == 401
    # A logged-out session is no better.
    _, gone = d.login()
    ok(proxy.session.logout(gone))
    head, stream = connect(d, f"uuid={uuid}&session_id={gone}")
    assert status_of(head) == 401 and b"RFB" not in head + stream.buf + read_to_end(stream.sock)
    stream.sock.close()


def test_websocket_binary_gives_rfb_and_a_framebuffer_update(running):
    d, proxy, s, vm, uuid = running
    # As Xen Orchestra opens it: subprotocol binary, the session in a cookie.
    ws = ws_connect(d, f"uuid={uuid}", subprotocols=["binary"], cookie=f"session_id={s}")
    assert ws.subprotocol == "binary"
    width, height, name = rfb(Stream(ws=ws))
    assert "console guest" in name
    ws.close()


def test_websocket_without_subprotocol_fragments_and_ping(running):
    d, proxy, s, vm, uuid = running
    ws = ws_connect(d, f"uuid={uuid}&session_id={s}")
    assert "sec-websocket-protocol" not in ws.getheaders()  # none asked, none given
    stream = Stream(ws=ws)
    assert stream.recv(12) == b"RFB 003.008\n"
    # The client's version in two fragments with a ping between them.
    ABNF = websocket.ABNF
    ws.send_frame(ABNF.create_frame(b"RFB 00", ABNF.OPCODE_BINARY, fin=0))
    ws.ping(b"between")
    ws.send_frame(ABNF.create_frame(b"3.008\n", ABNF.OPCODE_CONT, fin=1))
    opcode, frame = ws.recv_data_frame(control_frame=True)
    assert (opcode, frame.data) == (ABNF.OPCODE_PONG, b"between")
    types = stream.recv(stream.recv(1)[0])  # the server went on: the version arrived whole
    assert 1 in types
    ws.send_close()
    opcode, frame = ws.recv_data_frame(control_frame=True)
    assert opcode == ABNF.OPCODE_CLOSE and frame.data[:2] == struct.pack(">H", 1000)
    ws.shutdown()
    # Refused handshakes: no key (XAPI's 501, Hixie-76's too), a key that is
    # not one, no Upgrade: websocket, another version, unknown subprotocols.
    good = "dGhlIHNhbXBsZSBub25jZQ=="
    for headers, status in ((("Upgrade: websocket",), 501),
                            (("Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5",
                              "Sec-WebSocket-Key2: 12998 5 Y3 1  .P00", "Upgrade: WebSocket"), 501),
                            (("Upgrade: websocket", "Sec-WebSocket-Key: short"), 400),
                            ((f"Sec-WebSocket-Key: {good}",), 400),
                            (("Upgrade: websocket", f"Sec-WebSocket-Key: {good}",
                              "Sec-WebSocket-Version: 8"), 426)):
        sock = tcp(d)
        sock.sendall("\r\n".join([f"GET /console?uuid={uuid}&session_id={s} HTTP/1.1",
                                   "Host: x", "Connection: Upgrade", *headers, "", ""]).encode())
        answer = read_to_end(sock)
        assert status_of(answer) == status and b"RFB" not in answer, answer
        sock.close()
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        ws_connect(d, f"uuid={uuid}&session_id={s}", subprotocols=["base64"])
    assert refused.value.status_code == 400


def test_consoles_over_https(running):
    d, proxy, s, vm, uuid = running
    ws = ws_connect(d, f"uuid={uuid}", tls=True, subprotocols=["binary"],
                    cookie=f"session_id={s}")
    rfb(Stream(ws=ws))
    ws.close()
    head, stream = connect(d, f"uuid={uuid}", version="1.0", tls=True,
                           headers=(f"Cookie: session_id={s}",))
    assert head == CONNECT_ANSWER
    rfb(stream)
    stream.sock.close()


def test_vt100_console_shows_the_serial_output(running):
    d, proxy, s, vm, uuid = running
    serial = consoles(proxy, s, vm)["vt100"]
    # The guest prints XAPID-GUEST-ALIVE every 5 s: one arrives live.
    head, stream = connect(d, f"uuid={serial['uuid']}&session_id={s}")
    assert head == CONNECT_ANSWER
    assert b"XAPID-GUEST-ALIVE" in stream.recv_until(b"XAPID-GUEST-ALIVE")
    # Several clients share it, as on XenServer (QEMU's serial port takes
    # one: xapid's hub holds it): a WebSocket client sees the same lines.
    ws = ws_connect(d, f"uuid={serial['uuid']}&session_id={s}", subprotocols=["binary"])
    ws_stream = Stream(ws=ws)
    assert b"XAPID-GUEST-ALIVE" in ws_stream.recv_until(b"XAPID-GUEST-ALIVE")
    stream.buf = b""
    assert b"XAPID-GUEST-ALIVE" in stream.recv_until(b"XAPID-GUEST-ALIVE")
    # What either one types reaches the guest: its tty echoes it, to both.
    for typist, marker in ((ws_stream, b"xapid-typed-over-websocket"),
                           (stream, b"xapid-typed-over-connect")):
        stream.buf = ws_stream.buf = b""
        typist.send(marker + b"\r")
        for viewer in (stream, ws_stream):
            assert marker in viewer.recv_until(marker)
    # The first one leaving ends nothing for the other.
    stream.sock.close()
    ws_stream.buf = b""
    assert b"XAPID-GUEST-ALIVE" in ws_stream.recv_until(b"XAPID-GUEST-ALIVE")
    ws.close()
    # And the console opens again once all have left.
    head, again = connect(d, f"uuid={serial['uuid']}&session_id={s}")
    assert head == CONNECT_ANSWER
    assert b"XAPID-GUEST-ALIVE" in again.recv_until(b"XAPID-GUEST-ALIVE")
    again.sock.close()
    # QEMU logs what it wrote to the socket just after writing it.
    log_path = os.path.join(d.state_dir, "domains", uuid, "console.log")

    def logged():
        with open(log_path, "rb") as f:
            log = f.read()
        return b"XAPID-GUEST-READY" in log and log.count(b"XAPID-GUEST-ALIVE") >= 2

    wait_until(logged, timeout=TIMEOUT, what="both live lines in console.log")


def open_all(d, s, vm, proxy):
    """An rfb CONNECT, an rfb WebSocket and a vt100 CONNECT, each shown live."""
    records = consoles(proxy, s, vm)
    head, raw = connect(d, f"uuid={records['rfb']['uuid']}&session_id={s}")
    assert head == CONNECT_ANSWER and raw.recv(12) == b"RFB 003.008\n"
    ws = ws_connect(d, f"ref={vm}&session_id={s}", subprotocols=["binary"])
    assert Stream(ws=ws).recv(12) == b"RFB 003.008\n"
    head, serial = connect(d, f"uuid={records['vt100']['uuid']}&session_id={s}")
    assert head == CONNECT_ANSWER
    return raw, ws, serial


def assert_all_closed(raw, ws, serial):
    assert raw.sock.recv(65536) == b""
    raw.sock.close()
    serial.sock.settimeout(TIMEOUT)
    while serial.sock.recv(65536):  # the guest's last words, then the end
        pass
    serial.sock.close()
    opcode, frame = ws.recv_data_frame(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert frame.data[:2] == struct.pack(">H", 1001)  # going away: the VM stopped
    ws.shutdown()


def test_consoles_close_when_the_vm_suspends_and_shuts_down(running):
    d, proxy, s, vm, uuid = running
    old = consoles(proxy, s, vm)
    raw, ws, serial = open_all(d, s, vm, proxy)
    ok(proxy.VM.suspend(s, vm))
    assert_all_closed(raw, ws, serial)
    assert ok(proxy.VM.get_consoles(s, vm)) == []
    head, stream = connect(d, f"uuid={old['rfb']['uuid']}&session_id={s}")
    assert status_of(head) == 500 and b"RFB" not in stream.buf + read_to_end(stream.sock)
    stream.sock.close()

    ok(proxy.VM.resume(s, vm, False, False))
    new = consoles(proxy, s, vm)  # new records, at new locations
    assert {r["uuid"] for r in new.values()}.isdisjoint(r["uuid"] for r in old.values())

    # xapid stops with consoles open: they end, and xapid does not wait on
    # them; the guest runs on and its consoles work again after the restart.
    # A record as an older xapid made it (a host path) is replaced then; the
    # right ones stay, uuids and all.
    raw, ws, serial = open_all(d, s, vm, proxy)
    vnc = os.path.join(d.state_dir, "domains", uuid, "vnc.sock")
    stale = ok(proxy.console.create(s, {"VM": vm, "protocol": "rfb", "location": "unix:" + vnc,
                                        "other_config": {}}))
    d.stop()
    for stream in (raw, serial):
        stream.sock.settimeout(TIMEOUT)
        while stream.sock.recv(65536):
            pass
        stream.sock.close()
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        ws.recv_data_frame(control_frame=True)
    ws.shutdown()
    d.start()
    proxy, s = d.login()
    assert stale not in ok(proxy.VM.get_consoles(s, vm))
    assert consoles(proxy, s, vm) == new
    address = ok(proxy.host.get_address(s, ok(proxy.host.get_all(s))[0]))
    for r in new.values():
        assert r["location"] == f"https://{address}/console?uuid={r['uuid']}"

    raw, ws, serial = open_all(d, s, vm, proxy)
    pid = qemu_pid(d, uuid)
    ok(proxy.VM.clean_shutdown(s, vm))
    assert_all_closed(raw, ws, serial)
    assert ok(proxy.VM.get_power_state(s, vm)) == "Halted"
    assert ok(proxy.VM.get_consoles(s, vm)) == []
    domain = os.path.join(d.state_dir, "domains", uuid)
    assert not glob.glob(os.path.join(domain, "*.sock"))  # nothing left behind
    wait_until(lambda: not alive(pid), what="the end of the VM's QEMU")
