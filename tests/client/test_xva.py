"""XVA export and import (GET /export, PUT /import, /export_metadata,
/import_metadata) against a real daemon (sim driver: no guest is needed to
move disks and records), with http.client as the client: round trips whose
disks are compared byte for byte, every compression, an XVA built here from
the format description (not by xapid), corrupted, cut and misdirected
uploads that must leave nothing behind, uploads of unknown length, the
shape of ova.xml against a golden file."""
import gzip
import hashlib
import http.client
import io
import os
import re
import socket
import subprocess
import tarfile
import xml.etree.ElementTree as ET

import pytest

from sim_daemon import sim_daemon_with_sr_root
from xapid_daemon import PASSWORD, REPO, err, ok, wait_until

MiB = 1 << 20
NULL = "OpaqueRef:NULL"
GOLDEN = os.path.join(REPO, "tests", "client", "golden", "xva_ova_shape.txt")


@pytest.fixture(scope="module")
def daemon():
    with sim_daemon_with_sr_root() as d:
        yield d


@pytest.fixture()
def api(daemon):
    return daemon.login()


def default_sr(api):
    proxy, s = api
    pool = ok(proxy.pool.get_all(s))[0]
    return ok(proxy.pool.get_default_SR(s, pool))


def disk_content(size, seed):
    """Random data with a hole of zeros in the middle and a partial last
    MiB: blocks skipped, block 0 and the last written."""
    rnd = hashlib.sha256(seed.encode()).digest()
    block = (rnd * (MiB // len(rnd)))
    out = bytearray()
    for i in range(size // MiB):
        out += bytes(MiB) if 1 <= i <= 3 else bytes((b + i) % 256 for b in block[:64]) * (MiB // 64)
    out += os.urandom(size % MiB)
    return bytes(out)


def put_raw(daemon, s, vdi, body):
    c = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=60)
    c.request("PUT", f"/import_raw_vdi?session_id={s}&vdi={vdi}&format=raw", body=body)
    r = c.getresponse()
    r.read()
    assert r.status == 200, r.status


def get_raw(daemon, s, vdi):
    c = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=60)
    c.request("GET", f"/export_raw_vdi?session_id={s}&vdi={vdi}&format=raw")
    r = c.getresponse()
    assert r.status == 200, r.status
    return r.read()


def make_vm(daemon, api, name, sizes=(6 * MiB + 4096, 3 * MiB), network=None, nic=True):
    """A VM with disks of sizes (written with disk_content) and a NIC."""
    proxy, s = api
    sr = default_sr(api)
    vm = ok(proxy.VM.create(s, {"name_label": name, "memory_static_max": str(256 * MiB),
                                "memory_dynamic_max": str(256 * MiB),
                                "memory_dynamic_min": str(256 * MiB),
                                "memory_static_min": str(128 * MiB),
                                "VCPUs_max": "1", "VCPUs_at_startup": "1",
                                "other_config": {"mac_seed": "seed-1", "k": "v"}}))
    contents = []
    for i, size in enumerate(sizes):
        vdi = ok(proxy.VDI.create(s, {"name_label": f"{name}-disk{i}", "SR": sr,
                                      "virtual_size": str(size), "type": "user",
                                      "sharable": False, "read_only": False,
                                      "other_config": {}}))
        ok(proxy.VBD.create(s, {"VM": vm, "VDI": vdi, "userdevice": str(i), "bootable": i == 0,
                                "mode": "RW", "type": "Disk", "unpluggable": True,
                                "empty": False, "other_config": {}, "qos_algorithm_type": "",
                                "qos_algorithm_params": {}}))
        data = disk_content(size, f"{name}{i}")
        put_raw(daemon, s, vdi, data)
        contents.append(data)
    if not nic:
        return vm, contents
    net = network or list(ok(proxy.network.get_all(s)))[0]
    ok(proxy.VIF.create(s, {"VM": vm, "network": net, "device": "0", "MAC": "02:00:00:aa:bb:01",
                            "MTU": "1500", "other_config": {}, "qos_algorithm_type": "",
                            "qos_algorithm_params": {}}))
    return vm, contents


def vm_disks(api, vm):
    """The VDIs of vm's disk VBDs, by userdevice."""
    proxy, s = api
    out = {}
    for vbd in ok(proxy.VM.get_VBDs(s, vm)):
        rec = ok(proxy.VBD.get_record(s, vbd))
        if rec["type"] == "Disk":
            out[rec["userdevice"]] = rec["VDI"]
    return [out[k] for k in sorted(out)]


def new_task(api, label="xva"):
    proxy, s = api
    return ok(proxy.task.create(s, label, ""))


def task_outcome(api, task):
    proxy, s = api
    wait_until(lambda: ok(proxy.task.get_status(s, task)) != "pending", what="the task's end")
    rec = ok(proxy.task.get_record(s, task))
    return rec["status"], rec["result"], rec["error_info"]


def export(daemon, s, vm, compression=None, task=None, extra=""):
    q = f"/export?session_id={s}&ref={vm}"
    if compression:
        q += f"&use_compression={compression}"
    if task:
        q += f"&task_id={task}"
    c = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=120)
    c.request("GET", q + extra)
    r = c.getresponse()
    body = r.read()
    return r.status, dict(r.getheaders()), body


def put_import(daemon, s, body, task=None, query="", path="/import", headers=None):
    q = f"{path}?session_id={s}{query}"
    if task:
        q += f"&task_id={task}"
    c = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=120)
    try:
        c.request("PUT", q, body=body, headers=headers or {})
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused before the body was read: the reply is there
    try:
        r = c.getresponse()
        return r.status, r.read()
    except (ConnectionResetError, http.client.RemoteDisconnected):
        return None, b""  # the import stopped reading: the task says why


