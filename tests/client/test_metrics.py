"""Metrics against a real daemon (sim hypervisor, no guest): /rrd_updates
as XML (ElementTree, as CloudStack reads it) and JSON (as Xen Orchestra
reads it) with XAPI's shape, the host's sources from /proc and /sys, a
running sim VM's cpu/memory/vbd/vif sources, /host_rrd and /vm_rrd,
authentication, bad queries, archives that survive a restart; and Xen
Orchestra's connector (npm xen-api, tests/xo/stats.mjs) reading the stats
as xo-server's xapi-stats.mjs does and seeing message objects come and go
through its event loop."""
import base64
import json
import os
import re
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

import subprocess

import pytest

from xapid_daemon import PASSWORD, Daemon, err, ok, wait_until
from test_xen_orchestra import XO_DIR, connector  # noqa: F401 (fixture)

MiB = 1 << 20
LEGEND = re.compile(r"^(AVERAGE|MIN|MAX):(host|vm):([0-9a-f-]{36}):(.+)$")


@pytest.fixture(scope="module")
def daemon():
    d = Daemon(extra_args=["--hypervisor", "sim"])
    yield d
    d.stop()


@pytest.fixture(scope="module")
def api(daemon):
    return daemon.login()


def get(daemon, path, session=None, auth=True, headers=None):
    req = urllib.request.Request(daemon.url.rstrip("/") + path, headers=headers or {})
    if auth and not session:
        token = base64.b64encode(f"root:{PASSWORD}".encode()).decode()
        req.add_header("Authorization", "Basic " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def updates_json(daemon, query):
    status, headers, body = get(daemon, "/rrd_updates?" + query)
    assert status == 200, body
    return json.loads(body)


def column(update, name_pattern):
    """The newest known values (floats) of the legend entries matching."""
    legend = update["meta"]["legend"]
    found = {}
    for i, entry in enumerate(legend):
        if re.search(name_pattern, entry):
            for row in update["data"]:  # newest first
                if row["values"][i] != "NaN":
                    found[entry] = float(row["values"][i])
                    break
    return found


@pytest.fixture(scope="module")
def vm(daemon, api):
    """A running sim VM with a disk and a NIC."""
    proxy, s = api
    ref = ok(proxy.VM.create(s, {
        "name_label": "metrics", "memory_static_max": str(256 * MiB),
        "memory_dynamic_max": str(256 * MiB), "memory_dynamic_min": str(256 * MiB),
        "VCPUs_max": "2", "VCPUs_at_startup": "2", "actions_after_shutdown": "destroy",
        "actions_after_reboot": "restart", "actions_after_crash": "destroy"}))
    sr = next(r for r in ok(proxy.SR.get_all_records(s)).values() if r["content_type"] != "iso")
    sr_ref = ok(proxy.SR.get_by_uuid(s, sr["uuid"]))
    vdi = ok(proxy.VDI.create(s, {"SR": sr_ref, "virtual_size": str(8 * MiB), "type": "user",
                                  "sharable": False, "read_only": False, "other_config": {},
                                  "name_label": "metrics-disk"}))
    ok(proxy.VBD.create(s, {"VM": ref, "VDI": vdi, "userdevice": "0", "bootable": True,
                            "mode": "RW", "type": "Disk", "empty": False, "other_config": {},
                            "qos_algorithm_type": "", "qos_algorithm_params": {}}))
    net = ok(proxy.network.create(s, {"name_label": "metrics-net", "other_config": {}}))
    ok(proxy.VIF.create(s, {"VM": ref, "network": net, "device": "0", "MAC": "",
                            "MTU": "1500", "other_config": {}, "qos_algorithm_type": "",
                            "qos_algorithm_params": {}}))
    ok(proxy.VM.start(s, ref, False, False))
    uuid = ok(proxy.VM.get_uuid(s, ref))
    # Two rounds of the sampler give rates: wait until the VM's cpu1 is known.
    wait_until(lambda: column(updates_json(daemon, "start=-60&json=true"), f":{uuid}:cpu1$"),
               timeout=40, what="two samples of the VM")
    return ref, uuid


def test_xml_and_json_shape(daemon, api, vm):
    proxy, s = api
    host_uuid = ok(proxy.host.get_uuid(s, ok(proxy.host.get_all(s))[0]))
    vm_ref, vm_uuid = vm
    start = int(time.time()) - 60
    query = f"start={start}&cf=AVERAGE&interval=5&host=true&json=true"
    update = updates_json(daemon, query)
    meta = update["meta"]
    # Every number is a string, as XAPI (and XO's parser) has it.
    assert meta["step"] == "5" and all(isinstance(meta[k], str) for k in
                                       ("start", "end", "rows", "columns", "step"))
    assert int(meta["rows"]) == len(update["data"]) and int(meta["columns"]) == len(meta["legend"])
    assert int(meta["start"]) == start // 5 * 5 + 5
    ts = [int(r["t"]) for r in update["data"]]
    assert ts == sorted(ts, reverse=True) and ts[0] == int(meta["end"]) and ts[-1] >= start
    for entry in meta["legend"]:
        m = LEGEND.match(entry)
        assert m, entry
        assert m.group(1) == "AVERAGE" and m.group(3) in (host_uuid, vm_uuid)
    host = {LEGEND.match(e).group(4) for e in meta["legend"] if f":{host_uuid}:" in e}
    assert {"cpu0", "cpu_avg", "memory_total_kib", "memory_free_kib", "loadavg",
            "pif_aggr_rx", "pif_aggr_tx"} <= host
    vm_ds = {LEGEND.match(e).group(4) for e in meta["legend"] if f":{vm_uuid}:" in e}
    assert {"cpu0", "cpu1", "memory", "memory_target", "vbd_xvda_read", "vbd_xvda_write",
            "vif_0_rx", "vif_0_tx"} <= vm_ds
    values = column(update, f":{vm_uuid}:")
    assert 0 < values[f"AVERAGE:vm:{vm_uuid}:cpu0"] < 1
    assert values[f"AVERAGE:vm:{vm_uuid}:memory"] == 256 * MiB
    assert values[f"AVERAGE:vm:{vm_uuid}:vbd_xvda_read"] > 0
    assert values[f"AVERAGE:vm:{vm_uuid}:vif_0_rx"] > 0
    hv = column(update, f":{host_uuid}:")
    assert 0 <= hv[f"AVERAGE:host:{host_uuid}:cpu_avg"] <= 1
    with open("/proc/meminfo") as f:
        total = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1))
    assert hv[f"AVERAGE:host:{host_uuid}:memory_total_kib"] == total

    # The same query as XML: the same legend, rows of <t> and <v>.
    status, headers, body = get(daemon, "/rrd_updates?" + query.replace("&json=true", ""))
    assert status == 200 and headers["Content-Type"] == "text/xml"
    assert body.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<xport><meta><start>')
    root = ET.fromstring(body)
    assert root.tag == "xport"
    assert [e.text for e in root.find("meta/legend")][:len(meta["legend"])] == meta["legend"][
        :len(root.find("meta/legend"))]
    rows = root.findall("data/row")
    assert len(rows) == int(root.find("meta/rows").text)
    for row in rows:
        assert len(row.findall("v")) == int(root.find("meta/columns").text)
        for v in row.findall("v"):
            float(v.text)  # numbers, NaN included


