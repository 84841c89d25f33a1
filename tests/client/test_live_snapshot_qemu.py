"""Live snapshots of a running guest with several disks: every disk moves
onto its new leaf in one QMP transaction, each new image names its backing
file by a path relative to the SR (as offline snapshots do), and a kill -9
between the database write and the move is finished at the next start:
QEMU then writes to the image the database names, for every disk."""
import http.client
import json
import os
import subprocess
import xmlrpc.client

from qemu_guest import qmp
from test_vm_qemu import daemon, domain_dir, fdset_file, guest, new_guest_vm, ok, wait_ready  # noqa: F401
from xapid_daemon import Daemon

MiB = 1 << 20


def image_file(daemon, uuid, inserted, fdsets):
    """The file of a block node as query-block reports it (a json: name
    when the node was added with options; /dev/fdset/N for an image xapid
    opened)."""
    name = inserted["file"]
    if name.startswith("json:"):
        name = json.loads(name[5:])["file"]["filename"]
    return fdset_file(daemon, uuid, name, fdsets)


def tops(daemon, uuid):
    """device id -> the image file QEMU writes that disk's data to."""
    fdsets = qmp(daemon, uuid, "query-fdsets")
    return {b["qdev"].split("/")[-2] if b["qdev"].endswith("virtio-backend") else b["qdev"]:
            image_file(daemon, uuid, b["inserted"], fdsets)
            for b in qmp(daemon, uuid, "query-block") if b.get("inserted")}


def sr_dir(proxy, s, sr):
    return ok(proxy.PBD.get_device_config(s, ok(proxy.SR.get_PBDs(s, sr))[0]))["location"]


def disk_guest(daemon, guest):  # noqa: F811
    proxy, s, vm, uuid = new_guest_vm(daemon, guest)
    sr = list(ok(proxy.pool.get_all_records(s)).values())[0]["default_SR"]
    for device in ("1", "2"):
        vdi = ok(proxy.VDI.create(s, {"name_label": f"data {device}", "SR": sr,
                                      "virtual_size": str(16 * MiB), "type": "user",
                                      "sharable": False, "read_only": False,
                                      "other_config": {}}))
        ok(proxy.VBD.create(s, {"VM": vm, "VDI": vdi, "userdevice": device, "bootable": False,
                                "mode": "RW", "type": "Disk", "unpluggable": True,
                                "empty": False, "other_config": {}, "qos_algorithm_type": "",
                                "qos_algorithm_params": {}}))
    ok(proxy.VM.start(s, vm, False, False))
    wait_ready(daemon, uuid)
    return proxy, s, vm, uuid, sr_dir(proxy, s, sr)


def disks_as_recorded(proxy, s, vm, directory):
    """device id -> the image file the database says the disk writes to."""
    out = {}
    for vbd in ok(proxy.VM.get_VBDs(s, vm)):
        rec = ok(proxy.VBD.get_record(s, vbd))
        location = ok(proxy.VDI.get_location(s, rec["VDI"]))
        out[f"vbd{rec['userdevice']}-dev"] = os.path.join(directory, location)
    return out


def backing_name(path):
    info = json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", path],
                                     check=True, capture_output=True, text=True).stdout)
    return info.get("backing-filename")


def test_every_disk_moves_with_relative_backing(daemon, guest):  # noqa: F811
    proxy, s, vm, uuid, directory = disk_guest(daemon, guest)
    before = disks_as_recorded(proxy, s, vm, directory)
    assert tops(daemon, uuid) == before
    snap = ok(proxy.VM.snapshot(s, vm, "live"))
    after = disks_as_recorded(proxy, s, vm, directory)
    assert tops(daemon, uuid) == after
    for device, path in after.items():
        assert path != before[device]
        # the new leaf names the frozen image by its file name in the SR
        assert backing_name(path) == os.path.basename(before[device])
    for vbd in ok(proxy.VM.get_VBDs(s, snap)):
        vdi = ok(proxy.VBD.get_VDI(s, vbd))
        image = os.path.join(directory, ok(proxy.VDI.get_location(s, vdi)))
        assert "/" not in backing_name(image)
    assert ok(proxy.VM.get_power_state(s, vm)) == "Running"
    assert ok(proxy.VM.get_power_state(s, snap)) == "Halted"
    ok(proxy.VM.hard_shutdown(s, vm))


def test_kill_between_record_and_move_is_finished_at_start(daemon, guest):  # noqa: F811
    proxy, s, vm, uuid, directory = disk_guest(daemon, guest)
    daemon.stop()
    moved_after_restart = 0
    for k in range(1, 40):
        os.environ["XAPID_CRASH_AT"] = f"after:{k}"
        try:
            daemon.start()
        finally:
            del os.environ["XAPID_CRASH_AT"]
        before = None
        try:  # the login's own write may be the one the daemon dies at
            proxy, s = daemon.login()
            before = disks_as_recorded(proxy, s, vm, directory)
            ok(proxy.VM.snapshot(s, vm, f"snap {k}"))
            crashed = False
        except (ConnectionError, OSError, http.client.HTTPException,
                xmlrpc.client.ProtocolError):
            crashed = True
        if crashed:
            daemon.proc.wait(timeout=30)
            assert daemon.proc.returncode == -9
            daemon.log.close()
            daemon.start()
            proxy, s = daemon.login()
        recorded = disks_as_recorded(proxy, s, vm, directory)
        # whatever the database says after the restart, QEMU writes there
        assert tops(daemon, uuid) == recorded, (k, recorded)
        assert ok(proxy.VM.get_power_state(s, vm)) == "Running"
        if crashed and before and recorded != before:
            moved_after_restart += 1
        daemon.stop()
        if not crashed:
            break
    else:
        raise AssertionError("VM.snapshot never finished")
    # the kill right after the records' commit left the move to the start
    assert moved_after_restart >= 1
    daemon.start()
    proxy, s = daemon.login()
    ok(proxy.VM.hard_shutdown(s, vm))