def result_refs(result):
    return re.findall(r"OpaqueRef:[0-9a-z-]+", result)


def snapshot_of_objects(api):
    proxy, s = api
    out = {cls: set(ok(getattr(proxy, cls).get_all(s))) for cls in ("VM", "VBD", "VIF")}
    # hidden bases ("base copy") stay under a snapshotted disk, as in XenServer
    out["VDI"] = {r for r, v in ok(proxy.VDI.get_all_records(s)).items() if v["managed"]}
    return out


def sr_files(api):
    proxy, s = api
    pbd = ok(proxy.SR.get_PBDs(s, default_sr(api)))[0]
    where = ok(proxy.PBD.get_device_config(s, pbd))["location"]
    return set(os.listdir(where))


def tar_of(body):
    if body[:4] == b"\x28\xb5\x2f\xfd":
        body = subprocess.run(["zstd", "-dc"], input=body, capture_output=True, check=True).stdout
    elif body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    return body


def members(body):
    with tarfile.open(fileobj=io.BytesIO(tar_of(body))) as t:
        return [(m.name, t.extractfile(m).read()) for m in t.getmembers()]


# ---- export ------------------------------------------------------------------------


def test_export_stream_is_xenserver_layout(daemon, api):
    proxy, s = api
    vm, contents = make_vm(daemon, api, "layout")
    task = new_task(api)
    status, headers, body = export(daemon, s, vm, task=task)
    assert status == 200
    assert headers["Content-Disposition"] == 'attachment; filename="export.xva"'
    assert headers["Task-Id"] == task
    assert body.endswith(b"\0" * 1024)
    items = members(body)
    assert items[0][0] == "ova.xml"
    ova = items[0][1].decode()
    assert ova.startswith("<value><struct><member><name>version</name>")
    assert "\n" not in ova and not ova.startswith("<?xml")
    host = ok(proxy.host.get_all_records(s))
    major, minor = list(host.values())[0]["software_version"]["xapi"].split(".")[:2]
    assert (f"<member><name>xapi_major</name><value>{major}</value></member><member><name>"
            f"xapi_minor</name><value>{minor}</value></member><member><name>export_vsn</name>"
            "<value>2</value></member>") in ova
    blocks = items[1:]
    ids = sorted({name.split("/")[0] for name, _ in blocks})
    assert len(ids) == 2
    # stream order: disk ids as strings, each block followed by its .xxhash
    assert [n.split("/")[0] for n, _ in blocks] == sorted(n.split("/")[0] for n, _ in blocks)
    for (name, data), (hname, hval) in zip(blocks[0::2], blocks[1::2]):
        assert hname == name + ".xxhash"
        assert re.fullmatch(rb"[0-9A-F]{16}", hval), hval
    first = [n for n, _ in blocks if n.startswith(ids[0] + "/") and not n.endswith(".xxhash")]
    second = [n for n, _ in blocks if n.startswith(ids[1] + "/") and not n.endswith(".xxhash")]
    # the disk of 6 MiB + 4 KiB: blocks 1-3 are zeros and left out, the
    # partial last block (6) is written; the 3 MiB one: 1-2 zeros, 2 is last
    numbers = sorted([[int(n.split("/")[1]) for n in first], [int(n.split("/")[1]) for n in second]])
    assert numbers == sorted([[0, 4, 5, 6], [0, 2]])
    assert status_ok(api, task)


def status_ok(api, task):
    status, result, error = task_outcome(api, task)
    assert status == "success", error
    return True


def test_zero_block_xxhash_is_the_reference_value(daemon, api):
    proxy, s = api
    vm, _ = make_vm(daemon, api, "zeros", sizes=(2 * MiB,))
    vdi = vm_disks(api, vm)[0]
    put_raw(daemon, s, vdi, bytes(2 * MiB))
    items = dict(members(export(daemon, s, vm)[2]))
    sums = [v for k, v in items.items() if k.endswith(".xxhash")]
    # block 0 and the last block, both zeros: XXH64 of a zero MiB
    assert sums == [b"87D2A1B6E1163EF1", b"87D2A1B6E1163EF1"]


def shape(ova_text):
    """ova.xml reduced to what does not change from one export to the next:
    the version's members, and each object's class and its snapshot's field
    names, with the VM's forced fields' values."""
    root = ET.fromstring(ova_text)
    top = {m.find("name").text: m.find("value") for m in root.find("struct")}
    lines = ["version: " + " ".join(m.find("name").text
                                    for m in top["version"].find("struct"))]
    for v in top["objects"].find("array").find("data"):
        fields = {m.find("name").text: m.find("value") for m in v.find("struct")}
        cls = fields["class"].text
        assert re.fullmatch(r"Ref:\d+", fields["id"].text)
        snap = {m.find("name").text: m.find("value") for m in fields["snapshot"].find("struct")}
        lines.append(f"{cls}: {len(snap)} fields")
        if cls == "VM":
            for k in ("power_state", "suspend_VDI", "is_a_snapshot", "snapshot_of"):
                val = snap[k]
                lines.append(f"  {k} = {ET.tostring(val, encoding='unicode')}")
        if cls == "VBD":
            assert re.fullmatch(r"Ref:\d+", snap["VM"].text)
    return "\n".join(lines) + "\n"


