"""A raw client of XAPI's thin CLI protocol, byte by byte as XenServer's
xe speaks it (ocaml/xe-cli/newcli.ml), for the xe tests."""
import socket
import struct

PREFIX = b"XenSource thin CLI protocol"


def i32(n):
    return struct.pack("<i", n)


def frame(payload):
    return i32(len(payload)) + payload


RESPONSE_OK = frame(i32(10) + i32(5))
RESPONSE_FAILED = frame(i32(10) + i32(6))


def blob(data):
    return frame(i32(11) + i32(7) + i32(len(data))) + data + frame(i32(11) + i32(8))


class Reader:
    def __init__(self, sock):
        self.sock = sock

    def exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise EOFError(f"connection closed after {out!r}")
            out += chunk
        return out

    def int(self):
        return struct.unpack("<i", self.exact(4))[0]


def parse_command(body):
    """(name, args) of a Command payload after its tag 9."""
    def s(at):
        n = struct.unpack_from("<i", body, at)[0]
        return body[at + 4:at + 4 + n].decode(), at + 4 + n
    tag = struct.unpack_from("<i", body, 0)[0]
    if tag in (0, 1, 15, 16, 17):
        return {0: "Print", 1: "Load", 15: "Debug", 16: "PrintStderr", 17: "HttpConnect"}[tag], [s(4)[0]]
    if tag in (12, 13):
        a, at = s(4)
        b, _ = s(at)
        return ("HttpGet" if tag == 12 else "HttpPut"), [a, b]
    if tag == 3:
        return "Prompt", []
    if tag == 4:
        return "Exit", [struct.unpack_from("<i", body, 4)[0]]
    if tag == 14:
        code, at = s(4)
        n = struct.unpack_from("<i", body, at)[0]
        at += 4
        params = []
        for _ in range(n):
            p, at = s(at)
            params.append(p)
        return "Error", [code, params]
    raise AssertionError(f"unknown command tag {tag}")


def connect(addr):
    if isinstance(addr, str):
        sock = socket.socket(socket.AF_UNIX)
    else:
        sock = socket.socket()
    sock.connect(addr)
    return sock


def request(args, user="root", password="", session=None):
    lines = ([f"session_id={session}"] if session else []) + list(args)
    lines += [f"username={user}", f"password={password}"]
    body = "\n".join(lines).encode()
    return (b"POST /cli HTTP/1.0\r\nUser-agent: xe-cli/Unix/0.2\r\noriginator: cli\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def run(addr, args, user="root", password="", prompt_answer=None, session=None):
    """Runs one command; returns (messages, exit code). Answers a Prompt
    with prompt_answer, HttpPut/HttpGet with Failed (tests do transfers
    themselves through on_http)."""
    sock = connect(addr)
    try:
        sock.sendall(request(args, user, password, session))
        r = Reader(sock)
        greeting = r.exact(len(PREFIX) + 8)
        assert greeting == PREFIX + i32(0) + i32(2), greeting
        sock.sendall(PREFIX + i32(0) + i32(2))
        messages = []
        while True:
            n = r.int()
            payload = r.exact(n)
            kind = struct.unpack_from("<i", payload, 0)[0]
            assert kind == 9, payload
            name, margs = parse_command(payload[4:])
            messages.append((name, margs))
            if name == "Exit":
                return messages, margs[0]
            if name == "Prompt":
                sock.sendall(blob((prompt_answer or "").encode()))
            elif name in ("HttpPut", "HttpGet", "Load", "HttpConnect"):
                sock.sendall(RESPONSE_FAILED)
    finally:
        sock.close()


def output(messages, kind="Print"):
    return "".join(m[1][0] + ("\n" if kind == "Print" else "") for m in messages if m[0] == kind)
