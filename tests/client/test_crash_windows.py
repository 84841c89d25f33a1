"""Crash windows: every multi-step storage operation is finished or undone
after kill -9. For each operation, the daemon (sim driver, real qcow2
files) is killed right before and right after each of its write commits in
turn (XAPID_CRASH_AT, a test-only hook in src/db), restarted, and checked:
no image file without its VDI, no VDI without its file, every chain valid
for `qemu-img check`, every reference between VMs, VBDs and VDIs whole."""
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import xmlrpc.client

import pytest

from xapid_daemon import Daemon, ok

MiB = 1 << 20
SIM = ["--hypervisor", "sim"]
NULL = "OpaqueRef:NULL"


def default_sr(proxy, s):
    return list(ok(proxy.pool.get_all_records(s)).values())[0]["default_SR"]


def new_disk_vm(proxy, s, sr, name, disks=2):
    vm = ok(proxy.VM.create(s, {"name_label": name, "memory_static_max": str(256 * MiB),
                                "VCPUs_max": "1", "VCPUs_at_startup": "1"}))
    for i in range(disks):
        vdi = ok(proxy.VDI.create(s, {"name_label": f"{name}-{i}", "SR": sr,
                                      "virtual_size": str(8 * MiB), "type": "user",
                                      "sharable": False, "read_only": False,
                                      "other_config": {}}))
        ok(proxy.VBD.create(s, {"VM": vm, "VDI": vdi, "userdevice": str(i), "bootable": i == 0,
                                "mode": "RW", "type": "Disk", "unpluggable": True,
                                "empty": False, "other_config": {}, "qos_algorithm_type": "",
                                "qos_algorithm_params": {}}))
    return vm


def first_vdi(proxy, s, vm):
    vbd = ok(proxy.VM.get_VBDs(s, vm))[0]
    return ok(proxy.VBD.get_VDI(s, vbd))


def raw_import(daemon, s, vdi):
    c = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    body = os.urandom(MiB) + b"\0" * MiB
    c.request("PUT", f"/import_raw_vdi?session_id={s}&vdi={vdi}&format=raw", body=body)
    reply = c.getresponse()
    reply.read()
    assert reply.status == 200, reply.status


# name -> (setup(proxy, s, sr) -> ctx, operation(daemon, proxy, s, sr, ctx))
OPERATIONS = {
    "VM.clone": (lambda p, s, sr: new_disk_vm(p, s, sr, "v"),
                 lambda d, p, s, sr, vm: ok(p.VM.clone(s, vm, "c"))),
    "VM.copy": (lambda p, s, sr: new_disk_vm(p, s, sr, "v"),
                lambda d, p, s, sr, vm: ok(p.VM.copy(s, vm, "c", sr))),
    "VM.snapshot": (lambda p, s, sr: new_disk_vm(p, s, sr, "v"),
                    lambda d, p, s, sr, vm: ok(p.VM.snapshot(s, vm, "snap", []))),
    "VM.revert": (lambda p, s, sr: ok(p.VM.snapshot(s, new_disk_vm(p, s, sr, "v"), "snap", [])),
                  lambda d, p, s, sr, snap: ok(p.VM.revert(s, snap))),
    # Sim domains end with the daemon, so these start the VM in the trial.
    "VM.checkpoint": (lambda p, s, sr: new_disk_vm(p, s, sr, "v"),
                      lambda d, p, s, sr, vm: ok(p.VM.checkpoint(s, start(p, s, vm), "cp"))),
    "VM.suspend": (lambda p, s, sr: new_disk_vm(p, s, sr, "v"),
                   lambda d, p, s, sr, vm: ok(p.VM.suspend(s, start(p, s, vm)))),
    "VDI.snapshot": (lambda p, s, sr: first_vdi(p, s, new_disk_vm(p, s, sr, "v", 1)),
                     lambda d, p, s, sr, vdi: ok(p.VDI.snapshot(s, vdi, {}))),
    "VDI.clone": (lambda p, s, sr: first_vdi(p, s, new_disk_vm(p, s, sr, "v", 1)),
                  lambda d, p, s, sr, vdi: ok(p.VDI.clone(s, vdi, {}))),
    "VDI.copy": (lambda p, s, sr: first_vdi(p, s, new_disk_vm(p, s, sr, "v", 1)),
                 lambda d, p, s, sr, vdi: ok(p.VDI.copy(s, vdi, sr, NULL, NULL))),
    "VDI.resize": (lambda p, s, sr: first_vdi(p, s, new_disk_vm(p, s, sr, "v", 1)),
                   lambda d, p, s, sr, vdi: ok(p.VDI.resize(s, vdi, str(16 * MiB)))),
    "VDI.destroy": (lambda p, s, sr: first_vdi(p, s, new_disk_vm(p, s, sr, "v", 1)),
                    lambda d, p, s, sr, vdi: destroy_vdi(p, s, vdi)),
    "import_raw_vdi": (lambda p, s, sr: first_vdi(p, s, new_disk_vm(p, s, sr, "v", 1)),
                       lambda d, p, s, sr, vdi: raw_import(d, s, vdi)),
}


def start(proxy, s, vm):
    ok(proxy.VM.start(s, vm, False, False))
    return vm


def destroy_vdi(proxy, s, vdi):
    for vbd in ok(proxy.VDI.get_VBDs(s, vdi)):
        ok(proxy.VBD.destroy(s, vbd))
    ok(proxy.VDI.destroy(s, vdi))