def test_ova_xml_shape_matches_golden(daemon, api):
    proxy, s = api
    vm, _ = make_vm(daemon, api, "golden", sizes=(MiB,))
    ova = members(export(daemon, s, vm)[2])[0][1].decode()
    got = shape(ova)
    if os.environ.get("XAPID_UPDATE_GOLDEN"):
        os.makedirs(os.path.dirname(GOLDEN), exist_ok=True)
        with open(GOLDEN, "w") as f:
            f.write(got)
    with open(GOLDEN) as f:
        assert got == f.read()


# ---- round trips -------------------------------------------------------------------


@pytest.mark.parametrize("compression", [None, "true", "gzip", "zstd"])
def test_round_trip_keeps_every_byte(daemon, api, compression):
    proxy, s = api
    vm, contents = make_vm(daemon, api, f"trip-{compression}")
    status, _, body = export(daemon, s, vm, compression)
    assert status == 200
    if compression in ("true", "gzip"):
        assert body[:2] == b"\x1f\x8b"
    elif compression == "zstd":
        assert body[:4] == b"\x28\xb5\x2f\xfd"
    else:
        assert members(body)[0][0] == "ova.xml"
    task = new_task(api)
    status, _ = put_import(daemon, s, body, task=task, query=f"&sr_id={default_sr(api)}")
    assert status == 200
    state, result, error = task_outcome(api, task)
    assert state == "success", error
    assert re.fullmatch(r"<value><array><data><value>OpaqueRef:[0-9a-f-]+</value></data>"
                        r"</array></value>", result), result
    new_vm = result_refs(result)[0]
    assert new_vm != vm
    rec = ok(proxy.VM.get_record(s, new_vm))
    assert rec["name_label"] == f"trip-{compression}"
    assert rec["power_state"] == "Halted"
    assert rec["uuid"] != ok(proxy.VM.get_uuid(s, vm))
    assert rec["other_config"].get("mac_seed") != "seed-1" and rec["other_config"]["k"] == "v"
    assert rec["current_operations"] == {}
    disks = vm_disks(api, new_vm)
    assert len(disks) == 2
    for vdi, data in zip(disks, contents):
        vrec = ok(proxy.VDI.get_record(s, vdi))
        assert int(vrec["virtual_size"]) == len(data)
        assert "xapid_import_pending" not in vrec["other_config"]
        assert get_raw(daemon, s, vdi) == data
    vifs = ok(proxy.VM.get_VIFs(s, new_vm))
    assert len(vifs) == 1
    assert ok(proxy.VIF.get_MAC(s, vifs[0])) == "02:00:00:aa:bb:01"


def test_restore_keeps_identity(daemon, api):
    proxy, s = api
    vm, _ = make_vm(daemon, api, "restore", sizes=(MiB,))
    body = export(daemon, s, vm)[2]
    uuid = ok(proxy.VM.get_uuid(s, vm))
    ok(proxy.VM.destroy(s, vm))
    task = new_task(api)
    assert put_import(daemon, s, body, task=task, query="&restore=true")[0] == 200
    state, result, error = task_outcome(api, task)
    assert state == "success", error
    rec = ok(proxy.VM.get_record(s, result_refs(result)[0]))
    assert rec["uuid"] == uuid
    assert rec["other_config"]["mac_seed"] == "seed-1"


def test_network_mapped_by_name_else_management(daemon, api):
    proxy, s = api
    net = ok(proxy.network.create(s, {"name_label": "xva-net", "name_description": "",
                                      "MTU": "1500", "other_config": {}}))
    vm, _ = make_vm(daemon, api, "nets", sizes=(MiB,), network=net)
    body = export(daemon, s, vm)[2]
    task = new_task(api)
    put_import(daemon, s, body, task=task)
    new_vm = result_refs(task_outcome(api, task)[1])[0]
    vif = ok(proxy.VM.get_VIFs(s, new_vm))[0]
    assert ok(proxy.VIF.get_network(s, vif)) == net
    # the network gone: the import lands on the management network
    ok(proxy.VIF.destroy(s, ok(proxy.VM.get_VIFs(s, vm))[0]))
    ok(proxy.VIF.destroy(s, vif))
    ok(proxy.network.destroy(s, net))
    task = new_task(api)
    put_import(daemon, s, body, task=task)
    new_vm = result_refs(task_outcome(api, task)[1])[0]
    vif = ok(proxy.VM.get_VIFs(s, new_vm))[0]
    pifs = ok(proxy.PIF.get_all_records(s))
    mgmt = [p["network"] for p in pifs.values() if p["management"]]
    assert ok(proxy.VIF.get_network(s, vif)) == (mgmt[0] if mgmt else
                                                 ok(proxy.VIF.get_network(s, vif)))


def test_running_vm_exports_from_a_snapshot(daemon, api):
    proxy, s = api
    vm, contents = make_vm(daemon, api, "running", sizes=(2 * MiB,), nic=False)
    ok(proxy.VM.start(s, vm, False, False))
    try:
        before = snapshot_of_objects(api)
        status, _, body = export(daemon, s, vm, "zstd")
        assert status == 200
        assert snapshot_of_objects(api) == before  # the snapshot is gone again
        assert ok(proxy.VM.get_snapshots(s, vm)) == []
        ova = members(body)[0][1].decode()
        assert ok(proxy.VM.get_uuid(s, vm)) in ova
        assert "<name>power_state</name><value>Halted</value>" in ova
        task = new_task(api)
        put_import(daemon, s, body, task=task)
        state, result, error = task_outcome(api, task)
        assert state == "success", error
        new_vm = result_refs(result)[0]
        assert ok(proxy.VM.get_name_label(s, new_vm)) == "running"
        assert get_raw(daemon, s, vm_disks(api, new_vm)[0]) == contents[0]
    finally:
        ok(proxy.VM.hard_shutdown(s, vm))


