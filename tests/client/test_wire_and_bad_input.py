"""The wire rules clients depend on, checked byte-wise, and bad input that
must get a clear error and change nothing."""
import http.client
import json
import re
import socket
import xmlrpc.client

import pytest

from xapid_daemon import Daemon, PASSWORD


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    sock = str(tmp_path_factory.mktemp("sock") / "xapi.sock")
    d = Daemon(extra_args=["--unix", sock])
    d.unix_path = sock
    yield d
    d.stop()


def post(daemon, body, path="/", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    conn.request("POST", path, body, headers or {})
    reply = conn.getresponse()
    data = reply.read()
    conn.close()
    return reply.status, reply, data


def call_xml(method, *params):
    return xmlrpc.client.dumps(params, method).encode()


def login(daemon):
    return xmlrpc.client.loads(post(daemon, call_xml(
        "session.login_with_password", "root", PASSWORD))[2])[0][0]["Value"]


def test_login_reply_is_compact_and_untyped(daemon):
    status, reply, body = post(daemon, b"<?xml version='1.0'?>\n<methodCall>\n  <methodName>"
                               b"session.login_with_password</methodName>\n  <params>\n"
                               b"    <param><value><string>root</string></value></param>\n"
                               b"    <param><value>" + PASSWORD.encode() + b"</value></param>\n"
                               b"  </params>\n</methodCall>\n")
    assert status == 200
    assert reply.getheader("Content-Type") == "text/xml"
    assert re.fullmatch(
        rb"<methodResponse><params><param><value><struct><member><name>Status</name>"
        rb"<value>Success</value></member><member><name>Value</name><value>OpaqueRef:"
        rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}</value></member>"
        rb"</struct></value></param></params></methodResponse>", body), body


def test_ints_datetimes_and_no_whitespace(daemon):
    s = login(daemon)
    _, _, body = post(daemon, call_xml("host.get_all_records", s))
    assert b"<name>API_version_major</name><value>2</value>" in body
    assert b"<i8>" not in body and b"<nil" not in body and b"<string>" not in body
    assert re.search(rb"<dateTime.iso8601>\d{8}T\d\d:\d\d:\d\dZ</dateTime.iso8601>", body)
    assert not re.search(rb">\s+<", body)
    _, reply, jbody = post(daemon, json.dumps({"jsonrpc": "2.0", "method": "host.get_all_records",
                                               "params": [s], "id": 1}), "/jsonrpc")
    assert reply.getheader("Content-Type") == "application/json"
    host = next(iter(json.loads(jbody)["result"].values()))
    assert host["API_version_major"] == 2
    assert re.fullmatch(r"\d{8}T\d\d:\d\d:\d\dZ", host["software_version"]["date"])


def test_request_spellings_are_accepted(daemon):
    s = login(daemon)
    vm = xmlrpc.client.loads(post(daemon, call_xml("VM.get_all", s))[2])[0][0]["Value"][0]
    for spelling in (b"<value><i4>7</i4></value>", b"<value><int>7</int></value>",
                     b"<value>7</value>", b"<value><string>7</string></value>"):
        body = (b"<methodCall><methodName>VM.set_user_version</methodName><params>"
                b"<param><value>" + s.encode() + b"</value></param><param><value>" +
                vm.encode() + b"</value></param><param>" + spelling + b"</param></params>"
                b"</methodCall>")
        result = xmlrpc.client.loads(post(daemon, body)[2])[0][0]
        assert result == {"Status": "Success", "Value": ""}, (spelling, result)
    got = xmlrpc.client.loads(post(daemon, call_xml("VM.get_user_version", s, vm))[2])[0][0]
    assert got["Value"] == "7"


def test_keep_alive_and_class_underscore_names(daemon):
    s = login(daemon)
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port)
    for i in range(50):
        method = "pool.get_all" if i % 2 else "pool_get_all"
        conn.request("POST", "/RPC2", call_xml(method, s))
        result = xmlrpc.client.loads(conn.getresponse().read())[0][0]
        assert result["Status"] == "Success" and len(result["Value"]) == 1
    conn.close()


def test_unix_socket_is_preauthenticated(daemon):
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(daemon.unix_path)
    body = call_xml("session.login_with_password", "root", "not-the-password")
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    data = b""
    while b"</methodResponse>" not in data:
        chunk = sock.recv(65536)
        assert chunk
        data += chunk
    sock.close()
    assert b"<value>Success</value>" in data


def test_cors_preflight(daemon):
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port)
    conn.request("OPTIONS", "/jsonrpc")
    reply = conn.getresponse()
    reply.read()
    assert reply.status == 200
    assert reply.getheader("Access-Control-Allow-Origin") == "*"


def vm_records(daemon, s):
    return xmlrpc.client.loads(post(daemon, call_xml("VM.get_all_records", s))[2])[0][0]["Value"]


BAD_BODIES = [
    ("/", b"<methodCall><methodName>VM.get_all"),
    ("/", b"not xml at all"),
    ("/", b""),
    ("/", b"<methodCall><methodName>VM.set_name_label</methodName><params><param><value>"
          b"\xff\xfe</value></param></params></methodCall>"),
    ("/", b"<methodCall><methodName>x</methodName><params><param>" +
          b"<value><array><data>" * 5000 + b"</data></array></value>" * 5000 +
          b"</param></params></methodCall>"),
    ("/jsonrpc", b'{"method": "VM.get_all", "params": [}'),
    ("/jsonrpc", b'{"method": "VM.get_all", "params": []}'),
    ("/jsonrpc", b'{"method": "VM.get_all", "params": ["\xff"], "id": 1}'),
    ("/jsonrpc", b'{"method": "x", "params": ' + b"[" * 10000 + b"]" * 10000 + b', "id": 1}'),
    ("/jsonrpc", b"[]"),
]


@pytest.mark.parametrize("path,body", BAD_BODIES)
def test_bad_bodies_get_400_and_change_nothing(daemon, path, body):
    s = login(daemon)
    before = vm_records(daemon, s)
    status, _, reply = post(daemon, body, path)
    assert status == 400, reply
    assert reply.startswith(b"Bad request: ")
    assert vm_records(daemon, s) == before


def test_oversized_body_gets_413(daemon):
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    conn.putrequest("POST", "/")
    conn.putheader("Content-Length", str(64 * 1024 * 1024 + 1))
    conn.endheaders()
    reply = conn.getresponse()
    assert reply.status == 413
    conn.close()
    s = login(daemon)
    assert len(vm_records(daemon, s)) >= 5


def test_wrong_types_and_refs_change_nothing(daemon):
    s = login(daemon)
    before = vm_records(daemon, s)
    vm = next(iter(before))
    api = xmlrpc.client.ServerProxy(daemon.url)
    assert api.VM.set_name_label(s, vm, 5)["ErrorDescription"] == ["FIELD_TYPE_ERROR", "value"]
    assert api.VM.set_actions_after_crash(s, vm, "explode")["Status"] == "Failure"
    assert api.VM.set_affinity(s, vm, "OpaqueRef:nope")["ErrorDescription"] == \
        ["HANDLE_INVALID", "host", "OpaqueRef:nope"]
    assert api.VM.get_all_records_where(s, 'field "x" = ')["ErrorDescription"][0] == \
        "INVALID_VALUE"
    assert api.VM.get_by_uuid(s, "nope")["ErrorDescription"] == ["UUID_INVALID", "VM", "nope"]
    assert api.no_such.method(s)["ErrorDescription"] == ["MESSAGE_METHOD_UNKNOWN",
                                                         "no_such.method"]
    assert vm_records(daemon, s) == before
