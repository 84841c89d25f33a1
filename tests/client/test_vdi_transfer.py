"""PUT /import_raw_vdi and GET /export_raw_vdi against a real daemon (sim
driver), with http.client as the HTTP client and qemu-img to make and
compare images: raw, qcow2 and vhd round trips, differential exports,
backing chains, sessions (query, cookie, basic auth), tasks, and failures
that must leave the VDI as it was (cut uploads, oversized ones). Raw data
into a VDI that stands alone makes it a raw file (no qemu-nbd on the way);
one with a backing chain keeps it."""
import base64
import hashlib
import http.client
import json
import os
import random
import socket
import subprocess
import time

import pytest

from sim_daemon import api, daemon  # noqa: F401 (fixtures)
from xapid_daemon import PASSWORD, err, ok, wait_until

MiB = 1 << 20
SIZE = 64 * MiB


def default_sr(api):
    proxy, s = api
    pool = ok(proxy.pool.get_all(s))[0]
    return ok(proxy.pool.get_default_SR(s, pool))


def new_vdi(api, size=SIZE):
    proxy, s = api
    return ok(proxy.VDI.create(s, {"name_label": "transfer", "SR": default_sr(api),
                                   "virtual_size": str(size), "type": "user",
                                   "sharable": False, "read_only": False,
                                   "other_config": {}, "xenstore_data": {},
                                   "sm_config": {}, "tags": []}))


def sr_dir(api):
    proxy, s = api
    pbd = ok(proxy.SR.get_PBDs(s, default_sr(api)))[0]
    return ok(proxy.PBD.get_device_config(s, pbd))["location"]


def vdi_path(api, vdi):
    proxy, s = api
    return os.path.join(sr_dir(api), ok(proxy.VDI.get_location(s, vdi)))


def pattern_disk(path, size=SIZE, seed=1):
    """A sparse raw disk: random MiBs, a partial block, a run of a repeated
    byte, and holes everywhere else."""
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        f.truncate(size)
        for offset in (0, 5 * MiB, 33 * MiB + 4096):
            if offset + MiB < size:
                f.seek(offset)
                f.write(rnd.randbytes(MiB))
        if size > 23 * MiB:
            f.seek(20 * MiB)
            f.write(b"\x5a" * (3 * MiB))
        f.seek(size - 100)
        f.write(rnd.randbytes(100))
    return path


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MiB), b""):
            h.update(block)
    return h.hexdigest()


def qemu_img(*args):
    return subprocess.run(["qemu-img", *args], check=True, capture_output=True, text=True).stdout


def check_image(path):
    """qemu-img check for a qcow2 image; a raw file has nothing to check
    but its size."""
    if path.endswith(".qcow2"):
        qemu_img("check", "-q", path)
    else:
        assert path.endswith(".raw") and os.path.getsize(path) > 0


def chain(path):
    """qemu-img's view of an image and its backing chain, top first."""
    return json.loads(qemu_img("info", "-U", "--backing-chain", "--output=json", path))


def conn(daemon):
    return http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=60)


def query(**params):
    return "&".join(f"{k}={v}" for k, v in params.items())


def put(daemon, body, headers=None, **params):
    c = conn(daemon)
    try:
        c.request("PUT", "/import_raw_vdi?" + query(**params), body=body, headers=headers or {})
    except (BrokenPipeError, ConnectionResetError):
        pass  # a refusal answered before the whole body was sent: read it below
    try:
        r = c.getresponse()
    except (ConnectionResetError, http.client.RemoteDisconnected):
        return 0, "connection closed before the body was sent (refused)", {}
    return r.status, r.read().decode(), dict(r.getheaders())


def put_file(daemon, path, **params):
    with open(path, "rb") as f:
        return put(daemon, f, {"Content-Length": str(os.path.getsize(path))}, **params)


def get(daemon, headers=None, path="/export_raw_vdi", **params):
    c = conn(daemon)
    c.request("GET", path + "?" + query(**params), headers=headers or {})
    r = c.getresponse()
    return r.status, r.read(), dict(r.getheaders())


def export_to(daemon, out, **params):
    status, body, headers = get(daemon, **params)
    assert status == 200, body[:200]
    with open(out, "wb") as f:
        f.write(body)
    return headers


def new_task(api):
    proxy, s = api
    return ok(proxy.task.create(s, "transfer", ""))


def task_record(api, task):
    proxy, s = api
    return ok(proxy.task.get_record(s, task))


def no_leftovers(api):
    return [n for n in os.listdir(sr_dir(api)) if n.endswith(".tmp")] == []


def test_raw_round_trip(daemon, api, tmp_path):
    proxy, s = api
    vdi = new_vdi(api)
    src = pattern_disk(tmp_path / "in.raw")
    status, body, headers = put_file(daemon, src, session_id=s, vdi=vdi)
    assert (status, body) == (200, "OK\n")
    assert headers["Connection"] == "close"
    headers = export_to(daemon, tmp_path / "out.raw", session_id=s, vdi=vdi)
    assert sha256_file(tmp_path / "out.raw") == sha256_file(src)
    assert headers["Content-Length"] == str(SIZE)
    assert headers["Content-Type"] == "application/octet-stream"
    uuid = ok(proxy.VDI.get_uuid(s, vdi))
    assert headers["Content-Disposition"] == f'attachment; filename="{uuid}.raw"'
    # Zero blocks were skipped: the image holds the data and not much more.
    used = int(ok(proxy.VDI.get_physical_utilisation(s, vdi)))
    assert 6 * MiB < used < 12 * MiB
    assert int(ok(proxy.VDI.get_virtual_size(s, vdi))) == SIZE
    check_image(vdi_path(api, vdi))
    assert ok(proxy.VDI.get_current_operations(s, vdi)) == {}
    assert no_leftovers(api)


