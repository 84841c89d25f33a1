"""VM fields the QEMU driver honours, read back from one real guest (the
test guest under TCG or KVM): the balloon (memory_dynamic_max at the start,
set_memory_dynamic_range and set_memory_target_live live, as QEMU's
query-balloon reports what the guest's virtio_balloon gave back), vCPU
hot-plug (query-hotpluggable-cpus), VCPUs_params:mask (the vCPU threads'
affinity), and platform keys and bios_strings as
QEMU's command line carries them (/proc/PID/cmdline), and SMBIOS strings and
xenstore_data as the guest reads them; VM_guest_metrics from Debian's
qemu-guest-agent in the guest (initrd-agent.img), which also takes
clean_shutdown and clean_reboot (guest-shutdown) before the power button."""
import os
import subprocess
import time

import pytest

from qemu_guest import GUEST_DIR, build_guest, console_log, qemu_daemon, qmp, wait_for
from xapid_daemon import err, ok

MiB = 1 << 20


@pytest.fixture(scope="module")
def daemon():
    build_guest()
    with qemu_daemon() as d:
        yield d


def agent_guest_record(name, **fields):
    """A guest with qemu-ga (initrd-agent.img) booted from its kernel."""
    args = " ".join(["console=ttyS0 quiet panic=-1 cryptomgr.notests", fields.pop("args", "")])
    return {"name_label": name, "memory_static_max": str(256 * MiB),
            "memory_dynamic_max": str(256 * MiB), "memory_dynamic_min": str(256 * MiB),
            "memory_static_min": str(64 * MiB), "VCPUs_max": "1", "VCPUs_at_startup": "1",
            "PV_kernel": os.path.join(GUEST_DIR, "vmlinuz"),
            "PV_ramdisk": os.path.join(GUEST_DIR, "initrd-agent.img"),
            "PV_args": args.strip(), "actions_after_shutdown": "destroy",
            "actions_after_reboot": "restart", "actions_after_crash": "destroy", **fields}


def wait_agent_seen(proxy, s, vm, timeout=120):
    """Until the poller has heard the guest's agent (PV_drivers_detected)."""
    def seen():
        gm = ok(proxy.VM.get_guest_metrics(s, vm))
        return gm != "OpaqueRef:NULL" and ok(proxy.VM_guest_metrics.get_PV_drivers_detected(s, gm))
    assert wait_for(seen, timeout)


@pytest.fixture(scope="module")
def guest(daemon):
    """One running guest for the module: 256 MiB ballooned to 192, 1 of 3
    vCPUs, platform keys and SMBIOS strings set."""
    proxy, s = daemon.login()
    record = {"name_label": "fields guest", "memory_static_max": str(256 * MiB),
              "memory_dynamic_max": str(192 * MiB), "memory_dynamic_min": str(128 * MiB),
              "memory_static_min": str(64 * MiB), "VCPUs_max": "3", "VCPUs_at_startup": "1",
              "PV_kernel": os.path.join(GUEST_DIR, "vmlinuz"),
              "PV_ramdisk": os.path.join(GUEST_DIR, "initrd-agent.img"),  # with qemu-ga
              "PV_args": "console=ttyS0 quiet panic=-1 cryptomgr.notests",
              "platform": {"vcpu-unrestricted": "true", "hpet": "false", "usb": "true",
                           "usb_tablet": "true", "timeoffset": "7200", "videoram": "8",
                           "nx": "true"},
              "VCPUs_params": {"mask": "1", "weight": "512", "cap": "150"},
              "xenstore_data": {"vm-data/role": "web, tier 1", "vm-data/empty": ""},
              "actions_after_shutdown": "destroy", "actions_after_reboot": "restart",
              "actions_after_crash": "destroy"}
    vm = ok(proxy.VM.create(s, record))
    ok(proxy.VM.set_bios_strings(s, vm, {"system-manufacturer": "Acme, Inc.",
                                         "system-serial-number": "SN-42",
                                         "baseboard-asset-tag": "tag-7"}))
    ok(proxy.VM.start(s, vm, False, False))
    uuid = ok(proxy.VM.get_uuid(s, vm))
    yield proxy, s, vm, uuid
    if ok(proxy.VM.get_power_state(s, vm)) != "Halted":  # the last test shuts it down
        ok(proxy.VM.hard_shutdown(s, vm))
    assert ok(proxy.VM.get_guest_metrics(s, vm)) == "OpaqueRef:NULL"  # gone with the domain
    for root in ("/sys/fs/cgroup/cpu", "/sys/fs/cgroup"):  # its cpu group too
        assert not os.path.exists(f"{root}/xapid/{uuid}")
    ok(proxy.VM.destroy(s, vm))


