"""End-to-end checks of the foundation against a real daemon: login, the
generic engine, relations, errors, and durability across kill -9."""
import pytest

from xapid_daemon import Daemon, err, ok

# The README's build, as a user runs it.
pytestmark = pytest.mark.plain_build


@pytest.fixture
def daemon():
    d = Daemon()
    yield d
    d.stop()


VM_RECORD = {"name_label": "smoke", "memory_static_max": "268435456", "VCPUs_max": "1",
             "VCPUs_at_startup": "1", "user_version": "1", "is_a_template": False}


def test_create_relations_and_errors(daemon):
    api, s = daemon.login()
    vm = ok(api.VM.create(s, VM_RECORD))
    assert ok(api.VM.get_power_state(s, vm)) == "Halted"
    seed = ok(api.VM.get_other_config(s, vm))["mac_seed"]  # XAPI's VM.create adds it
    assert ok(api.VM.get_other_config(s, vm)) == {"mac_seed": seed}
    vbd = ok(api.VBD.create(s, {"VM": vm, "VDI": "OpaqueRef:NULL", "userdevice": "0",
                                   "bootable": True, "mode": "RO", "type": "CD",
                                   "empty": True}))
    assert ok(api.VM.get_VBDs(s, vm)) == [vbd]
    ok(api.VM.add_to_other_config(s, vm, "k", "v"))
    assert err(api.VM.add_to_other_config(s, vm, "k", "w")) == \
        ["MAP_DUPLICATE_KEY", "VM", "other_config", vm, "k"]
    assert ok(api.VM.get_other_config(s, vm)) == {"k": "v", "mac_seed": seed}
    assert err(api.VM.get_name_label(s, "OpaqueRef:nope")) == \
        ["HANDLE_INVALID", "VM", "OpaqueRef:nope"]
    assert err(api.VM.set_user_version(s, vm, "x")) == ["FIELD_TYPE_ERROR", "value"]
    assert err(api.VM.get_name_label(s)) == \
        ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.get_name_label", "1", "0"]
    where = ok(api.VM.get_all_records_where(
        s, 'field "name__label"="smoke" and not (field "is_a_template"="true")'))
    assert list(where) == [vm]
    ok(api.VBD.destroy(s, vbd))
    assert ok(api.VM.get_VBDs(s, vm)) == []
    assert err(api.session.login_with_password("root", "wrong"))[0] == \
        "SESSION_AUTHENTICATION_FAILED"


def test_acknowledged_writes_survive_kill9(daemon):
    api, s = daemon.login()
    vms = []
    for i in range(100):
        vm = ok(api.VM.create(s, dict(VM_RECORD, name_label=f"durable-{i}")))
        ok(api.VM.set_name_description(s, vm, f"d{i}"))
        vms.append(vm)
    network = ok(api.network.create(s, {"name_label": "n", "bridge": "br-test"}))
    vif = ok(api.VIF.create(s, {"VM": vms[0], "network": network, "device": "0",
                                   "MAC": "", "MTU": "1500"}))
    daemon.kill9()
    daemon.start()
    api, s2 = daemon.login()
    assert err(api.VM.get_all(s))[0] == "SESSION_INVALID"
    for i, vm in enumerate(vms):
        assert ok(api.VM.get_name_label(s2, vm)) == f"durable-{i}"
        assert ok(api.VM.get_name_description(s2, vm)) == f"d{i}"
    assert ok(api.VM.get_VIFs(s2, vms[0])) == [vif]
    assert ok(api.network.get_VIFs(s2, network)) == [vif]


def test_get_all_records_streams_every_record(daemon):
    """get_all_records replies are written record by record (chunked); the
    result must equal get_record of each object, over both protocols."""
    import http.client
    import json
    api, s = daemon.login()
    for i in range(300):
        ok(api.VM.create(s, dict(VM_RECORD, name_label=f"stream-{i}")))
    records = ok(api.VM.get_all_records(s))
    assert len(records) == 300 + 5  # plus the control domain and 4 templates
    for ref in list(records)[:20]:
        assert ok(api.VM.get_record(s, ref)) == records[ref]
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port)
    conn.request("POST", "/jsonrpc", json.dumps(
        {"jsonrpc": "2.0", "method": "VM.get_all_records", "params": [s], "id": 9}))
    reply = conn.getresponse()
    assert reply.getheader("Content-Type") == "application/json"
    body = json.loads(reply.read())
    assert body["id"] == 9 and set(body["result"]) == set(records)
    # The connection stays usable after a streamed reply.
    conn.request("POST", "/jsonrpc", json.dumps(
        {"jsonrpc": "2.0", "method": "VM.get_all", "params": [s], "id": 10}))
    assert len(json.loads(conn.getresponse().read())["result"]) == 305
