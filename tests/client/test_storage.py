"""Storage through xmlrpc.client on the sim driver (no guest; the images
are real qcow2 files made by qemu-img): SR and PBD lifecycle, VDI chains
checked with `qemu-img info --backing-chain`, VBDs, VM.clone / copy /
snapshot / revert / provision, and XAPI's errors with their parameters."""
import json
import os
import subprocess
import tempfile

import pytest

from sim_daemon import sim_daemon_with_sr_root
from xapid_daemon import err, new_vm, ok

MiB = 1 << 20
GiB = 1 << 30


@pytest.fixture(scope="module")
def daemon():
    with sim_daemon_with_sr_root() as d:
        yield d


def srs_dir(daemon):
    return os.path.join(daemon.state_dir, "srs")


@pytest.fixture()
def api(daemon):
    return daemon.login()




def default_sr(api):
    proxy, s = api
    pool = list(ok(proxy.pool.get_all_records(s)).values())[0]
    return pool["default_SR"]


def sr_dir(api, sr):
    proxy, s = api
    pbd = ok(proxy.SR.get_PBDs(s, sr))[0]
    return ok(proxy.PBD.get_device_config(s, pbd))["location"]


def new_vdi(api, sr, size=64 * MiB, name="disk"):
    proxy, s = api
    return ok(proxy.VDI.create(s, {"name_label": name, "SR": sr, "virtual_size": str(size),
                                   "type": "user", "sharable": False, "read_only": False,
                                   "other_config": {}}))


def vdi_path(api, vdi):
    proxy, s = api
    rec = ok(proxy.VDI.get_record(s, vdi))
    return os.path.join(sr_dir(api, rec["SR"]), rec["location"])


def chain(path):
    out = subprocess.run(["qemu-img", "info", "-U", "--backing-chain", "--output=json", path],
                         check=True, capture_output=True, text=True).stdout
    return [os.path.basename(i["filename"]) for i in json.loads(out)]


def new_vbd(api, vm, vdi, userdevice="autodetect", **fields):
    proxy, s = api
    record = {"VM": vm, "VDI": vdi, "userdevice": userdevice, "bootable": True, "mode": "RW",
              "type": "Disk", "unpluggable": True, "empty": False, "other_config": {},
              "qos_algorithm_type": "", "qos_algorithm_params": {}}
    record.update(fields)
    return proxy.VBD.create(s, record)


def test_bootstrap_srs_and_sm(api):
    proxy, s = api
    srs = ok(proxy.SR.get_all_records(s))
    types = sorted(r["type"] for r in srs.values())
    assert types == ["file", "iso"]
    for r in srs.values():
        assert int(r["physical_size"]) > 0
        assert "scan" in r["allowed_operations"]
    sms = {r["type"]: r for r in ok(proxy.SM.get_all_records(s)).values()}
    assert set(sms) == {"file", "iso"}
    assert "VDI_SNAPSHOT" in sms["file"]["capabilities"]
    assert "VDI_CREATE" not in sms["iso"]["capabilities"]
    assert sorted(ok(proxy.SR.get_supported_types(s))) == ["file", "iso"]


def test_vdi_create_resize_destroy(api):
    proxy, s = api
    sr = default_sr(api)
    vdi = new_vdi(api, sr, 64 * MiB)
    rec = ok(proxy.VDI.get_record(s, vdi))
    assert rec["virtual_size"] == str(64 * MiB) and rec["managed"] and not rec["missing"]
    assert {"destroy", "snapshot", "clone", "resize"} <= set(rec["allowed_operations"])
    path = vdi_path(api, vdi)
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", path],
                                     check=True, capture_output=True, text=True).stdout)
    assert info["format"] == "qcow2" and info["virtual-size"] == 64 * MiB
    ok(proxy.VDI.resize(s, vdi, str(128 * MiB)))
    assert ok(proxy.VDI.get_virtual_size(s, vdi)) == str(128 * MiB)
    assert err(proxy.VDI.resize(s, vdi, str(MiB))) == ["VDI_TOO_SMALL", vdi, str(128 * MiB)]
    ok(proxy.VDI.destroy(s, vdi))
    assert not os.path.exists(path)
    assert err(proxy.VDI.destroy(s, vdi)) == ["HANDLE_INVALID", "VDI", vdi]