def qemu_args(daemon, uuid):
    with open(os.path.join(daemon.state_dir, "domains", uuid, "qemu.pid")) as f:
        pid = int(f.read())
    with open(f"/proc/{pid}/cmdline") as f:
        return f.read().split("\0")


def test_balloon_follows_the_dynamic_range(daemon, guest):
    proxy, s, vm, uuid = guest
    # at the start: memory_dynamic_max, once the guest's driver has given back the rest
    assert int(ok(proxy.VM.get_memory_target(s, vm))) == 192 * MiB
    ok(proxy.VM.wait_memory_target_live(s, vm))
    assert abs(qmp(daemon, uuid, "query-balloon")["actual"] - 192 * MiB) <= MiB
    ok(proxy.VM.set_memory_dynamic_range(s, vm, str(128 * MiB), str(160 * MiB)))
    ok(proxy.VM.wait_memory_target_live(s, vm))
    assert abs(qmp(daemon, uuid, "query-balloon")["actual"] - 160 * MiB) <= MiB
    ok(proxy.VM.set_memory_target_live(s, vm, str(144 * MiB)))
    ok(proxy.VM.wait_memory_target_live(s, vm))
    assert abs(qmp(daemon, uuid, "query-balloon")["actual"] - 144 * MiB) <= MiB
    # and back up: the guest gets its memory again
    ok(proxy.VM.set_memory_dynamic_range(s, vm, str(128 * MiB), str(256 * MiB)))
    ok(proxy.VM.wait_memory_target_live(s, vm))
    assert abs(qmp(daemon, uuid, "query-balloon")["actual"] - 256 * MiB) <= MiB


def test_nmi_and_sysrq_reach_the_guest(daemon, guest):
    """VM.send_trigger nmi (QMP inject-nmi) and VM.send_sysrq (Alt+SysRq+key
    on the guest's keyboard): the guest's kernel says it got them."""
    proxy, s, vm, uuid = guest
    ok(proxy.VM.send_trigger(s, vm, "nmi"))
    assert wait_for(lambda: "NMI received" in console_log(daemon, uuid)), \
        console_log(daemon, uuid)[-2000:]
    ok(proxy.VM.send_sysrq(s, vm, "h"))
    assert wait_for(lambda: "sysrq: HELP" in console_log(daemon, uuid)), \
        console_log(daemon, uuid)[-2000:]


def cpu_group(daemon, uuid):
    """The cgroup directory of the domain's QEMU that holds its cpu
    controller, and whether it is cgroup v2's."""
    with open(os.path.join(daemon.state_dir, "domains", uuid, "qemu.pid")) as f:
        pid = f.read().strip()
    with open(f"/proc/{pid}/cgroup") as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    for _, controllers, path in lines:
        if "cpu" in controllers.split(","):
            return "/sys/fs/cgroup/cpu" + path, False
    return "/sys/fs/cgroup" + next(p for _, c, p in lines if c == ""), True


def read(path):
    with open(path) as f:
        return f.read().strip()


