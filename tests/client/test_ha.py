"""HA without a statefile (docs/ha.md): three sim daemons with
--pool-dqlite on 127.0.0.31, .32 and .33, HA on with a 4 s timeout.
The API and its checks (XAPI's errors, the plan computations, a change
that would break the plan refused); kill -9 of a member: its protected
VMs run again on the survivors by order, the best-effort one after, the
unprotected one stays halted, no VM ever runs on two hosts (every sim
domain's file, with a live pid, across the hosts at every step); the
member comes back and nothing runs twice; kill -9 of the master: a new
master restarts its protected VM."""
import os
import shutil
import tempfile
import time

import pytest

from xapid_daemon import PASSWORD, Daemon, err, free_port, new_vm, ok, wait_until
from test_pool import join
from test_pool_failover import log_has, master_of, session_on, settled

pytestmark = pytest.mark.timeout(240)

TIMEOUT = 4
MARGIN = 2  # ha_margin_us: max(2 s, timeout / 4)


def dqlite_host(address, port, shared):
    """A sim host; shared: a directory every host takes SRs under."""
    state = tempfile.mkdtemp(prefix="xapid-ha-")
    d = Daemon(state_dir=state, listen=f"{address}:{port}",
               extra_args=["--hypervisor", "sim", "--member-timeout", "3", "--pool-dqlite",
                           "--sr-root", shared, "--unix", os.path.join(state, "xapi.sock")])
    d.shared = shared
    return d


@pytest.fixture(scope="module")
def pool():
    port = free_port()
    shared = tempfile.mkdtemp(prefix="xapid-ha-shared-")
    hosts = [dqlite_host(f"127.0.0.{n}", port, shared) for n in (31, 32, 33)]
    master, b, c = hosts
    for n, member in enumerate((b, c)):
        join(member, master)
        wait_until(lambda: log_has(master, ") added") >= n + 1,
                   what=f"{member.address}'s node added at the master")
    yield hosts
    failures = []
    for d in hosts:  # every daemon stopped, whatever fails
        try:
            d.stop()
        except Exception as e:  # a sanitizer report: raised once all are gone
            failures.append(e)
        if not os.environ.get("XAPID_KEEP_STATE"):
            shutil.rmtree(d.state_dir, ignore_errors=True)
    shutil.rmtree(shared, ignore_errors=True)
    if failures:
        raise failures[0]


def running_domains(hosts):
    """uuid -> [host addresses] of every sim domain whose xapid lives."""
    seen = {}
    for d in hosts:
        folder = os.path.join(d.state_dir, "sim-domains")
        for name in os.listdir(folder) if os.path.isdir(folder) else []:
            try:
                with open(os.path.join(folder, name)) as f:
                    pid = int(f.read().strip() or 0)
            except (OSError, ValueError):
                continue
            if pid and d.proc and d.proc.poll() is None and pid == d.proc.pid:
                seen.setdefault(name, []).append(d.address)
    return seen


def never_twice(hosts):
    twice = {u: h for u, h in running_domains(hosts).items() if len(h) > 1}
    assert not twice, f"VMs running on two hosts at once: {twice}"


def host_of(api, address):
    proxy, s = api
    return next(h for h in ok(proxy.host.get_all(s))
                if ok(proxy.host.get_address(s, h)) == address)


def the_pool(api):
    proxy, s = api
    return ok(proxy.pool.get_all(s))[0]


def master_api(hosts):
    m = wait_until(lambda: settled(hosts), timeout=60, what="the pool agreeing on its master")
    return m, m.login()


def test_enable_ha_needs_the_pool_database_in_raft():
    d = Daemon(extra_args=["--hypervisor", "sim"])
    try:
        proxy, s = d.login()
        me = ok(proxy.host.get_all(s))[0]
        assert err(proxy.pool.enable_ha(s, [], {})) == ["HA_NOT_INSTALLED", me]
        assert err(proxy.pool.disable_ha(s)) == ["HA_NOT_ENABLED"]
        assert ok(proxy.pool.get_ha_enabled(s, ok(proxy.pool.get_all(s))[0])) is False
    finally:
        d.stop()