def test_vdi_create_errors_change_nothing(api):
    proxy, s = api
    sr = default_sr(api)
    before = len(ok(proxy.SR.get_VDIs(s, sr)))
    files = sorted(os.listdir(sr_dir(api, sr)))
    e = err(proxy.VDI.create(s, {"name_label": "huge", "SR": sr, "virtual_size": str(1 << 60),
                                 "type": "user", "sharable": False, "read_only": False,
                                 "other_config": {}}))
    assert e[0] == "SR_FULL" and e[1] == str(1 << 60) and int(e[2]) > 0
    bogus = "OpaqueRef:00000000-0000-0000-0000-000000000000"
    assert err(proxy.VDI.create(s, {"name_label": "x", "SR": bogus, "virtual_size": "1",
                                    "type": "user", "sharable": False, "read_only": False,
                                    "other_config": {}}))[:2] == ["HANDLE_INVALID", "SR"]
    iso_sr = [r for r, v in ok(proxy.SR.get_all_records(s)).items() if v["type"] == "iso"][0]
    assert err(proxy.VDI.create(s, {"name_label": "x", "SR": iso_sr, "virtual_size": "1",
                                    "type": "user", "sharable": False, "read_only": False,
                                    "other_config": {}})) == ["SR_OPERATION_NOT_SUPPORTED", iso_sr]
    assert len(ok(proxy.SR.get_VDIs(s, sr))) == before
    assert sorted(os.listdir(sr_dir(api, sr))) == files


def test_snapshot_and_clone_chains(api):
    proxy, s = api
    sr = default_sr(api)
    vdi = new_vdi(api, sr, 32 * MiB, "chained")
    uuid = ok(proxy.VDI.get_uuid(s, vdi))
    snap = ok(proxy.VDI.snapshot(s, vdi, {}))
    srec = ok(proxy.VDI.get_record(s, snap))
    vrec = ok(proxy.VDI.get_record(s, vdi))
    assert srec["is_a_snapshot"] and srec["snapshot_of"] == vdi
    assert ok(proxy.VDI.get_snapshots(s, vdi)) == [snap]
    base_uuid = vrec["sm_config"]["vhd-parent"]
    assert srec["sm_config"]["vhd-parent"] == base_uuid and vrec["uuid"] == uuid
    base = ok(proxy.VDI.get_by_uuid(s, base_uuid))
    brec = ok(proxy.VDI.get_record(s, base))
    assert not brec["managed"] and brec["read_only"] and brec["name_label"] == "base copy"
    assert "destroy" not in brec["allowed_operations"]
    # nova walks vhd-parent: both leaves sit on the base's file
    assert chain(vdi_path(api, vdi)) == [vrec["location"], brec["location"]]
    assert chain(vdi_path(api, snap)) == [srec["location"], brec["location"]]
    clone = ok(proxy.VDI.clone(s, vdi, {}))
    crec = ok(proxy.VDI.get_record(s, clone))
    assert not crec["is_a_snapshot"]
    assert len(chain(vdi_path(api, clone))) == 3 and len(chain(vdi_path(api, vdi))) == 3
    assert err(proxy.VDI.destroy(s, base)) == ["VDI_NOT_MANAGED", base]
    # destroying the leaves removes the bases nothing is built on
    files_before = set(os.listdir(sr_dir(api, sr)))
    for v in (snap, vdi, clone):
        ok(proxy.VDI.destroy(s, v))
    gone = files_before - set(os.listdir(sr_dir(api, sr)))
    assert len(gone) == 5 and brec["location"] in gone
    assert err(proxy.VDI.get_record(s, base))[0] == "HANDLE_INVALID"


def test_copy_to_another_sr_is_standalone(api, daemon):
    proxy, s = api
    host = ok(proxy.session.get_this_host(s, s))
    location = tempfile.mkdtemp(prefix="xapid-sr2-", dir=srs_dir(daemon))
    sr2 = ok(proxy.SR.create(s, host, {"location": location}, "0", "second", "", "file",
                             "user", False, {}))
    vdi = new_vdi(api, default_sr(api), 16 * MiB)
    ok(proxy.VDI.snapshot(s, vdi, {}))
    copy = ok(proxy.VDI.copy(s, vdi, sr2))
    crec = ok(proxy.VDI.get_record(s, copy))
    assert crec["SR"] == sr2 and crec["virtual_size"] == str(16 * MiB)
    assert len(chain(vdi_path(api, copy))) == 1
    assert os.path.dirname(vdi_path(api, copy)) == location


