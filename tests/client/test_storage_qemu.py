"""Real disks under real guests: the test guest's bootable disk image
(scripts/build-test-guest) in a VDI, booted by SeaBIOS through xapid's qemu
driver; a disk hot-plugged and unplugged while the guest watches
/sys/block; a live VM.snapshot; a CD drive with an ISO inserted and ejected;
VM.revert and a boot from the reverted disk."""
import json
import os
import re
import subprocess
import time

import pytest

from test_vm_qemu import daemon, domain_dir, guest, ok  # noqa: F401 (fixtures)
from xapid_daemon import err

MiB = 1 << 20


def console(daemon, uuid):
    path = os.path.join(domain_dir(daemon, uuid), "console.log")
    if not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        return f.read()


def wait_console(daemon, uuid, predicate, what, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = console(daemon, uuid)
        if predicate(text):
            return text
        time.sleep(0.1)
    raise AssertionError(f"guest never showed {what}; console:\n{console(daemon, uuid)[-2000:]}")


def last_block_line(text):
    lines = re.findall(r"XAPID-GUEST-BLOCK ?(.*)", text)
    return lines[-1].split() if lines else None


def chain(path):
    out = subprocess.run(["qemu-img", "info", "-U", "--backing-chain", "--output=json", path],
                         check=True, capture_output=True, text=True).stdout
    return [os.path.basename(i["filename"]) for i in json.loads(out)]


def local_sr(proxy, s):
    pool = list(ok(proxy.pool.get_all_records(s)).values())[0]
    return pool["default_SR"]


def iso_sr(proxy, s):
    return [r for r, v in ok(proxy.SR.get_all_records(s)).items() if v["type"] == "iso"][0]


def sr_dir(proxy, s, sr):
    return ok(proxy.PBD.get_device_config(s, ok(proxy.SR.get_PBDs(s, sr))[0]))["location"]


def vbd(proxy, s, vm, vdi, userdevice, **fields):
    record = {"VM": vm, "VDI": vdi, "userdevice": userdevice, "bootable": False, "mode": "RW",
              "type": "Disk", "unpluggable": True, "empty": False, "other_config": {},
              "qos_algorithm_type": "", "qos_algorithm_params": {}}
    record.update(fields)
    return ok(proxy.VBD.create(s, record))


def test_boot_from_disk_hotplug_snapshot_cd(daemon, guest):  # noqa: F811
    proxy, s = daemon.login()
    guest_dir = os.path.dirname(guest[0])
    sr = local_sr(proxy, s)
    directory = sr_dir(proxy, s, sr)
    # the guest's disk becomes a VDI the way an administrator drops an
    # image into a file SR: a qcow2 file, then SR.scan
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", os.path.join(guest_dir, "disk.img"),
                    os.path.join(directory, "guest-boot.qcow2")], check=True)
    ok(proxy.SR.scan(s, sr))
    boot_vdi = [v for v in ok(proxy.SR.get_VDIs(s, sr))
                if ok(proxy.VDI.get_location(s, v)) == "guest-boot.qcow2"][0]
    with open(os.path.join(sr_dir(proxy, s, iso_sr(proxy, s)), "data.iso"), "wb") as f:
        f.write(os.urandom(MiB))
    ok(proxy.SR.scan(s, iso_sr(proxy, s)))
    iso = [v for v in ok(proxy.SR.get_VDIs(s, iso_sr(proxy, s)))
           if ok(proxy.VDI.get_location(s, v)) == "data.iso"][0]

    # a template holding the disk, cloned into the VM (no data copied)
    template = ok(proxy.VM.create(s, {
        "name_label": "disk guest template", "is_a_template": True,
        "memory_static_max": str(192 * MiB), "VCPUs_max": "1",
        "VCPUs_at_startup": "1", "HVM_boot_policy": "BIOS order",
        "HVM_boot_params": {"order": "dc"}, "actions_after_shutdown": "destroy",
        "actions_after_reboot": "restart", "actions_after_crash": "destroy"}))
    vbd(proxy, s, template, boot_vdi, "0", bootable=True)
    vbd(proxy, s, template, "OpaqueRef:NULL", "3", type="CD", mode="RO", empty=True)
    vm = ok(proxy.VM.clone(s, template, "disk guest"))
    ok(proxy.VM.set_is_a_template(s, vm, False))
    uuid = ok(proxy.VM.get_uuid(s, vm))
    vbds = {ok(proxy.VBD.get_userdevice(s, v)): v for v in ok(proxy.VM.get_VBDs(s, vm))}
    cd = vbds["3"]
    boot_vdi = ok(proxy.VBD.get_VDI(s, vbds["0"]))
    assert ok(proxy.VDI.get_location(s, boot_vdi)) != "guest-boot.qcow2"
    ok(proxy.VM.start(s, vm, False, False))
    text = wait_console(daemon, uuid, lambda t: "XAPID-GUEST-BLOCK" in t, "its block line")
    assert "XAPID-GUEST-BOOT disk" in text  # SeaBIOS skipped the empty CD, booted the disk
    assert set(last_block_line(text)) == {"vda", "sr0"}
    assert ok(proxy.VBD.get_device(s, ok(proxy.VM.get_VBDs(s, vm))[0])) in ("xvda", "xvdd")

    # hot-plug a second disk, then unplug it; the guest sees both
    extra = ok(proxy.VDI.create(s, {"name_label": "extra", "SR": sr,
                                    "virtual_size": str(16 * MiB), "type": "user",
                                    "sharable": False, "read_only": False, "other_config": {}}))
    extra_vbd = vbd(proxy, s, vm, extra, "1")
    ok(proxy.VBD.plug(s, extra_vbd))
    wait_console(daemon, uuid, lambda t: set(last_block_line(t) or []) == {"vda", "vdb", "sr0"},
                 "the hot-plugged disk")
    assert err(proxy.VDI.destroy(s, extra))[0] == "VDI_IN_USE"
    ok(proxy.VBD.unplug(s, extra_vbd))
    wait_console(daemon, uuid, lambda t: set(last_block_line(t) or []) == {"vda", "sr0"},
                 "the unplugged disk gone")
    ok(proxy.VDI.destroy(s, extra))

    # the ISO in the CD drive, as QEMU sees it
    ok(proxy.VBD.insert(s, cd, iso))
    assert qmp_inserted(daemon, uuid, "vbd3-dev").endswith("data.iso")
    ok(proxy.VBD.eject(s, cd))
    assert qmp_inserted(daemon, uuid, "vbd3-dev") is None

    # a live snapshot: the guest carries on in a new leaf
    alive_before = console(daemon, uuid).count("XAPID-GUEST-ALIVE")
    snap = ok(proxy.VM.snapshot(s, vm, "live"))
    boot_path = os.path.join(directory, ok(proxy.VDI.get_location(s, boot_vdi)))
    # new leaf -> the clone's frozen leaf -> the template disk's base
    assert len(chain(boot_path)) == 3
    wait_console(daemon, uuid, lambda t: t.count("XAPID-GUEST-ALIVE") > alive_before + 1,
                 "heartbeats after the snapshot", timeout=60)
    assert ok(proxy.VM.get_power_state(s, vm)) == "Running"
    # a scan reads the new leaf (nothing goes missing) and the chain is
    # still the SR's
    ok(proxy.SR.scan(s, sr))
    assert not [v for v in ok(proxy.SR.get_VDIs(s, sr)) if ok(proxy.VDI.get_missing(s, v))]
    assert ok(proxy.VDI.get_sm_config(s, boot_vdi)).get("vhd-parent")

    # revert stops the VM and boots it again from the snapshot's disk
    ok(proxy.VM.revert(s, snap))
    assert ok(proxy.VM.get_power_state(s, vm)) == "Halted"
    ok(proxy.VM.start(s, vm, False, False))
    wait_console(daemon, uuid, lambda t: "XAPID-GUEST-BOOT disk" in t, "a boot from the disk")
    ok(proxy.VM.hard_shutdown(s, vm))
    assert not any(ok(proxy.VBD.get_currently_attached(s, v)) for v in ok(proxy.VM.get_VBDs(s, vm)))


