"""A pool of three sim daemons on 127.0.0.1, .2 and .3 (one port, as the
hosts of a LAN): pool.join with every record the joiner contributes,
visible at the master and in the members' replicas; HOST_IS_SLAVE from a
member; a member's unix socket relayed to the master; the master's
forwarding of host-bound calls (VM.start_on, hard_shutdown, host.*) with
HOST_OFFLINE for a silent member; a member's writes evented at the master;
liveness after kill -9; eject and rejoin; XAPI's pre-join refusals."""
import contextlib
import http.client
import json
import os
import shutil
import tempfile
import threading
import xmlrpc.client
from xmlrpc.server import SimpleXMLRPCServer

import pytest

from netns import _UnixConnection, unix_proxy
from xapid_daemon import PASSWORD, Daemon, err, free_port, new_vm, ok, wait_until

pytestmark = pytest.mark.timeout(300)

MiB = 1 << 20
MEMBER_TIMEOUT = 3


def sim_host(address, port, state_dir=None, sr_root=None):
    state = state_dir or tempfile.mkdtemp(prefix="xapid-pool-")
    return Daemon(state_dir=state, listen=f"{address}:{port}",
                  extra_args=["--hypervisor", "sim", "--member-timeout", str(MEMBER_TIMEOUT),
                              "--unix", os.path.join(state, "xapi.sock"),
                              *(["--sr-root", sr_root] if sr_root else [])])


def login_member(d):
    """A session on a member (its TCP logins answer HOST_IS_SLAVE)."""
    return ok(d.proxy().session.slave_local_login_with_password("root", PASSWORD))


def host_of(d, api):
    """The host record's ref of daemon d, by its address, at the master
    (the master, on 127.0.0.1, has its management interface's)."""
    proxy, s = api
    if d.address == "127.0.0.1":
        return ok(proxy.pool.get_master(s, ok(proxy.pool.get_all(s))[0]))
    for ref, rec in ok(proxy.host.get_all_records(s)).items():
        if rec["address"] == d.address:
            return ref
    return None


def joined(member):
    """Once the member restarted as one: its TCP login says HOST_IS_SLAVE
    and its replica holds the pool."""
    try:
        reply = member.proxy().session.login_with_password("root", PASSWORD)
        if reply["Status"] != "Failure" or reply["ErrorDescription"][0] != "HOST_IS_SLAVE":
            return False
        s = member.proxy().session.slave_local_login_with_password("root", PASSWORD)
        return s["Status"] == "Success" and len(ok(member.proxy().host.get_all(s["Value"]))) > 1
    except OSError:
        return False  # restarting


def join(member, master):
    proxy, s = member.login()
    ok(proxy.pool.join(s, master.address, "root", PASSWORD))
    # Until it has restarted as a member the joiner refuses every call: a
    # session it handed out now would be in the database it has set aside.
    try:
        early = member.proxy().session.slave_local_login_with_password("root", PASSWORD)
    except OSError:
        early = None  # restarting
    wait_until(lambda: joined(member), what=f"{member.address} restarting as a member")
    if early and early["Status"] == "Success":  # it had restarted: the session is the pool's
        ok(member.proxy().host.get_all(early["Value"]))
    elif early:
        assert early["ErrorDescription"] == ["HOST_STILL_BOOTING"], early


def replica_has(member, cls, ref):
    """Whether member's replica holds ref (False while it cannot say: a
    local session made while its master was away ends when the member
    resyncs, which may come between the login and the read)."""
    s = login_member(member)
    reply = getattr(member.proxy(), cls).get_all(s)
    if reply["Status"] != "Success" and reply["ErrorDescription"][0] == "SESSION_INVALID":
        return False
    return ref in ok(reply)


@pytest.fixture(scope="module")
def pool():
    port = free_port()
    shared = tempfile.mkdtemp(prefix="xapid-pool-shared-")  # a directory every host sees
    hosts = [sim_host(f"127.0.0.{n}", port, sr_root=shared) for n in (1, 2, 3)]
    master, b, c = hosts
    yield {"port": port, "master": master, "b": b, "c": c, "shared": shared}
    stop_hosts(hosts)
    shutil.rmtree(shared, ignore_errors=True)


def stop_hosts(hosts):
    """Stops each daemon and removes its state (XAPID_KEEP_STATE=1 keeps it)."""
    for d in hosts:
        d.stop()
        if not os.environ.get("XAPID_KEEP_STATE"):
            shutil.rmtree(d.state_dir, ignore_errors=True)