def test_sr_lifecycle(api, daemon):
    proxy, s = api
    host = ok(proxy.session.get_this_host(s, s))
    location = os.path.join(srs_dir(daemon), "sr-lifecycle")
    assert err(proxy.SR.create(s, host, {}, "0", "x", "", "file", "user", False, {}))[0] == \
        "SR_BACKEND_FAILURE"
    assert err(proxy.SR.create(s, host, {"location": location}, "0", "x", "", "nfs", "user",
                               False, {})) == ["SR_UNKNOWN_DRIVER", "nfs"]
    sr = ok(proxy.SR.create(s, host, {"location": location}, "0", "mine", "", "file", "user",
                            False, {}))
    assert os.path.isdir(location)
    rec = ok(proxy.SR.get_record(s, sr))
    assert rec["content_type"] == "user" and len(rec["PBDs"]) == 1
    pbd = rec["PBDs"][0]
    assert ok(proxy.PBD.get_currently_attached(s, pbd))
    vdi = new_vdi(api, sr, 8 * MiB)
    probe = ok(proxy.SR.probe(s, host, {"location": location}, "file", {}))
    assert rec["uuid"] in probe
    assert err(proxy.SR.destroy(s, sr)) == ["SR_HAS_PBD", sr]
    assert err(proxy.PBD.destroy(s, pbd))[0] == "OPERATION_NOT_ALLOWED"
    ok(proxy.PBD.unplug(s, pbd))
    assert err(proxy.VDI.create(s, {"name_label": "x", "SR": sr, "virtual_size": "1",
                                    "type": "user", "sharable": False, "read_only": False,
                                    "other_config": {}})) == ["SR_NOT_ATTACHED", sr]
    assert err(proxy.SR.destroy(s, sr)) == ["SR_NOT_EMPTY"]
    ok(proxy.PBD.plug(s, pbd))
    ok(proxy.VDI.destroy(s, vdi))
    ok(proxy.PBD.unplug(s, pbd))
    ok(proxy.SR.destroy(s, sr))
    assert not os.path.exists(location)
    assert err(proxy.SR.get_record(s, sr))[0] == "HANDLE_INVALID"
    assert err(proxy.PBD.get_record(s, pbd))[0] == "HANDLE_INVALID"


def test_introduce_and_scan_find_files(api, daemon):
    proxy, s = api
    host = ok(proxy.session.get_this_host(s, s))
    location = os.path.join(srs_dir(daemon), "sr-introduced")
    os.makedirs(location)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", os.path.join(location, "a.qcow2"),
                    "4M"], check=True)
    sr = ok(proxy.SR.introduce(s, "", "found", "", "file", "user", False, {}))
    assert err(proxy.SR.introduce(s, ok(proxy.SR.get_uuid(s, sr)), "x", "", "file", "user",
                                  False, {}))[0] == "SR_UUID_EXISTS"
    pbd = ok(proxy.PBD.create(s, {"host": host, "SR": sr, "device_config": {"location": location},
                                  "other_config": {}}))
    assert err(proxy.PBD.create(s, {"host": host, "SR": sr, "device_config": {},
                                     "other_config": {}})) == ["PBD_EXISTS", sr, host, pbd]
    ok(proxy.PBD.plug(s, pbd))
    vdis = ok(proxy.SR.get_VDIs(s, sr))
    assert len(vdis) == 1
    assert ok(proxy.VDI.get_virtual_size(s, vdis[0])) == str(4 * MiB)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", os.path.join(location, "b.qcow2"),
                    "2M"], check=True)
    os.unlink(os.path.join(location, "a.qcow2"))
    ok(proxy.SR.scan(s, sr))
    vdis = ok(proxy.SR.get_VDIs(s, sr))
    assert [ok(proxy.VDI.get_location(s, v)) for v in vdis] == ["b.qcow2"]
    ok(proxy.PBD.unplug(s, pbd))
    ok(proxy.SR.forget(s, sr))
    assert os.path.exists(os.path.join(location, "b.qcow2"))
    assert err(proxy.VDI.get_record(s, vdis[0]))[0] == "HANDLE_INVALID"