def test_vdi_by_uuid_and_trailing_slash(daemon, api, tmp_path):
    proxy, s = api
    vdi = new_vdi(api)
    uuid = ok(proxy.VDI.get_uuid(s, vdi))
    src = pattern_disk(tmp_path / "in.raw", seed=7)
    with open(src, "rb") as f:
        c = conn(daemon)
        c.request("PUT", f"/import_raw_vdi/?session_id={s}&vdi={uuid}", body=f,
                  headers={"Content-Length": str(SIZE)})
        assert c.getresponse().status == 200
    status, body, _ = get(daemon, path="/export_raw_vdi/", session_id=s, vdi=uuid)
    assert status == 200 and hashlib.sha256(body).hexdigest() == sha256_file(src)


@pytest.mark.parametrize("fmt,qemu_fmt,options,content_type", [
    ("qcow2", "qcow2", [], "application/x-qemu-disk"),
    ("vhd", "vpc", ["-o", "subformat=dynamic,force_size=on"], "application/vhd"),
])
def test_image_import_and_export(daemon, api, tmp_path, fmt, qemu_fmt, options, content_type):
    """An image made by qemu-img goes in; raw and the same format come out."""
    proxy, s = api
    vdi = new_vdi(api)
    raw = pattern_disk(tmp_path / "in.raw", seed=2)
    image = tmp_path / f"in.{fmt}"
    qemu_img("convert", "-f", "raw", "-O", qemu_fmt, *options, str(raw), str(image))
    status, body, _ = put_file(daemon, image, session_id=s, vdi=vdi, format=fmt)
    assert (status, body) == (200, "OK\n")
    export_to(daemon, tmp_path / "out.raw", session_id=s, vdi=vdi)
    assert sha256_file(tmp_path / "out.raw") == sha256_file(raw)
    out = tmp_path / f"out.{fmt}"
    headers = export_to(daemon, out, session_id=s, vdi=vdi, format=fmt)
    assert headers["Content-Type"] == content_type
    info = json.loads(qemu_img("info", "--output=json", str(out)))
    assert (info["format"], info["virtual-size"]) == (qemu_fmt, SIZE)
    qemu_img("compare", "-f", "raw", "-F", qemu_fmt, str(raw), str(out))
    assert no_leftovers(api)


def test_smaller_qcow2_leaves_zeros_after_it(daemon, api, tmp_path):
    proxy, s = api
    vdi = new_vdi(api)
    assert put_file(daemon, pattern_disk(tmp_path / "old.raw", seed=3), session_id=s,
                    vdi=vdi)[0] == 200
    small = pattern_disk(tmp_path / "small.raw", size=8 * MiB, seed=4)
    qemu_img("convert", "-O", "qcow2", str(small), str(tmp_path / "small.qcow2"))
    assert put_file(daemon, tmp_path / "small.qcow2", session_id=s, vdi=vdi,
                    format="qcow2")[0] == 200
    status, body, _ = get(daemon, session_id=s, vdi=vdi)
    assert body[:8 * MiB] == open(small, "rb").read()
    assert body[8 * MiB:] == bytes(SIZE - 8 * MiB)


def test_bad_qcow2_upload_fails_cleanly(daemon, api, tmp_path):
    proxy, s = api
    vdi = new_vdi(api)
    task = new_task(api)
    junk = tmp_path / "junk"
    junk.write_bytes(b"not an image" * 1000)
    status, body, _ = put_file(daemon, junk, session_id=s, vdi=vdi, format="qcow2", task_id=task)
    assert status == 500 and body.startswith("VDI_IO_ERROR")
    assert task_record(api, task)["status"] == "failure"
    # An image that points at another file is refused, not followed.
    other = tmp_path / "base.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", str(other), str(SIZE))
    overlay = tmp_path / "overlay.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", str(other), "-F", "qcow2", str(overlay))
    status, body, _ = put_file(daemon, overlay, session_id=s, vdi=vdi, format="qcow2")
    assert status == 500 and "backing" in body
    assert no_leftovers(api)