@contextlib.contextmanager
def pool_of_two(master_n, member_n):
    """A sim master on 127.0.0.master_n and a member on 127.0.0.member_n
    (one port), joined; both stopped and removed after."""
    port = free_port()
    hosts = [sim_host(f"127.0.0.{n}", port) for n in (master_n, member_n)]
    try:
        join(hosts[1], hosts[0])
        yield hosts
    finally:
        stop_hosts(hosts)


@pytest.fixture()
def api(pool):
    return pool["master"].login()


def test_join_contributes_the_joiners_records(pool, api):
    proxy, s = api
    master, b, c = pool["master"], pool["b"], pool["c"]
    # What b has before it joins: these refs must reach the pool.
    pb, sb = b.login()
    b_host = ok(pb.host.get_all(sb))[0]
    b_rec = ok(pb.host.get_record(sb, b_host))
    b_srs, b_pbds = ok(pb.SR.get_all(sb)), ok(pb.PBD.get_all(sb))
    b_pifs, b_cpus = b_rec["PIFs"], b_rec["host_CPUs"]
    halted = new_vm((pb, sb), "b's halted VM")
    local_sr = [r for r in b_srs if ok(pb.SR.get_type(sb, r)) == "file"][0]
    vdi = ok(pb.VDI.create(sb, {"SR": local_sr, "virtual_size": str(8 * MiB), "type": "user",
                                "sharable": False, "read_only": False, "other_config": {},
                                "name_label": "b's disk"}))
    join(b, master)
    join(c, master)
    hosts = ok(proxy.host.get_all_records(s))
    # A listener's address is the host's (but 127.0.0.1, which every host has).
    addresses = [h["address"] for h in hosts.values()]
    assert len(addresses) == 3 and {"127.0.0.2", "127.0.0.3"} < set(addresses)
    assert b_host in hosts and hosts[b_host]["metrics"] != "OpaqueRef:NULL"
    pool_ref = ok(proxy.pool.get_all(s))
    assert len(pool_ref) == 1
    assert hosts[ok(proxy.pool.get_master(s, pool_ref[0]))]["address"] not in \
        ("127.0.0.2", "127.0.0.3")
    for ref in b_srs:
        assert ref in ok(proxy.SR.get_all(s))
    for ref in b_pbds:
        assert ok(proxy.PBD.get_host(s, ref)) == b_host
    for ref in b_pifs:
        assert ok(proxy.PIF.get_host(s, ref)) == b_host
    assert sorted(ok(proxy.host.get_host_CPUs(s, b_host))) == sorted(b_cpus)
    assert ok(proxy.VM.get_name_label(s, halted)) == "b's halted VM"
    assert ok(proxy.VDI.get_name_label(s, vdi)) == "b's disk"
    # Networks merge by bridge: b's PIFs are on the master's networks.
    master_nets = {ok(proxy.network.get_bridge(s, n)): n for n in ok(proxy.network.get_all(s))}
    for ref in b_pifs:
        net = ok(proxy.PIF.get_network(s, ref))
        assert master_nets[ok(proxy.network.get_bridge(s, net))] == net
    # One control domain per host.
    doms = [r for r in ok(proxy.VM.get_all_records(s)).values() if r["is_control_domain"]]
    assert sorted(d["resident_on"] for d in doms) == sorted(hosts)
    # The members' replicas hold the same pool.
    for member in (b, c):
        sm = login_member(member)
        assert sorted(ok(member.proxy().host.get_all(sm))) == sorted(hosts)
        assert vdi in ok(member.proxy().VDI.get_all(sm))
        assert all(ok(member.proxy().host_metrics.get_live(sm, h["metrics"])) for h in hosts.values())


def test_a_members_tcp_login_answers_host_is_slave(pool):
    for member in (pool["b"], pool["c"]):
        reply = member.proxy().session.login_with_password("root", PASSWORD)
        assert err(reply) == ["HOST_IS_SLAVE", "127.0.0.1"]
        # The pool's password is the master's to change.
        s = login_member(member)
        assert err(member.proxy().session.change_password(s, PASSWORD, "new")) == \
            ["HOST_IS_SLAVE", "127.0.0.1"]


def test_without_dqlite_the_change_of_master_is_refused(pool, api):
    """The pool's database lives only at the master: there is nothing to
    hand over (test_pool_failover.py has the dqlite pool's)."""
    proxy, s = api
    b = pool["b"]
    host_b = host_of(b, api)
    assert err(proxy.pool.designate_new_master(s, host_b))[0] == "OPERATION_NOT_ALLOWED"
    ok(proxy.pool.designate_new_master(s, host_of(pool["master"], api)))  # itself: nothing
    assert err(proxy.pool.emergency_reset_master(s, "127.0.0.2"))[0] == "OPERATION_NOT_ALLOWED"
    ms = login_member(b)
    assert err(b.proxy().pool.emergency_transition_to_master(ms))[0] == "OPERATION_NOT_ALLOWED"
    assert err(b.proxy().pool.designate_new_master(ms, host_b)) == ["HOST_IS_SLAVE", "127.0.0.1"]


