"""event.from, event.inject and event.get_current_id against a real daemon:
subscription forms, token continuity under concurrent writers, timeouts,
deletions, wake-up by commit, logout while blocked."""
import random
import threading
import time
import xmlrpc.client

import pytest

from xapid_daemon import Daemon


@pytest.fixture
def daemon():
    d = Daemon()
    yield d
    d.stop()


def event_from(api, s, classes, token, timeout):
    reply = getattr(api.event, "from")(s, classes, token, timeout)
    assert reply["Status"] == "Success", reply
    return reply["Value"]


def test_initial_batch_and_subscription_forms(daemon):
    api, s = daemon.login()
    everything = event_from(api, s, ["*"], "", 0.0)
    classes = {e["class"] for e in everything["events"]}
    assert {"vm", "host", "pool", "sr", "network"} <= classes
    assert all(e["operation"] == "add" for e in everything["events"])
    assert "session" not in classes  # sessions make no events, as in XAPI
    assert everything["valid_ref_counts"]["vm"] == len(api.VM.get_all(s)["Value"])
    assert "task" in everything["valid_ref_counts"]
    vms = event_from(api, s, ["VM"], "", 0.0)
    assert {e["class"] for e in vms["events"]} == {"vm"}
    one = api.VM.get_all(s)["Value"][0]
    single = event_from(api, s, [f"vm/{one}"], "", 0.0)
    assert [e["ref"] for e in single["events"]] == [one]
    assert single["events"][0]["snapshot"]["uuid"] == api.VM.get_uuid(s, one)["Value"]
    bad = getattr(api.event, "from")(s, ["*"], "not-a-token", 0.0)
    assert bad["ErrorDescription"] == ["EVENT_FROM_TOKEN_PARSE_FAILURE", "not-a-token"]


def test_timeout_is_honoured(daemon):
    api, s = daemon.login()
    token = event_from(api, s, ["vm"], "", 0.0)["token"]
    for timeout in (0.2, 1.0):
        started = time.monotonic()
        batch = event_from(api, s, ["vm"], token, timeout)
        elapsed = time.monotonic() - started
        assert batch["events"] == []
        # Not early (a lower bound holds under any load); how close to the
        # timeout it returns is for bench/, not a test.
        assert elapsed >= timeout, elapsed
    # Integral timeouts sent as strings are accepted too.
    assert event_from(api, s, ["vm"], token, "0")["events"] == []


@pytest.mark.timeout(120)
def test_a_commit_wakes_a_blocked_watcher(daemon):
    api, s = daemon.login()
    vm = api.VM.get_all(s)["Value"][0]
    token = event_from(api, s, ["vm"], "", 0.0)["token"]

    # Whether the write lands before or during the wait, the watcher must get
    # it; its timeout is far beyond the test's, so only the write can end it.
    threading.Thread(target=lambda: xmlrpc.client.ServerProxy(daemon.url).VM.set_name_label(
        s, vm, "woken")).start()
    batch = event_from(api, s, ["vm"], token, 3600.0)
    [event] = batch["events"]
    assert (event["operation"], event["ref"], event["snapshot"]["name_label"]) == \
        ("mod", vm, "woken")
    # A change elsewhere does not end the wait for vm events.
    token = batch["token"]
    pool = api.pool.get_all(s)["Value"][0]
    done = threading.Event()

    def write_pool_until_done():
        proxy = xmlrpc.client.ServerProxy(daemon.url)
        for i in range(100000):
            if done.is_set():
                return
            proxy.pool.set_name_label(s, pool, f"p{i}")

    writer = threading.Thread(target=write_pool_until_done)
    writer.start()
    started = time.monotonic()
    try:
        assert event_from(api, s, ["vm"], token, 0.8)["events"] == []
        assert time.monotonic() - started >= 0.8  # pool writes did not end it early
    finally:
        done.set()
        writer.join()


