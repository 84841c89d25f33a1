"""perfmon alarms against a real daemon (sim hypervisor): other_config:perfmon
on a VM, the host and an SR (and an SR's sr_io_throughput_total_per_host,
which each host it is plugged into watches), in XAPI's perfmon format, evaluated on each
5 s sample; a variable past its level for alarm_trigger_period raises
message ALARM with perfmon's priority and body (the <variable> printed as
Python's minidom toprettyxml prints it, compared here with minidom
itself), and none again within alarm_auto_inhibit_period. Sim vCPUs are
2-12% busy and sim disks do some reads a second, so levels either side of
those are crossed or not."""
import re
import subprocess
from xml.dom import minidom

import pytest

from sim_daemon import api, daemon  # noqa: F401 (fixtures)
from xapid_daemon import ok, wait_until

MiB = 1 << 20
BODY = re.compile(r"^value: (-?[0-9.]+|nan|inf)\nconfig:\n", re.S)


def new_vm(api, name, perfmon=None, disk=False):
    proxy, s = api
    other = {"perfmon": perfmon} if perfmon is not None else {}
    ref = ok(proxy.VM.create(s, {
        "name_label": name, "memory_static_max": str(128 * MiB),
        "memory_dynamic_max": str(128 * MiB), "memory_dynamic_min": str(128 * MiB),
        "VCPUs_max": "2", "VCPUs_at_startup": "2", "actions_after_shutdown": "destroy",
        "actions_after_reboot": "restart", "actions_after_crash": "destroy",
        "other_config": other}))
    if disk:
        sr = local_sr(api)
        vdi = ok(proxy.VDI.create(s, {"SR": sr, "virtual_size": str(8 * MiB), "type": "user",
                                      "sharable": False, "read_only": False,
                                      "other_config": {}, "name_label": name}))
        ok(proxy.VBD.create(s, {"VM": ref, "VDI": vdi, "userdevice": "0", "bootable": True,
                                "mode": "RW", "type": "Disk", "empty": False,
                                "other_config": {}, "qos_algorithm_type": "",
                                "qos_algorithm_params": {}}))
    ok(proxy.VM.start(s, ref, False, False))
    return ref, ok(proxy.VM.get_uuid(s, ref))


def local_sr(api):
    proxy, s = api
    return next(ref for ref, r in ok(proxy.SR.get_all_records(s)).items()
                if r["content_type"] != "iso")


def alarms(api, uuid):
    proxy, s = api
    found = ok(proxy.message.get_all_records_where(
        s, f'field "name" = "ALARM" and field "obj_uuid" = "{uuid}"'))
    return sorted(found.values(), key=lambda m: m["timestamp"])


def wait_alarms(api, uuid, n, what):
    """The object's alarms once there are n or more."""
    return wait_until(lambda: (lambda a: a if len(a) >= n else None)(alarms(api, uuid)),
                      timeout=60, what=what)


def by_variable(found):
    """{variable name: alarm}, the name read from each body."""
    return {re.search(r'<name value="([^"]+)"', a["body"]).group(1): a for a in found}


def check_body(body, config, index=0):
    """perfmon's body: the value, then the variable as minidom prints it."""
    m = BODY.match(body)
    assert m, body
    value = float(m.group(1))
    variable = minidom.parseString(config).getElementsByTagName("variable")[index]
    assert body == "value: %f\nconfig:\n%s" % (value, variable.toprettyxml()), body
    return value


def rounds_pass(api, vm, n):
    """Waits until the sampler has run n more rounds on the VM (its cpu0
    value changes each round)."""
    proxy, s = api

    def cpu0():
        reply = proxy.VM.query_data_source(s, vm, "cpu0")  # missing before two rounds
        return reply.get("Value")
    seen = [cpu0()]

    def moved():
        v = cpu0()
        if v != seen[-1]:
            seen.append(v)
        return len(seen) > n
    wait_until(moved, timeout=10 * n + 20, what=f"{n} sampler rounds")


