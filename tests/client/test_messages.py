"""The message class against a real daemon (sim hypervisor): create and
its checks, the reads, destroy and destroy_many, events of class message
(interleaved with the database's in one event.from stream, and through
event.next), the store of their own (STATE_DIR/messages.db: no row in the
object database, durable across kill -9, a failed write leaves no trace,
the cap, the rows an older xapid.db holds moved once at start), and the
messages xapid raises itself after VM operations (XAPI's
message_forwarding.ml)."""
import os
import shutil
import sqlite3
import tempfile
import xmlrpc.client

import pytest

from sim_daemon import api, daemon  # noqa: F401 (fixtures)
from xapid_daemon import Daemon, err, new_vm, ok

pytestmark = pytest.mark.timeout(120)

MiB = 1 << 20
EPOCH = xmlrpc.client.DateTime("19700101T00:00:00Z")


def rows(path, sql):
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return db.execute(sql).fetchall()


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
        gone = ok(proxy.message.create(s, "DURABLE", "1", "Host", hu, "destroyed"))
        ok(proxy.message.destroy(s, gone))
        d.kill9()
        d.start()
        proxy, s = d.login()
        assert ok(proxy.message.get_record(s, ref))["body"] == "kept"
        assert err(proxy.message.get_record(s, gone))[0] == "HANDLE_INVALID"
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


def test_messages_are_not_in_the_object_database(daemon, api):
    proxy, s = api
    ref = ok(proxy.message.create(s, "OUTSIDE", "4", "Host", host_uuid(api), "not in xapid.db"))
    assert rows(os.path.join(daemon.state_dir, "xapid.db"), "SELECT count(*) FROM message") == [(0,)]
    kept = rows(os.path.join(daemon.state_dir, "messages.db"),
                "SELECT name, priority, cls, body FROM messages WHERE ref = '%s'" % ref)
    assert kept == [("OUTSIDE", 4, "Host", "not in xapid.db")]
    ok(proxy.message.destroy(s, ref))
    assert rows(os.path.join(daemon.state_dir, "messages.db"),
                "SELECT count(*) FROM messages WHERE ref = '%s'" % ref) == [(0,)]


def test_where_over_every_field(api):
    proxy, s = api
    hu = host_uuid(api)
    a = ok(proxy.message.create(s, "WHERE_A", "1", "Host", hu, "first"))
    b = ok(proxy.message.create(s, "WHERE_B", "2", "Host", hu, "second"))
    rec = ok(proxy.message.get_record(s, a))
    q = proxy.message.get_all_records_where
    assert set(ok(q(s, 'field "priority" = "1" and field "obj_uuid" = "%s"' % hu))) >= {a}
    assert b not in ok(q(s, 'field "priority" = "1"'))
    assert set(ok(q(s, 'field "name" = "WHERE_A" or field "name" = "WHERE_B"'))) == {a, b}
    assert list(ok(q(s, 'field "uuid" = "%s"' % rec["uuid"]))) == [a]
    assert list(ok(q(s, 'field "timestamp" = "%s" and field "name" = "WHERE_A"'
                     % rec["timestamp"].value))) == [a]
    assert list(ok(q(s, 'not (field "body" = "first") and field "name" = "WHERE_B"'))) == [b]
    assert ok(q(s, 'field "nonsense" = "1"')) == {}
    assert err(q(s, 'field "name" ='))[0] == "INVALID_VALUE"
    assert err(proxy.message.get_by_uuid(s, "no-such-uuid")) == [
        "UUID_INVALID", "message", "no-such-uuid"]
    ok(proxy.message.destroy_many(s, [a, b]))


def test_a_message_comes_after_the_change_it_reports(api):
    """One event.from stream over "*": the VM's change to Running comes in
    a batch no later than the VM_STARTED message about it; the token has a
    message part."""
    proxy, s = api
    vm = new_vm(api, "msg-order")
    token = ok(getattr(proxy.event, "from")(s, ["*"], "", 0.0))["token"]
    ok(proxy.VM.start(s, vm, False, False))
    running_at = message_at = None
    for batch_no in range(50):
        batch = ok(getattr(proxy.event, "from")(s, ["*"], token, 5.0))
        token = batch["token"]
        for e in batch["events"]:
            if (e["class"] == "vm" and e["ref"] == vm and running_at is None and
                    e["snapshot"]["power_state"] == "Running"):
                running_at = batch_no
            if (e["class"] == "message" and e["operation"] == "add" and
                    e["snapshot"]["name"] == "VM_STARTED" and
                    e["snapshot"]["obj_uuid"] == ok(proxy.VM.get_uuid(s, vm))):
                message_at = batch_no
        if message_at is not None:
            break
    assert message_at is not None and running_at is not None and running_at <= message_at
    db_part, msg_part = token.split(",")
    assert int(msg_part) > 0
    assert batch["valid_ref_counts"]["message"] == len(ok(proxy.message.get_all(s)))
    ok(proxy.VM.hard_shutdown(s, vm))