def test_enable_and_disable_with_xapis_checks(pool):
    master, api = master_api(pool)
    proxy, s = api
    p = the_pool(api)
    assert err(proxy.pool.enable_ha(s, [], {"statefile": "x"}))[0] == "VALUE_NOT_SUPPORTED"
    assert err(proxy.pool.enable_ha(s, [], {"timeout": "soon"})) == \
        ["INVALID_VALUE", "timeout", "soon"]
    assert err(proxy.pool.enable_ha(s, ["OpaqueRef:nope"], {}))[:2] == ["HANDLE_INVALID", "SR"]
    local = next(sr for sr in ok(proxy.SR.get_all(s)) if not ok(proxy.SR.get_shared(s, sr)))
    assert err(proxy.pool.enable_ha(s, [local], {})) == \
        ["HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED", local]
    assert ok(proxy.pool.get_ha_enabled(s, p)) is False  # nothing changed
    ok(proxy.pool.enable_ha(s, [], {}))
    assert ok(proxy.pool.get_ha_configuration(s, p)) == {"timeout": "60"}  # XAPI's default
    assert err(proxy.pool.enable_ha(s, [], {})) == ["HA_IS_ENABLED"]
    assert err(proxy.pool.designate_new_master(s, host_of(api, pool[1].address))) == \
        ["HA_IS_ENABLED"]
    ok(proxy.pool.disable_ha(s))
    assert err(proxy.pool.disable_ha(s)) == ["HA_NOT_ENABLED"]
    ok(proxy.pool.enable_ha(s, [], {"timeout": str(TIMEOUT)}))
    rec = ok(proxy.pool.get_record(s, p))
    assert rec["ha_enabled"] is True and rec["ha_configuration"] == {"timeout": str(TIMEOUT)}
    assert rec["ha_statefiles"] == [] and rec["ha_overcommitted"] is False
    assert err(proxy.pool.set_ha_host_failures_to_tolerate(s, p, "-1")) == \
        ["INVALID_VALUE", "ha_host_failures_to_tolerate", "-1"]
    ok(proxy.pool.set_ha_host_failures_to_tolerate(s, p, "1"))
    assert ok(proxy.pool.get_ha_plan_exists_for(s, p)) == "1"


def free_for_guests(api, host):
    proxy, s = api
    m = ok(proxy.host.get_metrics(s, host))
    return int(ok(proxy.host_metrics.get_memory_total(s, m))) - \
        int(ok(proxy.host.get_memory_overhead(s, host)))