def qmp_queries(daemon, uuid, *commands):
    """The replies of QMP queries on the operators' monitor."""
    import socket
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(os.path.join(domain_dir(daemon, uuid), "qmp.sock"))
    f = sock.makefile("rw")
    replies = []
    try:
        json.loads(f.readline())
        for command in ("qmp_capabilities",) + commands:
            f.write(json.dumps({"execute": command}) + "\n")
            f.flush()
            while True:
                reply = json.loads(f.readline())
                if "return" in reply:
                    break
            replies.append(reply["return"])
        return replies[1:]
    finally:
        f.close()
        sock.close()


def qmp_inserted(daemon, uuid, device_id):
    """The image in a drive: QEMU names it /dev/fdset/N (xapid opened it),
    which the set's descriptor in QEMU's /proc resolves."""
    from test_vm_qemu import fdset_file
    blocks, fdsets = qmp_queries(daemon, uuid, "query-block", "query-fdsets")
    for block in blocks:
        if block.get("qdev", "").endswith(device_id) or device_id in block.get("qdev", ""):
            inserted = block.get("inserted")
            if not inserted:
                return None
            assert inserted["file"].startswith("/dev/fdset/"), inserted["file"]
            return fdset_file(daemon, uuid, inserted["file"], fdsets)
    raise AssertionError(f"no {device_id} in {blocks}")