def test_slave_login_wants_the_pool_secret(pool, api):
    b = pool["b"]
    b_host = host_of(b, api)
    assert err(b.proxy().session.slave_login(b_host, "0" * 64))[0] == \
        "SESSION_AUTHENTICATION_FAILED"
    with open(os.path.join(pool["master"].state_dir, "pool-secret")) as f:
        secret = f.read().strip()
    with open(os.path.join(b.state_dir, "pool-secret")) as f:
        assert f.read().strip() == secret  # pool.initial_auth gave it at the join
    s = ok(b.proxy().session.slave_login(b_host, secret))
    assert ok(b.proxy().session.get_pool(s, s)) is True


def test_a_members_unix_socket_is_the_masters(pool, api):
    proxy, s = api
    vm = new_vm(api, "named at the master")
    local = unix_proxy(os.path.join(pool["b"].state_dir, "xapi.sock"))
    ls = ok(local.session.login_with_password("root", ""))
    ok(local.VM.set_name_label(ls, vm, "renamed through b's socket"))
    assert ok(proxy.VM.get_name_label(s, vm)) == "renamed through b's socket"
    # An Async call's task is the master's.
    task = ok(local.Async.VM.clone(ls, vm, "a clone"))
    assert task in ok(proxy.task.get_all(s))
    wait_until(lambda: ok(proxy.task.get_status(s, task)) != "pending")
    assert ok(proxy.task.get_status(s, task)) == "success"
    clone = ok(proxy.task.get_result(s, task)).replace("<value>", "").replace("</value>", "")
    assert ok(proxy.VM.get_name_label(s, clone)) == "a clone"
    # JSON-RPC is relayed as it came: the master's reply, its ints as numbers.
    conn = _UnixConnection(os.path.join(pool["b"].state_dir, "xapi.sock"))
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "VM.get_memory_static_max",
                       "params": [ls, vm]})
    conn.request("POST", "/jsonrpc", body, {"Content-Type": "application/json"})
    reply = json.loads(conn.getresponse().read())
    conn.close()
    assert reply == {"jsonrpc": "2.0", "id": 7, "result": 256 * MiB}


def test_vm_start_on_a_member_and_its_shutdown_are_forwarded(pool, api):
    proxy, s = api
    b = pool["b"]
    b_host = host_of(b, api)
    vm = new_vm(api, "runs on b")
    ok(proxy.VM.start_on(s, vm, b_host, False, False))
    assert ok(proxy.VM.get_power_state(s, vm)) == "Running"
    assert ok(proxy.VM.get_resident_on(s, vm)) == b_host
    # (Run at the master, host checks would refuse it: HOST_OFFLINE [b].)
    ok(proxy.VM.hard_shutdown(s, vm))
    assert ok(proxy.VM.get_power_state(s, vm)) == "Halted"
    # Async: the task is the caller's, at the master.
    task = ok(proxy.Async.VM.start_on(s, vm, b_host, False, False))
    wait_until(lambda: ok(proxy.task.get_status(s, task)) != "pending")
    assert ok(proxy.task.get_status(s, task)) == "success", ok(proxy.task.get_error_info(s, task))
    assert ok(proxy.VM.get_resident_on(s, vm)) == b_host
    # b numbers its domains itself (its own settings, not the replica's).
    other = new_vm(api, "also on b")
    ok(proxy.VM.start_on(s, other, b_host, False, False))
    assert ok(proxy.VM.get_domid(s, other)) != ok(proxy.VM.get_domid(s, vm))
    assert os.path.exists(os.path.join(b.state_dir, "member-settings.db"))
    ok(proxy.VM.hard_shutdown(s, other))
    ok(proxy.VM.hard_shutdown(s, vm))


class _ForwardedTransport(xmlrpc.client.Transport):
    """What the master sends with a forwarded call: its generation and the
    caller's task."""
    def __init__(self, headers):
        super().__init__()
        self.extra = headers

    def send_headers(self, connection, headers):
        super().send_headers(connection, headers)
        for k, v in self.extra.items():
            connection.putheader(k, v)