def test_suspended_vm_with_preserve_power_state_is_refused(daemon, api):
    """Its memory image would have to travel as one more disk, which xapid
    does not write: refused, not exported as Halted. Without the flag it
    exports Halted, as XAPI's does."""
    proxy, s = api
    vm, _ = make_vm(daemon, api, "suspended", sizes=(MiB,), nic=False)
    ok(proxy.VM.start(s, vm, False, False))
    ok(proxy.VM.suspend(s, vm))
    try:
        task = new_task(api)
        status, _, _ = export(daemon, s, vm, task=task, extra="&preserve_power_state=true")
        assert status != 200
        state, _, error = task_outcome(api, task)
        assert state == "failure" and error[0] == "OPERATION_NOT_ALLOWED", error
        assert ok(proxy.VM.get_power_state(s, vm)) == "Suspended"
        assert ok(proxy.VM.get_current_operations(s, vm)) == {}
        status, _, body = export(daemon, s, vm)
        assert status == 200
        assert "<name>power_state</name><value>Halted</value>" in members(body)[0][1].decode()
    finally:
        ok(proxy.VM.hard_shutdown(s, vm))


def test_export_with_snapshots(daemon, api):
    proxy, s = api
    vm, contents = make_vm(daemon, api, "snaps", sizes=(2 * MiB,))
    snap = ok(proxy.VM.snapshot(s, vm, "before"))
    put_raw(daemon, s, vm_disks(api, vm)[0], bytes(2 * MiB))  # the VM's disk changes after it
    body = export(daemon, s, vm, extra="&include_snapshots=true")[2]
    task = new_task(api)
    put_import(daemon, s, body, task=task)
    state, result, error = task_outcome(api, task)
    assert state == "success", error
    refs = result_refs(result)
    assert len(refs) == 1
    new_vm = refs[0]
    snaps = ok(proxy.VM.get_snapshots(s, new_vm))
    assert len(snaps) == 1 and snaps[0] != snap
    srec = ok(proxy.VM.get_record(s, snaps[0]))
    assert srec["is_a_snapshot"] and srec["name_label"] == "before"
    assert get_raw(daemon, s, vm_disks(api, snaps[0])[0]) == contents[0]
    assert get_raw(daemon, s, vm_disks(api, new_vm)[0]) == bytes(2 * MiB)


# ---- an XVA written from the format description ------------------------------------


def xxh64(data):
    """XXH64 with seed 0, written from the algorithm's description."""
    P1, P2, P3, P4, P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                          0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)
    M = (1 << 64) - 1

    def rotl(x, r):
        return ((x << r) | (x >> (64 - r))) & M

    def rnd(acc, lane):
        return (rotl((acc + lane * P2) & M, 31) * P1) & M

    def merge(acc, v):
        return ((acc ^ rnd(0, v)) * P1 + P4) & M

    n, i = len(data), 0
    if n >= 32:
        v = [(P1 + P2) & M, P2, 0, (-P1) & M]
        while i + 32 <= n:
            for k in range(4):
                v[k] = rnd(v[k], int.from_bytes(data[i + 8 * k:i + 8 * k + 8], "little"))
            i += 32
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & M
        for x in v:
            h = merge(h, x)
    else:
        h = P5
    h = (h + n) & M
    while i + 8 <= n:
        h = (rotl(h ^ rnd(0, int.from_bytes(data[i:i + 8], "little")), 27) * P1 + P4) & M
        i += 8
    if i + 4 <= n:
        h = (rotl(h ^ (int.from_bytes(data[i:i + 4], "little") * P1 & M), 23) * P2 + P3) & M
        i += 4
    while i < n:
        h = (rotl(h ^ (data[i] * P5 & M), 11) * P1) & M
        i += 1
    h ^= h >> 33
    h = (h * P2) & M
    h ^= h >> 29
    h = (h * P3) & M
    return h ^ (h >> 32)


def struct(members_):
    return "<struct>" + "".join(f"<member><name>{k}</name><value>{v}</value></member>"
                                for k, v in members_) + "</struct>"


