"""Async calls and task objects: results as XML-RPC text over both
protocols, failures in error_info, client tasks, cancel, ownership."""
import http.client
import json
import time

import pytest

from xapid_daemon import Daemon


@pytest.fixture
def daemon():
    d = Daemon()
    yield d
    d.stop()


def wait_task(api, s, task):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        record = api.task.get_record(s, task)["Value"]
        if record["status"] != "pending":
            return record
        time.sleep(0.01)
    raise AssertionError("task still pending")


def test_async_success_and_failure(daemon):
    api, s = daemon.login()
    task = api.Async.network.create(s, {"name_label": "async"})["Value"]
    assert task.startswith("OpaqueRef:")
    record = wait_task(api, s, task)
    assert record["name_label"] == "Async.network.create"
    assert record["status"] == "success" and float(record["progress"]) == 1.0
    assert record["result"].startswith("<value>OpaqueRef:") and record["result"].endswith("</value>")
    network = record["result"][len("<value>"):-len("</value>")]
    assert api.network.get_name_label(s, network)["Value"] == "async"
    assert record["resident_on"] == api.session.get_this_host(s, s)["Value"]
    assert record["finished"] >= record["created"]

    failed = wait_task(api, s, api.Async.network.destroy(s, "OpaqueRef:nope")["Value"])
    assert failed["status"] == "failure"
    assert failed["error_info"] == ["HANDLE_INVALID", "network", "OpaqueRef:nope"]

    # void results are ""
    done = wait_task(api, s, api.Async.network.destroy(s, network)["Value"])
    assert done["status"] == "success" and done["result"] == ""


def test_async_result_is_xml_text_over_json_rpc(daemon):
    api, s = daemon.login()
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port)
    conn.request("POST", "/jsonrpc", json.dumps({"jsonrpc": "2.0", "id": 1,
                                                 "method": "Async.network.create",
                                                 "params": [s, {"name_label": "j"}]}))
    task = json.loads(conn.getresponse().read())["result"]
    record = wait_task(api, s, task)
    assert record["result"].startswith("<value>OpaqueRef:")


def test_no_async_form(daemon):
    api, s = daemon.login()
    for method in ("Async.session.logout", "Async.VM.get_record", "Async.task.create"):
        reply = api.__getattr__(method)(s, s)
        assert reply["ErrorDescription"] == ["MESSAGE_METHOD_UNKNOWN", method]


def test_client_tasks_cancel_and_ownership(daemon):
    api, s = daemon.login()
    task = api.task.create(s, "upload", "an HTTP transfer")["Value"]
    record = api.task.get_record(s, task)["Value"]
    assert (record["name_label"], record["status"], record["allowed_operations"]) == \
        ("upload", "pending", ["cancel"])
    assert task in api.session.get_tasks(s, s)["Value"]
    assert api.task.cancel(s, task)["Status"] == "Success"
    assert api.task.get_status(s, task)["Value"] == "cancelling"
    assert api.task.cancel(s, task)["ErrorDescription"][0] == "OPERATION_NOT_ALLOWED"
    other = api.task.create(s, "x", "")["Value"]
    assert api.task.set_progress(s, other, 0.5)["Status"] == "Success"
    assert api.task.set_status(s, other, "success")["Status"] == "Success"
    assert api.task.set_result(s, other, "<value>done</value>")["Status"] == "Success"
    record = api.task.get_record(s, other)["Value"]
    assert (record["status"], float(record["progress"]), record["result"]) == \
        ("success", 0.5, "<value>done</value>")
    assert api.task.set_status(s, other, "bogus")["ErrorDescription"][0] == "INVALID_VALUE"
    assert api.task.destroy(s, other)["Status"] == "Success"
    assert other not in api.session.get_tasks(s, s)["Value"]
    # A session's tasks go with it.
    api2, s2 = daemon.login()
    api.session.logout(s)
    assert api2.task.get_record(s2, task)["ErrorDescription"][0] == "HANDLE_INVALID"