def test_vbds_and_devices(api):
    proxy, s = api
    vm = new_vm(api)
    vdi = new_vdi(api, default_sr(api), 8 * MiB)
    vbd = ok(new_vbd(api, vm, vdi))
    assert ok(proxy.VBD.get_userdevice(s, vbd)) == "0"
    assert ok(proxy.VM.get_allowed_VBD_devices(s, vm)) == [str(i) for i in range(1, 8)]
    assert err(new_vbd(api, vm, vdi, "0")) == ["DEVICE_ALREADY_EXISTS", "0"]
    assert err(new_vbd(api, vm, vdi, "99")) == ["INVALID_DEVICE", "99"]
    assert err(new_vbd(api, vm, vdi, "3", type="CD", mode="RW")) == ["VBD_CDS_MUST_BE_READONLY"]
    assert err(proxy.VBD.plug(s, vbd)) == ["VM_BAD_POWER_STATE", vm, "running", "halted"]
    assert err(proxy.VBD.insert(s, vbd, vdi)) == ["VBD_NOT_REMOVABLE_MEDIA", vbd]
    cd = ok(new_vbd(api, vm, "OpaqueRef:NULL", "3", type="CD", mode="RO", empty=True,
                    bootable=False))
    assert err(proxy.VBD.eject(s, cd)) == ["VBD_IS_EMPTY", cd]
    assert ok(proxy.VBD.get_allowed_operations(s, cd)) == ["insert"]
    ok(proxy.VM.start(s, vm, False, False))
    rec = ok(proxy.VBD.get_record(s, vbd))
    assert rec["currently_attached"] and rec["device"] == "xvda"
    assert set(rec["allowed_operations"]) == {"unplug", "unplug_force"}
    assert ok(proxy.VBD.get_currently_attached(s, cd))
    # a VDI in use cannot go, but can be snapshotted live
    assert err(proxy.VDI.destroy(s, vdi)) == ["VDI_IN_USE", vdi, "destroy"]
    assert "destroy" not in ok(proxy.VDI.get_allowed_operations(s, vdi))
    assert err(proxy.VBD.destroy(s, vbd))[0] == "OPERATION_NOT_ALLOWED"
    assert err(proxy.VBD.plug(s, vbd)) == ["DEVICE_ALREADY_ATTACHED", vbd]
    ok(proxy.VBD.unplug(s, vbd))
    assert not ok(proxy.VBD.get_currently_attached(s, vbd))
    assert err(proxy.VBD.unplug(s, vbd)) == ["DEVICE_ALREADY_DETACHED", vbd]
    ok(proxy.VBD.plug(s, vbd))
    ok(proxy.VBD.set_unpluggable(s, vbd, False))
    assert err(proxy.VBD.unplug(s, vbd)) == ["VBD_NOT_UNPLUGGABLE", vbd]
    ok(proxy.VBD.unplug_force(s, vbd))
    ok(proxy.VM.hard_shutdown(s, vm))
    assert not ok(proxy.VBD.get_currently_attached(s, cd))
    assert "destroy" in ok(proxy.VDI.get_allowed_operations(s, vdi))
    ok(proxy.VBD.destroy(s, vbd))
    assert ok(proxy.VDI.get_VBDs(s, vdi)) == []


def test_iso_insert_and_eject(api, daemon):
    proxy, s = api
    iso_sr = [r for r, v in ok(proxy.SR.get_all_records(s)).items() if v["type"] == "iso"][0]
    iso_dir = sr_dir(api, iso_sr)
    with open(os.path.join(iso_dir, "tools.iso"), "wb") as f:
        f.write(b"\0" * 2 * MiB)
    ok(proxy.SR.scan(s, iso_sr))
    iso = [v for v in ok(proxy.SR.get_VDIs(s, iso_sr))
           if ok(proxy.VDI.get_location(s, v)) == "tools.iso"][0]
    assert ok(proxy.VDI.get_read_only(s, iso))
    vm = new_vm(api, "cd")
    cd = ok(new_vbd(api, vm, "OpaqueRef:NULL", "autodetect", type="CD", mode="RO", empty=True,
                    bootable=False))
    ok(proxy.VM.start(s, vm, False, False))
    ok(proxy.VBD.insert(s, cd, iso))
    rec = ok(proxy.VBD.get_record(s, cd))
    assert rec["VDI"] == iso and not rec["empty"] and rec["currently_attached"]
    assert err(proxy.VBD.insert(s, cd, iso)) == ["VBD_NOT_EMPTY", cd]
    ok(proxy.VBD.eject(s, cd))
    rec = ok(proxy.VBD.get_record(s, cd))
    assert rec["empty"] and rec["VDI"] == "OpaqueRef:NULL"
    ok(proxy.VM.hard_shutdown(s, vm))


def disk_vm(api, name="with disk", size=64 * MiB):
    vm = new_vm(api, name)
    vdi = new_vdi(api, default_sr(api), size, name + " disk")
    ok(new_vbd(api, vm, vdi, "0"))
    return vm, vdi


def vm_vdis(api, vm):
    proxy, s = api
    out = []
    for vbd in ok(proxy.VM.get_VBDs(s, vm)):
        if ok(proxy.VBD.get_type(s, vbd)) == "Disk":
            out.append(ok(proxy.VBD.get_VDI(s, vbd)))
    return out


def test_vm_clone_shares_data(api):
    proxy, s = api
    vm, vdi = disk_vm(api, "original", 10 * GiB)
    sr = default_sr(api)
    used_before = int(ok(proxy.SR.get_physical_utilisation(s, sr)))
    clone = ok(proxy.VM.clone(s, vm, "the clone"))
    rec = ok(proxy.VM.get_record(s, clone))
    assert rec["name_label"] == "the clone" and rec["power_state"] == "Halted"
    assert rec["domid"] == "-1" and rec["uuid"] != ok(proxy.VM.get_uuid(s, vm))
    [cvdi] = vm_vdis(api, clone)
    assert cvdi != vdi
    assert ok(proxy.VDI.get_virtual_size(s, cvdi)) == str(10 * GiB)
    # no data copied: the new leaf is a few hundred KiB of metadata
    assert int(ok(proxy.VDI.get_physical_utilisation(s, cvdi))) < 4 * MiB
    assert int(ok(proxy.SR.get_physical_utilisation(s, sr))) - used_before < 64 * MiB
    assert len(chain(vdi_path(api, cvdi))) == 2
    assert "clone" in ok(proxy.VM.get_allowed_operations(s, vm))
    ok(proxy.VM.start(s, vm, False, False))
    assert err(proxy.VM.clone(s, vm, "x")) == ["VM_BAD_POWER_STATE", vm, "halted", "running"]
    ok(proxy.VM.hard_shutdown(s, vm))