def test_the_plan_and_changes_that_would_break_it(pool):
    master, api = master_api(pool)
    proxy, s = api
    p = the_pool(api)
    hosts = [host_of(api, d.address) for d in pool]
    # No VM to protect: the planner allows every failure, the quorum one.
    assert ok(proxy.pool.ha_compute_max_host_failures_to_tolerate(s)) == "1"
    assert ok(proxy.pool.ha_failover_plan_exists(s, "1")) is True
    assert ok(proxy.pool.ha_failover_plan_exists(s, "2")) is False  # no quorum after two
    # In fractions of the smallest host's room: host 0 runs a and x (0.3
    # each), host 1 z1 (0.6), host 2 z2 (0.9). With a protected, the loss
    # of host 0 fits a on host 1; protecting x too, or starting y (0.3)
    # on host 1, leaves no room for both.
    room = min(free_for_guests(api, h) for h in hosts)

    def vm(name, share):
        size = str(int(room * share) >> 20 << 20)
        return new_vm(api, name, memory_static_max=size, memory_dynamic_max=size,
                      memory_dynamic_min=size, memory_static_min=size)

    a, x, z1, z2, y = vm("a", 0.3), vm("x", 0.3), vm("z1", 0.6), vm("z2", 0.85), vm("y", 0.3)
    for v, h in ((a, 0), (x, 0), (z1, 1), (z2, 2)):
        ok(proxy.VM.start_on(s, v, hosts[h], False, False))
    ok(proxy.VM.set_ha_restart_priority(s, a, "restart"))
    assert ok(proxy.VM.get_ha_always_run(s, a)) is True  # running: protected at once
    assert ok(proxy.pool.ha_failover_plan_exists(s, "1")) is True
    assert ok(proxy.pool.get_ha_plan_exists_for(s, p)) == "1"
    assert err(proxy.VM.set_ha_restart_priority(s, x, "restart")) == \
        ["HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN"]
    assert ok(proxy.VM.get_ha_restart_priority(s, x)) == ""  # unchanged
    assert err(proxy.VM.start_on(s, y, hosts[1], False, False)) == \
        ["HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN"]
    assert ok(proxy.VM.get_power_state(s, y)) == "Halted"
    assert err(proxy.host.disable(s, hosts[1])) == ["HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN"]
    assert err(proxy.host.evacuate(s, hosts[1], "OpaqueRef:NULL", "0")) == \
        ["HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN"]
    assert ok(proxy.VM.get_resident_on(s, z1)) == hosts[1]
    assert ok(proxy.host.get_enabled(s, hosts[1])) is True
    assert err(proxy.VM.set_ha_restart_priority(s, x, "always")) == \
        ["INVALID_VALUE", "ha_restart_priority", "always"]
    assert ok(proxy.pool.ha_compute_hypothetical_max_host_failures_to_tolerate(
        s, {a: "restart", x: "restart"})) == "0"
    assert ok(proxy.pool.ha_compute_hypothetical_max_host_failures_to_tolerate(
        s, {a: "restart", x: "best-effort"})) == "1"
    assert err(proxy.pool.ha_compute_hypothetical_max_host_failures_to_tolerate(
        s, {a: "sometimes"})) == ["INVALID_VALUE", "ha_restart_priority", "sometimes"]
    plan = ok(proxy.pool.ha_compute_vm_failover_plan(s, [hosts[0]], [a, x]))
    assert plan[a] == {"host": hosts[1]}, plan
    assert plan[x] == {"error_code": "HOST_NOT_ENOUGH_FREE_MEMORY"}, plan
    assert err(proxy.pool.ha_compute_vm_failover_plan(s, [], ["OpaqueRef:nope"])) == \
        ["HANDLE_INVALID", "VM", "OpaqueRef:nope"]
    # Overcommit allowed: the change goes through, and the pool says so.
    ok(proxy.pool.set_ha_allow_overcommit(s, p, True))
    ok(proxy.VM.set_ha_restart_priority(s, x, "restart"))
    assert ok(proxy.pool.get_ha_overcommitted(s, p)) is True
    assert ok(proxy.pool.get_ha_plan_exists_for(s, p)) == "0"
    msgs = ok(proxy.message.get_all_records(s))
    assert any(m["name"] == "HA_POOL_OVERCOMMITTED" for m in msgs.values())
    for v in (a, x, z1, z2, y):
        ok(proxy.VM.set_ha_restart_priority(s, v, ""))
        if ok(proxy.VM.get_power_state(s, v)) == "Running":
            ok(proxy.VM.hard_shutdown(s, v))
        assert ok(proxy.VM.get_ha_always_run(s, v)) is False
        ok(proxy.VM.destroy(s, v))
    ok(proxy.pool.set_ha_allow_overcommit(s, p, False))
    wait_until(lambda: ok(proxy.pool.get_ha_overcommitted(s, p)) is False,
               what="the plan back")


def local_sr_of(api, host):
    proxy, s = api
    return next(sr for sr in ok(proxy.SR.get_all(s)) if not ok(proxy.SR.get_shared(s, sr))
                and "vdi_create" in ok(proxy.SR.get_allowed_operations(s, sr))
                and any(ok(proxy.PBD.get_host(s, pbd)) == host
                        for pbd in ok(proxy.SR.get_PBDs(s, sr))))


def disk_on(api, vm, sr, userdevice):
    proxy, s = api
    vdi = ok(proxy.VDI.create(s, {"SR": sr, "virtual_size": str(1 << 20), "type": "user",
                                  "sharable": False, "read_only": False, "other_config": {},
                                  "name_label": "a local disk"}))
    return proxy.VBD.create(s, {"VM": vm, "VDI": vdi, "userdevice": userdevice,
                                "bootable": False, "mode": "RW", "type": "Disk", "empty": False,
                                "other_config": {}, "qos_algorithm_type": "",
                                "qos_algorithm_params": {}}), vdi