def test_headers_cf_and_selection(daemon, api, vm):
    proxy, s = api
    vm_ref, vm_uuid = vm
    status, headers, body = get(daemon, "/rrd_updates?start=-60&json=false")
    # Any json key selects JSON, even json=false (XAPI's check).
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-cache, no-store"
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Access-Control-Allow-Headers"] == "X-Requested-With"
    update = json.loads(body)
    # Without host=true only the VMs; without cf every function: the host
    # has MIN/MAX but VM archives are AVERAGE only by default.
    assert update["meta"]["legend"] and all(":vm:" in e for e in update["meta"]["legend"])
    # An Accept header wins over the json key.
    status, headers, _ = get(daemon, "/rrd_updates?start=-60&json=true",
                             headers={"Accept": "text/xml"})
    assert headers["Content-Type"] == "text/xml"
    # The host's coarser archives keep MIN and MAX.
    u = updates_json(daemon, f"start={int(time.time()) - 7200}&host=true&json=true&vm_uuid=none")
    assert u["meta"]["step"] == "60"
    cfs = {e.split(":")[0] for e in u["meta"]["legend"]}
    assert cfs == {"AVERAGE", "MIN", "MAX"}
    # vm_uuid limits the VMs (an unknown one is left out).
    u = updates_json(daemon, f"start=-60&json=true&vm_uuid={vm_uuid}")
    assert {e.split(":")[2] for e in u["meta"]["legend"]} == {vm_uuid}
    # interval=3600: the hourly archive.
    u = updates_json(daemon, "start=-60&json=true&interval=3600&host=true")
    assert u["meta"]["step"] == "3600"