def test_event_next_sees_messages(api):
    proxy, s = api
    ok(proxy.event.register(s, ["message"]))
    ref = ok(proxy.message.create(s, "NEXT", "5", "Host", host_uuid(api), "via next"))
    got = ok(proxy.event.next(s))
    assert [(e["class"], e["operation"]) for e in got if e["ref"] == ref] == [("message", "add")]
    ok(proxy.message.destroy(s, ref))
    got = ok(proxy.event.next(s))
    assert [e["operation"] for e in got if e["ref"] == ref] == ["del"]
    ok(proxy.event.unregister(s, ["message"]))


def test_a_failed_write_leaves_no_trace():
    state = tempfile.mkdtemp(prefix="xapid-test-")
    faults = os.path.join(state, "faults")
    os.environ["XAPID_SQLITE_FAULTS"] = faults
    try:
        d = Daemon(state_dir=state, extra_args=["--hypervisor", "sim"])
    finally:
        del os.environ["XAPID_SQLITE_FAULTS"]
    try:
        proxy, s = d.login()
        hu = host_uuid((proxy, s))
        kept = ok(proxy.message.create(s, "KEPT", "5", "Host", hu, "before"))
        token = ok(getattr(proxy.event, "from")(s, ["message"], "", 0.0))["token"]
        with open(faults, "w") as f:
            f.write("full")
        assert err(proxy.message.create(s, "LOST", "5", "Host", hu, "disk full")) == [
            "OUT_OF_SPACE", state]
        assert err(proxy.message.destroy(s, kept))[0] == "OUT_OF_SPACE"
        with open(faults, "w") as f:
            f.write("")
        assert ok(proxy.message.get_all(s)) == [kept]
        batch = ok(getattr(proxy.event, "from")(s, ["message"], token, 0.0))
        assert batch["events"] == []
        d.kill9()
        d.start()
        proxy, s = d.login()
        assert list(ok(proxy.message.get_all_records(s))) == [kept]
    finally:
        d.stop()
        shutil.rmtree(state, ignore_errors=True)


def test_a_lowered_cap_trims_the_oldest_at_start():
    d = Daemon(extra_args=["--hypervisor", "sim"])
    try:
        proxy, s = d.login()
        hu = host_uuid((proxy, s))
        refs = [ok(proxy.message.create(s, "CAP", "5", "Host", hu, str(i))) for i in range(6)]
        d.stop()
        d.extra_args += ["--message-limit", "2"]
        d.start()
        proxy, s = d.login()
        assert set(ok(proxy.message.get_all(s))) == set(refs[4:])
    finally:
        d.stop()


def old_row(ref, uuid, name, timestamp, body, obj_uuid):
    return (ref, uuid, name, "3", "Host", obj_uuid, timestamp, body)


def test_rows_of_an_old_xapid_db_move_to_the_store_once():
    """An xapid before the store kept messages as rows of xapid.db's
    message table: at start they move to messages.db (the oldest first out
    when over the cap), and no row stays behind; a row the store already
    holds (a crash between the two transactions) is kept once."""
    d = Daemon(extra_args=["--hypervisor", "sim", "--message-limit", "2"])
    try:
        proxy, s = d.login()
        hu = host_uuid((proxy, s))
        new = ok(proxy.message.create(s, "NEW", "5", "Host", hu, "made by this xapid"))
        d.stop()
        old = [old_row(f"OpaqueRef:00000000-0000-0000-0000-00000000000{i}",
                       f"10000000-0000-0000-0000-00000000000{i}", f"OLD{i}",
                       f"2024010{i}T00:00:00Z", f"old {i}", hu) for i in range(1, 4)]
        with sqlite3.connect(os.path.join(d.state_dir, "xapid.db")) as db:
            db.executemany("INSERT INTO message (_ref, uuid, name, priority, cls, obj_uuid,"
                           " timestamp, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", old)
        # The first one was moved before a crash: the store has it too.
        with sqlite3.connect(os.path.join(d.state_dir, "messages.db")) as db:
            db.execute("INSERT INTO messages (generation, ref, uuid, name, priority, cls,"
                       " obj_uuid, timestamp, body) VALUES (1, ?, ?, 'OLD1', 3, 'Host', ?,"
                       " 1704067200, 'old 1')", (old[0][0], old[0][1], hu))
        d.start()
        proxy, s = d.login()
        records = ok(proxy.message.get_all_records(s))
        # Four messages, cap 2: the oldest by timestamp go (OLD1, OLD2 of
        # 2024), not the first made (NEW was made before OLD2 and OLD3 moved).
        assert sorted(r["name"] for r in records.values()) == ["NEW", "OLD3"]
        rec = records[old[2][0]]
        assert (rec["uuid"], rec["priority"], rec["cls"], rec["obj_uuid"], rec["body"]) == (
            old[2][1], "3", "Host", hu, "old 3")
        assert rec["timestamp"].value == "20240103T00:00:00Z"
        assert new in records
        assert rows(os.path.join(d.state_dir, "xapid.db"), "SELECT count(*) FROM message") == [
            (0,)]
        d.stop()
        d.start()  # nothing moves twice
        proxy, s = d.login()
        assert set(ok(proxy.message.get_all(s))) == set(records)
    finally:
        d.stop()
