"""The message class against a real daemon (sim hypervisor): create and
its checks, the reads, destroy and destroy_many, events of class message,
durability across kill -9, and the messages xapid raises itself after VM
operations (XAPI's message_forwarding.ml)."""
import xmlrpc.client

from sim_daemon import api, daemon  # noqa: F401 (fixtures)
from xapid_daemon import Daemon, err, new_vm, ok

MiB = 1 << 20


def host_uuid(api):
    proxy, s = api
    return ok(proxy.host.get_uuid(s, ok(proxy.host.get_all(s))[0]))


def test_create_and_reads(api):
    proxy, s = api
    hu = host_uuid(api)
    ref = ok(proxy.message.create(s, "MY_ALERT", "2", "Host", hu, "disk almost full"))
    rec = ok(proxy.message.get_record(s, ref))
    assert rec["name"] == "MY_ALERT" and rec["priority"] == "2"
    assert rec["cls"] == "Host" and rec["obj_uuid"] == hu and rec["body"] == "disk almost full"
    assert isinstance(rec["timestamp"], xmlrpc.client.DateTime)
    assert ok(proxy.message.get_by_uuid(s, rec["uuid"])) == ref
    assert ref in ok(proxy.message.get_all(s))
    assert ok(proxy.message.get_all_records(s))[ref]["uuid"] == rec["uuid"]
    where = ok(proxy.message.get_all_records_where(s, 'field "name" = "MY_ALERT"'))
    assert list(where) == [ref]
    assert ok(proxy.message.get_all_records_where(s, 'field "name" = "NOPE"')) == {}
    since = ok(proxy.message.get_since(s, xmlrpc.client.DateTime("19700101T00:00:00Z")))
    assert ref in since
    assert ok(proxy.message.get_since(s, xmlrpc.client.DateTime("29990101T00:00:00Z"))) == {}
    got = ok(proxy.message.get(s, "Host", hu, xmlrpc.client.DateTime("19700101T00:00:00Z")))
    assert ref in got
    assert ok(proxy.message.get(s, "VM", hu, xmlrpc.client.DateTime("19700101T00:00:00Z"))) == {}
    ok(proxy.message.destroy(s, ref))
    assert ref not in ok(proxy.message.get_all(s))
    assert err(proxy.message.get_record(s, ref))[0] == "HANDLE_INVALID"


def test_create_checks_change_nothing(api):
    proxy, s = api
    before = ok(proxy.message.get_all(s))
    missing = "00000000-0000-0000-0000-000000000000"
    assert err(proxy.message.create(s, "X", "1", "VM", missing, "")) == [
        "UUID_INVALID", "VM", missing]
    # A host's uuid is no VM's.
    assert err(proxy.message.create(s, "X", "1", "VM", host_uuid(api), ""))[0] == "UUID_INVALID"
    assert err(proxy.message.create(s, "X", "1", "Nonsense", host_uuid(api), ""))[0] in (
        "ENUM_INVALID", "FIELD_TYPE_ERROR", "INVALID_VALUE")
    assert err(proxy.message.destroy(s, "OpaqueRef:nothing")) == [
        "HANDLE_INVALID", "message", "OpaqueRef:nothing"]
    assert ok(proxy.message.get_all(s)) == before


def test_destroy_many_is_all_or_nothing(api):
    proxy, s = api
    hu = host_uuid(api)
    refs = [ok(proxy.message.create(s, "M", "5", "Host", hu, str(i))) for i in range(3)]
    assert err(proxy.message.destroy_many(s, refs + ["OpaqueRef:nothing"]))[0] == "HANDLE_INVALID"
    assert set(refs) <= set(ok(proxy.message.get_all(s)))
    ok(proxy.message.destroy_many(s, refs))
    assert not set(refs) & set(ok(proxy.message.get_all(s)))


def test_events_of_class_message(api):
    proxy, s = api
    token = ok(proxy.event.inject(s, "pool", ok(proxy.pool.get_all(s))[0]))
    ref = ok(proxy.message.create(s, "EVT", "3", "Host", host_uuid(api), "b"))
    got = ok(getattr(proxy.event, "from")(s, ["message"], token, 5.0))
    adds = [e for e in got["events"] if e["ref"] == ref]
    assert adds and adds[0]["class"] == "message" and adds[0]["operation"] == "add"
    assert adds[0]["snapshot"]["name"] == "EVT"
    ok(proxy.message.destroy(s, ref))
    got = ok(getattr(proxy.event, "from")(s, ["message"], got["token"], 5.0))
    assert [e["operation"] for e in got["events"] if e["ref"] == ref] == ["del"]