def test_vcpus_hot_plug(daemon, guest):
    proxy, s, vm, uuid = guest

    def plugged():
        return sum("qom-path" in c for c in qmp(daemon, uuid, "query-hotpluggable-cpus"))

    def affinity():
        tids = [c["thread-id"] for c in qmp(daemon, uuid, "query-cpus-fast")]
        return [os.sched_getaffinity(tid) for tid in tids]

    assert plugged() == 1
    assert affinity() == [{1}]  # VCPUs_params:mask
    ok(proxy.VM.set_VCPUs_number_live(s, vm, "3"))
    assert plugged() == 3 and len(qmp(daemon, uuid, "query-cpus-fast")) == 3
    assert affinity() == [{1}, {1}, {1}]  # the hot-plugged ones too
    # VCPUs_params weight 512 (twice Xen's default) and cap 150 (%): the
    # QEMU's group, every vCPU thread in it.
    group, v2 = cpu_group(daemon, uuid)
    assert group.endswith("/xapid/" + uuid)
    if v2:
        assert read(f"{group}/cpu.weight") == "200"
        assert read(f"{group}/cpu.max") == "150000 100000"
        threads = read(f"{group}/cgroup.threads").split()
    else:
        assert read(f"{group}/cpu.shares") == "2048"
        assert read(f"{group}/cpu.cfs_quota_us") == "150000"
        assert read(f"{group}/cpu.cfs_period_us") == "100000"
        threads = read(f"{group}/tasks").split()
    assert {str(c["thread-id"]) for c in qmp(daemon, uuid, "query-cpus-fast")} <= set(threads)
    metrics = ok(proxy.VM.get_metrics(s, vm))
    assert ok(proxy.VM_metrics.get_VCPUs_number(s, metrics)) == "3"
    assert err(proxy.VM.set_VCPUs_number_live(s, vm, "4"))[0] == "OPERATION_NOT_ALLOWED"
    e = err(proxy.VM.suspend(s, vm))
    assert e[0] == "OPERATION_NOT_ALLOWED"
    assert ok(proxy.VM.get_power_state(s, vm)) == "Running"


def test_vbd_ionice_on_every_qemu_thread(daemon, guest):
    """XAPI's VBD ionice (sched, class), hot-plugged: every thread of the
    guest's QEMU has that I/O priority; xapid's ratelimit: QEMU throttles
    the disk in its group."""
    proxy, s, vm, uuid = guest
    sr = ok(proxy.pool.get_default_SR(s, ok(proxy.pool.get_all(s))[0]))
    vdi = ok(proxy.VDI.create(s, {"name_label": "ioniced", "SR": sr, "virtual_size": str(4 * MiB),
                                  "type": "user", "sharable": False, "read_only": False,
                                  "other_config": {}}))
    vdi2 = ok(proxy.VDI.create(s, {"name_label": "limited", "SR": sr,
                                   "virtual_size": str(4 * MiB), "type": "user",
                                   "sharable": False, "read_only": False, "other_config": {}}))
    vbd = ok(proxy.VBD.create(s, {"VM": vm, "VDI": vdi, "userdevice": "5", "bootable": False,
                                  "mode": "RW", "type": "Disk", "empty": False,
                                  "other_config": {}, "qos_algorithm_type": "ionice",
                                  "qos_algorithm_params": {"sched": "best-effort",
                                                           "class": "low"}}))
    ok(proxy.VBD.plug(s, vbd))
    with open(os.path.join(daemon.state_dir, "domains", uuid, "qemu.pid")) as f:
        pid = f.read().strip()
    tids = os.listdir(f"/proc/{pid}/task")
    classes = {subprocess.run(["ionice", "-p", tid], capture_output=True, text=True).stdout.strip()
               for tid in tids}
    assert classes == {"best-effort: prio 6"}, classes
    # and a ratelimit: QEMU throttles that disk in its group
    limited = ok(proxy.VBD.create(s, {"VM": vm, "VDI": vdi2, "userdevice": "6",
                                      "bootable": False, "mode": "RW", "type": "Disk",
                                      "empty": False, "other_config": {},
                                      "qos_algorithm_type": "ratelimit",
                                      "qos_algorithm_params": {"kbps": "1024", "iops": "100",
                                                               "group": "web"}}))
    ok(proxy.VBD.plug(s, limited))
    block = next(b for b in qmp(daemon, uuid, "query-block") if "vbd6-dev" in b.get("qdev", ""))
    inserted = block["inserted"]
    assert (inserted["bps"], inserted["iops"], inserted["group"]) == (1 << 20, 100, "tg-web")
    for v, d in ((limited, vdi2), (vbd, vdi)):
        ok(proxy.VBD.unplug(s, v))
        ok(proxy.VBD.destroy(s, v))
        ok(proxy.VDI.destroy(s, d))