def test_auth_and_bad_queries(daemon, api):
    proxy, s = api
    assert get(daemon, "/rrd_updates?start=0", auth=False)[0] == 401
    assert get(daemon, "/host_rrd", auth=False)[0] == 401
    assert get(daemon, f"/rrd_updates?start=-10&session_id=OpaqueRef:bogus", session=True)[0] == 401
    assert get(daemon, f"/rrd_updates?start=-10&host=true&session_id={s}", session=True)[0] == 200
    assert get(daemon, "/rrd_updates")[0] == 400
    assert get(daemon, "/rrd_updates?start=soon")[0] == 400
    assert get(daemon, "/vm_rrd")[0] == 400
    assert get(daemon, "/vm_rrd?uuid=00000000-0000-0000-0000-000000000000")[0] == 404
    # A task given ends with the request: success, or failure with the status.
    done = ok(proxy.task.create(s, "rrd", ""))
    assert get(daemon, f"/rrd_updates?start=-10&task_id={done}")[0] == 200
    assert ok(proxy.task.get_status(s, done)) == "success"
    failed = ok(proxy.task.create(s, "rrd", ""))
    assert get(daemon, f"/rrd_updates?task_id={failed}")[0] == 400
    assert ok(proxy.task.get_status(s, failed)) == "failure"
    assert ok(proxy.task.get_error_info(s, failed)) == ["INTERNAL_ERROR", "HTTP 400"]
    assert get(daemon, "/rrd_updates?start=-10&task_id=OpaqueRef:nothing")[0] == 403


def test_whole_archives(daemon, api, vm):
    vm_ref, vm_uuid = vm
    status, headers, body = get(daemon, "/host_rrd")
    assert status == 200 and headers["Content-Type"] == "text/xml"
    root = ET.fromstring(body)
    assert root.find("version").text == "0003" and root.find("step").text == "5"
    assert int(root.find("lastupdate").text) > 0
    names = [d.find("name").text for d in root.findall("ds")]
    assert "memory_total_kib" in names
    rras = root.findall("rra")
    assert [(r.find("cf").text, r.find("pdp_per_row").text) for r in rras] == [
        ("AVERAGE", "1"), ("AVERAGE", "12"), ("MIN", "12"), ("MAX", "12"),
        ("AVERAGE", "720"), ("MIN", "720"), ("MAX", "720"),
        ("AVERAGE", "17280"), ("MIN", "17280"), ("MAX", "17280")]
    assert [len(r.findall("database/row")) for r in rras] == [120] + [120] * 3 + [168] * 3 + [366] * 3
    for r in rras:
        assert len(r.findall("cdp_prep/ds")) == len(names)
    status, _, body = get(daemon, f"/vm_rrd?uuid={vm_uuid}")
    assert status == 200
    root = ET.fromstring(body)
    assert [r.find("cf").text for r in root.findall("rra")] == ["AVERAGE"] * 4
    assert "cpu0" in [d.find("name").text for d in root.findall("ds")]