def test_task_id_completion_and_progress(daemon, api, tmp_path):
    proxy, s = api
    vdi = new_vdi(api)
    tasks_before = set(ok(proxy.task.get_all(s)))
    task = new_task(api)
    status, _, headers = put_file(daemon, pattern_disk(tmp_path / "in.raw"), session_id=s,
                                  vdi=vdi, task_id=task)
    assert status == 200 and headers["Task-Id"] == task
    rec = task_record(api, task)
    assert rec["status"] == "success"
    assert rec["result"] == f"<value>{vdi}</value>"  # XAPI: the VDI's ref
    assert rec["progress"] == 1.0 and rec["error_info"] == []
    export_task = new_task(api)
    status, body, headers = get(daemon, session_id=s, vdi=vdi, task_id=export_task)
    assert status == 200 and headers["Task-Id"] == export_task
    rec = task_record(api, export_task)
    assert (rec["status"], rec["result"], rec["progress"]) == ("success", "", 1.0)
    # Without task_id the task is our own and goes with the request (it is
    # destroyed when the request completes, just after the reply is sent).
    assert put_file(daemon, tmp_path / "in.raw", session_id=s, vdi=vdi)[0] == 200

    def own_imports():
        new = set(ok(proxy.task.get_all(s))) - tasks_before - {task, export_task}
        return [t for t in new if proxy.task.get_name_label(s, t).get("Value") ==
                "Importing raw VDI"]
    deadline = time.time() + 60
    while own_imports() and time.time() < deadline:
        time.sleep(0.05)
    assert own_imports() == []


def test_sessions_cookie_basic_auth_and_401(daemon, api, tmp_path):
    proxy, s = api
    vdi = new_vdi(api)
    status, body, _ = get(daemon, headers={"Cookie": f"session_id={s}"}, vdi=vdi)
    assert status == 200 and len(body) == SIZE
    auth = base64.b64encode(f"root:{PASSWORD}".encode()).decode()
    status, body, _ = get(daemon, headers={"Authorization": "Basic " + auth}, vdi=vdi)
    assert status == 200 and len(body) == SIZE
    status, body, headers = get(daemon, vdi=vdi)
    assert status == 401 and headers["WWW-Authenticate"] == 'Basic realm="xapi"'
    bad = base64.b64encode(b"root:wrong").decode()
    assert get(daemon, headers={"Authorization": "Basic " + bad}, vdi=vdi)[0] == 401
    status, body, _ = get(daemon, session_id="OpaqueRef:nope", vdi=vdi)
    assert status == 401 and body.startswith(b"SESSION_INVALID")
    status, body, _ = put(daemon, b"x" * 4096, session_id="OpaqueRef:nope", vdi=vdi)
    assert status == 401
    status, body, _ = put(daemon, b"\x01" * MiB, {"Cookie": f"session_id={s}"}, vdi=vdi)
    assert status == 200


def test_unknown_vdi_and_bad_format(daemon, api):
    proxy, s = api
    task = new_task(api)
    status, body, _ = get(daemon, session_id=s, vdi="OpaqueRef:nope", task_id=task)
    assert status == 404 and body.startswith(b"HANDLE_INVALID")
    assert task_record(api, task)["error_info"] == ["HANDLE_INVALID", "VDI", "OpaqueRef:nope"]
    task = new_task(api)
    status, _, _ = put(daemon, b"x" * 512, session_id=s, vdi="no-such-uuid", task_id=task)
    assert status == 404
    assert task_record(api, task)["error_info"] == ["UUID_INVALID", "VDI", "no-such-uuid"]
    vdi = new_vdi(api)
    for method in (get, put):
        task = new_task(api)
        args = (daemon,) if method is get else (daemon, b"x" * 512)
        status, body, _ = method(*args, session_id=s, vdi=vdi, format="tar", task_id=task)
        assert status == 400
        rec = task_record(api, task)
        assert rec["status"] == "failure"
        assert rec["error_info"] == ["INTERNAL_ERROR", "Unknown format tar"]
    # XAPI's own block framing (chunked=true) is not served.
    status, body, _ = put(daemon, b"x" * 512, session_id=s, vdi=vdi, chunked="true")
    assert status == 400 and body == "IMPORT_ERROR_CANNOT_HANDLE_CHUNKED\n"


def test_cut_upload_leaves_vdi_as_it_was(daemon, api, tmp_path):
    proxy, s = api
    vdi = new_vdi(api)
    old = pattern_disk(tmp_path / "old.raw", seed=8)
    assert put_file(daemon, old, session_id=s, vdi=vdi)[0] == 200
    record_before = ok(proxy.VDI.get_record(s, vdi))
    task = new_task(api)
    c = conn(daemon)
    c.putrequest("PUT", f"/import_raw_vdi?session_id={s}&vdi={vdi}&task_id={task}")
    c.putheader("Content-Length", str(SIZE))
    c.endheaders()
    c.send(b"\xff" * (10 * MiB))
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()
    deadline = time.time() + 20
    while task_record(api, task)["status"] == "pending" and time.time() < deadline:
        time.sleep(0.1)
    rec = task_record(api, task)
    assert rec["status"] == "failure"
    assert rec["error_info"] == ["IMPORT_ERROR_PREMATURE_EOF"]
    check_image(vdi_path(api, vdi))
    export_to(daemon, tmp_path / "after.raw", session_id=s, vdi=vdi)
    assert sha256_file(tmp_path / "after.raw") == sha256_file(old)
    assert ok(proxy.VDI.get_record(s, vdi)) == record_before
    assert no_leftovers(api)


