"""VM.pool_migrate in a pool of three sim daemons on 127.0.0.1/.2/.3:
member to member, member to master and master to member (resident_on,
domid, power state at the master and in the replicas, VM_MIGRATED);
XAPI's refusals with nothing changed; VM.assert_can_migrate; a destination
that fails to load, and one killed mid-way, leave the VM running on the
source with its record as it was."""
import os
import shutil

import pytest

from test_pool import MEMBER_TIMEOUT, host_of, join, login_member, sim_host
from xapid_daemon import err, free_port, new_vm, ok, wait_until

pytestmark = pytest.mark.timeout(300)

MiB = 1 << 20


@pytest.fixture(scope="module")
def pool():
    port = free_port()
    hosts = [sim_host(f"127.0.0.{n}", port) for n in (1, 2, 3)]
    master, b, c = hosts
    join(b, master)
    join(c, master)
    api = master.login()
    refs = {name: host_of(d, api) for name, d in (("master", master), ("b", b), ("c", c))}
    yield {"master": master, "b": b, "c": c, "api": api, "hosts": refs}
    for d in hosts:
        d.stop()
        if not os.environ.get("XAPID_KEEP_STATE"):
            shutil.rmtree(d.state_dir, ignore_errors=True)


def vm_with_vif(api, name, **fields):
    proxy, s = api
    vm = new_vm(api, name, **fields)
    net = ok(proxy.network.create(s, {"name_label": f"{name} net"}))
    ok(proxy.VIF.create(s, {"VM": vm, "network": net, "device": "0", "MAC": "", "MTU": "1500",
                            "other_config": {}, "qos_algorithm_type": "",
                            "qos_algorithm_params": {}}))
    return vm


def replica_view(member, vm):
    s = login_member(member)
    p = member.proxy()
    return ok(p.VM.get_resident_on(s, vm)), ok(p.VM.get_power_state(s, vm))


def migrated_messages(api, vm):
    proxy, s = api
    return [m for m in ok(proxy.message.get_all_records(s)).values()
            if m["name"] == "VM_MIGRATED" and m["obj_uuid"] == ok(proxy.VM.get_uuid(s, vm))]


def test_migrate_member_to_member_to_master_and_back(pool):
    api, h = pool["api"], pool["hosts"]
    proxy, s = api
    vm = vm_with_vif(api, "traveller")
    ok(proxy.VM.start_on(s, vm, h["b"], False, False))
    domid = ok(proxy.VM.get_domid(s, vm))
    vif = ok(proxy.VM.get_VIFs(s, vm))[0]
    ok(proxy.VM.pool_migrate(s, vm, h["c"], {"live": "true"}))
    assert ok(proxy.VM.get_resident_on(s, vm)) == h["c"]
    assert ok(proxy.VM.get_power_state(s, vm)) == "Running"
    assert ok(proxy.VIF.get_currently_attached(s, vif))
    assert ok(proxy.VM.get_current_operations(s, vm)) == {}
    for member in (pool["b"], pool["c"]):
        wait_until(lambda: replica_view(member, vm) == (h["c"], "Running"),
                   what="the replica following the migration")
    assert len(migrated_messages(api, vm)) == 1
    # c's domain really runs it: a host-bound call goes there and works.
    ok(proxy.VM.pause(s, vm))
    ok(proxy.VM.unpause(s, vm))
    # To the master, then from the master back to a member (non-live).
    ok(proxy.VM.pool_migrate(s, vm, h["master"], {}))
    assert ok(proxy.VM.get_resident_on(s, vm)) == h["master"]
    ok(proxy.VM.pool_migrate(s, vm, h["b"], {"live": "false"}))
    assert ok(proxy.VM.get_resident_on(s, vm)) == h["b"]
    assert ok(proxy.VM.get_power_state(s, vm)) == "Running"
    # b's reconciliation left the VM alone after it went, and c's and the
    # master's did not claim it back.
    wait_until(lambda: replica_view(pool["c"], vm) == (h["b"], "Running"),
               what="c's replica")
    ok(proxy.VM.hard_shutdown(s, vm))
    assert ok(proxy.VM.get_power_state(s, vm)) == "Halted"