def test_platform_and_smbios_on_the_command_line(daemon, guest):
    proxy, s, vm, uuid = guest
    args = qemu_args(daemon, uuid)
    machine = args[args.index("-machine") + 1]
    assert ",hpet=off" in machine and ",usb=on" in machine
    assert "usb-tablet,bus=usb-bus.0" in args
    assert "VGA.vgamem_mb=8" in args
    assert args[args.index("-rtc") + 1].startswith("base=")
    assert "type=1,manufacturer=Acme,, Inc.,product=HVM domU,serial=SN-42" in args
    assert "type=2,asset=tag-7" in args
    assert "type=0,vendor=Xen" in args
    assert "virtio-balloon-pci,id=balloon0,bus=pci.0,addr=0x4" in args
    # and the guest reads the SMBIOS strings (under SeaBIOS: the BIOS default)
    log = os.path.join(daemon.state_dir, "domains", uuid, "console.log")
    deadline = time.time() + 120
    while "XAPID-GUEST-DMI" not in open(log, errors="replace").read() and time.time() < deadline:
        time.sleep(0.1)
    text = open(log, errors="replace").read()
    assert "XAPID-GUEST-DMI Acme, Inc.|SN-42" in text and "XAPID-GUEST-FIRMWARE bios" in text
    # xenstore_data as fw_cfg files the guest reads
    assert "name=opt/xenstore/vm-data/role,string=web,, tier 1" in args
    assert "XAPID-GUEST-XENSTORE vm-data/role=web, tier 1" in text
    assert "XAPID-GUEST-XENSTORE vm-data/empty=" in text


def test_guest_metrics_from_the_guest_agent(daemon, guest):
    proxy, s, vm, uuid = guest
    deadline = time.time() + 120
    while time.time() < deadline:
        gm = ok(proxy.VM.get_guest_metrics(s, vm))
        if gm != "OpaqueRef:NULL":
            break
        time.sleep(0.2)
    rec = ok(proxy.VM_guest_metrics.get_record(s, gm))
    assert rec["os_version"]["name"] == "xapid test guest 1.0"
    assert rec["os_version"]["distro"] == "xapid-test-guest"
    assert (rec["os_version"]["major"], rec["os_version"]["minor"]) == ("1", "0")
    assert rec["os_version"]["uname"].startswith("6.")
    # the agent's version (Debian's qemu-guest-agent, as this host's QEMU)
    version = qmp(daemon, uuid, "query-version")["qemu"]
    assert rec["PV_drivers_version"]["major"] == str(version["major"])
    assert rec["PV_drivers_version"]["minor"] == str(version["minor"])
    assert rec["PV_drivers_detected"] is True and rec["live"] is True
    assert rec["networks"] == {}  # no VIF: nothing to name (guest_agent_test.c maps them)


def test_memory_internal_free_from_the_balloon(daemon, guest):
    """XAPI keeps VM_guest_metrics.memory empty ("use the memory and
    memory_internal_free RRD data-sources"): the guest's free memory comes
    from its balloon driver's statistics."""
    proxy, s, vm, uuid = guest
    assert qmp(daemon, uuid, "qom-get", {"path": "/machine/peripheral/balloon0",
                                         "property": "guest-stats-polling-interval"}) == 5

    def free_kib():  # not a source until the first sample with the guest's figure
        reply = proxy.VM.query_data_source(s, vm, "memory_internal_free")
        return reply["Value"] if reply["Status"] == "Success" else 0
    assert wait_for(lambda: free_kib() > 0, 120)
    # some of what the balloon leaves the guest, in KiB
    actual_kib = qmp(daemon, uuid, "query-balloon")["actual"] / 1024
    assert 0 < free_kib() < actual_kib
    stats = qmp(daemon, uuid, "qom-get", {"path": "/machine/peripheral/balloon0",
                                          "property": "guest-stats"})
    assert stats["stats"]["stat-available-memory"] > 0
    source = [d for d in ok(proxy.VM.get_data_sources(s, vm))
              if d["name_label"] == "memory_internal_free"]
    assert source and source[0]["units"] == "KiB"
    gm = ok(proxy.VM.get_guest_metrics(s, vm))
    if gm != "OpaqueRef:NULL":  # its get_memory is gone from the API; the field is empty
        assert ok(proxy.VM_guest_metrics.get_record(s, gm)).get("memory", {}) == {}