def test_oversized_upload_is_refused(daemon, api, tmp_path):
    proxy, s = api
    vdi = new_vdi(api, size=8 * MiB)
    old = pattern_disk(tmp_path / "old.raw", size=8 * MiB, seed=9)
    assert put_file(daemon, old, session_id=s, vdi=vdi)[0] == 200
    # Announced: refused before the body is read.
    task = new_task(api)
    c = conn(daemon)
    c.putrequest("PUT", f"/import_raw_vdi?session_id={s}&vdi={vdi}&task_id={task}")
    c.putheader("Content-Length", str(8 * MiB + 1))
    c.endheaders()
    r = c.getresponse()
    assert r.status == 400 and r.read().startswith(b"VDI_TOO_SMALL")
    assert task_record(api, task)["error_info"] == ["VDI_TOO_SMALL", vdi, str(8 * MiB + 1)]
    # Chunked: noticed when the bytes pass the size.
    task = new_task(api)
    c = conn(daemon)
    c.request("PUT", f"/import_raw_vdi?session_id={s}&vdi={vdi}&task_id={task}",
              body=iter([b"\x11" * MiB] * 9), encode_chunked=True)
    r = c.getresponse()
    assert r.status == 400
    assert task_record(api, task)["error_info"][0] == "VDI_TOO_SMALL"
    check_image(vdi_path(api, vdi))
    status, body, _ = get(daemon, session_id=s, vdi=vdi)
    assert body == open(old, "rb").read()
    assert ok(proxy.VDI.get_current_operations(s, vdi)) == {}
    assert no_leftovers(api)


def test_empty_probe_put_touches_nothing(daemon, api):
    proxy, s = api
    vdi = new_vdi(api)
    task = new_task(api)
    status, _, _ = put(daemon, b"", {"Content-Length": "0"}, session_id=s, vdi=vdi, task_id=task)
    assert status == 200
    assert task_record(api, task)["status"] == "pending"
    assert ok(proxy.VDI.get_current_operations(s, vdi)) == {}


def test_upload_holds_the_update_lock(daemon, api, tmp_path):
    proxy, s = api
    vdi = new_vdi(api)
    task = new_task(api)
    c = conn(daemon)
    c.putrequest("PUT", f"/import_raw_vdi?session_id={s}&vdi={vdi}&task_id={task}")
    c.putheader("Content-Length", str(2 * MiB))
    c.endheaders()
    c.send(b"\x01" * MiB)
    wait_until(lambda: task_record(api, task)["progress"] > 0,
               what="the upload's first bytes")
    assert err(proxy.VDI.destroy(s, vdi))[0] == "OTHER_OPERATION_IN_PROGRESS"
    status, body, _ = get(daemon, session_id=s, vdi=vdi)
    assert status == 409 and body.startswith(b"OTHER_OPERATION_IN_PROGRESS")
    assert 0 < task_record(api, task)["progress"] <= 1
    c.send(b"\x01" * MiB)
    assert c.getresponse().status == 200
    assert ok(proxy.VDI.get_current_operations(s, vdi)) == {}


def test_import_into_attached_vdi_is_refused(daemon, api):
    proxy, s = api
    vdi = new_vdi(api)
    vm = ok(proxy.VM.create(s, {"name_label": "transfer", "memory_static_max": str(256 * MiB),
                                "VCPUs_max": "1", "VCPUs_at_startup": "1",
                                "actions_after_shutdown": "destroy",
                                "actions_after_reboot": "restart",
                                "actions_after_crash": "destroy"}))
    ok(proxy.VBD.create(s, {"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": True,
                            "mode": "RW", "type": "Disk", "unpluggable": True, "empty": False,
                            "other_config": {}, "qos_algorithm_type": "",
                            "qos_algorithm_params": {}}))
    ok(proxy.VM.start(s, vm, False, False))
    try:
        status, body, _ = put(daemon, b"\x01" * 4096, session_id=s, vdi=vdi)
        assert status == 409 and body.startswith("VDI_IN_USE")
        # A guest writing to it rules out a consistent export too (XAPI's copy check).
        assert get(daemon, session_id=s, vdi=vdi)[0] == 409
    finally:
        ok(proxy.VM.hard_shutdown(s, vm))


def test_backing_chain_and_differential_export(daemon, api, tmp_path):
    proxy, s = api
    vdi = new_vdi(api)
    old = pattern_disk(tmp_path / "old.raw", seed=10)
    assert put_file(daemon, old, session_id=s, vdi=vdi)[0] == 200
    snap = ok(proxy.VDI.snapshot(s, vdi, {}))
    sm_config = ok(proxy.VDI.get_sm_config(s, vdi))
    assert "vhd-parent" in sm_config
    # A VDI over a base exports whole, in every format.
    export_to(daemon, tmp_path / "chain.raw", session_id=s, vdi=vdi)
    assert sha256_file(tmp_path / "chain.raw") == sha256_file(old)
    export_to(daemon, tmp_path / "chain.qcow2", session_id=s, vdi=vdi, format="qcow2")
    qemu_img("compare", "-f", "raw", "-F", "qcow2", str(old), str(tmp_path / "chain.qcow2"))
    assert "backing-filename" not in json.loads(
        qemu_img("info", "--output=json", str(tmp_path / "chain.qcow2")))
    # New contents: blocks the base has and the stream does not are zeros.
    new = bytearray(SIZE)
    new[40 * MiB:41 * MiB] = random.Random(11).randbytes(MiB)
    new[0:MiB] = open(old, "rb").read(MiB)  # unchanged from the snapshot
    (tmp_path / "new.raw").write_bytes(new)
    assert put_file(daemon, tmp_path / "new.raw", session_id=s, vdi=vdi)[0] == 200
    assert get(daemon, session_id=s, vdi=vdi)[1] == bytes(new)
    assert get(daemon, session_id=s, vdi=snap)[1] == open(old, "rb").read()
    assert ok(proxy.VDI.get_sm_config(s, vdi)) == sm_config  # still over the same base
    check_image(vdi_path(api, vdi))
    # Relative to the snapshot: unchanged blocks read as zeros (XAPI's raw diff).
    status, diff, _ = get(daemon, session_id=s, vdi=vdi, base=snap)
    assert status == 200 and len(diff) == SIZE
    assert diff[0:MiB] == bytes(MiB)
    assert diff[40 * MiB:41 * MiB] == new[40 * MiB:41 * MiB]
    assert diff[5 * MiB:6 * MiB] == bytes(MiB)  # zeroed since: zeros either way
    # qcow2 relative to the snapshot: only the changed clusters are in it.
    snap_uuid = ok(proxy.VDI.get_uuid(s, snap))
    export_to(daemon, tmp_path / "diff.qcow2", session_id=s, vdi=vdi, base=snap_uuid,
              format="qcow2")
    out = tmp_path / "diff.raw"
    qemu_img("convert", "-O", "raw", str(tmp_path / "diff.qcow2"), str(out))
    assert open(out, "rb").read() == diff
    assert os.path.getsize(tmp_path / "diff.qcow2") < 4 * MiB


