"""host.restart_agent with a real guest: the QEMU process is the same
after xapid re-executed itself, found again over its monitor, and still
obeys xapid (a clean shutdown through the guest)."""
from test_vm_qemu import alive, daemon, guest, new_guest_vm, qemu_pid, wait_ready  # noqa: F401
from xapid_daemon import ok, wait_until


def test_restart_agent_keeps_a_qemu_guest(daemon, guest):
    proxy, s, vm, uuid = new_guest_vm(daemon, guest)
    host = ok(proxy.host.get_all(s))[0]
    ok(proxy.VM.start(s, vm, False, False))
    wait_ready(daemon, uuid)
    pid = qemu_pid(daemon, uuid)
    started = float(ok(proxy.host.get_other_config(s, host))["agent_start_time"])
    ok(proxy.host.restart_agent(s, host))

    def back():
        try:
            p, s2 = daemon.login()
            reply = p.host.get_other_config(s2, host)
        except OSError:
            return None
        if reply["Status"] != "Success":  # a session of the old image
            return None
        return (p, s2) if float(reply["Value"]["agent_start_time"]) > started else None
    proxy, s = wait_until(back, timeout=120, what="the agent to come back")
    assert qemu_pid(daemon, uuid) == pid and alive(pid)
    assert ok(proxy.VM.get_power_state(s, vm)) == "Running"
    ok(proxy.VM.clean_shutdown(s, vm))
    assert ok(proxy.VM.get_power_state(s, vm)) == "Halted"
    wait_until(lambda: not alive(pid), what="QEMU to exit")