def test_data_sources(daemon, api, vm):
    proxy, s = api
    host = ok(proxy.host.get_all(s))[0]
    vm_ref, vm_uuid = vm
    sources = {d["name_label"]: d for d in ok(proxy.host.get_data_sources(s, host))}
    assert {"cpu0", "cpu_avg", "memory_total_kib", "memory_free_kib", "loadavg"} <= set(sources)
    mem = sources["memory_total_kib"]
    assert mem["units"] == "KiB" and mem["enabled"] is True and mem["standard"] is True
    with open("/proc/meminfo") as f:
        total = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1))
    assert ok(proxy.host.query_data_source(s, host, "memory_total_kib")) == total
    assert 0 <= ok(proxy.host.query_data_source(s, host, "cpu_avg")) <= 1
    assert err(proxy.host.query_data_source(s, host, "nonsense")) == [
        "INTERNAL_ERROR", "Datasource_missing(nonsense)"]
    ok(proxy.host.record_data_source(s, host, "loadavg"))
    vm_sources = {d["name_label"] for d in ok(proxy.VM.get_data_sources(s, vm_ref))}
    assert {"cpu0", "cpu1", "memory", "vbd_xvda_read", "vif_0_tx"} <= vm_sources
    assert ok(proxy.VM.query_data_source(s, vm_ref, "memory")) == 256 * MiB
    assert err(proxy.VM.get_data_sources(s, "OpaqueRef:nothing"))[0] == "HANDLE_INVALID"
    # forget empties the source's archives: its past becomes unknown.
    forgotten_at = int(time.time())
    ok(proxy.host.forget_data_source_archives(s, host, "loadavg"))
    u = updates_json(daemon, "start=-600&host=true&json=true&cf=AVERAGE&vm_uuid=none")
    i = u["meta"]["legend"].index(next(e for e in u["meta"]["legend"] if e.endswith(":loadavg")))
    j = u["meta"]["legend"].index(next(e for e in u["meta"]["legend"]
                                       if e.endswith(":memory_total_kib")))
    # Rows that ended before the forget hold no loadavg (a later sample may).
    rows = [r for r in u["data"] if r["values"][j] != "NaN" and int(r["t"]) < forgotten_at]
    assert rows and all(r["values"][i] == "NaN" for r in rows)


IO_KEYS = ["io_throughput_read", "io_throughput_write", "io_throughput_total", "iops_read",
           "iops_write", "iops_total", "read_latency", "write_latency", "latency", "iowait"]