def test_raw_import_makes_a_raw_leaf(daemon, api, tmp_path):
    """A VDI with no backing chain takes raw data as a raw file: a new
    location, the same contents, sparse."""
    proxy, s = api
    vdi = new_vdi(api)
    old_location = ok(proxy.VDI.get_location(s, vdi))
    assert old_location.endswith(".qcow2")
    src = pattern_disk(tmp_path / "in.raw", seed=20)
    assert put_file(daemon, src, session_id=s, vdi=vdi)[0] == 200
    location = ok(proxy.VDI.get_location(s, vdi))
    assert location.endswith(".raw") and location != old_location
    assert not os.path.exists(os.path.join(sr_dir(api), old_location))
    path = vdi_path(api, vdi)
    assert os.path.getsize(path) == SIZE
    assert int(ok(proxy.VDI.get_physical_utilisation(s, vdi))) == \
        os.stat(path).st_blocks * 512 < 8 * MiB
    assert json.loads(qemu_img("info", "--output=json", path))["format"] == "raw"
    export_to(daemon, tmp_path / "out.raw", session_id=s, vdi=vdi)
    assert sha256_file(tmp_path / "out.raw") == sha256_file(src)
    # qcow2 and vhd exports of a raw leaf
    export_to(daemon, tmp_path / "out.qcow2", session_id=s, vdi=vdi, format="qcow2")
    qemu_img("compare", "-f", "raw", "-F", "qcow2", str(src), str(tmp_path / "out.qcow2"))
    # A second import into the now raw VDI: another raw file, the old one gone.
    src2 = pattern_disk(tmp_path / "in2.raw", seed=21)
    assert put_file(daemon, src2, session_id=s, vdi=vdi)[0] == 200
    location2 = ok(proxy.VDI.get_location(s, vdi))
    assert location2.endswith(".raw") and location2 != location
    assert not os.path.exists(os.path.join(sr_dir(api), location))
    status, body, _ = get(daemon, session_id=s, vdi=vdi)
    assert status == 200 and hashlib.sha256(body).hexdigest() == sha256_file(src2)
    # A scan finds nothing new and forgets nothing.
    vdis = set(ok(proxy.SR.get_VDIs(s, default_sr(api))))
    ok(proxy.SR.scan(s, default_sr(api)))
    assert set(ok(proxy.SR.get_VDIs(s, default_sr(api)))) == vdis
    assert ok(proxy.VDI.get_location(s, vdi)) == location2
    # VDI.resize of a raw leaf
    ok(proxy.VDI.resize(s, vdi, str(SIZE + 8 * MiB)))
    assert os.path.getsize(vdi_path(api, vdi)) == SIZE + 8 * MiB
    assert int(ok(proxy.VDI.get_virtual_size(s, vdi))) == SIZE + 8 * MiB
    status, body, _ = get(daemon, session_id=s, vdi=vdi)
    assert body[:SIZE] == open(src2, "rb").read() and body[SIZE:] == bytes(8 * MiB)
    assert ok(proxy.VDI.get_current_operations(s, vdi)) == {}
    assert no_leftovers(api)