def test_a_forwarded_call_works_in_the_callers_task(pool, api):
    proxy, s = api
    b = pool["b"]
    b_host = host_of(b, api)
    vm = new_vm(api, "in a task of the master's")
    task = ok(proxy.task.create(s, "the caller's", ""))
    with open(os.path.join(b.state_dir, "pool-secret")) as f:
        secret = f.read().strip()
    # As the master would: a pool session on b, then the call with headers.
    ps = ok(b.proxy().session.slave_login(b_host, secret))
    generation = "1"  # b's replica is past it: no wait
    forwarded = xmlrpc.client.ServerProxy(b.url, transport=_ForwardedTransport(
        {"X-Xapid-Pool-Generation": generation, "X-Xapid-Task": task}))
    ok(forwarded.VM.start_on(ps, vm, b_host, False, False))
    # b's driver ran it and reported its progress in the caller's task.
    assert ok(proxy.VM.get_resident_on(s, vm)) == b_host
    assert 0 < float(ok(proxy.task.get_progress(s, task))) < 1
    assert ok(proxy.task.get_status(s, task)) == "pending"  # the caller finishes it
    # Outside a pool session the header names no task.
    other = ok(proxy.task.create(s, "not b's", ""))
    sb = login_member(b)
    plain = xmlrpc.client.ServerProxy(b.url, transport=_ForwardedTransport(
        {"X-Xapid-Pool-Generation": "1", "X-Xapid-Task": other}))
    ok(plain.VM.hard_shutdown(sb, vm))
    assert float(ok(proxy.task.get_progress(s, other))) == 0


def test_host_calls_go_to_that_host(pool, api):
    proxy, s = api
    for d in (pool["b"], pool["c"]):
        assert ok(proxy.host.get_servertime(s, host_of(d, api)))
    # Not a host: answered here, as on a host alone.
    assert err(proxy.host.get_servertime(s, "OpaqueRef:NULL")) == \
        ["HANDLE_INVALID", "host", "OpaqueRef:NULL"]
    vm = new_vm(api, "nowhere to go")
    assert err(proxy.VM.start_on(s, vm, "OpaqueRef:nope", False, False))[0] == "HANDLE_INVALID"


def test_storage_work_goes_to_the_host_with_the_sr(pool, api):
    proxy, s = api
    b = pool["b"]
    b_host = host_of(b, api)
    sr = [p for p in (ok(proxy.PBD.get_record(s, r)) for r in ok(proxy.host.get_PBDs(s, b_host)))
          if ok(proxy.SR.get_type(s, p["SR"])) == "file"][0]["SR"]
    vdi = ok(proxy.VDI.create(s, {"SR": sr, "virtual_size": str(4 * MiB), "type": "user",
                                  "sharable": False, "read_only": False, "other_config": {},
                                  "name_label": "made on b"}))
    image = ok(proxy.VDI.get_location(s, vdi))
    # The image is a file in b's SR directory, none in the master's.
    assert image in os.listdir(os.path.join(b.state_dir, "sr"))
    assert image not in os.listdir(os.path.join(pool["master"].state_dir, "sr"))
    ok(proxy.VDI.destroy(s, vdi))
    assert image not in os.listdir(os.path.join(b.state_dir, "sr"))


def vm_with_a_disk_on(api, host):
    """A halted VM whose one disk is on host's local file SR."""
    proxy, s = api
    sr = [p for p in (ok(proxy.PBD.get_record(s, r)) for r in ok(proxy.host.get_PBDs(s, host)))
          if ok(proxy.SR.get_type(s, p["SR"])) == "file"][0]["SR"]
    vdi = ok(proxy.VDI.create(s, {"SR": sr, "virtual_size": str(4 * MiB), "type": "user",
                                  "sharable": False, "read_only": False, "other_config": {},
                                  "name_label": "a disk for a VM"}))
    vm = new_vm(api, "its disk is on a member")
    ok(proxy.VBD.create(s, {"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": True,
                            "mode": "RW", "type": "Disk", "empty": False, "other_config": {},
                            "qos_algorithm_type": "", "qos_algorithm_params": {}}))
    return vm


def test_a_vm_with_disks_on_a_members_sr_starts_there(pool, api):
    proxy, s = api
    b_host = host_of(pool["b"], api)
    vm = vm_with_a_disk_on(api, b_host)
    ok(proxy.VM.start(s, vm, False, False))  # the master cannot see b's SR: b can
    assert ok(proxy.VM.get_resident_on(s, vm)) == b_host
    ok(proxy.VM.hard_shutdown(s, vm))


def rrd_get(address, port, path):
    """(status, Location, body) of a GET, redirects not followed."""
    c = http.client.HTTPConnection(address, port, timeout=30)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.getheader("Location"), r.read()
    finally:
        c.close()


