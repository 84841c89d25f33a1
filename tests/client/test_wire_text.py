"""Strings the wire may not carry (invalid UTF-8, C0 controls but tab, LF
and CR, U+FFFE/U+FFFF) are refused at the RPC boundary and change
nothing, whatever the codec and wherever they sit in the parameters; and
whatever is stored (file names) still gives replies a strict XML parser
reads."""
import http.client
import json
import os
import xml.etree.ElementTree as ElementTree
import xmlrpc.client

import pytest

from xapid_daemon import Daemon, PASSWORD, ok

BAD_TEXT = ["a\x01b", "\x1f", "tab\tand\x7f\x0b", "x\uffff"]
REFUSED = "Invalid UTF-8 string in parameter"


@pytest.fixture(scope="module")
def daemon():
    d = Daemon(extra_args=["--hypervisor", "sim"])
    yield d
    d.stop()


def post(daemon, body, path="/"):
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    conn.request("POST", path, body)
    reply = conn.getresponse()
    data = reply.read()
    conn.close()
    return reply.status, data


def json_call(daemon, method, *params):
    body = json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params), "id": 7})
    status, data = post(daemon, body.encode(), "/jsonrpc")
    assert status == 200, data
    return json.loads(data)


def xml_call(daemon, method, *params):
    """The parsed reply, or the HTTP status when the request is refused as
    not XML at all. The reply is first read by expat (strict XML 1.0)."""
    status, data = post(daemon, xmlrpc.client.dumps(params, method).encode())
    if status != 200:
        return status
    ElementTree.fromstring(data)
    return xmlrpc.client.loads(data)[0][0]


@pytest.fixture(scope="module")
def session(daemon):
    return ok(daemon.proxy().session.login_with_password("root", PASSWORD))


@pytest.fixture(scope="module")
def vm(daemon, session):
    return ok(daemon.proxy().VM.create(session, {"name_label": "text", "other_config": {}}))


def snapshot(daemon, session):
    api = daemon.proxy()
    return ok(api.VM.get_all_records(session)), ok(api.network.get_all_records(session))


def bad_calls(session, vm, text):
    """The same bad text as a plain param, a map key, a map value, a set
    element, and members (name and value) of a create record."""
    return [
        ("VM.set_name_label", [session, vm, text]),
        ("VM.add_to_other_config", [session, vm, text, "v"]),
        ("VM.add_to_other_config", [session, vm, "k", text]),
        ("VM.set_other_config", [session, vm, {"ok": "1", text: "v"}]),
        ("VM.set_tags", [session, vm, ["fine", text]]),
        ("VM.add_tags", [session, vm, text]),
        ("network.create", [session, {"name_label": text}]),
        ("network.create", [session, {"name_label": "n", "other_config": {text: "v"}}]),
        ("network.create", [session, {"name_label": "n", "tags": [text]}]),
        # a bad member name in a record: refused before it is even looked at
        ("network.create", [session, {"name_label": "n", text: "v"}]),
        # and before arity: XAPI's order
        ("VM.get_name_label", [session, vm, text]),
    ]


@pytest.mark.parametrize("text", BAD_TEXT)
def test_json_rpc_refuses_bad_text_and_changes_nothing(daemon, session, vm, text):
    before = snapshot(daemon, session)
    for method, params in bad_calls(session, vm, text):
        reply = json_call(daemon, method, *params)
        assert reply["error"]["message"] == "INVALID_VALUE", (method, params, reply)
        data = reply["error"]["data"]
        assert data[0] == REFUSED
        assert "\ufffd" in data[1] and "\x01" not in data[1]
    assert snapshot(daemon, session) == before


@pytest.mark.parametrize("text", BAD_TEXT)
def test_xml_rpc_refuses_bad_text_and_changes_nothing(daemon, session, vm, text):
    """XML 1.0 cannot hold these characters at all: the document is not
    XML and is refused as such (HTTP 400) before any dispatch."""
    before = snapshot(daemon, session)
    for method, params in bad_calls(session, vm, text):
        reply = xml_call(daemon, method, *params)
        if isinstance(reply, int):
            assert reply == 400
        else:
            assert reply["ErrorDescription"][:2] == ["INVALID_VALUE", REFUSED], (method, reply)
    assert snapshot(daemon, session) == before


def test_invalid_utf8_bytes_refused_by_both_codecs(daemon, session, vm):
    before = snapshot(daemon, session)
    for bad in (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82"):
        body = (b'{"jsonrpc":"2.0","method":"VM.set_name_label","params":["' +
                session.encode() + b'","' + vm.encode() + b'","a' + bad + b'"],"id":1}')
        assert post(daemon, body, "/jsonrpc")[0] == 400
        body = (b"<methodCall><methodName>VM.set_name_label</methodName><params>"
                b"<param><value>" + session.encode() + b"</value></param><param><value>" +
                vm.encode() + b"</value></param><param><value>a" + bad +
                b"</value></param></params></methodCall>")
        assert post(daemon, body)[0] == 400
    assert snapshot(daemon, session) == before


def test_good_text_still_accepted(daemon, session, vm):
    text = "tab\tnew\nline\rcr caf\u00e9 \u20ac \U0001f600 \x7f"
    assert json_call(daemon, "VM.set_name_description", session, vm, text)["result"] == ""
    assert json_call(daemon, "VM.get_name_description", session, vm)["result"] == text
    reply = xml_call(daemon, "VM.get_name_description", session, vm)
    assert reply["Value"] == text


def test_file_names_become_readable_names(daemon, session):
    """An ISO whose file name is not UTF-8 and holds controls gets a VDI
    whose name is its display form; every reply stays strict XML."""
    api = daemon.proxy()
    iso_sr = [r for r, v in ok(api.SR.get_all_records(session)).items() if v["type"] == "iso"][0]
    iso_dir = os.path.join(daemon.state_dir, "iso")
    raw_name = b"caf\xe9\x01\x1b[31m.iso"
    with open(os.path.join(os.fsencode(iso_dir), raw_name), "wb") as f:
        f.write(b"\0" * 4096)
    try:
        ok(api.SR.scan(session, iso_sr))
        status, data = post(daemon, xmlrpc.client.dumps((session,), "VDI.get_all_records").encode())
        assert status == 200
        ElementTree.fromstring(data)  # strict: raises on any byte XML forbids
        records = xmlrpc.client.loads(data)[0][0]["Value"]
        names = [v["name_label"] for v in records.values() if v["name_label"].startswith("caf")]
        assert len(names) == 1, names
        assert "\x01" not in names[0] and "\x1b" not in names[0]
        assert names[0].endswith("[31m.iso")
        reply = json_call(daemon, "VDI.get_all_records", session)
        assert any(v["name_label"] == names[0] for v in reply["result"].values())
    finally:
        os.unlink(os.path.join(os.fsencode(iso_dir), raw_name))
        ok(api.SR.scan(session, iso_sr))
