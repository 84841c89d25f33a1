"""Metrics of a real guest (one guest for the module): the qemu driver's
figures in /rrd_updates — each vCPU's time from its QEMU thread
(query-cpus-fast thread ids and /proc), the disk's bytes from
query-blockstats, its requests and their times — and the VM's archive served from the state dir once
the VM is halted."""
import base64
import json
import os
import urllib.request

import pytest

from xapid_daemon import PASSWORD, ok, wait_until
from qemu_guest import qemu_daemon
from test_vm_qemu import guest, new_guest_vm, wait_ready  # noqa: F401 (fixture)

MiB = 1 << 20


@pytest.fixture(scope="module")
def daemon():
    with qemu_daemon() as d:
        yield d


def get(daemon, path):
    req = urllib.request.Request(daemon.url.rstrip("/") + path)
    req.add_header("Authorization",
                   "Basic " + base64.b64encode(f"root:{PASSWORD}".encode()).decode())
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read().decode()


def series(daemon, uuid):
    """{source: [known values, newest first]} of the VM's 5 s archive."""
    u = json.loads(get(daemon, f"/rrd_updates?start=-600&json=true&cf=AVERAGE&vm_uuid={uuid}"))
    out = {}
    for i, entry in enumerate(u["meta"]["legend"]):
        out[entry.rsplit(":", 1)[1]] = [float(r["values"][i]) for r in u["data"]
                                        if r["values"][i] != "NaN"]
    return out


def test_guest_figures(daemon, guest):  # noqa: F811
    proxy, s, vm, uuid = new_guest_vm(daemon, guest)
    sr = next(ref for ref, r in ok(proxy.SR.get_all_records(s)).items()
              if r["content_type"] != "iso")
    vdi = ok(proxy.VDI.create(s, {"SR": sr, "virtual_size": str(8 * MiB), "type": "user",
                                  "sharable": False, "read_only": False, "other_config": {},
                                  "name_label": "metrics disk"}))
    ok(proxy.VBD.create(s, {"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": False,
                            "mode": "RW", "type": "Disk", "empty": False, "other_config": {},
                            "qos_algorithm_type": "", "qos_algorithm_params": {}}))
    ok(proxy.VM.start(s, vm, False, False))
    wait_ready(daemon, uuid)
    # The kernel probes the disk (its partition table) while it boots, and
    # its vCPU is busy booting under TCG or KVM: both show in some row.
    found = wait_until(lambda: (lambda f: f if f.get("cpu0") and any(v > 0 for v in f["cpu0"])
                                and any(v > 0 for v in f.get("vbd_xvda_read", [])) else None)(
        series(daemon, uuid)), timeout=90, what="the guest's cpu and disk figures")
    assert all(0 <= v <= 1.05 for v in found["cpu0"])
    assert found["memory"][0] == 192 * MiB
    assert "vbd_xvda_write" in found and "memory_target" in found
    # query-blockstats' request counts and times give XAPI's iostat figures.
    assert any(v > 0 for v in found["vbd_xvda_iops_read"])
    assert any(v > 0 for v in found["vbd_xvda_read_latency"])
    assert any(v > 0 for v in found["vbd_xvda_io_throughput_read"])
    # Halted: the archive leaves memory for the state dir and is still served.
    ok(proxy.VM.hard_shutdown(s, vm))
    wait_until(lambda: uuid not in get(daemon, "/rrd_updates?start=-60&json=true"),
               timeout=30, what="the archive to be retired")
    dump = get(daemon, f"/vm_rrd?uuid={uuid}")
    assert "<name>cpu0</name>" in dump and "<name>vbd_xvda_read</name>" in dump
    assert os.path.exists(os.path.join(daemon.state_dir, "rrd", uuid + ".rrd"))
