"""Sessions (login variants, logout, change_password) over XML-RPC and
JSON-RPC, and get_all_records for every class of the datamodel."""
import http.client
import json
import os
import xmlrpc.client

import pytest

from xapid_daemon import Daemon, PASSWORD, REPO


@pytest.fixture(scope="module")
def daemon():
    d = Daemon()
    yield d
    d.stop()


class JsonRpc:
    """A plain JSON-RPC client on one keep-alive connection."""

    def __init__(self, port, version):
        self.conn = http.client.HTTPConnection("127.0.0.1", port)
        self.version = version
        self.next_id = 0

    def call(self, method, *params):
        self.next_id += 1
        req = {"method": method, "params": list(params), "id": self.next_id}
        if self.version == 2:
            req["jsonrpc"] = "2.0"
        self.conn.request("POST", "/jsonrpc", json.dumps(req),
                          {"Content-Type": "application/json"})
        reply = json.loads(self.conn.getresponse().read())
        assert reply["id"] == self.next_id
        return reply

    def error(self, method, *params):
        reply = self.call(method, *params)
        if self.version == 2:
            assert "result" not in reply and reply["error"]["code"] == 1
            return [reply["error"]["message"]] + reply["error"]["data"]
        assert reply["result"] is None
        return reply["error"]

    def value(self, method, *params):
        reply = self.call(method, *params)
        assert "error" not in reply or reply["error"] is None, reply
        return reply["result"]


def test_login_variants_and_logout(daemon):
    api = xmlrpc.client.ServerProxy(daemon.url)
    for args in (("root", PASSWORD), ("root", PASSWORD, "1.1"),
                 ("root", PASSWORD, "1.1", "test-suite")):
        s = api.session.login_with_password(*args)["Value"]
        record = api.session.get_record(s, s)["Value"]
        assert record["is_local_superuser"] is True
        assert record["originator"] == (args[3] if len(args) == 4 else "")
        host = api.session.get_this_host(s, s)["Value"]
        assert api.host.get_all(s)["Value"] == [host]
        assert api.session.logout(s) == {"Status": "Success", "Value": ""}
        assert api.pool.get_all(s)["ErrorDescription"] == ["SESSION_INVALID", s]
    assert api.session.login_with_password("root", "wrong")["ErrorDescription"] == \
        ["SESSION_AUTHENTICATION_FAILED", "root", "Authentication failure"]
    assert api.session.login_with_password("admin", PASSWORD)["ErrorDescription"][:2] == \
        ["SESSION_AUTHENTICATION_FAILED", "admin"]
    assert api.session.login_with_password("root")["ErrorDescription"] == \
        ["MESSAGE_PARAMETER_COUNT_MISMATCH", "session.login_with_password", "2", "1"]


@pytest.mark.parametrize("version", [1, 2])
def test_json_rpc_sessions_and_errors(daemon, version):
    rpc = JsonRpc(daemon.port, version)
    s = rpc.value("session.login_with_password", "root", PASSWORD)
    assert rpc.value("pool.get_all", s)
    assert rpc.error("VM.get_record", s, "OpaqueRef:x") == ["HANDLE_INVALID", "VM", "OpaqueRef:x"]
    assert rpc.error("VM.frobnicate", s) == ["MESSAGE_METHOD_UNKNOWN", "VM.frobnicate"]
    assert rpc.error("session.login_with_password", "root", "bad")[0] == \
        "SESSION_AUTHENTICATION_FAILED"
    assert "session.login_with_password" in rpc.value("system.listMethods")
    rpc.value("session.logout", s)
    assert rpc.error("pool.get_all", s) == ["SESSION_INVALID", s]


def test_change_password(tmp_path):
    d = Daemon()
    try:
        api = xmlrpc.client.ServerProxy(d.url)
        s = api.session.login_with_password("root", PASSWORD)["Value"]
        assert api.session.change_password(s, "wrong", "x")["ErrorDescription"][0] == \
            "CHANGE_PASSWORD_REJECTED"
        assert api.session.change_password(s, PASSWORD, "new-pw")["Status"] == "Success"
        assert api.session.login_with_password("root", PASSWORD)["Status"] == "Failure"
        assert api.session.login_with_password("root", "new-pw")["Status"] == "Success"
        d.stop()
        d.start()  # the new password is durable; the file only seeds the first start
        api = xmlrpc.client.ServerProxy(d.url)
        assert api.session.login_with_password("root", "new-pw")["Status"] == "Success"
    finally:
        d.stop()