def test_vm_rrd_is_read_where_the_vm_runs(pool, api):
    """XAPI's get_vm_rrd_forwarder: a VM resident on another host is read
    there (302); a halted VM's archive is read where it is kept, a member
    without it sends the caller to the master."""
    proxy, s = api
    port, b, c = pool["port"], pool["b"], pool["c"]
    vm = new_vm(api, "its figures are on b")
    uuid = ok(proxy.VM.get_uuid(s, vm))
    ok(proxy.VM.start_on(s, vm, host_of(b, api), False, False))
    path = f"/vm_rrd?uuid={uuid}&session_id={s}"
    status, location, _ = rrd_get("127.0.0.1", port, path)
    assert (status, location) == (302, f"http://127.0.0.2:{port}{path}")
    status, location, _ = rrd_get("127.0.0.3", port, path)
    assert (status, location) == (302, f"http://127.0.0.2:{port}{path}")
    # b answers itself once its first sample is archived.
    body = wait_until(lambda: (lambda r: r[0] == 200 and r[2])(rrd_get("127.0.0.2", port, path)),
                      what="b's archive of the VM")
    assert b"<rrd>" in body
    ok(proxy.VM.hard_shutdown(s, vm))
    assert rrd_get("127.0.0.2", port, path)[0] == 200  # halted: b keeps it
    status, location, _ = rrd_get("127.0.0.3", port, path)
    assert (status, location) == (302, f"http://127.0.0.1:{port}{path}")
    assert rrd_get("127.0.0.1", port, path)[0] == 404  # the master never had it
    ok(proxy.VM.destroy(s, vm))


def test_a_shared_sr_has_a_pbd_on_every_host(pool, api):
    """XAPI's SR.create with shared=true: one PBD per host, each plugged on
    its host; a VM with a disk there starts on any host; a host that has
    no PBD for it at its start (one that joined later) makes and plugs its
    own with the master's device_config."""
    proxy, s = api
    c = pool["c"]
    hosts = ok(proxy.host.get_all(s))
    b_host, c_host = host_of(pool["b"], api), host_of(c, api)
    location = os.path.join(pool["shared"], "sr1")
    sr = ok(proxy.SR.create(s, b_host, {"location": location}, "0", "shared", "", "file", "",
                            True, {}))
    pbds = {ok(proxy.PBD.get_host(s, p)): p for p in ok(proxy.SR.get_PBDs(s, sr))}
    assert sorted(pbds) == sorted(hosts)
    assert all(ok(proxy.PBD.get_currently_attached(s, p)) for p in pbds.values())
    assert all(ok(proxy.PBD.get_device_config(s, p)) == {"location": location}
               for p in pbds.values())
    vdi = ok(proxy.VDI.create(s, {"SR": sr, "virtual_size": str(4 * MiB), "type": "user",
                                  "sharable": False, "read_only": False, "other_config": {},
                                  "name_label": "on the shared SR"}))
    vm = new_vm(api, "its disk is on the shared SR")
    ok(proxy.VBD.create(s, {"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": True,
                            "mode": "RW", "type": "Disk", "empty": False, "other_config": {},
                            "qos_algorithm_type": "", "qos_algorithm_params": {}}))
    for host in hosts:
        ok(proxy.VM.start_on(s, vm, host, False, False))
        assert ok(proxy.VM.get_resident_on(s, vm)) == host
        ok(proxy.VM.hard_shutdown(s, vm))
    # c without its PBD, restarted: it makes its own again.
    ok(proxy.PBD.unplug(s, pbds[c_host]))
    ok(proxy.PBD.destroy(s, pbds[c_host]))
    c.stop()
    c.start()
    wait_until(lambda: joined(c), what="c back as a member")

    def c_pbd():
        mine = [p for p in ok(proxy.SR.get_PBDs(s, sr)) if ok(proxy.PBD.get_host(s, p)) == c_host]
        return mine and ok(proxy.PBD.get_currently_attached(s, mine[0])) and mine[0]
    new = wait_until(c_pbd, what="c's own PBD of the shared SR")
    assert ok(proxy.PBD.get_device_config(s, new)) == {"location": location}
    assert [ok(proxy.VDI.get_name_label(s, v)) for v in ok(proxy.SR.get_VDIs(s, sr))] == \
        ["on the shared SR"]  # c's plug did not scan the directory again
    ok(proxy.VM.start_on(s, vm, c_host, False, False))
    ok(proxy.VM.hard_shutdown(s, vm))
    # Gone again: every PBD unplugged first (SR_HAS_PBD before).
    ok(proxy.VM.destroy(s, vm))
    assert err(proxy.SR.forget(s, sr))[0] == "SR_HAS_PBD"
    ok(proxy.VDI.destroy(s, vdi))
    for p in ok(proxy.SR.get_PBDs(s, sr)):
        ok(proxy.PBD.unplug(s, p))
    ok(proxy.SR.destroy(s, sr))
    assert not os.path.exists(location)