def test_failed_raw_import_leaves_a_raw_leaf_as_it_was(daemon, api, tmp_path):
    proxy, s = api
    vdi = new_vdi(api, size=8 * MiB)
    old = pattern_disk(tmp_path / "old.raw", size=8 * MiB, seed=22)
    assert put_file(daemon, old, session_id=s, vdi=vdi)[0] == 200
    record_before = ok(proxy.VDI.get_record(s, vdi))
    assert record_before["location"].endswith(".raw")
    task = new_task(api)
    c = conn(daemon)
    c.request("PUT", f"/import_raw_vdi?session_id={s}&vdi={vdi}&task_id={task}",
              body=iter([b"\x11" * MiB] * 9), encode_chunked=True)
    assert c.getresponse().status == 400
    assert task_record(api, task)["error_info"][0] == "VDI_TOO_SMALL"
    cut_task = new_task(api)
    c = conn(daemon)
    c.putrequest("PUT", f"/import_raw_vdi?session_id={s}&vdi={vdi}&task_id={cut_task}")
    c.putheader("Content-Length", str(8 * MiB))
    c.endheaders()
    c.send(b"\xff" * MiB)
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()
    # The server may not even have begun the cut import when the client is
    # done: its task says when it has ended, and the lock goes right after.
    deadline = time.time() + 20
    while (task_record(api, cut_task)["status"] == "pending" or
           ok(proxy.VDI.get_current_operations(s, vdi))) and time.time() < deadline:
        time.sleep(0.05)
    assert task_record(api, cut_task)["error_info"] == ["IMPORT_ERROR_PREMATURE_EOF"]
    assert ok(proxy.VDI.get_record(s, vdi)) == record_before
    assert get(daemon, session_id=s, vdi=vdi)[1] == open(old, "rb").read()
    assert no_leftovers(api)


@pytest.mark.parametrize("fork", ["snapshot", "clone"])
def test_snapshot_and_clone_of_a_raw_leaf(daemon, api, tmp_path, fork):
    """Overlays over a raw base record it as raw; the chain reads whole; an
    import into the VDI over it goes through qemu-nbd and keeps the chain."""
    proxy, s = api
    vdi = new_vdi(api)
    old = pattern_disk(tmp_path / "old.raw", seed=23)
    assert put_file(daemon, old, session_id=s, vdi=vdi)[0] == 200
    raw_location = ok(proxy.VDI.get_location(s, vdi))
    assert raw_location.endswith(".raw")
    other = ok(getattr(proxy.VDI, fork)(s, vdi, {}))
    for v in (vdi, other):
        info = chain(vdi_path(api, v))
        assert [i["format"] for i in info] == ["qcow2", "raw"]
        assert info[0]["backing-filename-format"] == "raw"
        assert os.path.basename(info[1]["filename"]) == raw_location
        status, body, _ = get(daemon, session_id=s, vdi=v)
        assert status == 200 and hashlib.sha256(body).hexdigest() == sha256_file(old)
    sm_config = ok(proxy.VDI.get_sm_config(s, vdi))
    base_uuid = sm_config["vhd-parent"]
    base = ok(proxy.VDI.get_by_uuid(s, base_uuid))
    assert ok(proxy.VDI.get_location(s, base)) == raw_location
    assert get(daemon, session_id=s, vdi=base)[1].startswith(b"VDI_NOT_MANAGED")
    # Import into the VDI over the raw base: qcow2 over the same base.
    new = bytearray(SIZE)
    new[40 * MiB:41 * MiB] = random.Random(24).randbytes(MiB)
    (tmp_path / "new.raw").write_bytes(new)
    assert put_file(daemon, tmp_path / "new.raw", session_id=s, vdi=vdi)[0] == 200
    assert ok(proxy.VDI.get_location(s, vdi)).endswith(".qcow2")
    assert ok(proxy.VDI.get_sm_config(s, vdi)) == sm_config
    info = chain(vdi_path(api, vdi))
    assert [i["format"] for i in info] == ["qcow2", "raw"]
    check_image(vdi_path(api, vdi))
    assert get(daemon, session_id=s, vdi=vdi)[1] == bytes(new)
    assert get(daemon, session_id=s, vdi=other)[1] == open(old, "rb").read()
    # Differential export against the other side of the fork.
    status, diff, _ = get(daemon, session_id=s, vdi=vdi, base=other)
    assert status == 200 and diff[40 * MiB:41 * MiB] == new[40 * MiB:41 * MiB]
    # The base is raw and read by both: an import into the base is refused,
    # and the other VDI (a leaf over it) keeps its chain on import too.
    assert put(daemon, b"\x01" * 4096, session_id=s, vdi=base)[0] != 200
    assert put_file(daemon, tmp_path / "new.raw", session_id=s, vdi=other)[0] == 200
    assert ok(proxy.VDI.get_location(s, other)).endswith(".qcow2")
    assert [i["format"] for i in chain(vdi_path(api, other))] == ["qcow2", "raw"]
    for v in (vdi, other):
        ok(proxy.VDI.destroy(s, v))
    assert not os.path.exists(os.path.join(sr_dir(api), raw_location))
    assert no_leftovers(api)


def test_unknown_task_id_is_refused_and_changes_nothing(daemon, api, tmp_path):
    """A task_id must name a task the caller may use (its user's own, or
    with task.destroy/any; see task_access_test.c for other users): an
    unknown one is refused, not replaced by a task of our own."""
    proxy, s = api
    vdi = new_vdi(api)
    before = sha256_file(vdi_path(api, vdi))
    tasks_before = sorted(ok(proxy.task.get_all(s)))
    status, body, _ = put(daemon, b"\x07" * 512, session_id=s, vdi=vdi, task_id="OpaqueRef:nope")
    assert status == 404 and body.startswith("HANDLE_INVALID task OpaqueRef:nope")
    status, body, _ = get(daemon, session_id=s, vdi=vdi, task_id="OpaqueRef:nope")
    assert status == 404 and body.startswith(b"HANDLE_INVALID task")
    assert sorted(ok(proxy.task.get_all(s))) == tasks_before
    assert sha256_file(vdi_path(api, vdi)) == before
    # Another root session's task is root's too (XAPI: the same user).
    other = ok(proxy.session.login_with_password("root", PASSWORD))
    task = ok(proxy.task.create(other, "from another session", ""))
    status, _, headers = get(daemon, session_id=s, vdi=vdi, task_id=task)
    assert status == 200 and headers["Task-Id"] == task