def test_vm_copy_is_full(api):
    proxy, s = api
    vm, vdi = disk_vm(api, "to copy", 8 * MiB)
    copy = ok(proxy.VM.copy(s, vm, "copied", "OpaqueRef:NULL"))
    [cvdi] = vm_vdis(api, copy)
    assert len(chain(vdi_path(api, cvdi))) == 1 and cvdi != vdi


def test_snapshot_running_vm_and_revert(api):
    proxy, s = api
    vm, vdi = disk_vm(api, "snapped", 16 * MiB)
    ok(proxy.VM.start(s, vm, False, False))
    snap = ok(proxy.VM.snapshot(s, vm, "snap1"))
    rec = ok(proxy.VM.get_record(s, snap))
    assert rec["is_a_snapshot"] and rec["snapshot_of"] == vm and rec["is_a_template"]
    assert ok(proxy.VM.get_snapshots(s, vm)) == [snap]
    [svdi] = vm_vdis(api, snap)
    assert ok(proxy.VDI.get_snapshot_of(s, svdi)) == vdi
    assert ok(proxy.VDI.get_is_a_snapshot(s, svdi))
    # the running VM's disk moved onto a new leaf over the frozen image
    assert len(chain(vdi_path(api, vdi))) == 2
    assert err(proxy.VM.start(s, snap, False, False)) == ["VM_IS_SNAPSHOT", snap, "start"]
    assert err(proxy.VM.revert(s, vm)) == ["REVERT_ONLY_ALLOWED_ON_SNAPSHOT"]
    ok(proxy.VM.revert(s, snap))
    assert ok(proxy.VM.get_power_state(s, vm)) == "Halted"
    [new_vdi_ref] = vm_vdis(api, vm)
    assert new_vdi_ref != vdi
    assert err(proxy.VDI.get_record(s, vdi))[0] == "HANDLE_INVALID"
    # the snapshot keeps its disk; the revert's clone froze it as one more base
    assert len(chain(vdi_path(api, svdi))) == 3
    assert len(chain(vdi_path(api, new_vdi_ref))) == 3
    ok(proxy.VM.start(s, vm, False, False))
    ok(proxy.VM.hard_shutdown(s, vm))


def test_snapshot_ignores_vdis(api):
    proxy, s = api
    vm, vdi = disk_vm(api, "ignore", 8 * MiB)
    snap = ok(proxy.VM.snapshot(s, vm, "without disk", [vdi]))
    assert vm_vdis(api, snap) == []


def test_template_provision(api):
    proxy, s = api
    sr = default_sr(api)
    sr_uuid = ok(proxy.SR.get_uuid(s, sr))
    disks = (f'<provision><disk device="0" size="{32 * MiB}" sr="{sr_uuid}" bootable="true" '
             f'type="system"/></provision>')
    template = new_vm(api, "my template", is_a_template=True, other_config={"disks": disks})
    assert err(proxy.VM.start(s, template, False, False)) == ["VM_IS_TEMPLATE", template, "start"]
    vm = ok(proxy.VM.clone(s, template, "from template"))
    assert ok(proxy.VM.get_is_a_template(s, vm))
    ok(proxy.VM.provision(s, vm))
    ok(proxy.VM.set_is_a_template(s, vm, False))
    [vdi] = vm_vdis(api, vm)
    assert ok(proxy.VDI.get_virtual_size(s, vdi)) == str(32 * MiB)
    assert "disks" not in ok(proxy.VM.get_other_config(s, vm))
    assert err(proxy.VM.provision(s, vm)) == ["PROVISION_ONLY_ALLOWED_ON_TEMPLATE"]
    ok(proxy.VM.start(s, vm, False, False))
    ok(proxy.VM.hard_shutdown(s, vm))


def test_storage_survives_restart(api, daemon):
    proxy, s = api
    vdi = new_vdi(api, default_sr(api), 8 * MiB, "persistent")
    snap = ok(proxy.VDI.snapshot(s, vdi, {}))
    daemon.kill9()
    daemon.start()
    proxy, s = daemon.login()
    assert ok(proxy.VDI.get_name_label(s, vdi)) == "persistent"
    assert ok(proxy.VDI.get_snapshot_of(s, snap)) == vdi
    assert len(chain(vdi_path((proxy, s), vdi))) == 2