def nic_on(api, vm, net, device):
    proxy, s = api
    return proxy.VIF.create(s, {"VM": vm, "network": net, "device": device, "MAC": "",
                                "MTU": "1500", "other_config": {}, "qos_algorithm_type": "",
                                "qos_algorithm_params": {}})


def test_agility_as_xapi_non_agile_vms_pinned_and_the_plan_excluding_them(pool):
    """agility.ml and xapi_ha_vm_failover.ml: a VM with a disk on a local
    SR or a NIC on a network without a PIF on every host is not agile
    (VM.assert_agile says why); protecting one while it runs breaks the
    plan (Plan_exists_excluding_non_agile_VMs), refused unless overcommit
    is allowed, and then the pool is overcommitted with a plan for no
    failure; a protected VM gets no such disk or NIC."""
    master, api = master_api(pool)
    proxy, s = api
    p = the_pool(api)
    assert ok(proxy.pool.get_ha_enabled(s, p)) is True  # left on by the checks above
    h0 = host_of(api, master.address)
    local = local_sr_of(api, h0)
    internal = ok(proxy.network.create(s, {"name_label": "internal"}))
    plain, on_disk, on_nic = new_vm(api, "plain"), new_vm(api, "on disk"), new_vm(api, "on nic")
    tib = str(1 << 40)
    huge = new_vm(api, "huge", memory_static_max=tib, memory_dynamic_max=tib,
                  memory_dynamic_min=tib, memory_static_min=tib)
    vdis = []
    try:
        vdis.append(disk_on(api, on_disk, local, "0")[1])
        vdis.append(disk_on(api, huge, local, "0")[1])
        # Left out of a failover plan: why it is not agile, else the memory.
        plan = ok(proxy.pool.ha_compute_vm_failover_plan(s, [h0], [huge]))
        assert plan == {huge: {"error_code": "HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED"}}, plan
        ok(nic_on(api, on_nic, internal, "0"))
        assert ok(proxy.VM.assert_agile(s, plain)) == ""
        assert err(proxy.VM.assert_agile(s, on_disk)) == \
            ["HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED", local]
        assert err(proxy.VM.assert_agile(s, on_nic)) == \
            ["HA_CONSTRAINT_VIOLATION_NETWORK_NOT_SHARED", internal]
        assert err(proxy.VM.assert_agile(s, "OpaqueRef:nope"))[0] == "HANDLE_INVALID"
        ok(proxy.pool.set_ha_host_failures_to_tolerate(s, p, "1"))
        wait_until(lambda: ok(proxy.pool.get_ha_plan_exists_for(s, p)) == "1", what="the plan")
        for vm in (plain, on_disk):
            ok(proxy.VM.start_on(s, vm, h0, False, False))
        ok(proxy.VM.set_ha_restart_priority(s, plain, "restart"))
        assert ok(proxy.pool.ha_failover_plan_exists(s, "1")) is True
        # The non-agile VM protected: the plan would only exclude it.
        assert err(proxy.VM.set_ha_restart_priority(s, on_disk, "restart")) == \
            ["HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN"]
        assert ok(proxy.VM.get_ha_restart_priority(s, on_disk)) == ""
        assert ok(proxy.pool.ha_compute_hypothetical_max_host_failures_to_tolerate(
            s, {plain: "restart", on_disk: "restart"})) == "0"
        # A protected VM gets no disk on a local SR, no NIC on the internal net.
        reply, vdi = disk_on(api, plain, local, "1")
        vdis.append(vdi)
        assert err(reply) == ["HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED", local]
        assert err(nic_on(api, plain, internal, "0")) == \
            ["HA_CONSTRAINT_VIOLATION_NETWORK_NOT_SHARED", internal]
        assert ok(proxy.VM.get_VBDs(s, plain)) == [] and ok(proxy.VM.get_VIFs(s, plain)) == []
        cd = ok(proxy.VBD.create(s, {"VM": plain, "VDI": "OpaqueRef:NULL", "userdevice": "3",
                                     "bootable": False, "mode": "RO", "type": "CD", "empty": True,
                                     "other_config": {}, "qos_algorithm_type": "",
                                     "qos_algorithm_params": {}}))
        assert err(proxy.VBD.insert(s, cd, vdi)) == ["HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED", local]
        assert ok(proxy.VBD.get_empty(s, cd)) is True
        # Overcommit allowed: accepted, and the pool says it has no plan.
        ok(proxy.pool.set_ha_allow_overcommit(s, p, True))
        ok(proxy.VM.set_ha_restart_priority(s, on_disk, "restart"))
        assert ok(proxy.pool.get_ha_overcommitted(s, p)) is True
        assert ok(proxy.pool.get_ha_plan_exists_for(s, p)) == "0"
        assert ok(proxy.pool.ha_compute_max_host_failures_to_tolerate(s)) == "0"
        assert ok(proxy.pool.ha_failover_plan_exists(s, "0")) is False
    finally:  # the module's later tests find the pool as it was
        for vm in (plain, on_disk, on_nic, huge):
            ok(proxy.VM.set_ha_restart_priority(s, vm, ""))
            if ok(proxy.VM.get_power_state(s, vm)) == "Running":
                ok(proxy.VM.hard_shutdown(s, vm))
            for vbd in ok(proxy.VM.get_VBDs(s, vm)):
                ok(proxy.VBD.destroy(s, vbd))
            ok(proxy.VM.destroy(s, vm))
        for vdi in vdis:
            ok(proxy.VDI.destroy(s, vdi))
        ok(proxy.network.destroy(s, internal))
        ok(proxy.pool.set_ha_allow_overcommit(s, p, False))
        wait_until(lambda: ok(proxy.pool.get_ha_overcommitted(s, p)) is False,
                   what="the plan back")