@pytest.mark.timeout(300)
def test_vm_cpu_alarm_once_per_inhibit_period(daemon, api):
    proxy, s = api
    # Whitespace between the elements, as XAPI's docs write it: minidom
    # keeps it, and so does the body.
    config = ('<config> <variable> <name value="cpu_usage"/> '
              '<alarm_trigger_level value="0.001"/> <alarm_trigger_period value="10"/> '
              '</variable> <variable><name value="calm"/><rrd_regex value="cpu[0-9]+"/>'
              '<consolidation_fn value="max"/><alarm_trigger_level value="0.99"/>'
              '<alarm_trigger_period value="5"/></variable></config>')
    vm, uuid = new_vm(api, "perfmon-cpu", config)
    found = wait_until(lambda: alarms(api, uuid), timeout=60, what="the cpu_usage alarm")
    alarm = found[0]
    assert alarm["cls"] == "VM" and alarm["priority"] == "3"
    value = check_body(alarm["body"], config)
    assert 0.001 < value < 0.2
    # alarm_auto_inhibit_period (3600 s by default): no second one; the
    # calm variable (max of the vCPUs above 0.99) raises none.
    rounds_pass(api, vm, 2)
    assert len(alarms(api, uuid)) == 1
    ok(proxy.VM.hard_shutdown(s, vm))


@pytest.mark.timeout(300)
def test_host_alarms_repeat_after_inhibit(daemon, api):
    proxy, s = api
    host = ok(proxy.host.get_all(s))[0]
    host_uuid = ok(proxy.host.get_uuid(s, host))
    # memory_free_kib: sense "low" by default; a level above any host's.
    config = ('<config><variable><name value="memory_free_kib"/>'
              '<alarm_trigger_level value="1e12"/><alarm_trigger_period value="5"/>'
              '<alarm_auto_inhibit_period value="0"/><alarm_priority value="2"/>'
              '</variable></config>')
    ok(proxy.host.add_to_other_config(s, host, "perfmon", config))
    try:
        found = wait_alarms(api, host_uuid, 2, "two memory_free_kib alarms")
        for alarm in found:
            assert alarm["cls"] == "Host" and alarm["priority"] == "2"
            with open("/proc/meminfo") as f:
                total = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1))
            assert 0 < check_body(alarm["body"], config) <= total
    finally:
        ok(proxy.host.remove_from_other_config(s, host, "perfmon"))
    # Removed: no more alarms once the round that saw it has passed.
    vm, _ = new_vm(api, "perfmon-clock")
    rounds_pass(api, vm, 1)
    count = len(alarms(api, host_uuid))
    rounds_pass(api, vm, 2)
    assert len(alarms(api, host_uuid)) == count
    ok(proxy.VM.hard_shutdown(s, vm))


@pytest.mark.timeout(300)
def test_sr_alarms_on_its_io_and_utilisation(daemon, api):
    proxy, s = api
    sr = local_sr(api)
    sr_uuid = ok(proxy.SR.get_uuid(s, sr))
    # The SR's own sources: iops_total (the sim disk reads some a second)
    # and physical_utilisation over size, perfmon's default SR variable.
    config = ('<config><variable><name value="sr_iops"/><rrd_regex value="iops_total"/>'
              '<alarm_trigger_level value="0.5"/><alarm_trigger_period value="5"/></variable>'
              '<variable><name value="physical_utilisation"/>'
              '<alarm_trigger_level value="-1"/><alarm_trigger_period value="5"/>'
              '</variable><variable><name value="sr_io_throughput_total_per_host"/>'
              '<alarm_trigger_level value="0.000001"/><alarm_trigger_period value="5"/>'
              '</variable></config>')
    ok(proxy.SR.add_to_other_config(s, sr, "perfmon", config))
    host_uuid = ok(proxy.host.get_uuid(s, ok(proxy.host.get_all(s))[0]))
    host_before = len(alarms(api, host_uuid))
    vm, _ = new_vm(api, "perfmon-disk", disk=True)
    try:
        found = wait_alarms(api, sr_uuid, 2, "the SR's two alarms")
        # The per-host variable: each host the SR is plugged into watches
        # its io_throughput_total_<sr8> as sr_io_throughput_total_<sr8>,
        # the variable renamed and marked configured_on the SR.
        on_host = wait_until(lambda: alarms(api, host_uuid)[host_before:], timeout=60,
                             what="the host's alarm from the SR's config")
        doc = minidom.parseString(config)
        variable = doc.getElementsByTagName("variable")[2]
        variable.getElementsByTagName("name")[0].setAttribute(
            "value", f"sr_io_throughput_total_{sr_uuid[:8]}")
        provenance = doc.createElement("configured_on")
        provenance.setAttribute("class", "SR")
        provenance.setAttribute("uuid", sr_uuid)
        variable.appendChild(provenance)
        value = float(BODY.match(on_host[0]["body"]).group(1))
        assert on_host[0]["body"] == "value: %f\nconfig:\n%s" % (value, variable.toprettyxml())
        assert on_host[0]["cls"] == "Host" and value > 0.000001
        by_var = by_variable(found)
        assert set(by_var) == {"sr_iops", "physical_utilisation"}
        assert check_body(by_var["sr_iops"]["body"], config, 0) > 0.5
        utilisation = check_body(by_var["physical_utilisation"]["body"], config, 1)
        record = ok(proxy.SR.get_record(s, sr))
        assert utilisation == pytest.approx(
            int(record["physical_utilisation"]) / int(record["physical_size"]), abs=1e-6)
        assert all(a["cls"] == "SR" for a in found)
    finally:
        ok(proxy.SR.remove_from_other_config(s, sr, "perfmon"))
        ok(proxy.VM.hard_shutdown(s, vm))