def test_crashed_guest_memory_kept_as_a_crashdump(daemon):
    """actions_after_crash=coredump_and_destroy: the guest panics (pvpanic
    tells QEMU), its memory becomes an ELF core in a crashdump VDI."""
    proxy, s = daemon.login()
    record = agent_guest_record("crasher", actions_after_crash="coredump_and_destroy",
                                PV_ramdisk=os.path.join(GUEST_DIR, "initrd.img"))
    # no panic=-1: the kernel waits after its panic rather than reboot
    record["PV_args"] = "console=ttyS0 quiet cryptomgr.notests xapid.panic_after=1"
    vm = ok(proxy.VM.create(s, record))
    ok(proxy.VM.start(s, vm, False, False))
    uuid = ok(proxy.VM.get_uuid(s, vm))
    assert wait_for(lambda: ok(proxy.VM.get_power_state(s, vm)) == "Halted", 180)
    assert "XAPID-GUEST-PANIC" in console_log(daemon, uuid)
    dumps = ok(proxy.VM.get_crash_dumps(s, vm))
    assert len(dumps) == 1
    vdi = ok(proxy.VDI.get_record(s, ok(proxy.crashdump.get_VDI(s, dumps[0]))))
    assert vdi["type"] == "crashdump"
    path = os.path.join(daemon.state_dir, "sr", vdi["location"])
    with open(path, "rb") as f:
        assert f.read(4) == b"\x7fELF"
    assert os.path.getsize(path) >= 250 * MiB  # all of the guest's 256 MiB
    assert int(vdi["physical_utilisation"]) > 0
    ok(proxy.crashdump.destroy(s, dumps[0]))
    assert not os.path.exists(path)
    ok(proxy.VM.destroy(s, vm))


def test_agent_refusing_shutdown_falls_back_to_the_power_button(daemon):
    proxy, s = daemon.login()
    vm = ok(proxy.VM.create(s, agent_guest_record("refuser", args="xapid.agent_shutdown=fail")))
    ok(proxy.VM.start(s, vm, False, False))
    uuid = ok(proxy.VM.get_uuid(s, vm))
    try:
        wait_agent_seen(proxy, s, vm)
        ok(proxy.VM.clean_shutdown(s, vm))
        assert ok(proxy.VM.get_power_state(s, vm)) == "Halted"
        log = console_log(daemon, uuid)
        # qemu-ga ran /sbin/shutdown, which failed; then the power button
        assert "XAPID-GUEST-SHUTDOWN refused poweroff" in log
        assert log.index("XAPID-GUEST-SHUTDOWN refused") < log.index("XAPID-GUEST-POWER-BUTTON")
    finally:
        if ok(proxy.VM.get_power_state(s, vm)) != "Halted":
            ok(proxy.VM.hard_shutdown(s, vm))
        ok(proxy.VM.destroy(s, vm))


def test_clean_reboot_and_shutdown_through_the_agent(daemon, guest):
    """Last on the shared guest: it reboots through its agent (which
    powers it off; xapid boots it again, as after the power button), then
    shuts down through it; the new domain's agent is heard again before it
    is asked."""
    proxy, s, vm, uuid = guest
    for times, (call, state) in enumerate([(proxy.VM.clean_reboot, "Running"),
                                           (proxy.VM.clean_shutdown, "Halted")], 1):
        assert wait_for(lambda: console_log(daemon, uuid).count("XAPID-GUEST-AGENT") == times,
                        120)
        wait_agent_seen(proxy, s, vm)
        ok(call(s, vm))
        assert ok(proxy.VM.get_power_state(s, vm)) == state
        log = console_log(daemon, uuid)
        assert log.count("XAPID-GUEST-SHUTDOWN agent poweroff") == times
        assert "XAPID-GUEST-POWER-BUTTON" not in log