def ha_on(api, hosts, timeout=TIMEOUT):
    """HA on with the tests' timeout (whatever ran before), every host
    armed (it has read the setting: its polls are short from then on)."""
    proxy, s = api
    p = the_pool(api)
    if not ok(proxy.pool.get_ha_enabled(s, p)):
        ok(proxy.pool.enable_ha(s, [], {"timeout": str(timeout)}))
    assert ok(proxy.pool.get_ha_configuration(s, p)) == {"timeout": str(timeout)}
    wait_until(lambda: all(log_has(d, "ha: armed") for d in hosts), what="every host armed")
    time.sleep(1)  # a poll begun before arming has ended


def protected_vm(api, name, host, priority="restart", order=0, start_delay=0):
    proxy, s = api
    vm = new_vm(api, name, order=str(order), start_delay=str(start_delay))
    ok(proxy.VM.set_ha_restart_priority(s, vm, priority))
    ok(proxy.VM.start_on(s, vm, host, False, False))
    return vm


def where(api, vm):
    proxy, s = api
    rec = ok(proxy.VM.get_record(s, vm))
    return rec["power_state"], rec["resident_on"]


def test_kill9_of_a_member_restarts_its_protected_vms_elsewhere(pool):
    master, api = master_api(pool)
    proxy, s = api
    ha_on(api, pool)
    victim = next(d for d in pool if d is not master)
    vh = host_of(api, victim.address)
    first = protected_vm(api, "first", vh, order=1, start_delay=1)
    second = protected_vm(api, "second", vh, order=2)
    best = protected_vm(api, "best", vh, priority="best-effort")
    plain = protected_vm(api, "plain", vh, priority="")
    ours = [first, second, best, plain]
    uuids = {vm: ok(proxy.VM.get_uuid(s, vm)) for vm in ours}
    assert all(uuids[vm] in running_domains([victim]) for vm in ours)
    never_twice(pool)
    victim.kill9()  # xapid and every sim domain with it
    killed = time.monotonic()
    restarted = {}

    survivors = [d for d in pool if d is not victim]

    def back():
        never_twice(pool)
        m = settled(survivors)  # the master may change meanwhile (no pre-vote)
        for vm in (first, second, best) if m else ():
            try:
                state, host = where(m.login(), vm)
            except (OSError, AssertionError):
                return False
            if state == "Running" and host != vh and vm not in restarted:
                restarted[vm] = time.monotonic() - killed
        return len(restarted) == 3

    wait_until(back, timeout=TIMEOUT + MARGIN + 60, what="the VMs restarted on survivors")
    master, api = master_api(survivors)
    proxy, s = api
    print(f"\nha: kill -9 to the first protected VM running again {restarted[first]:.2f} s, "
          f"the second {restarted[second]:.2f} s, best-effort {restarted[best]:.2f} s")
    assert restarted[first] >= TIMEOUT + MARGIN - 1  # never before the fence's deadline
    assert restarted[second] >= restarted[first] + 0.9  # order 1's start_delay waited
    assert where(api, plain) == ("Halted", "OpaqueRef:NULL")
    live = running_domains(pool)
    assert all(uuids[vm] in live for vm in (first, second, best))
    assert uuids[plain] not in live
    msgs = ok(proxy.message.get_all_records(s)).values()
    vuuid = ok(proxy.host.get_uuid(s, vh))
    assert any(m["name"] == "HA_HOST_FAILED" and m["obj_uuid"] == vuuid for m in msgs)
    metrics = ok(proxy.host.get_metrics(s, vh))
    assert ok(proxy.host_metrics.get_live(s, metrics)) is False
    assert log_has(master, "declared dead") >= 1
    # It comes back: a member again, running nothing, nothing twice.
    victim.start()
    master, api = master_api(pool)
    proxy, s = api
    wait_until(lambda: ok(proxy.host_metrics.get_live(s, metrics)) is True,
               what="the member live again")
    never_twice(pool)
    assert not any(vm in running_domains([victim]) for vm in uuids.values())
    for vm in ours:
        ok(proxy.VM.hard_shutdown(s, vm)) if where(api, vm)[0] == "Running" else None
        ok(proxy.VM.destroy(s, vm))