def xenserver_xva(disk, sha1_for=(), bad_block=None, cut=False, first_number=0,
                  virtual_size=None, keepalive_after=None, export_vsn="2"):
    """An XVA as XenServer writes one (XAPI-NOTES §17): ova.xml with one VM,
    its VBD and VDI, an SR and a network; the disk in 1 MiB blocks, zero
    blocks left out except the first and last, .xxhash files (or
    .checksum SHA-1 for the numbers in sha1_for); keepalive_after: XAPI's
    keep-alive, an empty block after that block's number, the numbers after
    it one ahead of the offset."""
    version = struct([("hostname", "xs1"), ("date", "20240101T00:00:00Z"),
                      ("product_version", "8.2.1"), ("product_brand", "XenServer"),
                      ("build_number", "release/yangtze"), ("xapi_major", "25"),
                      ("xapi_minor", "33"), ("export_vsn", export_vsn)])
    vm = struct([("uuid", "c0ffee00-0000-4000-8000-000000000001"), ("name_label", "from-xs"),
                 ("name_description", "built by the test"), ("power_state", "Halted"),
                 ("is_a_template", "<boolean>0</boolean>"), ("is_a_snapshot", "<boolean>0</boolean>"),
                 ("memory_static_max", str(256 * MiB)), ("memory_dynamic_max", str(256 * MiB)),
                 ("memory_dynamic_min", str(256 * MiB)), ("memory_static_min", str(128 * MiB)),
                 ("VCPUs_max", "1"), ("VCPUs_at_startup", "1"), ("HVM_boot_policy", "BIOS order"),
                 ("HVM_boot_params", struct([("order", "cd")])),
                 ("other_config", struct([("mac_seed", "abc"), ("base_template_name", "Other")])),
                 ("VBDs", "<array><data><value>Ref:7</value></data></array>"),
                 ("VIFs", "<array><data><value>Ref:8</value></data></array>"),
                 ("resident_on", "Ref:1"), ("affinity", "OpaqueRef:NULL"),
                 ("snapshot_of", "OpaqueRef:NULL"), ("suspend_VDI", "OpaqueRef:NULL"),
                 ("platform", struct([("acpi", "1")])), ("actions_after_crash", "restart"),
                 ("some_future_field", "ignored")])
    vbd = struct([("uuid", "c0ffee00-0000-4000-8000-000000000002"), ("VM", "Ref:5"),
                  ("VDI", "Ref:9"), ("userdevice", "0"), ("device", "xvda"), ("mode", "RW"),
                  ("type", "Disk"), ("bootable", "<boolean>1</boolean>"),
                  ("unpluggable", "<boolean>0</boolean>"), ("empty", "<boolean>0</boolean>"),
                  ("other_config", struct([])), ("qos_algorithm_type", ""),
                  ("qos_algorithm_params", struct([]))])
    cd = struct([("uuid", "c0ffee00-0000-4000-8000-00000000000c"), ("VM", "Ref:5"),
                 ("VDI", "OpaqueRef:NULL"), ("userdevice", "3"), ("mode", "RO"), ("type", "CD"),
                 ("bootable", "<boolean>0</boolean>"), ("unpluggable", "<boolean>1</boolean>"),
                 ("empty", "<boolean>1</boolean>"), ("other_config", struct([])),
                 ("qos_algorithm_type", ""), ("qos_algorithm_params", struct([]))])
    vif = struct([("uuid", "c0ffee00-0000-4000-8000-000000000003"), ("VM", "Ref:5"),
                  ("network", "Ref:10"), ("device", "0"), ("MAC", "aa:bb:cc:00:11:22"),
                  ("MTU", "1500"), ("other_config", struct([])), ("qos_algorithm_type", ""),
                  ("qos_algorithm_params", struct([]))])
    net = struct([("uuid", "c0ffee00-0000-4000-8000-000000000004"),
                  ("name_label", "Pool-wide network associated with eth0"), ("bridge", "xenbr0")])
    vdi = struct([("uuid", "c0ffee00-0000-4000-8000-000000000005"), ("name_label", "xs disk"),
                  ("name_description", ""), ("SR", "Ref:11"), ("virtual_size", str(virtual_size or len(disk))),
                  ("type", "system"), ("sharable", "<boolean>0</boolean>"),
                  ("read_only", "<boolean>0</boolean>"), ("other_config", struct([]))])
    sr = struct([("uuid", "c0ffee00-0000-4000-8000-000000000006"), ("name_label", "Local storage"),
                 ("content_type", "user")])
    host = struct([("uuid", "c0ffee00-0000-4000-8000-000000000007"), ("hostname", "xs1")])

    def obj(cls, id_, snap):
        return f"<value>{struct([('class', cls), ('id', id_), ('snapshot', snap)])}</value>"

    objects = "".join([obj("host", "Ref:1", host), obj("VM", "Ref:5", vm), obj("VBD", "Ref:7", vbd),
                       obj("VBD", "Ref:12", cd), obj("VIF", "Ref:8", vif),
                       obj("network", "Ref:10", net), obj("VDI", "Ref:9", vdi),
                       obj("SR", "Ref:11", sr)])
    ova = (f"<value>{struct([('version', version), ('objects', f'<array><data>{objects}</data></array>')])}"
           "</value>").encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as t:
        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o400
            t.addfile(info, io.BytesIO(data))
        add("ova.xml", ova)
        n = (len(disk) + MiB - 1) // MiB
        ahead = first_number
        for i in range(n):
            block = disk[i * MiB:(i + 1) * MiB]
            if keepalive_after is not None and i == keepalive_after + 1:
                add(f"Ref:9/{i + ahead:08d}", b"")
                add(f"Ref:9/{i + ahead:08d}.xxhash", b"EF46DB3751D8E999")
                ahead += 1
            if i not in (0, n - 1) and not block.strip(b"\0"):
                continue
            name = f"Ref:9/{i + ahead:08d}"
            add(name, block)
            if i in sha1_for:
                add(name + ".checksum", hashlib.sha1(block).hexdigest().encode())
            else:
                digest = xxh64(block)
                if i == bad_block:
                    digest ^= 1
                add(name + ".xxhash", f"{digest:016X}".encode())
    data = out.getvalue()
    return data[:len(data) // 2] if cut else data


def test_xxh64_of_the_test_matches_the_reference_values():
    assert f"{xxh64(b''):016X}" == "EF46DB3751D8E999"
    assert f"{xxh64(bytes(MiB)):016X}" == "87D2A1B6E1163EF1"


XS_DISK = bytes(range(256)) * 4096 + bytes(2 * MiB) + b"tail" * 1024


def test_keepalive_blocks_and_numbers_ahead_of_the_offset(daemon, api):
    proxy, s = api
    task = new_task(api)
    put_import(daemon, s, xenserver_xva(XS_DISK, keepalive_after=1), task=task)
    state, result, error = task_outcome(api, task)
    assert state == "success", error
    assert get_raw(daemon, s, vm_disks(api, result_refs(result)[0])[0]) == XS_DISK


def test_xva_written_as_xenserver_does_imports(daemon, api):
    proxy, s = api
    body = xenserver_xva(XS_DISK, sha1_for=(3,))
    for compress in (None, "gzip", "zstd"):
        data = body
        if compress == "gzip":
            data = gzip.compress(body, 1)
        elif compress == "zstd":
            data = subprocess.run(["zstd", "-1", "-c"], input=body, capture_output=True,
                                  check=True).stdout
        task = new_task(api)
        assert put_import(daemon, s, data, task=task)[0] == 200
        state, result, error = task_outcome(api, task)
        assert state == "success", error
        vm = result_refs(result)[0]
        rec = ok(proxy.VM.get_record(s, vm))
        assert rec["name_label"] == "from-xs"
        assert rec["HVM_boot_params"] == {"order": "cd"}
        assert rec["uuid"] != "c0ffee00-0000-4000-8000-000000000001"
        disks = vm_disks(api, vm)
        assert len(disks) == 1
        assert ok(proxy.VDI.get_type(s, disks[0])) == "system"
        assert get_raw(daemon, s, disks[0]) == XS_DISK
        vbds = [ok(proxy.VBD.get_record(s, b)) for b in rec["VBDs"]]
        assert sorted((b["type"], b["empty"]) for b in vbds) == [("CD", True), ("Disk", False)]
        assert len(rec["VIFs"]) == 1


# ---- failures leave nothing behind -------------------------------------------------


def assert_failed_clean(daemon, api, body, code, query="", headers=None, status=None):
    before, files = snapshot_of_objects(api), sr_files(api)
    task = new_task(api)
    st, _ = put_import(daemon, api[1], body, task=task, query=query, headers=headers)
    if status:
        assert st == status
    state, result, error = task_outcome(api, task)
    assert state == "failure"
    assert error[0] == code, error
    assert snapshot_of_objects(api) == before
    assert sr_files(api) == files
    return error


def test_corrupted_block_fails_and_leaves_nothing(daemon, api):
    # XAPI answers 200 before it reads the body: the task has the outcome
    assert_failed_clean(daemon, api, xenserver_xva(XS_DISK, bad_block=3),
                        "IMPORT_ERROR_SOME_CHECKSUMS_FAILED", status=200)


def test_corrupted_block_is_imported_with_force(daemon, api):
    proxy, s = api
    task = new_task(api)
    put_import(daemon, s, xenserver_xva(XS_DISK, bad_block=3), task=task, query="&force=true")
    state, result, error = task_outcome(api, task)
    assert state == "success", error
    assert get_raw(daemon, s, vm_disks(api, result_refs(result)[0])[0]) == XS_DISK


def test_corrupted_data_in_the_middle_of_a_block(daemon, api):
    body = bytearray(xenserver_xva(XS_DISK))
    at = body.index(b"tail") + 100
    body[at] ^= 0xff
    assert_failed_clean(daemon, api, bytes(body), "IMPORT_ERROR_SOME_CHECKSUMS_FAILED")


def test_cut_stream_fails_and_leaves_nothing(daemon, api):
    assert_failed_clean(daemon, api, xenserver_xva(XS_DISK, cut=True), "IMPORT_ERROR_PREMATURE_EOF")


def test_cut_gzip_stream_fails_and_leaves_nothing(daemon, api):
    data = gzip.compress(xenserver_xva(XS_DISK), 1)
    assert_failed_clean(daemon, api, data[:len(data) * 2 // 3], "IMPORT_ERROR_PREMATURE_EOF")


def test_wrong_sr_fails_and_leaves_nothing(daemon, api):
    assert_failed_clean(daemon, api, xenserver_xva(XS_DISK), "HANDLE_INVALID",
                        query="&sr_id=OpaqueRef:nope", status=404)


def test_iso_sr_is_refused(daemon, api):
    proxy, s = api
    isos = [r for r, v in ok(proxy.SR.get_all_records(s)).items() if v["content_type"] == "iso"]
    if not isos:
        pytest.skip("no ISO SR on this host")
    assert_failed_clean(daemon, api, xenserver_xva(XS_DISK), "SR_OPERATION_NOT_SUPPORTED",
                        query=f"&sr_id={isos[0]}", status=400)


def test_full_sr_fails_and_leaves_nothing(daemon, api):
    assert_failed_clean(daemon, api, xenserver_xva(XS_DISK, virtual_size=1 << 60), "SR_FULL")


def test_other_format_versions_are_refused(daemon, api):
    for vsn in ("3", "1"):
        assert_failed_clean(daemon, api, xenserver_xva(XS_DISK, export_vsn=vsn),
                            "IMPORT_INCOMPATIBLE_VERSION")


def test_not_an_xva_fails(daemon, api):
    assert_failed_clean(daemon, api, os.urandom(4096), "IMPORT_ERROR_GENERIC")


def test_unexpected_file_fails(daemon, api):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as t:
        info = tarfile.TarInfo("hello.txt")
        info.size = 2
        t.addfile(info, io.BytesIO(b"hi"))
    error = assert_failed_clean(daemon, api, out.getvalue(), "IMPORT_ERROR_UNEXPECTED_FILE")
    assert error[1:] == ["ova.xml", "hello.txt"]


def test_chunked_upload_is_refused(daemon, api):
    proxy, s = api
    before = snapshot_of_objects(api)
    task = new_task(api)
    sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=60)
    sock.sendall(f"PUT /import?session_id={s}&task_id={task} HTTP/1.1\r\nHost: x\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n".encode())
    reply = sock.recv(4096)
    sock.close()
    assert reply.startswith(b"HTTP/1.1 403"), reply
    state, _, error = task_outcome(api, task)
    assert state == "failure" and error[0] == "IMPORT_ERROR_CANNOT_HANDLE_CHUNKED", error
    assert snapshot_of_objects(api) == before


def test_unknown_length_upload_ends_at_close(daemon, api):
    """Xen Orchestra's putResource without a length: Content-Length 2^50,
    the body, then the connection closed; the task has the outcome."""
    proxy, s = api
    body = gzip.compress(xenserver_xva(XS_DISK), 1)
    task = new_task(api)
    sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=60)
    sock.sendall(f"PUT /import/?session_id={s}&task_id={task} HTTP/1.1\r\n"
                 f"Host: x\r\nContent-Length: 1125899906842624\r\n\r\n".encode() + body)
    sock.shutdown(socket.SHUT_WR)
    answer = b""
    while True:  # XAPI's answer came before the body was read; then the close
        got = sock.recv(4096)
        if not got:
            break
        answer += got
    sock.close()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and f"task-id:{task}\r\n".encode() in answer
    state, result, error = task_outcome(api, task)
    assert state == "success", error
    assert get_raw(daemon, s, vm_disks(api, result_refs(result)[0])[0]) == XS_DISK


def test_unknown_length_cut_upload_fails_clean(daemon, api):
    proxy, s = api
    body = xenserver_xva(XS_DISK, cut=True)
    before, files = snapshot_of_objects(api), sr_files(api)
    task = new_task(api)
    sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=60)
    sock.sendall(f"PUT /import?session_id={s}&task_id={task} HTTP/1.1\r\n"
                 f"Host: x\r\nContent-Length: 1125899906842624\r\n\r\n".encode() + body)
    sock.close()
    state, _, error = task_outcome(api, task)
    assert state == "failure" and error[0] == "IMPORT_ERROR_PREMATURE_EOF", error
    assert snapshot_of_objects(api) == before and sr_files(api) == files