def test_sr_and_disk_io_sources(daemon, api, vm):
    """XAPI's iostat sources: each VM disk's vbd_<dev>_<key>, each plugged
    SR's own archive of the sum (SR.get_data_sources and friends,
    /rrd_updates?sr_uuid=, /sr_rrd) and the same as <key>_<sr8> in the
    host's archive. The sim disk does 4 KiB reads of 100-400 us."""
    proxy, s = api
    vm_ref, vm_uuid = vm
    host = ok(proxy.host.get_all(s))[0]
    vbd = next(b for b in ok(proxy.VM.get_VBDs(s, vm_ref))
               if ok(proxy.VBD.get_type(s, b)) == "Disk")
    sr = ok(proxy.VDI.get_SR(s, ok(proxy.VBD.get_VDI(s, vbd))))
    sr_uuid = ok(proxy.SR.get_uuid(s, sr))
    sources = {d["name_label"]: d for d in ok(proxy.SR.get_data_sources(s, sr))}
    assert list(sources) == IO_KEYS + ["physical_utilisation", "size"]
    assert ok(proxy.SR.query_data_source(s, sr, "size")) == int(
        ok(proxy.SR.get_physical_size(s, sr)))
    assert sources["iops_read"]["units"] == "requests/s"
    assert sources["read_latency"]["units"] == "μs"
    assert sources["io_throughput_read"]["units"] == "MiB/s"
    reads = ok(proxy.SR.query_data_source(s, sr, "iops_read"))
    assert reads > 0
    # 4 KiB a read: MiB/s = reads x 4096 / 2^20 (the one VM on the SR).
    assert ok(proxy.SR.query_data_source(s, sr, "io_throughput_read")) == pytest.approx(
        reads * 4096 / MiB)
    assert 100 <= ok(proxy.SR.query_data_source(s, sr, "read_latency")) <= 400
    assert err(proxy.SR.query_data_source(s, sr, "nonsense")) == [
        "INTERNAL_ERROR", "Datasource_missing(nonsense)"]
    assert err(proxy.SR.get_data_sources(s, "OpaqueRef:nothing"))[0] == "HANDLE_INVALID"
    ok(proxy.SR.record_data_source(s, sr, "iops_total"))
    vm_sources = {d["name_label"] for d in ok(proxy.VM.get_data_sources(s, vm_ref))}
    assert {f"vbd_xvda_{k}" for k in IO_KEYS} <= vm_sources
    latency = ok(proxy.VM.query_data_source(s, vm_ref, "vbd_xvda_read_latency"))
    assert 100 <= latency <= 400
    host_sources = {d["name_label"] for d in ok(proxy.host.get_data_sources(s, host))}
    assert {f"{k}_{sr_uuid[:8]}" for k in IO_KEYS} <= host_sources

    # /rrd_updates: SRs only when named (XAPI's default is none), after the VMs.
    u = updates_json(daemon, f"start=-60&json=true&cf=AVERAGE&sr_uuid={sr_uuid}")
    owners = [e.split(":")[1] for e in u["meta"]["legend"]]
    assert "sr" in owners and owners == sorted(owners, key=lambda o: o == "sr")
    assert [e for e in u["meta"]["legend"] if ":sr:" in e] == [
        f"AVERAGE:sr:{sr_uuid}:{k}" for k in IO_KEYS + ["physical_utilisation", "size"]]
    assert column(u, f":sr:{sr_uuid}:iops_read$")[f"AVERAGE:sr:{sr_uuid}:iops_read"] > 0
    u = updates_json(daemon, "start=-60&json=true")
    assert not [e for e in u["meta"]["legend"] if ":sr:" in e]

    # /sr_rrd: the whole archive, as /vm_rrd.
    status, headers, body = get(daemon, f"/sr_rrd?uuid={sr_uuid}")
    assert status == 200 and headers["Content-Type"] == "text/xml"
    root = ET.fromstring(body)
    assert [d.find("name").text for d in root.findall("ds")] == IO_KEYS + [
        "physical_utilisation", "size"]
    assert [r.find("cf").text for r in root.findall("rra")] == ["AVERAGE"] * 4
    assert get(daemon, "/sr_rrd")[0] == 400
    assert get(daemon, "/sr_rrd?uuid=00000000-0000-0000-0000-000000000000")[0] == 404
    assert get(daemon, f"/sr_rrd?uuid={sr_uuid}", auth=False)[0] == 401


def test_rrdtool_restores_the_archives(daemon, api, vm, tmp_path):
    """rrdtool (Debian's) reads /sr_rrd's XML with `rrdtool restore`, and
    `rrdtool fetch` gives the figures /rrd_updates gives. rrdtool refuses
    source names longer than 19 characters, and XAPI's names are often
    longer (physical_utilisation, vbd_xvda_iops_read, iops_read_<sr8>), in
    XAPI's dumps as in ours: the names are renamed ds0, ds1, ... first."""
    proxy, s = api
    sr = next(r for r in ok(proxy.SR.get_all_records(s)).values() if r["content_type"] != "iso")
    status, _, body = get(daemon, f"/sr_rrd?uuid={sr['uuid']}")
    assert status == 200
    names = re.findall(r"<ds><name>([^<]*)</name>", body)
    assert "physical_utilisation" in names
    renamed = iter(range(len(names)))
    short = re.sub(r"<ds><name>[^<]*</name>", lambda m: f"<ds><name>ds{next(renamed)}</name>",
                   body)
    xml = tmp_path / "sr.xml"
    xml.write_text(short)
    rrd = tmp_path / "sr.rrd"
    subprocess.run(["rrdtool", "restore", str(xml), str(rrd)], check=True, timeout=60)
    root = ET.fromstring(body)
    last = int(root.find("lastupdate").text)
    out = subprocess.run(["rrdtool", "fetch", str(rrd), "AVERAGE", "-r", "5", "-s",
                          str(last - 300), "-e", str(last)], check=True, capture_output=True,
                         text=True, timeout=60).stdout.splitlines()
    assert out[0].split() == [f"ds{i}" for i in range(len(names))]
    fetched = {}
    for line in out[2:]:
        t, values = line.split(":")
        fetched[int(t)] = [float(v) for v in values.split()]
    u = updates_json(daemon, f"start={last - 300}&json=true&cf=AVERAGE&vm_uuid=none"
                             f"&sr_uuid={sr['uuid']}")
    compared = 0
    for row in u["data"]:
        t = int(row["t"])
        if t <= last and any(v != "NaN" for v in row["values"]):
            assert fetched[t] == pytest.approx([float(v) for v in row["values"]]), t
            compared += 1
    assert compared > 0


