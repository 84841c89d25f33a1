"""XVA round trip of a real guest (qemu driver, one boot): the test guest's
bootable disk and a data disk go out through GET /export (zstd) and back
in through PUT /import; the imported copy's disks are byte for byte the
originals, and the copy boots from its imported disk. While it runs, it
exports from a live snapshot (QMP moves its disks) that is gone afterwards,
and that export imports too."""
import hashlib
import http.client
import os

from test_storage_qemu import last_block_line, local_sr, vbd, wait_console
from test_vm_qemu import daemon, guest, ok  # noqa: F401 (fixtures)

MiB = 1 << 20


def put_raw(daemon, s, vdi, path):
    c = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=120)
    with open(path, "rb") as f:
        c.request("PUT", f"/import_raw_vdi?session_id={s}&vdi={vdi}&format=raw", body=f,
                  headers={"Content-Length": str(os.path.getsize(path))})
    r = c.getresponse()
    r.read()
    assert r.status == 200


def raw_digest(daemon, s, vdi):
    c = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=120)
    c.request("GET", f"/export_raw_vdi?session_id={s}&vdi={vdi}&format=raw")
    r = c.getresponse()
    assert r.status == 200
    h = hashlib.sha256()
    while True:
        chunk = r.read(MiB)
        if not chunk:
            break
        h.update(chunk)
    return h.hexdigest()


def export_import(daemon, s, vm):
    c = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=300)
    c.request("GET", f"/export?session_id={s}&ref={vm}&use_compression=zstd")
    r = c.getresponse()
    assert r.status == 200
    body = r.read()
    proxy = daemon.proxy()
    task = ok(proxy.task.create(s, "import", ""))
    c = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=300)
    c.request("PUT", f"/import?session_id={s}&task_id={task}", body=body)
    c.getresponse().read()
    rec = ok(proxy.task.get_record(s, task))
    assert rec["status"] == "success", rec["error_info"]
    return rec["result"].split("<value>")[-1].split("</value>")[0]


def disks(proxy, s, vm):
    found = {}
    for b in ok(proxy.VM.get_VBDs(s, vm)):
        r = ok(proxy.VBD.get_record(s, b))
        if r["type"] == "Disk":
            found[r["userdevice"]] = r["VDI"]
    return [found[k] for k in sorted(found)]


def test_exported_guest_imports_boots_and_exports_live(daemon, guest, tmp_path):  # noqa: F811
    proxy, s = daemon.login()
    image = os.path.join(os.path.dirname(guest[0]), "disk.img")
    sr = local_sr(proxy, s)
    boot = ok(proxy.VDI.create(s, {"name_label": "boot", "SR": sr,
                                   "virtual_size": str(os.path.getsize(image)), "type": "system",
                                   "sharable": False, "read_only": False, "other_config": {}}))
    put_raw(daemon, s, boot, image)
    data_file = tmp_path / "data.raw"
    data_file.write_bytes(os.urandom(3 * MiB) + bytes(4 * MiB) + os.urandom(MiB // 2))
    data = ok(proxy.VDI.create(s, {"name_label": "data", "SR": sr,
                                   "virtual_size": str(data_file.stat().st_size), "type": "user",
                                   "sharable": False, "read_only": False, "other_config": {}}))
    put_raw(daemon, s, data, str(data_file))
    vm = ok(proxy.VM.create(s, {
        "name_label": "xva guest", "memory_static_max": str(192 * MiB), "VCPUs_max": "1",
        "VCPUs_at_startup": "1", "HVM_boot_policy": "BIOS order",
        "HVM_boot_params": {"order": "c"}, "actions_after_shutdown": "destroy",
        "actions_after_reboot": "restart", "actions_after_crash": "destroy"}))
    vbd(proxy, s, vm, boot, "0", bootable=True)
    vbd(proxy, s, vm, data, "1")
    digests = [raw_digest(daemon, s, v) for v in (boot, data)]

    copy = export_import(daemon, s, vm)
    assert copy != vm
    copied = disks(proxy, s, copy)
    assert [raw_digest(daemon, s, v) for v in copied] == digests

    uuid = ok(proxy.VM.get_uuid(s, copy))
    ok(proxy.VM.start(s, copy, False, False))
    try:
        text = wait_console(daemon, uuid, lambda t: "XAPID-GUEST-BLOCK" in t, "its block line",
                            timeout=300)
        assert "XAPID-GUEST-BOOT disk" in text
        assert sorted(last_block_line(text)) == ["vda", "vdb"]
        vdis_before = {r for r, v in ok(proxy.VDI.get_all_records(s)).items() if v["managed"]}
        again = export_import(daemon, s, copy)  # running: from a snapshot
        assert ok(proxy.VM.get_snapshots(s, copy)) == []
        assert ok(proxy.VM.get_power_state(s, copy)) == "Running"
        new_disks = disks(proxy, s, again)
        assert {r for r, v in ok(proxy.VDI.get_all_records(s)).items() if v["managed"]} == \
            vdis_before | set(new_disks)
        # the data disk is not written by the guest: still the original
        assert raw_digest(daemon, s, new_disks[1]) == digests[1]
    finally:
        ok(proxy.VM.hard_shutdown(s, copy))