def test_export_errors(daemon, api):
    proxy, s = api
    status, _, body = export(daemon, s, "OpaqueRef:nope")
    assert status == 404 and body.startswith(b"HANDLE_INVALID")
    c = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    c.request("GET", "/export?uuid=whatever")
    assert c.getresponse().status == 401


def test_basic_auth_and_no_task(daemon, api):
    import base64
    proxy, s = api
    vm, contents = make_vm(daemon, api, "basic", sizes=(MiB,))
    auth = base64.b64encode(f"root:{PASSWORD}".encode()).decode()
    c = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    uuid = ok(proxy.VM.get_uuid(s, vm))
    c.request("GET", f"/export?uuid={uuid}&use_compression=zstd",
              headers={"Authorization": f"Basic {auth}"})
    r = c.getresponse()
    assert r.status == 200
    assert members(r.read())[0][0] == "ova.xml"


# ---- metadata --------------------------------------------------------------------------


def test_metadata_export_and_import_reattach_disks(daemon, api):
    proxy, s = api
    vm, contents = make_vm(daemon, api, "meta", sizes=(2 * MiB,))
    disk = vm_disks(api, vm)[0]
    c = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    c.request("GET", f"/export_metadata?session_id={s}&uuid={ok(proxy.VM.get_uuid(s, vm))}")
    r = c.getresponse()
    body = r.read()
    assert r.status == 200 and int(r.getheader("Content-Length")) == len(body)
    assert [n for n, _ in members(body)] == ["ova.xml"]
    # the VM goes, its disk stays: the metadata brings the VM back onto it
    for vbd in ok(proxy.VM.get_VBDs(s, vm)):
        ok(proxy.VBD.destroy(s, vbd))
    ok(proxy.VM.destroy(s, vm))
    before = snapshot_of_objects(api)
    task = new_task(api)
    assert put_import(daemon, s, body, task=task, path="/import_metadata",
                      query="&dry_run=true")[0] == 200
    assert task_outcome(api, task)[0] == "success"
    assert snapshot_of_objects(api) == before
    task = new_task(api)
    assert put_import(daemon, s, body, task=task, path="/import_metadata",
                      query="&restore=true")[0] == 200
    state, result, error = task_outcome(api, task)
    assert state == "success", error
    new_vm = result_refs(result)[0]
    assert ok(proxy.VM.get_uuid(s, new_vm)) in body.decode(errors="replace")
    assert vm_disks(api, new_vm) == [disk]
    assert get_raw(daemon, s, disk) == contents[0]