def sysfs(dev, name):
    try:
        with open(f"/sys/class/net/{dev}/{name}") as f:
            return f.read().strip()
    except OSError:
        return ""


def pci_names(vendor, device):
    """(vendor name, device name) from Debian's pci.ids, read here on its own."""
    names = ["", ""]
    try:
        with open("/usr/share/misc/pci.ids", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return tuple(names)
    in_vendor = False
    for line in lines:
        if line.startswith("#") or not line:
            continue
        if not line.startswith("\t"):
            in_vendor = line[:4].lower() == vendor.lower() and line[4:5] == " "
            if in_vendor:
                names[0] = line[4:].strip()
        elif in_vendor and not line.startswith("\t\t") and line[1:5].lower() == device.lower():
            names[1] = line[5:].strip()
    return tuple(names)


def start_small_vm(api, name, memory, dynamic_min, vcpus_max, vcpus):
    """A running sim VM without devices."""
    proxy, s = api
    ref = ok(proxy.VM.create(s, {
        "name_label": name, "memory_static_max": str(memory),
        "memory_dynamic_max": str(memory), "memory_dynamic_min": str(dynamic_min),
        "VCPUs_max": str(vcpus_max), "VCPUs_at_startup": str(vcpus),
        "actions_after_shutdown": "destroy", "actions_after_reboot": "restart",
        "actions_after_crash": "destroy"}))
    ok(proxy.VM.start(s, ref, False, False))
    return ref


def test_metrics_objects_follow_the_sampler(daemon, api, vm):
    """host_metrics, PIF_metrics and VM_metrics hold what the sampler read,
    as XAPI's monitor threads keep them."""
    proxy, s = api
    host = ok(proxy.host.get_all(s))[0]
    hm = ok(proxy.host_metrics.get_record(s, ok(proxy.host.get_metrics(s, host))))
    with open("/proc/meminfo") as f:
        total = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1))
    assert int(hm["memory_total"]) == total * 1024 and hm["live"] is True
    for pif in ok(proxy.PIF.get_all_records(s)).values():
        if not pif["physical"] or not os.path.exists(f"/sys/class/net/{pif['device']}"):
            continue
        pm = ok(proxy.PIF_metrics.get_record(s, pif["metrics"]))
        assert pm["carrier"] is (sysfs(pif["device"], "carrier") == "1"), pif["device"]
        speed = int(sysfs(pif["device"], "speed") or 0)
        assert int(pm["speed"]) == max(speed, 0)
        assert pm["duplex"] is sysfs(pif["device"], "duplex").startswith("full")
        # The PCI function's ids (a virtio NIC's parent's), named by pci.ids.
        device = os.path.realpath(f"/sys/class/net/{pif['device']}/device")
        if os.path.basename(os.path.realpath(device + "/subsystem")) == "virtio":
            device = os.path.dirname(device)
        with open(device + "/vendor") as f:
            assert pm["vendor_id"] == f.read().strip()[2:]
        with open(device + "/device") as f:
            assert pm["device_id"] == f.read().strip()[2:]
        assert pm["pci_bus_path"] == os.path.basename(device)
        assert (pm["vendor_name"], pm["device_name"]) == pci_names(pm["vendor_id"],
                                                                   pm["device_id"])
    # The balloon moves: memory_actual (and the "memory" source) follow
    # within a round of the sampler.
    ref = start_small_vm(api, "metrics-balloon", 256 * MiB, 128 * MiB, 1, 1)
    try:
        metrics = ok(proxy.VM.get_metrics(s, ref))
        started = ok(proxy.VM_metrics.get_record(s, metrics))
        assert int(started["memory_actual"]) == 256 * MiB and started["state"] == []
        ok(proxy.VM.set_memory_target_live(s, ref, str(160 * MiB)))
        wait_until(lambda: int(ok(proxy.VM_metrics.get_memory_actual(s, metrics))) == 160 * MiB,
                   timeout=15, what="memory_actual following the balloon")
        after = ok(proxy.VM_metrics.get_record(s, metrics))
        assert after["last_updated"] >= started["last_updated"]
        assert after["start_time"] == started["start_time"]
        wait_until(lambda: ok(proxy.VM.query_data_source(s, ref, "memory")) == 160 * MiB,
                   timeout=15, what="the memory source following the balloon")
    finally:
        ok(proxy.VM.hard_shutdown(s, ref))
        ok(proxy.VM.destroy(s, ref))