def test_suspend_resume(api):
    proxy, s = api
    vm, vdi = disk_vm(api, "sleeper", 8 * MiB)
    ok(proxy.VM.start(s, vm, False, False))
    domid = int(ok(proxy.VM.get_domid(s, vm)))
    assert err(proxy.VM.resume(s, vm, False, False)) == \
        ["VM_BAD_POWER_STATE", vm, "suspended", "running"]
    ok(proxy.VM.suspend(s, vm))
    rec = ok(proxy.VM.get_record(s, vm))
    assert rec["power_state"] == "Suspended" and rec["domid"] == "-1"
    image = rec["suspend_VDI"]
    irec = ok(proxy.VDI.get_record(s, image))
    assert irec["type"] == "suspend" and irec["SR"] == default_sr(api)
    assert os.path.getsize(vdi_path(api, image)) > 0
    assert not any(ok(proxy.VBD.get_currently_attached(s, v)) for v in rec["VBDs"])
    assert {"resume", "hard_shutdown", "destroy"} <= set(rec["allowed_operations"])
    assert err(proxy.VM.start(s, vm, False, False)) == \
        ["VM_BAD_POWER_STATE", vm, "halted", "suspended"]
    ok(proxy.VM.resume(s, vm, False, False))
    rec = ok(proxy.VM.get_record(s, vm))
    assert rec["power_state"] == "Running" and int(rec["domid"]) > domid
    assert rec["suspend_VDI"] == "OpaqueRef:NULL"
    assert err(proxy.VDI.get_record(s, image))[0] == "HANDLE_INVALID"
    # a suspended VM shut down or destroyed leaves no image behind
    ok(proxy.VM.suspend(s, vm))
    image = ok(proxy.VM.get_suspend_VDI(s, vm))
    path = vdi_path(api, image)
    ok(proxy.VM.hard_shutdown(s, vm))
    assert ok(proxy.VM.get_power_state(s, vm)) == "Halted"
    assert not os.path.exists(path)
    ok(proxy.VM.start(s, vm, False, False))
    ok(proxy.VM.suspend(s, vm))
    image = ok(proxy.VM.get_suspend_VDI(s, vm))
    ok(proxy.VM.destroy(s, vm))
    assert err(proxy.VDI.get_record(s, image))[0] == "HANDLE_INVALID"
    assert ok(proxy.VDI.get_VBDs(s, vdi)) == []


def test_checkpoint_and_revert_to_it(api):
    proxy, s = api
    vm, vdi = disk_vm(api, "checkpointed", 8 * MiB)
    ok(proxy.VM.start(s, vm, False, False))
    cp = ok(proxy.VM.checkpoint(s, vm, "cp1"))
    assert ok(proxy.VM.get_power_state(s, vm)) == "Running"
    rec = ok(proxy.VM.get_record(s, cp))
    assert rec["is_a_snapshot"] and rec["power_state"] == "Suspended"
    assert ok(proxy.VDI.get_type(s, rec["suspend_VDI"])) == "suspend"
    ok(proxy.VM.revert(s, cp))
    rec = ok(proxy.VM.get_record(s, vm))
    assert rec["power_state"] == "Suspended"
    assert rec["suspend_VDI"] not in ("OpaqueRef:NULL", ok(proxy.VM.get_suspend_VDI(s, cp)))
    ok(proxy.VM.resume(s, vm, False, False))
    assert ok(proxy.VM.get_power_state(s, vm)) == "Running"
    # the checkpoint keeps its own memory image
    assert ok(proxy.VDI.get_type(s, ok(proxy.VM.get_suspend_VDI(s, cp)))) == "suspend"
    ok(proxy.VM.hard_shutdown(s, vm))