def test_a_start_goes_to_the_vms_affinity(pool, api):
    proxy, s = api
    c_host = host_of(pool["c"], api)
    vm = new_vm(api, "likes c")
    ok(proxy.VM.set_affinity(s, vm, c_host))
    ok(proxy.VM.start(s, vm, False, False))
    assert ok(proxy.VM.get_resident_on(s, vm)) == c_host
    ok(proxy.VM.hard_shutdown(s, vm))


def test_a_members_write_is_evented_at_the_master(pool, api):
    proxy, s = api
    b = pool["b"]
    vm = new_vm(api, "before")
    token = ok(getattr(proxy.event, "from")(s, ["vm"], "", 0.0))["token"]
    wait_until(lambda: replica_has(b, "VM", vm))
    sb = login_member(b)
    ok(b.proxy().VM.set_name_label(sb, vm, "written on b"))  # runs on b: shipped to the master
    assert ok(proxy.VM.get_name_label(s, vm)) == "written on b"

    def seen():
        batch = ok(getattr(proxy.event, "from")(s, ["vm"], token, 5.0))
        return [e for e in batch["events"] if e["ref"] == vm and
                e["snapshot"]["name_label"] == "written on b"]
    assert wait_until(seen)


def test_messages_live_on_the_master(pool, api):
    """A member keeps no message store (its standalone one was set aside at
    the join): the VM_STARTED it raises for a VM it starts, and a
    message.create made on it, are the master's; its reads are the
    master's."""
    proxy, s = api
    b = pool["b"]
    b_host = host_of(b, api)
    vm = new_vm(api, "messages from b")
    vm_uuid = ok(proxy.VM.get_uuid(s, vm))
    epoch = xmlrpc.client.DateTime("19700101T00:00:00Z")
    ok(proxy.VM.start_on(s, vm, b_host, False, False))
    started = list(ok(proxy.message.get(s, "VM", vm_uuid, epoch)).values())
    b_label, b_uuid = ok(proxy.host.get_name_label(s, b_host)), ok(proxy.host.get_uuid(s, b_host))
    assert [(m["name"], m["body"]) for m in started] == [
        ("VM_STARTED", f"VM 'messages from b' (uuid: {vm_uuid}) started on host: "
                       f"{b_label} (uuid: {b_uuid})")]
    sb, pb = login_member(b), b.proxy()
    ref = ok(pb.message.create(sb, "FROM_B", "4", "Host", b_uuid, "made on b"))
    assert ok(proxy.message.get_record(s, ref))["body"] == "made on b"
    assert set(ok(pb.message.get_all(sb))) == set(ok(proxy.message.get_all(s)))
    assert ok(pb.message.get_record(sb, ref))["name"] == "FROM_B"
    assert list(ok(pb.message.get_all_records_where(sb, 'field "name" = "FROM_B"'))) == [ref]
    assert ref in ok(pb.message.get_since(sb, epoch))
    assert err(pb.message.get_record(sb, "OpaqueRef:nothing")) == [
        "HANDLE_INVALID", "message", "OpaqueRef:nothing"]
    ok(pb.message.destroy(sb, ref))
    assert err(proxy.message.get_record(s, ref))[0] == "HANDLE_INVALID"
    assert not os.path.exists(os.path.join(b.state_dir, "messages.db"))
    ok(proxy.VM.hard_shutdown(s, vm))


def test_an_idle_member_stays_live(pool, api):
    proxy, s = api
    metrics = ok(proxy.host.get_metrics(s, host_of(pool["b"], api)))
    token = ok(getattr(proxy.event, "from")(s, ["host_metrics"], "", 0.0))["token"]
    # Two timeouts of quiet: b's polls must keep it live (no flapping).
    batch = ok(getattr(proxy.event, "from")(s, ["host_metrics"], token, 2.0 * MEMBER_TIMEOUT))
    assert not [e for e in batch["events"] if e["ref"] == metrics]
    assert ok(proxy.host_metrics.get_live(s, metrics))