def test_suspend_resume_keeps_the_guest(daemon, guest):  # noqa: F811
    from test_vm_qemu import new_guest_vm, qemu_pid, alive, wait_ready
    proxy, s, vm, uuid = new_guest_vm(daemon, guest)
    ok(proxy.VM.start(s, vm, False, False))
    wait_ready(daemon, uuid)
    wait_console(daemon, uuid, lambda t: "XAPID-GUEST-ALIVE" in t, "a heartbeat")
    pid = qemu_pid(daemon, uuid)
    ok(proxy.VM.suspend(s, vm))
    assert not alive(pid)
    rec = ok(proxy.VM.get_record(s, vm))
    assert rec["power_state"] == "Suspended"
    image = rec["suspend_VDI"]
    irec = ok(proxy.VDI.get_record(s, image))
    path = os.path.join(sr_dir(proxy, s, irec["SR"]), irec["location"])
    assert os.path.getsize(path) > 1 * MiB  # the guest's memory and devices
    beats = console(daemon, uuid).count("XAPID-GUEST-ALIVE")
    ok(proxy.VM.resume(s, vm, False, False))
    assert ok(proxy.VM.get_power_state(s, vm)) == "Running"
    assert not os.path.exists(path)
    # the same guest carries on: more heartbeats, no second boot
    text = wait_console(daemon, uuid, lambda t: t.count("XAPID-GUEST-ALIVE") > beats + 1,
                        "heartbeats after the resume", timeout=60)
    assert text.count("XAPID-GUEST-READY") == 1
    ok(proxy.VM.clean_shutdown(s, vm))  # and it still answers the power button
    assert ok(proxy.VM.get_power_state(s, vm)) == "Halted"


def test_boot_from_a_disk_imported_as_raw(daemon, guest):  # noqa: F811
    """The bootable disk image PUT to /import_raw_vdi becomes a raw file in
    the SR, and QEMU boots the guest from it as a raw disk."""
    import http.client
    proxy, s = daemon.login()
    image = os.path.join(os.path.dirname(guest[0]), "disk.img")
    sr = local_sr(proxy, s)
    size = os.path.getsize(image)
    vdi = ok(proxy.VDI.create(s, {"name_label": "imported boot disk", "SR": sr,
                                  "virtual_size": str(size), "type": "user", "sharable": False,
                                  "read_only": False, "other_config": {}}))
    c = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=60)
    with open(image, "rb") as f:
        c.request("PUT", f"/import_raw_vdi?session_id={s}&vdi={vdi}&format=raw", body=f,
                  headers={"Content-Length": str(size)})
    assert c.getresponse().status == 200
    location = ok(proxy.VDI.get_location(s, vdi))
    assert location.endswith(".raw")
    with open(os.path.join(sr_dir(proxy, s, sr), location), "rb") as a, open(image, "rb") as b:
        assert a.read() == b.read()
    vm = ok(proxy.VM.create(s, {
        "name_label": "raw disk guest", "memory_static_max": str(192 * MiB), "VCPUs_max": "1",
        "VCPUs_at_startup": "1", "HVM_boot_policy": "BIOS order",
        "HVM_boot_params": {"order": "c"}, "actions_after_shutdown": "destroy",
        "actions_after_reboot": "restart", "actions_after_crash": "destroy"}))
    vbd(proxy, s, vm, vdi, "0", bootable=True)
    uuid = ok(proxy.VM.get_uuid(s, vm))
    ok(proxy.VM.start(s, vm, False, False))
    text = wait_console(daemon, uuid, lambda t: "XAPID-GUEST-BLOCK" in t, "its block line")
    assert "XAPID-GUEST-BOOT disk" in text
    assert last_block_line(text) == ["vda"]
    ok(proxy.VM.hard_shutdown(s, vm))