def test_the_restarts_of_one_order_group_run_at_once(pool, tmp_path):
    """XAPI starts an order group's VMs in parallel: two protected VMs of
    one order, whose sim starts each wait for a file of their own (a
    start held in flight), are both being started at once before either
    file exists; then both run."""
    master, api = master_api(pool)
    proxy, s = api
    ha_on(api, pool)
    victim = next(d for d in pool if d is not master)
    vh = host_of(api, victim.address)
    gates = [tmp_path / f"gate {i}" for i in range(2)]
    vms = [protected_vm(api, f"group {i}", vh, order=5) for i in range(2)]
    for vm, gate in zip(vms, gates):  # the next start of each waits for its gate
        ok(proxy.VM.add_to_other_config(s, vm, "sim_start_gate", str(gate)))
    victim.kill9()
    survivors = [d for d in pool if d is not victim]

    def under_way(vm_states):
        m = settled(survivors)
        if not m:
            return False
        try:
            mp, ms = m.login()
            return all(vm_states(ok(mp.VM.get_record(ms, vm))) for vm in vms)
        except (OSError, AssertionError):
            return False

    wait_until(lambda: under_way(lambda r: r["power_state"] == "Halted" and
                                 r["current_operations"]),
               timeout=TIMEOUT + MARGIN + 60, what="both restarts under way at once")
    assert not any(g.exists() for g in gates)
    for g in gates:
        g.touch()
    wait_until(lambda: under_way(lambda r: r["power_state"] == "Running"),
               what="both VMs running again")
    never_twice(pool)
    master, api = master_api(survivors)
    proxy, s = api
    victim.start()
    metrics = ok(proxy.host.get_metrics(s, vh))
    wait_until(lambda: ok(proxy.host_metrics.get_live(s, metrics)) is True,
               what="the member live again")
    for vm in vms:
        ok(proxy.VM.set_ha_restart_priority(s, vm, ""))
        ok(proxy.VM.hard_shutdown(s, vm))
        ok(proxy.VM.destroy(s, vm))