def test_vm_operations_raise_messages(api):
    proxy, s = api
    vm = new_vm(api, "msg-lifecycle")
    vm_uuid = ok(proxy.VM.get_uuid(s, vm))
    host = ok(proxy.host.get_all(s))[0]
    hlabel, hu = ok(proxy.host.get_name_label(s, host)), host_uuid(api)
    ok(proxy.VM.start(s, vm, False, False))
    ok(proxy.VM.pause(s, vm))
    ok(proxy.VM.unpause(s, vm))
    ok(proxy.VM.hard_reboot(s, vm))
    ok(proxy.VM.suspend(s, vm))
    ok(proxy.VM.resume(s, vm, False, False))
    ok(proxy.VM.checkpoint(s, vm, "msg-checkpoint"))
    ok(proxy.VM.hard_shutdown(s, vm))
    snap = ok(proxy.VM.snapshot(s, vm, "msg-snap"))
    snap_uuid = ok(proxy.VM.get_uuid(s, snap))
    ok(proxy.VM.revert(s, snap))
    clone = ok(proxy.VM.clone(s, vm, "msg-clone"))
    clone_uuid = ok(proxy.VM.get_uuid(s, clone))
    epoch = xmlrpc.client.DateTime("19700101T00:00:00Z")
    msgs = ok(proxy.message.get(s, "VM", vm_uuid, epoch)).values()
    got = sorted((m["name"], m["priority"], m["body"]) for m in msgs)
    p = f"VM 'msg-lifecycle' (uuid: {vm_uuid}) "
    assert got == sorted([
        ("VM_STARTED", "5", p + f"started on host: {hlabel} (uuid: {hu})"),
        ("VM_PAUSED", "5", p + "paused"),
        ("VM_UNPAUSED", "5", p + "unpaused"),
        ("VM_REBOOTED", "5", p + "rebooted forcibly"),
        ("VM_SHUTDOWN", "5", p + "shutdown forcibly"),
        ("VM_CLONED", "5", p + f"cloned (new uuid: {clone_uuid})"),
        ("VM_SNAPSHOTTED", "5", p + "snapshotted, snapshot name: msg-snap"),
        ("VM_CHECKPOINTED", "5", p + "checkpointed, snapshot name: msg-checkpoint"),
        ("VM_SNAPSHOT_REVERTED", "5", p + f"reverted to snapshot: msg-snap (uuid {snap_uuid})"),
        ("VM_SUSPENDED", "5", p + "suspended"),
        ("VM_RESUMED", "5", p + f"resumed on host: {hlabel} (uuid: {hu})"),
    ])
    # A failed operation raises nothing.
    assert err(proxy.VM.hard_shutdown(s, vm))[0] == "VM_BAD_POWER_STATE"
    assert len(ok(proxy.message.get(s, "VM", vm_uuid, epoch))) == len(got)


def test_acknowledged_create_survives_kill9():
    d = Daemon(extra_args=["--hypervisor", "sim"])
    try:
        proxy, s = d.login()
        hu = host_uuid((proxy, s))
        ref = ok(proxy.message.create(s, "DURABLE", "1", "Host", hu, "kept"))
        d.kill9()
        d.start()
        proxy, s = d.login()
        assert ok(proxy.message.get_record(s, ref))["body"] == "kept"
    finally:
        d.stop()


def test_store_keeps_the_newest_up_to_the_limit():
    d = Daemon(extra_args=["--hypervisor", "sim", "--message-limit", "5"])
    try:
        proxy, s = d.login()
        hu = host_uuid((proxy, s))
        refs = [ok(proxy.message.create(s, "CAP", "5", "Host", hu, str(i))) for i in range(8)]
        kept = ok(proxy.message.get_all_records(s))
        # The oldest went first (XAPI's GC), at the create that passed the cap.
        assert sorted(r["body"] for r in kept.values()) == ["3", "4", "5", "6", "7"]
        assert set(kept) == set(refs[3:])
        d.kill9()
        d.start()
        proxy, s = d.login()
        assert set(ok(proxy.message.get_all(s))) == set(refs[3:])
    finally:
        d.stop()