@pytest.mark.timeout(300)
def test_bad_configs_raise_nothing(daemon, api):
    proxy, s = api
    # Not XML; a variable without a level (no default for cpu_usage); a
    # regex that does not compile; a period that is not an int. Each is
    # left out (perfmon logs it) and the daemon carries on.
    configs = ["<config><variable>", '<config><variable><name value="cpu_usage"/>'
               '</variable></config>',
               '<config><variable><name value="x"/><rrd_regex value="cpu[0-"/>'
               '<alarm_trigger_level value="0"/></variable></config>',
               '<config><variable><name value="cpu_usage"/><alarm_trigger_level value="0"/>'
               '<alarm_trigger_period value="soon"/></variable></config>']
    vms = [new_vm(api, f"perfmon-bad-{i}", c) for i, c in enumerate(configs)]
    rounds_pass(api, vms[0][0], 2)
    for vm, uuid in vms:
        assert alarms(api, uuid) == []
        ok(proxy.VM.hard_shutdown(s, vm))
    assert daemon.proc.poll() is None


@pytest.mark.timeout(300)
def test_control_domain_fs_and_memory_usage(daemon, api):
    """perfmon's dom0 variables (fs_usage: df's Use% of /; mem_usage:
    resident memory and swap in use over MemTotal) on the control domain,
    which has no archive of its own."""
    proxy, s = api
    dom0 = next(ref for ref, r in ok(proxy.VM.get_all_records(s)).items()
                if r["is_control_domain"])
    dom0_uuid = ok(proxy.VM.get_uuid(s, dom0))
    config = ('<config><variable><name value="fs_usage"/><alarm_trigger_level value="0"/>'
              '<alarm_trigger_period value="5"/></variable><variable>'
              '<name value="mem_usage"/><alarm_trigger_level value="0"/>'
              '<alarm_trigger_period value="5"/></variable></config>')
    ok(proxy.VM.add_to_other_config(s, dom0, "perfmon", config))
    try:
        found = wait_alarms(api, dom0_uuid, 2, "the control domain's two alarms")
    finally:
        ok(proxy.VM.remove_from_other_config(s, dom0, "perfmon"))
    by_var = by_variable(found)
    fs = check_body(by_var["fs_usage"]["body"], config, 0)
    df = subprocess.run(["df", "/etc/passwd"], capture_output=True, text=True,
                        check=True).stdout.splitlines()[1].split()
    assert abs(fs - int(df[4].rstrip("%")) / 100) <= 0.011  # the disk may fill meanwhile
    mem = check_body(by_var["mem_usage"]["body"], config, 1)
    assert 0 < mem < 2