def test_a_non_agile_vm_restarts_on_the_host_it_is_pinned_to(pool):
    """A protected VM whose disk is on a shared SR that one survivor has
    unplugged is not agile: the plan pins it to the first host by uuid
    that could run it, and it restarts there (VM.start_on)."""
    master, api = master_api(pool)
    proxy, s = api
    ha_on(api, pool)
    p = the_pool(api)
    victim = next(d for d in pool if d is not master)
    other = next(d for d in pool if d is not master and d is not victim)
    mh, vh, oh = (host_of(api, d.address) for d in (master, victim, other))
    sr = ok(proxy.SR.create(s, mh, {"location": os.path.join(master.shared, "sr")}, "0", "partly shared",
                            "", "file", "", True, {}))
    pbds = {ok(proxy.PBD.get_host(s, x)): x for x in ok(proxy.SR.get_PBDs(s, sr))}
    ok(proxy.PBD.unplug(s, pbds[oh]))  # the SR is shared, but not properly
    vm = new_vm(api, "pinned")
    reply, vdi = disk_on(api, vm, sr, "0")
    ok(reply)
    assert err(proxy.VM.assert_agile(s, vm)) == ["HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED", sr]
    ok(proxy.pool.set_ha_allow_overcommit(s, p, True))  # a non-agile VM breaks the plan
    ok(proxy.VM.set_ha_restart_priority(s, vm, "restart"))
    ok(proxy.VM.start_on(s, vm, vh, False, False))
    victim.kill9()
    survivors = [master, other]

    def restarted():
        never_twice(pool)
        m = settled(survivors)
        try:
            return m and where(m.login(), vm) in (("Running", mh), ("Running", oh)) and m
        except (OSError, AssertionError):
            return False

    wait_until(restarted, timeout=TIMEOUT + MARGIN + 60, what="the pinned VM restarted")
    master, api = master_api(survivors)
    proxy, s = api
    assert where(api, vm) == ("Running", mh)  # the only live host that sees its SR
    # the plan's host, not placement's (whichever survivor ran the restart)
    assert any(log_has(d, f"restarted on {mh}") for d in survivors)
    victim.start()
    metrics = ok(proxy.host.get_metrics(s, vh))
    wait_until(lambda: ok(proxy.host_metrics.get_live(s, metrics)) is True,
               what="the member live again")
    ok(proxy.VM.set_ha_restart_priority(s, vm, ""))
    ok(proxy.VM.hard_shutdown(s, vm))
    ok(proxy.VM.destroy(s, vm))
    ok(proxy.VDI.destroy(s, vdi))
    for x in ok(proxy.SR.get_PBDs(s, sr)):
        if ok(proxy.PBD.get_currently_attached(s, x)):
            ok(proxy.PBD.unplug(s, x))
    ok(proxy.SR.destroy(s, sr))
    ok(proxy.pool.set_ha_allow_overcommit(s, p, False))


def test_kill9_of_the_master_a_new_master_restarts_its_vms(pool):
    master, api = master_api(pool)
    proxy, s = api
    ha_on(api, pool)
    mh = host_of(api, master.address)
    vm = protected_vm(api, "on the master", mh)
    uuid = ok(proxy.VM.get_uuid(s, vm))
    # every node caught up (the member killed before is back)
    wait_until(lambda: all(master_of(d) == master.address for d in pool),
               what="every host naming the master")
    master.kill9()
    killed = time.monotonic()
    survivors = [d for d in pool if d is not master]

    def restarted():
        never_twice(pool)
        new = settled(survivors)
        if not new:
            return None
        try:
            state, host = where(new.login(), vm)
        except (OSError, AssertionError):
            return None
        return new if state == "Running" and host != mh else None

    new = wait_until(restarted, timeout=TIMEOUT + MARGIN + 30, what="the VM restarted")
    print(f"\nha: kill -9 of the master to its protected VM running again "
          f"{time.monotonic() - killed:.2f} s (new master {new.address})")
    assert uuid in running_domains(survivors)
    assert log_has(new, "declared dead") >= 1
    master.start()
    napi = new.login()
    wait_until(lambda: settled(pool), what="the pool agreeing on its master")
    never_twice(pool)
    assert uuid not in running_domains([master])