def test_refusals_change_nothing(pool):
    api, h = pool["api"], pool["hosts"]
    proxy, s = api
    halted = new_vm(api, "halted")
    assert err(proxy.VM.pool_migrate(s, halted, h["c"], {}))[0] == "VM_BAD_POWER_STATE"
    vm = new_vm(api, "stays")
    ok(proxy.VM.start_on(s, vm, h["b"], False, False))
    before = ok(proxy.VM.get_record(s, vm))
    assert err(proxy.VM.pool_migrate(s, vm, h["b"], {}))[0] == "OPERATION_NOT_ALLOWED"
    assert err(proxy.VM.pool_migrate(s, vm, h["c"], {"compress": "true"})) == \
        ["VALUE_NOT_SUPPORTED", "compress", "true",
         "pool_migrate takes the options live and force (true or false)"]
    assert err(proxy.VM.pool_migrate(s, vm, "OpaqueRef:nonesuch", {}))[0] == "HANDLE_INVALID"
    # A disk on b's local SR: c cannot see it.
    pb = login_member(pool["b"])
    b_proxy = pool["b"].proxy()
    local = [r for r, rec in ok(proxy.SR.get_all_records(s)).items()
             if rec["type"] == "file" and
             [ok(proxy.PBD.get_host(s, p)) for p in rec["PBDs"]] == [h["b"]]][0]
    disked = new_vm(api, "disked")
    vdi = ok(proxy.VDI.create(s, {"SR": local, "virtual_size": str(8 * MiB), "type": "user",
                                  "sharable": False, "read_only": False, "other_config": {},
                                  "name_label": "local disk"}))
    ok(proxy.VBD.create(s, {"VM": disked, "VDI": vdi, "userdevice": "0", "bootable": True,
                            "mode": "RW", "type": "Disk", "empty": False, "other_config": {},
                            "qos_algorithm_type": "", "qos_algorithm_params": {}}))
    ok(proxy.VM.start_on(s, disked, h["b"], False, False))
    assert err(proxy.VM.pool_migrate(s, disked, h["c"], {})) == ["VM_REQUIRES_SR", disked, local]
    assert err(proxy.VM.assert_can_migrate(s, disked, {"host": h["c"]}, True, {}, {}, {}, {})) \
        == ["VM_REQUIRES_SR", disked, local]
    # Not enough memory on c: a large VM there first.
    free_c = int(ok(proxy.host.compute_free_memory(s, h["c"])))
    big = new_vm(api, "big", memory_static_max=str(free_c * 9 // 10 // MiB * MiB))
    ok(proxy.VM.start_on(s, big, h["c"], False, False))
    large = new_vm(api, "large", memory_static_max=str(free_c // 5 // MiB * MiB))
    ok(proxy.VM.start_on(s, large, h["b"], False, False))
    e = err(proxy.VM.pool_migrate(s, large, h["c"], {}))
    assert e[0] == "HOST_NOT_ENOUGH_FREE_MEMORY" and int(e[1]) > int(e[2]), e
    assert err(proxy.VM.assert_can_migrate(s, large, {"host": h["c"]}, True, {}, {}, {}, {}))[0] \
        == "HOST_NOT_ENOUGH_FREE_MEMORY"
    # assert_can_migrate: passes for what would migrate; only within the pool.
    ok(proxy.VM.assert_can_migrate(s, vm, {"host": h["c"]}, True, {}, {}, {}, {}))
    assert err(proxy.VM.assert_can_migrate(s, vm, {}, True, {}, {}, {}, {}))[0] == \
        "VALUE_NOT_SUPPORTED"
    assert err(proxy.VM.assert_can_migrate(s, vm, {"host": h["c"]}, True, {vdi: local}, {}, {},
                                           {}))[0] == "VALUE_NOT_SUPPORTED"
    after = ok(proxy.VM.get_record(s, vm))
    assert {k: after[k] for k in ("resident_on", "domid", "power_state", "current_operations")} \
        == {k: before[k] for k in ("resident_on", "domid", "power_state", "current_operations")}
    assert ok(b_proxy.VM.get_power_state(pb, vm)) == "Running"
    for ref in (vm, disked, big, large):
        ok(proxy.VM.hard_shutdown(s, ref))


def test_destination_failing_or_killed_leaves_the_vm_on_the_source(pool):
    api, h = pool["api"], pool["hosts"]
    proxy, s = api
    vm = vm_with_vif(api, "unlucky", other_config={"sim_migration": "fail-load"})
    ok(proxy.VM.start_on(s, vm, h["b"], False, False))
    domid = ok(proxy.VM.get_domid(s, vm))
    e = err(proxy.VM.pool_migrate(s, vm, h["c"], {}))
    assert e[:4] == ["VM_MIGRATE_FAILED", vm, h["b"], h["c"]], e
    assert (ok(proxy.VM.get_resident_on(s, vm)), ok(proxy.VM.get_power_state(s, vm)),
            ok(proxy.VM.get_domid(s, vm))) == (h["b"], "Running", domid)
    assert ok(proxy.VM.get_current_operations(s, vm)) == {}
    # The destination killed while it holds the migration.
    c = pool["c"]
    ok(proxy.VM.remove_from_other_config(s, vm, "sim_migration"))
    ok(proxy.VM.add_to_other_config(s, vm, "sim_migration", "stall-load"))
    task = ok(proxy.Async.VM.pool_migrate(s, vm, h["c"], {}))
    wait_until(lambda: "stalls before loading" in c.log_tail(), what="c holding the migration")
    c.kill9()
    wait_until(lambda: ok(proxy.task.get_status(s, task)) != "pending",
               what="the migration's end")
    assert ok(proxy.task.get_status(s, task)) == "failure"
    assert ok(proxy.task.get_error_info(s, task))[:4] == ["VM_MIGRATE_FAILED", vm, h["b"], h["c"]]
    assert (ok(proxy.VM.get_resident_on(s, vm)), ok(proxy.VM.get_power_state(s, vm)),
            ok(proxy.VM.get_domid(s, vm))) == (h["b"], "Running", domid)
    ok(proxy.VM.pause(s, vm))  # b's domain still runs it
    ok(proxy.VM.unpause(s, vm))
    # Once c is seen dead: HOST_OFFLINE, before anything is tried.
    wait_until(lambda: not ok(proxy.host_metrics.get_live(s, ok(proxy.host.get_metrics(s, h["c"])))),
               timeout=MEMBER_TIMEOUT + 20, what="c not live")
    assert err(proxy.VM.pool_migrate(s, vm, h["c"], {})) == ["HOST_OFFLINE", h["c"]]
    c.start()
    wait_until(lambda: ok(proxy.host_metrics.get_live(s, ok(proxy.host.get_metrics(s, h["c"])))),
               what="c live again")
    ok(proxy.VM.remove_from_other_config(s, vm, "sim_migration"))
    ok(proxy.VM.pool_migrate(s, vm, h["c"], {}))
    assert ok(proxy.VM.get_resident_on(s, vm)) == h["c"]
    ok(proxy.VM.hard_shutdown(s, vm))


def test_placement_by_memory(pool):
    """VM.start without a host: its affinity when that host has the memory,
    else a host that has; get_possible_hosts and assert_can_boot_here say
    the same."""
    api, h = pool["api"], pool["hosts"]
    proxy, s = api
    free_b = int(ok(proxy.host.compute_free_memory(s, h["b"])))
    big = new_vm(api, "fills b", memory_static_max=str(free_b * 9 // 10 // MiB * MiB))
    ok(proxy.VM.start_on(s, big, h["b"], False, False))
    vm = new_vm(api, "placed", memory_static_max=str(free_b // 5 // MiB * MiB), affinity=h["b"])
    e = err(proxy.VM.assert_can_boot_here(s, vm, h["b"]))
    assert e[0] == "HOST_NOT_ENOUGH_FREE_MEMORY" and int(e[1]) > int(e[2]), e
    ok(proxy.VM.assert_can_boot_here(s, vm, h["c"]))
    possible = ok(proxy.VM.get_possible_hosts(s, vm))
    assert sorted(possible) == sorted([h["master"], h["c"]])
    ok(proxy.VM.start(s, vm, False, False))
    assert ok(proxy.VM.get_resident_on(s, vm)) in (h["master"], h["c"])
    ok(proxy.VM.hard_shutdown(s, vm))
    # With b's memory back, the affinity wins.
    ok(proxy.VM.hard_shutdown(s, big))
    assert h["b"] in ok(proxy.VM.get_possible_hosts(s, vm))
    ok(proxy.VM.start(s, vm, False, False))
    assert ok(proxy.VM.get_resident_on(s, vm)) == h["b"]
    ok(proxy.VM.hard_shutdown(s, vm))
    # A disk on c's local SR: only c can boot it.
    local_c = [r for r, rec in ok(proxy.SR.get_all_records(s)).items()
               if rec["type"] == "file" and
               [ok(proxy.PBD.get_host(s, p)) for p in rec["PBDs"]] == [h["c"]]][0]
    disked = new_vm(api, "on c's disk")
    vdi = ok(proxy.VDI.create(s, {"SR": local_c, "virtual_size": str(8 * MiB), "type": "user",
                                  "sharable": False, "read_only": False, "other_config": {},
                                  "name_label": "c's disk"}))
    ok(proxy.VBD.create(s, {"VM": disked, "VDI": vdi, "userdevice": "0", "bootable": True,
                            "mode": "RW", "type": "Disk", "empty": False, "other_config": {},
                            "qos_algorithm_type": "", "qos_algorithm_params": {}}))
    assert ok(proxy.VM.get_possible_hosts(s, disked)) == [h["c"]]
    assert err(proxy.VM.assert_can_boot_here(s, disked, h["b"])) == \
        ["VM_REQUIRES_SR", disked, local_c]


def test_a_start_in_flight_reserves_its_memory(pool, tmp_path):
    """XAPI's scheduled_to_be_resident_on: a start held in flight on b
    (the sim's start gate) already holds its memory there, so a second
    start that would fit only without it is refused, and placement
    looks elsewhere; the reservation goes once the VM runs."""
    api, h = pool["api"], pool["hosts"]
    proxy, s = api
    free_b = int(ok(proxy.host.compute_free_memory(s, h["b"])))
    size = str(free_b * 6 // 10 // MiB * MiB)
    gate = str(tmp_path / "open")
    held = new_vm(api, "held in flight", memory_static_max=size,
                  other_config={"sim_start_gate": gate})
    task = ok(proxy.Async.VM.start_on(s, held, h["b"], False, False))
    wait_until(lambda: ok(proxy.VM.get_scheduled_to_be_resident_on(s, held)) == h["b"],
               what="the held start's reservation on b")
    assert int(ok(proxy.host.compute_free_memory(s, h["b"]))) < free_b * 5 // 10
    second = new_vm(api, "would fit without it", memory_static_max=size, affinity=h["b"])
    assert err(proxy.VM.start_on(s, second, h["b"], False, False))[0] == \
        "HOST_NOT_ENOUGH_FREE_MEMORY"
    ok(proxy.VM.start(s, second, False, False))  # placed on a host with the memory
    assert ok(proxy.VM.get_resident_on(s, second)) in (h["master"], h["c"])
    open(gate, "w").close()
    wait_until(lambda: ok(proxy.task.get_status(s, task)) != "pending", what="the held start")
    assert ok(proxy.task.get_status(s, task)) == "success"
    assert ok(proxy.VM.get_resident_on(s, held)) == h["b"]
    assert ok(proxy.VM.get_scheduled_to_be_resident_on(s, held)) == "OpaqueRef:NULL"
    for vm in (held, second):
        ok(proxy.VM.hard_shutdown(s, vm))
        ok(proxy.VM.destroy(s, vm))


def test_evacuate_three_vms_to_two_hosts(pool):
    api, h = pool["api"], pool["hosts"]
    proxy, s = api
    vms = [vm_with_vif(api, f"evacuee {i}") for i in range(3)]
    for vm in vms:
        ok(proxy.VM.start_on(s, vm, h["b"], False, False))
    assert ok(proxy.host.get_vms_which_prevent_evacuation(s, h["b"])) == {}
    ok(proxy.host.assert_can_evacuate(s, h["b"]))
    assert err(proxy.host.evacuate(s, h["b"], "OpaqueRef:nonesuch", 1))[0] == "VALUE_NOT_SUPPORTED"
    # A paused VM cannot be migrated: it prevents the evacuation.
    ok(proxy.VM.pause(s, vms[0]))
    blocked = ok(proxy.host.get_vms_which_prevent_evacuation(s, h["b"]))
    assert list(blocked) == [vms[0]] and blocked[vms[0]][0] == "VM_BAD_POWER_STATE"
    assert err(proxy.host.assert_can_evacuate(s, h["b"]))[0] == "VM_BAD_POWER_STATE"
    ok(proxy.VM.unpause(s, vms[0]))
    task = ok(proxy.Async.host.evacuate(s, h["b"], "OpaqueRef:NULL", 3))
    wait_until(lambda: ok(proxy.task.get_status(s, task)) != "pending", what="the evacuation")
    assert ok(proxy.task.get_status(s, task)) == "success", ok(proxy.task.get_error_info(s, task))
    where = {vm: ok(proxy.VM.get_resident_on(s, vm)) for vm in vms}
    assert set(where.values()) <= {h["master"], h["c"]}, where
    assert all(ok(proxy.VM.get_power_state(s, vm)) == "Running" for vm in vms)
    assert ok(proxy.host.get_current_operations(s, h["b"])) == {}
    assert "evacuate" in ok(proxy.host.get_allowed_operations(s, h["b"]))
    for vm in vms:
        ok(proxy.VM.hard_shutdown(s, vm))