def test_metadata_import_without_the_disks_fails_clean(daemon, api):
    proxy, s = api
    vm, _ = make_vm(daemon, api, "meta-gone", sizes=(MiB,))
    c = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    c.request("GET", f"/export_metadata?session_id={s}&ref={vm}")
    body = c.getresponse().read()
    disk = vm_disks(api, vm)[0]
    for vbd in ok(proxy.VM.get_VBDs(s, vm)):
        ok(proxy.VBD.destroy(s, vbd))
    ok(proxy.VDI.destroy(s, disk))
    before = snapshot_of_objects(api)
    task = new_task(api)
    put_import(daemon, s, body, task=task, path="/import_metadata")
    state, _, error = task_outcome(api, task)
    assert state == "failure" and error[0] == "IMPORT_ERROR_ATTACHED_DISKS_NOT_FOUND", error
    assert snapshot_of_objects(api) == before


def test_metadata_export_all(daemon, api):
    proxy, s = api
    c = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    c.request("GET", f"/export_metadata?session_id={s}&all=true&include_dom0=false")
    r = c.getresponse()
    ova = members(r.read())[0][1].decode()
    vms = [v for v in ok(proxy.VM.get_all_records(s)).values()
           if not v["is_a_snapshot"] and not v["is_control_domain"]]
    assert all(v["uuid"] in ova for v in vms)