def violations(proxy, s, known_files, vdis_before):
    """What a restarted daemon holds that a finished-or-undone operation
    cannot leave behind."""
    found = []
    srs = ok(proxy.SR.get_all_records(s))
    vdis = ok(proxy.VDI.get_all_records(s))
    parents = {v["sm_config"].get("vhd-parent") for v in vdis.values()}
    for ref, v in vdis.items():
        if ref in vdis_before:
            continue
        # A file the operation made but never recorded comes back through
        # the start-up scan as a VDI named after its file.
        if v["name_label"] == v["location"]:
            found.append(f"orphan image {v['location']} introduced by the scan")
        elif not v["managed"] and v["uuid"] not in parents:
            found.append(f"hidden base {v['location']} that nothing is built on")
    vbds = ok(proxy.VBD.get_all_records(s))
    vms = ok(proxy.VM.get_all_records(s))
    for sr_ref, sr in srs.items():
        if sr["type"] != "file":
            continue
        pbd = ok(proxy.PBD.get_record(s, sr["PBDs"][0]))
        where = pbd["device_config"]["location"]
        files = set(os.listdir(where)) - known_files
        held = {v["location"] for v in vdis.values() if v["SR"] == sr_ref}
        found += [f"file without a VDI: {f}" for f in sorted(files - held)]
        found += [f"VDI without its file: {f}" for f in sorted(held - files)]
        for f in sorted(files & held):
            path = os.path.join(where, f)
            if f.endswith(".qcow2"):
                check = subprocess.run(["qemu-img", "check", "-U", "-f", "qcow2", path],
                                       capture_output=True, text=True)
                if check.returncode != 0:
                    found.append(f"qemu-img check {f}: {check.stdout}{check.stderr}")
                info = subprocess.run(["qemu-img", "info", "-U", "--backing-chain", path],
                                      capture_output=True, text=True)
                if info.returncode != 0:
                    found.append(f"broken chain {f}: {info.stderr}")
    for ref, v in vdis.items():
        parent = v["sm_config"].get("vhd-parent")
        if parent and not any(x["uuid"] == parent for x in vdis.values()):
            found.append(f"VDI {v['location']} has a missing vhd-parent")
    held_images = {vm["suspend_VDI"] for vm in vms.values()}
    for ref, v in vdis.items():
        if v["type"] == "suspend" and ref not in held_images:
            found.append(f"suspend image {v['location']} of no VM")
    for ref, b in vbds.items():
        if b["VM"] not in vms:
            found.append(f"VBD {ref} of a missing VM")
        if b["VDI"] != NULL and b["VDI"] not in vdis:
            found.append(f"VBD {ref} of a missing VDI")
    for ref, vm in vms.items():
        if vm["power_state"] == "Suspended" and vm["suspend_VDI"] not in vdis:
            found.append(f"suspended VM {vm['name_label']} without its image")
        if vm["power_state"] != "Suspended" and vm["suspend_VDI"] != NULL and \
                not vm["is_a_snapshot"]:
            found.append(f"{vm['power_state']} VM {vm['name_label']} holds a suspend_VDI")
        if vm["is_a_snapshot"] and vm["name_label"] == "cp" and \
                vm["power_state"] != "Suspended":  # VM.checkpoint's snapshot
            found.append("a checkpoint without its memory")
        if vm["current_operations"]:
            found.append(f"VM {vm['name_label']} still locked")
    return found


@pytest.fixture(scope="module")
def reports():
    lines = []
    yield lines
    print("\ncrash windows:\n" + "\n".join(lines))


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_crash_at_every_commit_is_finished_or_undone(name, reports):
    setup, operation = OPERATIONS[name]
    # Each trial runs in the same directory (the database holds absolute
    # paths), restored from a copy of the prepared state.
    state = tempfile.mkdtemp(prefix="xapid-crash-")
    d = Daemon(state_dir=state, extra_args=SIM)
    proxy, s = d.login()
    sr = default_sr(proxy, s)
    ctx = setup(proxy, s, sr)
    sr_dir = ok(proxy.PBD.get_device_config(s, ok(proxy.SR.get_PBDs(s, sr))[0]))["location"]
    vdis_before = set(ok(proxy.VDI.get_all(s)))
    d.stop()
    template = state + ".prepared"
    shutil.copytree(state, template)
    # Files of the SR that are not images (a marker, ...), as a fresh SR has them.
    known_files = {f for f in os.listdir(sr_dir) if not f.endswith((".qcow2", ".raw"))}

    trials, found = 0, []
    try:
        for k in range(1, 40):
            done = False
            for when in ("before", "after"):
                shutil.rmtree(state)
                shutil.copytree(template, state)
                os.environ["XAPID_CRASH_AT"] = f"{when}:{k}"
                try:
                    t = Daemon(state_dir=state, extra_args=SIM)
                finally:
                    del os.environ["XAPID_CRASH_AT"]
                crashed = False
                try:
                    p, ts = t.login()
                    operation(t, p, ts, sr, ctx)
                except (ConnectionError, http.client.HTTPException, OSError,
                        xmlrpc.client.ProtocolError):
                    crashed = True
                if crashed:
                    t.proc.wait(timeout=30)
                    assert t.proc.returncode == -9, t.proc.returncode
                else:
                    done = True
                    t.proc.kill()
                    t.proc.wait()
                t.log.close()
                t.start()
                p, ts = t.login()
                trials += 1
                found += [f"{when}:{k}: {v}"
                          for v in violations(p, ts, known_files, vdis_before)]
                t.stop()
                if done:
                    break
            if done:
                break
    finally:
        shutil.rmtree(template, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)
    reports.append(f"  {name}: {trials} trials, {len(found)} invariant violations")
    assert found == [], found