def datamodel():
    with open(os.path.join(REPO, "idl", "datamodel.json")) as f:
        return json.load(f)


def test_list_methods_is_bare_and_only_implemented(daemon):
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port)
    conn.request("POST", "/", xmlrpc.client.dumps((), "system.listMethods"))
    body = conn.getresponse().read()
    assert body.startswith(b"<methodResponse><params><param><value><array><data>")
    methods = xmlrpc.client.loads(body)[0][0]
    assert "VM.get_record" in methods and "session.login_with_password" in methods
    assert "VM.start" in methods
    assert "VM.restart_device_models" not in methods  # no handler: absent, unknown when called
    api = xmlrpc.client.ServerProxy(daemon.url)
    s = api.session.login_with_password("root", PASSWORD)["Value"]
    assert api.VM.restart_device_models(s, "OpaqueRef:x")["ErrorDescription"] == \
        ["MESSAGE_METHOD_UNKNOWN", "VM.restart_device_models"]


def test_get_all_records_for_every_class(daemon):
    api = xmlrpc.client.ServerProxy(daemon.url)
    s = api.session.login_with_password("root", PASSWORD)["Value"]
    rpc = JsonRpc(daemon.port, 2)
    checked = 0
    for cls in datamodel()["classes"]:
        if not any(m["name"] == "get_all_records" and m["implicit"] and m["state"] != "Removed"
                   for m in cls["messages"]):
            continue
        fields = {f["name"] for f in cls["fields"] if f["state"] != "Removed"}
        records = api.__getattr__(cls["name"]).get_all_records(s)
        assert records["Status"] == "Success", (cls["name"], records)
        assert set(rpc.value(f"{cls['name']}.get_all_records", s)) == set(records["Value"])
        for ref, record in records["Value"].items():
            assert set(record) == fields, cls["name"]
        checked += 1
    assert checked > 50


def test_first_start_objects(daemon):
    api = xmlrpc.client.ServerProxy(daemon.url)
    s = api.session.login_with_password("root", PASSWORD)["Value"]
    pool = next(iter(api.pool.get_all_records(s)["Value"].values()))
    host = api.host.get_record(s, pool["master"])["Value"]
    assert host["API_version_major"] == "2"
    assert len(host["host_CPUs"]) == os.cpu_count()
    vms = api.VM.get_all_records(s)["Value"].values()
    assert sum(v["is_control_domain"] for v in vms) == 1
    assert "Other install media" in {v["name_label"] for v in vms if v["is_a_template"]}
    srs = api.SR.get_all_records(s)["Value"]
    assert sorted(sr["type"] for sr in srs.values()) == ["file", "iso"]
    assert pool["default_SR"] in srs
    sr = srs[pool["default_SR"]]
    assert api.PBD.get_host(s, sr["PBDs"][0])["Value"] == pool["master"]
    roles = {r["name_label"] for r in api.role.get_all_records(s)["Value"].values()}
    assert {"pool-admin", "pool-operator", "vm-power-admin", "vm-admin", "vm-operator",
            "read-only"} <= roles
    assert api.role.get_by_uuid(s, "0165f154-ba3e-034e-6b27-5d271af109ba")["Status"] == "Success"


@pytest.mark.parametrize("print_it", [False, True])
def test_missing_password_file_is_generated_and_printed_when_asked(tmp_path, print_it):
    """The generated password is always in the file (mode 0600); stdout,
    often a shared terminal or a journal, shows it only with
    --print-root-password."""
    import subprocess
    from xapid_daemon import XAPID, listening_port
    state = tmp_path / "state"
    pw_file = tmp_path / "made-by-xapid"
    port = None
    proc = subprocess.Popen([XAPID, "--state-dir", str(state), "--listen", "127.0.0.1:0",
                             "--root-password-file", str(pw_file)] +
                            (["--print-root-password"] if print_it else []),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        printed = ""
        for line in proc.stdout:
            printed += line
            port = port or listening_port(line)
            if "xapid: ready" in line:
                break
        password = pw_file.read_text().strip()
        assert len(password) >= 22  # 16 bytes from getrandom, base64
        assert (password in printed) == print_it
        assert str(pw_file) in printed
        assert oct(pw_file.stat().st_mode & 0o777) == "0o600"
        api = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/")
        assert api.session.login_with_password("root", password)["Status"] == "Success"
    finally:
        proc.terminate()
        proc.wait()