def test_expect_100_continue_then_the_answer(daemon, api):
    """curl's uploads ask for 100 Continue: it comes first, XAPI's 200
    after it, then the outcome on the task."""
    proxy, s = api
    body = xenserver_xva(XS_DISK)
    task = new_task(api)
    sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=60)
    sock.sendall(f"PUT /import?session_id={s}&task_id={task} HTTP/1.1\r\nHost: x\r\n"
                 f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode())
    first = sock.recv(4096)
    assert first == b"HTTP/1.1 100 Continue\r\n\r\n", first
    sock.sendall(body)
    answer = b""
    while True:
        got = sock.recv(4096)
        if not got:
            break
        answer += got
    sock.close()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
    assert b"100 Continue" not in answer
    state, result, error = task_outcome(api, task)
    assert state == "success", error


def test_vm_import_from_a_url(daemon, api):
    """VM.import(url, sr, full_restore, force): the XVA fetched with a GET
    (here xapid's own /export), its VMs returned; a URL that cannot be
    fetched fails with IMPORT_ERROR_GENERIC and leaves nothing."""
    proxy, s = api
    vm, contents = make_vm(daemon, api, "by-url", sizes=(2 * MiB,))
    url = f"http://127.0.0.1:{daemon.port}/export?session_id={s}&ref={vm}&use_compression=zstd"
    vms = ok(getattr(proxy.VM, "import")(s, url, default_sr(api), False, False))
    assert len(vms) == 1 and vms[0] != vm
    assert ok(proxy.VM.get_name_label(s, vms[0])) == "by-url"
    assert get_raw(daemon, s, vm_disks(api, vms[0])[0]) == contents[0]
    task = ok(getattr(proxy, "Async.VM.import")(s, url, NULL, True, False))
    state, result, error = task_outcome(api, task)
    assert state == "success", error
    # full_restore keeps mac_seed (the uuid too, were it free)
    assert ok(proxy.VM.get_other_config(s, result_refs(result)[0]))["mac_seed"] == "seed-1"
    before = snapshot_of_objects(api)
    bad = getattr(proxy.VM, "import")(s, f"http://127.0.0.1:{daemon.port}/export?session_id={s}"
                                         "&ref=OpaqueRef:nope", NULL, False, False)
    assert bad["Status"] == "Failure" and bad["ErrorDescription"][0] == "IMPORT_ERROR_GENERIC", bad
    bad = getattr(proxy.VM, "import")(s, "ftp://example.invalid/x.xva", NULL, False, False)
    assert bad["ErrorDescription"][0] == "IMPORT_ERROR_GENERIC"
    assert snapshot_of_objects(api) == before


def test_sr_not_plugged_here_is_refused_before_the_stream(daemon, api):
    """No pools yet, so no 302 to a host that sees the SR: a disk on an SR
    not plugged here is an error before anything is sent, and an import
    onto such an SR fails and leaves nothing."""
    proxy, s = api
    host = ok(proxy.host.get_all(s))[0]
    where = os.path.join(daemon.state_dir, "srs", "second")  # under an SR root
    os.makedirs(where)
    sr2 = ok(proxy.SR.create(s, host, {"location": str(where)}, "0", "second", "", "file",
                             "user", False, {}))
    vm = ok(proxy.VM.create(s, {"name_label": "elsewhere", "memory_static_max": str(256 * MiB),
                                "VCPUs_max": "1", "VCPUs_at_startup": "1"}))
    vdi = ok(proxy.VDI.create(s, {"name_label": "d", "SR": sr2, "virtual_size": str(MiB),
                                  "type": "user", "sharable": False, "read_only": False,
                                  "other_config": {}}))
    ok(proxy.VBD.create(s, {"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": False,
                            "mode": "RW", "type": "Disk", "unpluggable": True, "empty": False,
                            "other_config": {}, "qos_algorithm_type": "",
                            "qos_algorithm_params": {}}))
    pbd = ok(proxy.SR.get_PBDs(s, sr2))[0]
    ok(proxy.PBD.unplug(s, pbd))
    status, _, body = export(daemon, s, vm)
    assert status != 200 and body.startswith(b"SR_"), (status, body)
    assert ok(proxy.VM.get_current_operations(s, vm)) == {}
    assert_failed_clean(daemon, api, xenserver_xva(XS_DISK), "SR_NOT_ATTACHED",
                        query=f"&sr_id={sr2}")
    ok(proxy.PBD.plug(s, pbd))


def test_export_cut_by_the_client_fails_its_task_and_unlocks(daemon, api):
    proxy, s = api
    vm, _ = make_vm(daemon, api, "cut-export", sizes=(48 * MiB,), nic=False)
    vdi = vm_disks(api, vm)[0]
    put_raw(daemon, s, vdi, os.urandom(48 * MiB))  # more than the sockets hold
    task = new_task(api)
    sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=60)
    sock.sendall(f"GET /export?session_id={s}&ref={vm}&task_id={task} HTTP/1.1\r\n"
                 "Host: x\r\n\r\n".encode())
    got = b""
    while len(got) < MiB:
        got += sock.recv(65536)
    assert got.startswith(b"HTTP/1.0 200 OK\r\n"), got[:100]
    sock.close()  # unread data: the peer sees a reset
    state, _, error = task_outcome(api, task)
    assert state == "failure" and error[0] == "VDI_IO_ERROR", error
    wait_until(lambda: ok(proxy.VM.get_current_operations(s, vm)) == {}, what="the unlock")
    assert ok(proxy.VDI.get_current_operations(s, vdi)) == {}