def test_hot_plugged_vcpus_get_their_sources(daemon, api):
    """set_VCPUs_number_live: the new vCPU's cpuN appears within a round
    or two (VM_metrics.VCPUs_number is what the sampler reads)."""
    proxy, s = api
    ref = start_small_vm(api, "metrics-hotplug", 128 * MiB, 128 * MiB, 2, 1)
    try:
        def cpus():
            names = {d["name_label"] for d in ok(proxy.VM.get_data_sources(s, ref))}
            return sorted(n for n in names if re.fullmatch(r"cpu\d+", n))
        # Started with one vCPU (cpu1 can only be the hot-plugged one).
        ok(proxy.VM.set_VCPUs_number_live(s, ref, "2"))
        wait_until(lambda: cpus() == ["cpu0", "cpu1"], timeout=30,
                   what="the hot-plugged vCPU's source")
        wait_until(lambda: 0 < ok(proxy.VM.query_data_source(s, ref, "cpu1")) < 1, timeout=30,
                   what="cpu1's first figure")
    finally:
        ok(proxy.VM.hard_shutdown(s, ref))
        ok(proxy.VM.destroy(s, ref))


def test_sampler_writes_nothing_when_nothing_changed(daemon, api, vm):
    """Rounds that read the same figures write nothing (no event)."""
    proxy, s = api
    classes = ["host_metrics", "VM_metrics", "PIF_metrics"]
    token = getattr(proxy.event, "from")(s, classes, "", 0.0)["Value"]["token"]
    # Two sampling rounds (every 5 s) pass.
    reply = getattr(proxy.event, "from")(s, classes, token, 11.0)
    events = ok(reply)["events"]
    # A real NIC's carrier or speed may move meanwhile; nothing else may.
    assert [e for e in events if e["class"] != "pif_metrics"] == []


def test_xen_orchestra_reads_stats_and_messages(daemon, vm, connector):  # noqa: F811
    # After test_xml_and_json_shape: the archives hold known figures.
    run = subprocess.run(["node", os.path.join(XO_DIR, "stats.mjs"), daemon.url.rstrip("/"),
                          PASSWORD], capture_output=True, text=True, timeout=60, cwd=XO_DIR)
    assert run.stdout, run.stderr
    findings = json.loads(run.stdout.strip().splitlines()[-1])
    assert "error" not in findings, findings.get("error")
    assert findings["message"] == {"name": "XO_SEES_ME", "body": "hello XO", "priority": 3,
                                   "obj_uuid": True}
    assert findings["messageRemoved"] is True
    assert findings["stepMatches"] is True
    assert findings["taskEnded"] is True
    assert findings["hostCpu0"] and all(0 <= v <= 1 for v in findings["hostCpu0"])
    assert findings["hostMemoryTotalKib"] and findings["hostMemoryTotalKib"][0] > 0
    vm_uuid = vm[1]
    assert f"vm:{vm_uuid}:cpu0" in findings["vmSeries"]


