"""The host's own messages: time, enable/disable (a disabled host starts
no VM), restart_agent (xapid re-executes itself, on the same port, with
its VMs still running and a later agent_start_time), shutdown_agent,
get_log, dmesg and dmesg_clear, syslog forwarding, set_hostname_live (in
a UTS namespace of its own), memory overhead, evacuation, licences, the
management interface, and reboot/shutdown behind --host-power-command;
the host record refreshed at each start."""
import datetime
import os
import shutil
import socket
import subprocess
import tempfile
import textwrap
import time
import xmlrpc.client

import pytest

from xapid_daemon import Daemon, err, ok, wait_until


@pytest.fixture
def daemon():
    d = Daemon(extra_args=["--hypervisor", "sim"])
    yield d
    d.stop()


def login(d):
    api, s = d.login()
    return api, s, ok(api.host.get_all(s))[0]


def sim_vm(api, s, name="vm"):
    vm = ok(api.VM.create(s, {
        "name_label": name, "memory_static_max": "268435456", "memory_dynamic_max": "268435456",
        "memory_dynamic_min": "268435456", "memory_static_min": "134217728",
        "VCPUs_max": "1", "VCPUs_at_startup": "1", "actions_after_shutdown": "destroy",
        "actions_after_reboot": "restart", "actions_after_crash": "restart"}))
    return vm