def test_a_killed_member_goes_not_live_then_offline_for_forwarding(pool, api):
    proxy, s = api
    c = pool["c"]
    c_host = host_of(c, api)
    metrics = ok(proxy.host.get_metrics(s, c_host))
    c.kill9()
    # Until the timeout the master still takes c for live: the call is tried.
    tried = err(proxy.host.get_servertime(s, c_host))
    if ok(proxy.host_metrics.get_live(s, metrics)):
        assert tried == ["CANNOT_CONTACT_HOST", c_host]
    wait_until(lambda: not ok(proxy.host_metrics.get_live(s, metrics)),
               timeout=MEMBER_TIMEOUT + 20, what="host_metrics.live false")
    assert err(proxy.host.get_servertime(s, c_host)) == ["HOST_OFFLINE", c_host]
    # A VM that prefers c starts elsewhere meanwhile.
    vm = new_vm(api, "likes c, which is gone")
    ok(proxy.VM.set_affinity(s, vm, c_host))
    ok(proxy.VM.start(s, vm, False, False))
    assert ok(proxy.VM.get_resident_on(s, vm)) == host_of(pool["master"], api)
    ok(proxy.VM.hard_shutdown(s, vm))
    c.start()  # the same state dir: a member again
    wait_until(lambda: ok(proxy.host_metrics.get_live(s, metrics)), what="live again")
    assert ok(proxy.host.get_servertime(s, c_host))


def test_members_follow_a_restarted_master(pool):
    master, b = pool["master"], pool["b"]
    master.stop()
    master.start()  # its sessions are gone; its members' polls resume
    proxy, s = master.login()
    vm = new_vm((proxy, s), "after the master's restart")
    wait_until(lambda: replica_has(b, "VM", vm), what="b's replica has the new VM")
    b_host = host_of(b, (proxy, s))
    ok(proxy.VM.start_on(s, vm, b_host, False, False))  # a new pool session on b
    assert ok(proxy.VM.get_resident_on(s, vm)) == b_host
    ok(proxy.VM.hard_shutdown(s, vm))


def test_eject_and_rejoin(pool, api):
    proxy, s = api
    master, b = pool["master"], pool["b"]
    b_host = host_of(b, api)
    assert err(proxy.pool.eject(s, host_of(master, api))) == \
        ["INTERNAL_ERROR", "Xapi_pool.Cannot_eject_master"]
    vm = new_vm(api, "keeps b in the pool")
    ok(proxy.VM.start_on(s, vm, b_host, False, False))
    assert err(proxy.pool.eject(s, b_host)) == ["OPERATION_NOT_ALLOWED", "VM resident on host"]
    ok(proxy.VM.hard_shutdown(s, vm))
    diskful = vm_with_a_disk_on(api, b_host)
    b_pbds = ok(proxy.host.get_PBDs(s, b_host))
    b_srs = [ok(proxy.PBD.get_SR(s, p)) for p in b_pbds]
    b_vbds = [v for sr in b_srs for vdi in ok(proxy.SR.get_VDIs(s, sr))
              for v in ok(proxy.VDI.get_VBDs(s, vdi))]
    assert set(ok(proxy.VM.get_VBDs(s, diskful))) <= set(b_vbds)
    ok(proxy.pool.eject(s, b_host))
    assert b_host not in ok(proxy.host.get_all(s))
    assert not set(b_pbds) & set(ok(proxy.PBD.get_all(s)))
    # Its local SRs and their disks went with it, and the VBDs to them.
    assert not set(b_srs) & set(ok(proxy.SR.get_all(s)))
    assert not set(b_vbds) & set(ok(proxy.VBD.get_all(s)))
    assert ok(proxy.VM.get_VBDs(s, diskful)) == []

    def standalone():
        try:
            reply = b.proxy().session.login_with_password("root", PASSWORD)
        except OSError:
            return False
        return reply["Status"] == "Success" and reply["Value"]
    sb = wait_until(standalone, what="b standalone again")
    assert len(ok(b.proxy().host.get_all(sb))) == 1
    assert not os.path.exists(os.path.join(b.state_dir, "pool-role"))
    assert not os.path.exists(os.path.join(b.state_dir, "member-settings.db"))
    join(b, master)
    assert len(ok(proxy.host.get_all(s))) == 3
    new_b = host_of(b, api)
    assert new_b != b_host
    ok(proxy.VM.start_on(s, vm, new_b, False, False))
    ok(proxy.VM.hard_shutdown(s, vm))