def test_archives_survive_a_restart(daemon, api, vm):
    vm_ref, vm_uuid = vm
    before = updates_json(daemon, "start=-600&host=true&json=true&cf=AVERAGE")
    known = {(row["t"], e): v for row in before["data"]
             for e, v in zip(before["meta"]["legend"], row["values"]) if v != "NaN"}
    assert known
    # A clean stop writes the archives; the VM keeps running (sim domains
    # do not outlive xapid: its archive is saved when it is seen halted).
    daemon.stop()
    daemon.start()
    after = updates_json(daemon, "start=-600&host=true&json=true&cf=AVERAGE")
    again = {(row["t"], e): v for row in after["data"]
             for e, v in zip(after["meta"]["legend"], row["values"])}
    host_known = {k: v for k, v in known.items() if ":host:" in k[1]}
    assert host_known and all(again.get(k) == v for k, v in host_known.items())
    # The VM's archive went to disk too: /vm_rrd serves it though the VM
    # no longer runs here.
    status, _, body = get(daemon, f"/vm_rrd?uuid={vm_uuid}")
    assert status == 200 and "<name>cpu0</name>" in body


def test_archives_are_librrd_files_kept_through_kill9(daemon):
    """Each archive is an RRDtool file in the state dir with XAPI's layout
    (rrdtool info reads it), its XAPI names beside it; librrd writes every
    update, so a kill -9 loses none of the rows already served."""
    legend = updates_json(daemon, "start=-60&host=true&json=true")["meta"]["legend"]
    host_uuid = next(e.split(":")[2] for e in legend if ":host:" in e)
    path = os.path.join(daemon.state_dir, "rrd", host_uuid + ".rrd")
    wait_until(lambda: os.path.exists(path), timeout=20, what="the host's archive file")
    info = subprocess.run(["rrdtool", "info", path], check=True, capture_output=True,
                          text=True, timeout=60).stdout
    assert "step = 5\n" in info
    rras = sorted({(re.search(rf"rra\[{k}\]\.cf = \"(\w+)\"", info).group(1),
                    int(re.search(rf"rra\[{k}\]\.pdp_per_row = (\d+)", info).group(1)),
                    int(re.search(rf"rra\[{k}\]\.rows = (\d+)", info).group(1)))
                   for k in range(10)})
    assert rras == sorted({(cf, ppr, rows) for ppr, rows in
                           ((12, 120), (720, 168), (17280, 366)) for cf in
                           ("AVERAGE", "MIN", "MAX")} | {("AVERAGE", 1, 120)})
    with open(path + ".names") as f:
        names = dict(line.rstrip("\n").split("\t", 1) for line in f)
    assert "memory_total_kib" in names.values()
    def served():
        before = updates_json(daemon, "start=-300&host=true&json=true&cf=AVERAGE")
        return {(row["t"], e): v for row in before["data"]
                for e, v in zip(before["meta"]["legend"], row["values"])
                if v != "NaN" and ":host:" in e}
    wait_until(served, timeout=20, what="known figures of the host")
    served = served()
    daemon.kill9()
    daemon.start()
    after = updates_json(daemon, "start=-600&host=true&json=true&cf=AVERAGE")
    again = {(row["t"], e): v for row in after["data"]
             for e, v in zip(after["meta"]["legend"], row["values"])}
    assert all(again.get(k) == v for k, v in served.items())


def test_no_metrics_answers_503():
    d = Daemon(extra_args=["--hypervisor", "sim", "--no-metrics"])
    try:
        assert get(d, "/rrd_updates?start=0&host=true")[0] == 503
        assert get(d, "/host_rrd")[0] == 503
        assert not os.path.exists(os.path.join(d.state_dir, "rrd"))
    finally:
        d.stop()