def test_server_times(daemon):
    api, s, host = login(daemon)
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    utc = ok(api.host.get_servertime(s, host))
    assert utc.value.endswith("Z")
    got = datetime.datetime.strptime(utc.value, "%Y%m%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)
    assert got >= before - datetime.timedelta(seconds=1)
    local = ok(api.host.get_server_localtime(s, host))
    assert len(local.value) == len("20240101T12:00:00") and not local.value.endswith("Z")
    # the wire form, as XAPI writes it: no zone suffix
    body = xmlrpc.client.dumps((s, host), "host.get_server_localtime")
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", daemon.port)
    c.request("POST", "/", body, {"Content-Type": "text/xml"})
    text = c.getresponse().read().decode()
    assert "<dateTime.iso8601>" + local.value[:9] in text and "Z</dateTime" not in text


def test_disable_refuses_vm_start_and_enable_restores(daemon):
    api, s, host = login(daemon)
    vm = sim_vm(api, s)
    assert ok(api.host.get_enabled(s, host)) is True
    ok(api.host.disable(s, host))
    ok(api.host.disable(s, host))  # idempotent
    assert ok(api.host.get_enabled(s, host)) is False
    assert err(api.VM.start(s, vm, False, False)) == ["HOST_DISABLED", host]
    assert err(api.VM.start_on(s, vm, host, False, False)) == ["HOST_DISABLED", host]
    assert ok(api.VM.get_power_state(s, vm)) == "Halted"
    ok(api.host.enable(s, host))
    ok(api.host.enable(s, host))
    ok(api.VM.start(s, vm, False, False))
    # a running VM is left alone by disable, and stops the host powering off
    ok(api.host.disable(s, host))
    assert ok(api.VM.get_power_state(s, vm)) == "Running"
    assert err(api.host.reboot(s, host)) == ["HOST_IN_USE", host, "vm", vm]
    ok(api.VM.hard_shutdown(s, vm))


def test_power_needs_a_disabled_host_and_the_flag(daemon):
    api, s, host = login(daemon)
    assert err(api.host.reboot(s, host)) == ["HOST_NOT_DISABLED"]
    assert err(api.host.shutdown(s, host)) == ["HOST_NOT_DISABLED"]
    ok(api.host.disable(s, host))
    e = err(api.host.reboot(s, host))
    assert e[0] == "PERMISSION_DENIED" and "--host-power-command" in e[1]
    e = err(api.host.shutdown(s, host))
    assert e[0] == "PERMISSION_DENIED" and "--host-power-command" in e[1]


def test_power_command_is_run():
    top = tempfile.mkdtemp(prefix="xapid-power-")
    record = os.path.join(top, "ran")
    command = os.path.join(top, "power")
    with open(command, "w") as f:
        f.write(f"#!/bin/sh\necho \"$@\" >> {record}\n")
    os.chmod(command, 0o755)
    d = Daemon(extra_args=["--hypervisor", "sim", "--host-power-command", command])
    try:
        api, s, host = login(d)
        ok(api.host.disable(s, host))
        ok(api.host.reboot(s, host))
        wait_until(lambda: os.path.exists(record) and "reboot" in open(record).read(),
                   what="the power command")
        ok(api.host.shutdown(s, host))
        wait_until(lambda: "poweroff" in open(record).read(), what="the power command")
    finally:
        d.stop()
        shutil.rmtree(top, ignore_errors=True)


def test_restart_agent_keeps_port_vms_and_advances_start_time(daemon):
    api, s, host = login(daemon)
    vm = sim_vm(api, s, "survivor")
    ok(api.VM.start(s, vm, False, False))
    domid = ok(api.VM.get_domid(s, vm))
    started = ok(api.host.get_other_config(s, host))["agent_start_time"]
    assert started.endswith(".") and float(started) > 0
    pid = daemon.proc.pid
    ok(api.host.restart_agent(s, host))
    # The re-executed image prints its own "xapid: ready" on the same stdout:
    # that line, not a clock, says the new image is up.
    came_back = daemon.wait_for_stdout(b"xapid: ready", timeout=120)
    assert came_back, f"the agent did not come back; its log ends:\n{daemon.log_tail()}"

    def logged_in():
        # A login answered by the old image just before the exec dies with it
        # (sessions live in memory): it is simply retried.
        try:
            s2 = ok(daemon.proxy().session.login_with_password("root", "xapid-test-pw"))
            reply = daemon.proxy().host.get_other_config(s2, host)
        except (OSError, xmlrpc.client.ProtocolError):
            return None
        return s2 if reply["Status"] == "Success" else None
    s2 = wait_until(logged_in, what="a login to the restarted agent")
    now = ok(daemon.proxy().host.get_other_config(s2, host))["agent_start_time"]
    assert float(now) >= float(started)
    assert daemon.proc.pid == pid and daemon.proc.poll() is None  # the same process, re-executed
    api = daemon.proxy()
    assert ok(api.VM.get_power_state(s2, vm)) == "Running"
    assert ok(api.VM.get_domid(s2, vm)) == domid
    ok(api.VM.hard_shutdown(s2, vm))
    assert ok(api.VM.get_power_state(s2, vm)) == "Halted"


def test_restart_re_enables_a_disabled_host(daemon):
    api, s, host = login(daemon)
    ok(api.host.disable(s, host))
    started = ok(api.host.get_other_config(s, host))["agent_start_time"]
    daemon.stop()
    daemon.start()
    api, s, host = login(daemon)
    assert ok(api.host.get_enabled(s, host)) is True
    assert float(ok(api.host.get_other_config(s, host))["agent_start_time"]) >= float(started)


def test_shutdown_agent_stops_xapid(daemon):
    api, s, host = login(daemon)
    ok(api.host.shutdown_agent(s))
    assert daemon.proc.wait(timeout=30) == 0


def test_host_record_is_refreshed_at_start(daemon):
    api, s, host = login(daemon)
    ok(api.host.set_hostname(s, host, "stale-name"))
    ok(api.host.set_address(s, host, "192.0.2.99"))
    daemon.stop()
    daemon.start()
    api, s, host = login(daemon)
    record = ok(api.host.get_record(s, host))
    assert record["hostname"] == socket.gethostname()
    assert record["address"] != "192.0.2.99"
    assert record["software_version"]["xapid"] and record["software_version"]["hypervisor"] == "sim"
    assert int(record["cpu_info"]["cpu_count"]) == os.cpu_count()
    metrics = ok(api.host_metrics.get_record(s, record["metrics"]))
    with open("/proc/meminfo") as f:
        total = int(f.readline().split()[1]) * 1024
    assert int(metrics["memory_total"]) == total
    assert record["edition"] == "free" and record["license_params"]["sku_type"] == "free"


def test_logs(daemon):
    api, s, host = login(daemon)
    log = ok(api.host.get_log(s, host))
    assert "xapid[" in log
    # the kernel's log: readable by root; clearing it needs the flag
    if os.geteuid() == 0:
        assert isinstance(ok(api.host.dmesg(s, host)), str)
    e = err(api.host.dmesg_clear(s, host))
    assert e[0] == "PERMISSION_DENIED" and "--allow-host-changes" in e[1]


def test_syslog_reconfigure_forwards_the_log(daemon):
    api, s, host = login(daemon)
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(30)
    port = receiver.getsockname()[1]
    try:
        ok(api.host.set_logging(s, host, {"syslog_destination": f"127.0.0.1:{port}"}))
        ok(api.host.syslog_reconfigure(s, host))
        ok(api.host.disable(s, host))  # logs a line
        seen = b""
        while b"disabled by request" not in seen:
            seen = receiver.recv(4096)
        assert seen.startswith(b"<29>") and b"xapid[" in seen  # daemon.notice
        # the destination holds across a restart of the agent
        daemon.stop()
        daemon.start()
        api, s, host = login(daemon)
        ok(api.host.enable(s, host))
        ok(api.host.disable(s, host))
        seen = b""
        while b"disabled by request" not in seen:
            seen = receiver.recv(4096)
        ok(api.host.set_logging(s, host, {}))
        ok(api.host.syslog_reconfigure(s, host))
    finally:
        receiver.close()
    ok(api.host.set_logging(s, host, {"syslog_destination": "no-such-host.invalid"}))
    assert err(api.host.syslog_reconfigure(s, host))[0] == "INTERNAL_ERROR"


def test_set_hostname_live_checks_and_flag(daemon):
    api, s, host = login(daemon)
    assert err(api.host.set_hostname_live(s, host, "")) == ["HOST_NAME_INVALID", "hostname empty"]
    assert err(api.host.set_hostname_live(s, host, "-bad")) == \
        ["HOST_NAME_INVALID", "hostname contains invalid characters"]
    assert err(api.host.set_hostname_live(s, host, "a_b")) == \
        ["HOST_NAME_INVALID", "hostname contains invalid characters"]
    assert err(api.host.set_hostname_live(s, host, "x" * 256)) == \
        ["HOST_NAME_INVALID", "hostname is too long"]
    e = err(api.host.set_hostname_live(s, host, "fine-name"))
    assert e[0] == "PERMISSION_DENIED" and "--allow-host-changes" in e[1]
    assert ok(api.host.get_hostname(s, host)) == socket.gethostname()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root")
def test_set_hostname_live_in_a_uts_namespace():
    top = tempfile.mkdtemp(prefix="xapid-uts-")
    plugin_dir = os.path.join(top, "plugins")
    os.mkdir(plugin_dir)
    with open(os.path.join(plugin_dir, "hostname"), "w") as f:
        f.write(textwrap.dedent("""\
            #!/bin/sh
            printf '<methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name><value>%s</value></member></struct></value></param></params></methodResponse>' "$(cat /proc/sys/kernel/hostname)"
            """))
    os.chmod(os.path.join(plugin_dir, "hostname"), 0o755)
    d = Daemon(extra_args=["--hypervisor", "sim", "--allow-host-changes", "--plugin-dir",
                           plugin_dir], cmd_prefix=["unshare", "--uts"])
    try:
        api, s, host = login(d)
        ok(api.host.set_hostname_live(s, host, "renamed-live"))
        assert ok(api.host.get_hostname(s, host)) == "renamed-live"
        assert ok(api.host.call_plugin(s, host, "hostname", "main", {})) == "renamed-live"
        dom0 = [r for r in ok(api.VM.get_all_records(s)).values() if r["is_control_domain"]][0]
        assert dom0["name_label"] == "Control domain on host: renamed-live"
    finally:
        d.stop()
        shutil.rmtree(top, ignore_errors=True)
    assert socket.gethostname() != "renamed-live"


def test_memory_evacuation_and_misc(daemon):
    api, s, host = login(daemon)
    overhead = int(ok(api.host.compute_memory_overhead(s, host)))
    assert overhead >= 256 << 20
    assert ok(api.host.get_memory_overhead(s, host)) == str(overhead)
    assert ok(api.host.get_vms_which_prevent_evacuation(s, host)) == {}
    assert ok(api.host.get_uncooperative_resident_VMs(s, host)) == []
    vm = sim_vm(api, s)
    ok(api.VM.start(s, vm, False, False))
    assert ok(api.host.get_vms_which_prevent_evacuation(s, host)) == {vm: ["NO_HOSTS_AVAILABLE", vm]}
    ok(api.VM.hard_shutdown(s, vm))
    caps = ok(api.host.get_system_status_capabilities(s, host))
    assert "<system-status-capabilities>" in caps
    assert err(api.host.get_servertime(s, "OpaqueRef:nothing")) == \
        ["HANDLE_INVALID", "host", "OpaqueRef:nothing"]


def test_licences_are_the_free_edition(daemon):
    api, s, host = login(daemon)
    assert err(api.host.license_add(s, host, "bm90IGEgbGljZW5jZQ==")) == ["LICENSE_PROCESSING_ERROR"]
    assert err(api.host.license_add(s, host, "!!!")) == ["LICENSE_PROCESSING_ERROR"]
    ok(api.host.license_remove(s, host))
    record = ok(api.host.get_record(s, host))
    assert record["edition"] == "free" and record["license_params"]["sku_type"] == "free"


def test_management_interface(daemon):
    api, s, host = login(daemon)
    pifs = [(ref, r) for ref, r in ok(api.PIF.get_all_records(s)).items() if r["management"]]
    reply = api.host.get_management_interface(s, host)
    if pifs:
        assert ok(reply) == pifs[0][0]
    else:
        assert err(reply)[0] == "INTERNAL_ERROR"