def new_vm_with_disks(api, vdis, **other_config):
    proxy, s = api
    vm = ok(proxy.VM.create(s, {"name_label": "attach-lock", "memory_static_max": str(256 * MiB),
                                "VCPUs_max": "1", "VCPUs_at_startup": "1",
                                "actions_after_shutdown": "destroy",
                                "actions_after_reboot": "restart",
                                "actions_after_crash": "destroy",
                                "other_config": other_config}))
    for i, vdi in enumerate(vdis):
        ok(proxy.VBD.create(s, {"VM": vm, "VDI": vdi, "userdevice": str(i), "bootable": i == 0,
                                "mode": "RW", "type": "Disk", "unpluggable": True,
                                "empty": False, "other_config": {}, "qos_algorithm_type": "",
                                "qos_algorithm_params": {}}))
    return vm


def wait_for(predicate, what):
    deadline = time.time() + 30
    while not predicate():
        assert time.time() < deadline, what
        time.sleep(0.02)


def test_vm_start_refuses_a_vdi_being_imported(daemon, api):
    """An import in flight holds the VDI: VM.start answers VDI_IN_USE and
    takes none of its locks (the idle disk's VBD is not left marked)."""
    proxy, s = api
    busy, idle = new_vdi(api), new_vdi(api)
    vm = new_vm_with_disks(api, [idle, busy])
    task = new_task(api)
    c = conn(daemon)
    c.putrequest("PUT", f"/import_raw_vdi?session_id={s}&vdi={busy}&task_id={task}")
    c.putheader("Content-Length", str(2 * MiB))
    c.endheaders()
    c.send(b"\x02" * MiB)
    wait_for(lambda: ok(proxy.VDI.get_current_operations(s, busy)) == {task: "update"},
             "the import holds the VDI")
    assert err(proxy.VM.start(s, vm, False, False)) == ["VDI_IN_USE", busy, "update"]
    assert ok(proxy.VM.get_power_state(s, vm)) == "Halted"
    assert ok(proxy.VM.get_current_operations(s, vm)) == {}
    for vbd in ok(proxy.VM.get_VBDs(s, vm)):
        assert ok(proxy.VBD.get_current_operations(s, vbd)) == {}
    assert "destroy" in ok(proxy.VDI.get_allowed_operations(s, idle))
    c.send(b"\x02" * MiB)
    assert c.getresponse().status == 200
    ok(proxy.VM.start(s, vm, False, False))
    ok(proxy.VM.hard_shutdown(s, vm))


def test_vdi_operations_refuse_a_vdi_a_starting_vm_attaches(daemon, api, tmp_path):
    """VM.start in flight holds its VDIs' attach locks (taken with its own):
    destroy, resize and an import answer VDI_IN_USE until it is done."""
    proxy, s = api
    vdi = new_vdi(api)
    gate = tmp_path / "gate"
    vm = new_vm_with_disks(api, [vdi], sim_start_gate=str(gate))
    task = ok(proxy.Async.VM.start(s, vm, False, False))
    wait_for(lambda: ok(proxy.VM.get_current_operations(s, vm)) == {task: "start"},
             "VM.start is in flight")
    vbd = ok(proxy.VM.get_VBDs(s, vm))[0]
    assert ok(proxy.VBD.get_current_operations(s, vbd)) == {task: "attach"}
    assert err(proxy.VDI.destroy(s, vdi)) == ["VDI_IN_USE", vdi, "destroy"]
    assert err(proxy.VDI.resize(s, vdi, str(2 * SIZE))) == ["VDI_IN_USE", vdi, "resize"]
    # a body small enough for the socket's buffer: the refusal comes before it is read
    status, body, _ = put(daemon, b"\x03" * 4096, session_id=s, vdi=vdi)
    assert status == 409 and body.startswith("VDI_IN_USE")
    assert "destroy" not in ok(proxy.VDI.get_allowed_operations(s, vdi))
    gate.write_text("")
    wait_for(lambda: task_record(api, task)["status"] != "pending", "VM.start ends")
    assert task_record(api, task)["status"] == "success"
    assert ok(proxy.VM.get_power_state(s, vm)) == "Running"
    assert ok(proxy.VBD.get_current_operations(s, vbd)) == {}
    assert ok(proxy.VBD.get_currently_attached(s, vbd))
    assert err(proxy.VDI.destroy(s, vdi)) == ["VDI_IN_USE", vdi, "destroy"]
    ok(proxy.VM.hard_shutdown(s, vm))
    ok(proxy.VDI.resize(s, vdi, str(2 * SIZE)))