def test_pre_join_refusals(pool, api):
    master, b = pool["master"], pool["b"]
    d = sim_host("127.0.0.4", pool["port"])
    try:
        pd, sd = d.login()
        # Joining itself.
        assert err(pd.pool.join(sd, d.address, "root", PASSWORD)) == \
            ["OPERATION_NOT_ALLOWED", "Host cannot become slave of itself"]
        # A master with members cannot join another pool; nor can a member.
        pm, sm = api
        assert err(pm.pool.join(sm, d.address, "root", PASSWORD)) == \
            ["JOINING_HOST_CANNOT_BE_MASTER_OF_OTHER_HOSTS"]
        assert err(b.proxy().pool.join(login_member(b), d.address, "root", PASSWORD)) == \
            ["JOINING_HOST_CANNOT_BE_MASTER_OF_OTHER_HOSTS"]
        # Wrong credentials; a master that cannot be reached.
        assert err(pd.pool.join(sd, master.address, "root", "wrong"))[0] == \
            "SESSION_AUTHENTICATION_FAILED"
        assert err(pd.pool.join(sd, "127.0.0.9", "root", PASSWORD)) == \
            ["JOINING_HOST_CONNECTION_FAILED"]
        # A running VM.
        vm = new_vm((pd, sd), "running on d")
        ok(pd.VM.start(sd, vm, False, False))
        assert err(pd.pool.join(sd, master.address, "root", PASSWORD)) == \
            ["JOINING_HOST_CANNOT_HAVE_RUNNING_VMS"]
        ok(pd.VM.hard_shutdown(sd, vm))
        # A shared SR.
        sr = [r for r in ok(pd.SR.get_all(sd)) if ok(pd.SR.get_type(sd, r)) == "file"][0]
        ok(pd.SR.set_shared(sd, sr, True))
        assert err(pd.pool.join(sd, master.address, "root", PASSWORD)) == \
            ["JOINING_HOST_CANNOT_CONTAIN_SHARED_SRS"]
        ok(pd.SR.set_shared(sd, sr, False))
        # Nothing changed on either side.
        assert len(ok(pm.host.get_all(sm))) == 3
        assert not os.path.exists(os.path.join(d.state_dir, "pool-role"))
        other_masters(pd, sd, d, pool["port"])
        assert not os.path.exists(os.path.join(d.state_dir, "pool-role"))
    finally:
        d.stop()
        shutil.rmtree(d.state_dir, ignore_errors=True)


def other_masters(pd, sd, d, port):
    """A master of another build, played by a few XML-RPC methods on
    127.0.0.5: XAPI's checks of versions, schema, CPUs and HA."""
    me = ok(pd.host.get_record(sd, ok(pd.host.get_all(sd))[0]))
    master = {"uuid": "a-master-uuid", "API_version_major": me["API_version_major"],
              "API_version_minor": me["API_version_minor"],
              "software_version": dict(me["software_version"]),
              "cpu_info": dict(me["cpu_info"])}
    pool_rec = {"master": "OpaqueRef:the-master", "ha_enabled": False}

    def answer(value):
        return {"Status": "Success", "Value": value}
    server = SimpleXMLRPCServer(("127.0.0.5", port), logRequests=False, allow_none=False)
    server.register_function(lambda u, p, v="", o="": answer("OpaqueRef:s"),
                             "session.login_with_password")
    server.register_function(lambda s: answer(""), "session.logout")
    server.register_function(lambda s: answer({"OpaqueRef:p": pool_rec}), "pool.get_all_records")
    server.register_function(lambda s, h: answer(master), "host.get_record")
    server.register_function(lambda s: {"Status": "Failure",
                                        "ErrorDescription": ["PERMISSION_DENIED", "test"]},
                             "pool.initial_auth")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        def join(force=False):
            call = pd.pool.join_force if force else pd.pool.join
            return err(call(sd, "127.0.0.5", "root", PASSWORD))
        mine = f'{me["API_version_major"]}.{me["API_version_minor"]}'
        master["API_version_minor"] = str(int(me["API_version_minor"]) + 1)
        theirs = f'{me["API_version_major"]}.{master["API_version_minor"]}'
        assert join() == ["POOL_JOINING_HOST_MUST_HAVE_SAME_API_VERSION", mine, theirs]
        master["API_version_minor"] = me["API_version_minor"]
        master["software_version"]["db_schema"] = "another-schema"
        assert join() == ["POOL_JOINING_HOST_MUST_HAVE_SAME_DB_SCHEMA",
                          me["software_version"]["db_schema"], "another-schema"]
        master["software_version"] = dict(me["software_version"])
        master["cpu_info"]["vendor"] = "AnotherVendor"
        assert join() == ["POOL_HOSTS_NOT_HOMOGENEOUS", "CPUs differ"]
        # join_force skips that check: the next step (the secret) is reached.
        assert join(force=True) == ["PERMISSION_DENIED", "test"]
        pool_rec["ha_enabled"] = True
        assert join(force=True) == ["HA_IS_ENABLED"]
    finally:
        server.shutdown()
        server.server_close()