def test_a_protected_vm_that_fits_nowhere_raises_restart_failed(pool):
    master, api = master_api(pool)
    proxy, s = api
    ha_on(api, pool)
    p = the_pool(api)
    victim = next(d for d in pool if d is not master)
    others = [host_of(api, d.address) for d in pool if d is not victim]
    vh = host_of(api, victim.address)
    room = min(free_for_guests(api, h) for h in others + [vh])

    def vm(name, share):
        size = str(int(room * share) >> 20 << 20)
        return new_vm(api, name, memory_static_max=size, memory_dynamic_max=size,
                      memory_dynamic_min=size, memory_static_min=size)

    ok(proxy.pool.set_ha_allow_overcommit(s, p, True))  # no plan for this one
    big = vm("too big for the others", 0.6)
    fillers = [vm(f"filler {i}", 0.5) for i in range(2)]
    for f, h in zip(fillers, others):
        ok(proxy.VM.start_on(s, f, h, False, False))
    ok(proxy.VM.set_ha_restart_priority(s, big, "restart"))
    ok(proxy.VM.start_on(s, big, vh, False, False))
    uuid = ok(proxy.VM.get_uuid(s, big))
    victim.kill9()

    survivors = [d for d in pool if d is not victim]

    def failed():
        # asked at whichever survivor is the master (a restarted host of an
        # earlier test may take the lead: dqlite 1.11 has no pre-vote)
        m = settled(survivors)
        if not m:
            return False
        try:
            mp, ms = m.login()
            msgs = ok(mp.message.get_all_records(ms)).values()
        except (OSError, AssertionError):
            return False
        return any(x["name"] == "HA_PROTECTED_VM_RESTART_FAILED" and x["obj_uuid"] == uuid
                   for x in msgs)

    wait_until(failed, timeout=TIMEOUT + MARGIN + 30, what="HA_PROTECTED_VM_RESTART_FAILED")
    master, api = master_api(survivors)
    proxy, s = api
    assert ok(proxy.VM.get_power_state(s, big)) == "Halted"
    assert ok(proxy.VM.get_ha_always_run(s, big)) is True  # still protected: tried again later
    victim.start()
    metrics = ok(proxy.host.get_metrics(s, vh))
    wait_until(lambda: ok(proxy.host_metrics.get_live(s, metrics)) is True,
               what="the member live again")
    ok(proxy.VM.set_ha_restart_priority(s, big, ""))
    for v in [big] + fillers:
        if ok(proxy.VM.get_power_state(s, v)) == "Running":
            ok(proxy.VM.hard_shutdown(s, v))
        ok(proxy.VM.destroy(s, v))
    ok(proxy.pool.set_ha_allow_overcommit(s, p, False))


def test_a_pool_of_two_keeps_its_master_running_when_the_member_dies():
    """Two hosts: the master's dqlite node is the one voter (dqlite_node.c
    keeps voters odd), the quorum alone. kill -9 of the member: the master
    does not fence itself, its protected VM runs on, and the member's
    protected VM runs again on the master."""
    port = free_port()
    shared = tempfile.mkdtemp(prefix="xapid-ha-shared-")
    hosts = [dqlite_host(f"127.0.0.{n}", port, shared) for n in (36, 37)]
    master, member = hosts
    try:
        join(member, master)
        wait_until(lambda: log_has(master, ") added") >= 1, what="the member's node added")
        _, api = master_api(hosts)
        proxy, s = api
        ha_on(api, hosts)
        mh, vh = host_of(api, master.address), host_of(api, member.address)
        ours = protected_vm(api, "on the master", mh)
        theirs = protected_vm(api, "on the member", vh)
        ours_uuid = ok(proxy.VM.get_uuid(s, ours))
        member.kill9()
        wait_until(lambda: where(api, theirs) == ("Running", mh), timeout=TIMEOUT + MARGIN + 60,
                   what="the member's protected VM running on the master")
        never_twice(hosts)
        assert where(api, ours) == ("Running", mh)
        assert ours_uuid in running_domains([master])  # never fenced: its domain lives
        assert log_has(master, "ha: fenced") == 0, "the master fenced itself"
        assert log_has(master, "no contact with the pool's Raft majority") == 0
        for vm in (ours, theirs):
            ok(proxy.VM.hard_shutdown(s, vm))
        ok(proxy.pool.disable_ha(s))
    finally:
        for d in hosts:
            d.stop()
            shutil.rmtree(d.state_dir, ignore_errors=True)
        shutil.rmtree(shared, ignore_errors=True)