def test_raw_vdi_with_a_qcow2_header_stays_raw(daemon, api, tmp_path):
    """A guest may write anything to its raw disk, a qcow2 header naming
    /etc/shadow as backing file included: qemu-img is always told the
    format, so the VDI is never opened as that qcow2 (its size, a scan,
    a resize, an export and a snapshot all see the raw bytes)."""
    proxy, s = api
    vdi = new_vdi(api)
    trap = tmp_path / "trap.qcow2"
    qemu_img("create", "-q", "-u", "-f", "qcow2", "-b", "/etc/shadow", "-F", "raw", str(trap),
             str(4 * SIZE))
    data = tmp_path / "in.raw"
    with open(data, "wb") as f:
        f.write(trap.read_bytes())
        f.truncate(SIZE)
    status, body, _ = put_file(daemon, data, session_id=s, vdi=vdi)
    assert status == 200, body
    assert ok(proxy.VDI.get_location(s, vdi)).endswith(".raw")
    ok(proxy.SR.scan(s, default_sr(api)))
    assert ok(proxy.VDI.get_virtual_size(s, vdi)) == str(SIZE)
    assert not ok(proxy.VDI.get_missing(s, vdi))
    ok(proxy.VDI.resize(s, vdi, str(2 * SIZE)))
    ok(proxy.VDI.update(s, vdi))
    assert ok(proxy.VDI.get_virtual_size(s, vdi)) == str(2 * SIZE)
    assert os.path.getsize(vdi_path(api, vdi)) == 2 * SIZE
    with open(data, "ab") as f:
        f.truncate(2 * SIZE)
    export_to(daemon, tmp_path / "out.raw", session_id=s, vdi=vdi)
    assert sha256_file(tmp_path / "out.raw") == sha256_file(data)
    snap = ok(proxy.VDI.snapshot(s, vdi, {}))
    export_to(daemon, tmp_path / "snap.raw", session_id=s, vdi=snap)
    assert sha256_file(tmp_path / "snap.raw") == sha256_file(data)
    export_to(daemon, tmp_path / "leaf.raw", session_id=s, vdi=vdi)
    assert sha256_file(tmp_path / "leaf.raw") == sha256_file(data)


def test_transfers_never_follow_a_link_in_place_of_a_vdi(daemon, api, tmp_path):
    proxy, s = api
    vdi = new_vdi(api)
    path = vdi_path(api, vdi)
    os.unlink(path)
    os.symlink("/etc/passwd", path)
    before = open("/etc/passwd", "rb").read()
    status, body, _ = get(daemon, session_id=s, vdi=vdi)
    assert status != 200 and body.startswith(b"SR_BACKEND_FAILURE_46") and b"root:" not in body
    status, body, _ = get(daemon, session_id=s, vdi=vdi, format="qcow2")
    assert status != 200 and b"root:" not in body
    status, body, _ = put(daemon, b"\x04" * 4096, session_id=s, vdi=vdi)
    assert status != 200 and body.startswith("SR_BACKEND_FAILURE_46")
    assert open("/etc/passwd", "rb").read() == before
    assert os.path.islink(path)
    ok(proxy.VDI.destroy(s, vdi))
    assert not os.path.lexists(path) and open("/etc/passwd", "rb").read() == before


def test_vbd_plug_refuses_a_vdi_being_imported(daemon, api):
    proxy, s = api
    disk, busy = new_vdi(api), new_vdi(api)
    vm = new_vm_with_disks(api, [disk])
    ok(proxy.VM.start(s, vm, False, False))
    try:
        vbd = ok(proxy.VBD.create(s, {"VM": vm, "VDI": busy, "userdevice": "1",
                                      "bootable": False, "mode": "RW", "type": "Disk",
                                      "unpluggable": True, "empty": False, "other_config": {},
                                      "qos_algorithm_type": "", "qos_algorithm_params": {}}))
        task = new_task(api)
        c = conn(daemon)
        c.putrequest("PUT", f"/import_raw_vdi?session_id={s}&vdi={busy}&task_id={task}")
        c.putheader("Content-Length", str(2 * MiB))
        c.endheaders()
        c.send(b"\x05" * MiB)
        wait_for(lambda: ok(proxy.VDI.get_current_operations(s, busy)) == {task: "update"},
                 "the import holds the VDI")
        assert err(proxy.VBD.plug(s, vbd)) == ["VDI_IN_USE", busy, "update"]
        assert not ok(proxy.VBD.get_currently_attached(s, vbd))
        c.send(b"\x05" * MiB)
        assert c.getresponse().status == 200
        ok(proxy.VBD.plug(s, vbd))
        ok(proxy.VBD.unplug(s, vbd))
    finally:
        ok(proxy.VM.hard_shutdown(s, vm))


def test_exports_never_read_a_backing_file_outside_the_sr(daemon, api):
    proxy, s = api
    vdi = new_vdi(api)
    path = vdi_path(api, vdi)
    qemu_img("create", "-q", "-u", "-f", "qcow2", "-b", "/etc/shadow", "-F", "raw", path,
             str(SIZE))
    for fmt in ("raw", "qcow2", "vhd"):
        status, body, _ = get(daemon, session_id=s, vdi=vdi, format=fmt)
        assert status != 200 and body.startswith(b"SR_BACKEND_FAILURE_46"), (fmt, body[:100])
        assert b"root:" not in body
    status, body, _ = put(daemon, b"\x06" * 4096, session_id=s, vdi=vdi)
    assert status != 200 and body.startswith("SR_BACKEND_FAILURE_46")
    ok(proxy.VDI.destroy(s, vdi))