def test_inject_and_deletions(daemon):
    api, s = daemon.login()
    vm = api.VM.get_all(s)["Value"][0]
    token = api.event.inject(s, "VM", vm)["Value"]
    batch = event_from(api, s, ["vm"], token, 5.0)
    assert [(e["operation"], e["ref"]) for e in batch["events"]] == [("mod", vm)]
    assert api.event.inject(s, "VM", "OpaqueRef:nope")["ErrorDescription"] == \
        ["HANDLE_INVALID", "VM", "OpaqueRef:nope"]
    net = api.network.create(s, {"name_label": "doomed"})["Value"]
    token = event_from(api, s, ["network"], "", 0.0)["token"]
    api.network.destroy(s, net)
    [event] = event_from(api, s, ["network"], token, 5.0)["events"]
    assert (event["operation"], event["ref"]) == ("del", net)
    assert event["snapshot"]["name_label"] == "doomed"
    # Created and deleted after the token: nothing to report.
    token = event_from(api, s, ["network"], "", 0.0)["token"]
    brief = api.network.create(s, {"name_label": "brief"})["Value"]
    api.network.destroy(s, brief)
    assert event_from(api, s, ["network"], token, 0.2)["events"] == []
    assert int(api.event.get_current_id(s)["Value"]) > 0


def test_token_continuity_under_two_writers(daemon):
    """1,000 random writes from 2 writers: a watcher that follows tokens sees
    every final value, and never an event it already had for the same
    generation."""
    api, s = daemon.login()
    vms = [api.VM.create(s, {"name_label": f"w{i}"})["Value"] for i in range(10)]
    token = event_from(api, s, ["vm"], "", 0.0)["token"]
    final = {}
    lock = threading.Lock()

    def writer(seed):
        rnd = random.Random(seed)
        proxy = xmlrpc.client.ServerProxy(daemon.url)
        for i in range(500):
            vm = rnd.choice(vms)
            label = f"{seed}-{i}"
            with lock:  # the last write per VM is the one we expect to see
                assert proxy.VM.set_name_label(s, vm, label)["Status"] == "Success"
                final[vm] = label

    writers = [threading.Thread(target=writer, args=(n,)) for n in (1, 2)]
    for w in writers:
        w.start()
    seen = {}
    ids = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        batch = event_from(api, s, ["vm"], token, 1.0)
        for e in batch["events"]:
            key = (e["ref"], e["id"])
            assert key not in ids, "event repeated across calls"
            ids.add(key)
            seen[e["ref"]] = e["snapshot"]["name_label"]
        token = batch["token"]
        if not any(w.is_alive() for w in writers) and not batch["events"]:
            break
    for w in writers:
        w.join()
    for vm, label in final.items():
        assert seen.get(vm) == label


@pytest.mark.timeout(120)
def test_logout_ends_a_blocked_call(daemon):
    api, s = daemon.login()
    token = event_from(api, s, ["vm"], "", 0.0)["token"]
    # The call's timeout is far beyond the test's: only the logout ends it
    # (before or during the wait, the answer is the same).
    threading.Thread(target=lambda: xmlrpc.client.ServerProxy(
        daemon.url).session.logout(s)).start()
    reply = getattr(api.event, "from")(s, ["vm"], token, 3600.0)
    assert reply["ErrorDescription"] == ["SESSION_INVALID", s]


def test_legacy_register_next_and_events_lost(daemon):
    api, s = daemon.login()
    assert api.event.next(s)["ErrorDescription"] == ["SESSION_NOT_REGISTERED", s]
    assert api.event.register(s, ["network"])["Status"] == "Success"
    net = api.network.create(s, {"name_label": "legacy"})["Value"]
    events = api.event.next(s)["Value"]
    assert [(e["class"], e["operation"], e["ref"]) for e in events] == [("network", "add", net)]
    # Falling more than the deletion queue behind loses events.
    nets = [api.network.create(s, {"name_label": f"n{i}"})["Value"] for i in range(600)]
    assert len(api.event.next(s)["Value"]) == 600
    for n in nets:
        api.network.destroy(s, n)
    assert api.event.next(s)["ErrorDescription"] == ["EVENTS_LOST"]
    # After EVENTS_LOST the session continues from now.
    api.network.set_name_label(s, net, "again")
    [event] = api.event.next(s)["Value"]
    assert (event["operation"], event["snapshot"]["name_label"]) == ("mod", "again")
    assert api.event.unregister(s, ["network"])["Status"] == "Success"