def test_scan_marks_unreadable_vdis_missing(api):
    """A header that does not read once (truncated, or the file briefly a
    directory) keeps the record with missing=true and leaves its VBDs
    alone; once it reads again a scan clears missing."""
    proxy, s = api
    sr = default_sr(api)
    idle = new_vdi(api, sr, 16 * MiB, "idle")
    busy = new_vdi(api, sr, 16 * MiB, "busy")
    vm = new_vm(api, "missing")
    vbd = ok(new_vbd(api, vm, busy))
    ok(proxy.VM.start(s, vm, False, False))
    idle_path, busy_path = vdi_path(api, idle), vdi_path(api, busy)
    with open(idle_path, "rb") as f:
        idle_bytes = f.read()
    with open(idle_path, "wb"):
        pass  # truncated: no header at all (a probing qemu-img calls it raw, 0 bytes)
    aside = busy_path + ".aside"
    os.rename(busy_path, aside)
    os.mkdir(busy_path)
    try:
        ok(proxy.SR.scan(s, sr))
        for vdi in (idle, busy):
            rec = ok(proxy.VDI.get_record(s, vdi))
            assert rec["missing"] and rec["virtual_size"] == str(16 * MiB)
        vbd_rec = ok(proxy.VBD.get_record(s, vbd))
        assert vbd_rec["VDI"] == busy and vbd_rec["currently_attached"] and not vbd_rec["empty"]
    finally:
        os.rmdir(busy_path)
        os.rename(aside, busy_path)
        with open(idle_path, "wb") as f:
            f.write(idle_bytes)
    ok(proxy.SR.scan(s, sr))
    for vdi in (idle, busy):
        assert not ok(proxy.VDI.get_missing(s, vdi))
    # a file gone while a guest has it open: kept, missing; VBD untouched
    os.rename(busy_path, aside)
    try:
        ok(proxy.SR.scan(s, sr))
        assert ok(proxy.VDI.get_missing(s, busy))
        assert ok(proxy.VBD.get_VDI(s, vbd)) == busy
    finally:
        os.rename(aside, busy_path)
    ok(proxy.SR.scan(s, sr))
    assert not ok(proxy.VDI.get_missing(s, busy))
    ok(proxy.VM.hard_shutdown(s, vm))
    # gone with nothing attached: forgotten, as before
    os.unlink(idle_path)
    ok(proxy.SR.scan(s, sr))
    assert err(proxy.VDI.get_record(s, idle))[0] == "HANDLE_INVALID"


def sr_create(api, location):
    proxy, s = api
    host = ok(proxy.session.get_this_host(s, s))
    return proxy.SR.create(s, host, {"location": location}, "0", "x", "", "file", "user", False,
                           {})


def test_sr_locations_only_under_roots(api, daemon, tmp_path):
    proxy, s = api
    host = ok(proxy.session.get_this_host(s, s))
    srs_before = ok(proxy.SR.get_all(s))
    outside = str(tmp_path / "outside")
    for location in (outside, "/etc", "/", os.path.join(srs_dir(daemon), "..", "escape"),
                     os.path.join(srs_dir(daemon), "a//b"), "relative/dir"):
        assert err(sr_create(api, location)) == ["INVALID_VALUE", "device_config:location",
                                                 location]
        assert err(proxy.SR.probe(s, host, {"location": location}, "file", {}))[0] == \
            "INVALID_VALUE"
    assert not os.path.exists(outside) and not os.path.exists(os.path.join(daemon.state_dir,
                                                                             "escape"))
    # a link inside a root does not lead out of it
    os.mkdir(outside)
    link = os.path.join(srs_dir(daemon), "link")
    os.symlink(outside, link)
    for location in (link, os.path.join(link, "sub")):
        assert err(sr_create(api, location)) == ["INVALID_VALUE", "device_config:location",
                                                 location]
    assert os.listdir(outside) == []
    # nor does a PBD made by hand
    sr = ok(proxy.SR.introduce(s, "", "elsewhere", "", "file", "user", False, {}))
    pbd = ok(proxy.PBD.create(s, {"host": host, "SR": sr, "device_config": {"location": outside},
                                  "other_config": {}}))
    assert err(proxy.PBD.plug(s, pbd)) == ["INVALID_VALUE", "device_config:location", outside]
    assert not ok(proxy.PBD.get_currently_attached(s, pbd))
    ok(proxy.PBD.destroy(s, pbd))
    ok(proxy.SR.forget(s, sr))
    assert sorted(ok(proxy.SR.get_all(s))) == sorted(srs_before)
    # the default root holds SRs too
    nested = os.path.join(daemon.state_dir, "sr", "nested")
    sr = ok(sr_create(api, nested))
    ok(proxy.PBD.unplug(s, ok(proxy.SR.get_PBDs(s, sr))[0]))
    ok(proxy.SR.destroy(s, sr))


def test_sr_create_refuses_someone_elses_directory(api, daemon):
    proxy, s = api
    full = os.path.join(srs_dir(daemon), "full")
    os.mkdir(full)
    with open(os.path.join(full, "notes.txt"), "w") as f:
        f.write("precious\n")
    e = err(sr_create(api, full))
    assert e[0] == "SR_BACKEND_FAILURE_42" and e[1] == "" and "not empty" in e[2], e
    assert os.listdir(full) == ["notes.txt"]


def test_sr_destroy_removes_only_its_own_images(api, daemon):
    proxy, s = api
    location = os.path.join(srs_dir(daemon), "owned")
    sr = ok(sr_create(api, location))
    vdi = new_vdi(api, sr, 4 * MiB)
    snap = ok(proxy.VDI.snapshot(s, vdi, {}))
    ok(proxy.VDI.destroy(s, snap))
    ok(proxy.VDI.destroy(s, vdi))
    # files that appeared after the last scan are not the SR's
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2",
                    os.path.join(location, "foreign.qcow2"), "1M"], check=True)
    with open(os.path.join(location, "notes.txt"), "w") as f:
        f.write("not an image\n")
    ok(proxy.PBD.unplug(s, ok(proxy.SR.get_PBDs(s, sr))[0]))
    ok(proxy.SR.destroy(s, sr))
    assert sorted(os.listdir(location)) == ["foreign.qcow2", "notes.txt"]


def test_a_link_in_place_of_a_vdi_is_never_followed(api, daemon, tmp_path):
    """A VDI's file replaced by a symbolic link to a file outside the SR:
    nothing reads, writes or resizes through it; VM.start refuses; a scan
    marks the VDI missing; VDI.destroy removes the link, not its target."""
    proxy, s = api
    sr = default_sr(api)
    victim = tmp_path / "victim"
    victim.write_bytes(b"do not touch\n" * 1000)
    before = victim.read_bytes()
    vdi = new_vdi(api, sr, 16 * MiB)
    path = vdi_path(api, vdi)
    os.unlink(path)
    os.symlink(victim, path)
    for reply in (proxy.VDI.snapshot(s, vdi, {}), proxy.VDI.clone(s, vdi, {}),
                  proxy.VDI.resize(s, vdi, str(32 * MiB)), proxy.VDI.copy(s, vdi, sr),
                  proxy.VDI.update(s, vdi)):
        assert err(reply)[0] == "SR_BACKEND_FAILURE_46"
    vm = new_vm(api, "link")
    ok(new_vbd(api, vm, vdi))
    assert err(proxy.VM.start(s, vm, False, False))[0] == "SR_BACKEND_FAILURE_46"
    ok(proxy.SR.scan(s, sr))
    assert ok(proxy.VDI.get_missing(s, vdi))
    assert victim.read_bytes() == before
    ok(proxy.VM.destroy(s, vm))
    ok(proxy.VDI.destroy(s, vdi))
    assert not os.path.lexists(path)
    assert victim.read_bytes() == before


def test_backing_files_outside_the_sr_do_not_read(api):
    """A qcow2 in an SR may name its backing file as a name there (the SR
    writes those) or a path into the SR's directory (QEMU's live snapshots
    write those); one naming a file elsewhere is not read, and a VDI whose
    image turns into one is kept as missing and never read through."""
    proxy, s = api
    sr = default_sr(api)
    directory = sr_dir(api, sr)
    base = new_vdi(api, sr, 8 * MiB, "base")
    base_path = vdi_path(api, base)
    over = os.path.join(directory, "absolute-over.qcow2")
    outside = os.path.join(directory, "outside-over.qcow2")
    for path, backing in ((over, base_path), (outside, "/etc/shadow")):
        subprocess.run(["qemu-img", "create", "-q", "-u", "-f", "qcow2", "-b", backing, "-F",
                        "qcow2" if backing == base_path else "raw", path, str(8 * MiB)],
                       check=True)
    victim = new_vdi(api, sr, 8 * MiB, "victim")
    victim_path = vdi_path(api, victim)
    subprocess.run(["qemu-img", "create", "-q", "-u", "-f", "qcow2", "-b", "/etc/shadow", "-F",
                    "raw", victim_path, str(8 * MiB)], check=True)
    try:
        ok(proxy.SR.scan(s, sr))
        by_location = {ok(proxy.VDI.get_location(s, v)): v for v in ok(proxy.SR.get_VDIs(s, sr))}
        assert "absolute-over.qcow2" in by_location
        parent = ok(proxy.VDI.get_sm_config(s, by_location["absolute-over.qcow2"]))
        assert parent.get("vhd-parent") == ok(proxy.VDI.get_uuid(s, base))
        assert "outside-over.qcow2" not in by_location
        assert ok(proxy.VDI.get_missing(s, victim))
        # nothing reads through it: no snapshot over it, no guest, no export
        assert err(proxy.VDI.snapshot(s, victim, {}))[0] == "SR_BACKEND_FAILURE_46"
        vm = new_vm(api, "shadow")
        ok(new_vbd(api, vm, victim))
        assert err(proxy.VM.start(s, vm, False, False))[0] == "SR_BACKEND_FAILURE_46"
        ok(proxy.VM.destroy(s, vm))
    finally:
        os.unlink(over)
        os.unlink(outside)
    ok(proxy.SR.scan(s, sr))
    for vdi in (victim, base):
        ok(proxy.VDI.destroy(s, vdi))
