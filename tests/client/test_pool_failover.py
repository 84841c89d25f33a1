"""Master failover on a dqlite pool: three sim daemons on 127.0.0.7, .8
and .9 with --pool-dqlite. kill -9 of the master while clients write on
every host: the member whose dqlite node becomes leader turns master
in-process, the other follows (HOST_IS_SLAVE names the new master), every
acknowledged write is there, event.from tokens taken before stay valid;
the killed master restarts as a member of the new one."""
import os
import shutil
import signal
import tempfile
import threading
import time

import pytest

from xapid_daemon import PASSWORD, Daemon, err as err_of, free_port, new_vm, ok, wait_until
from test_pool import join

pytestmark = pytest.mark.timeout(180)


def dqlite_host(address, port, member_timeout=3):
    state = tempfile.mkdtemp(prefix="xapid-failover-")
    return Daemon(state_dir=state, listen=f"{address}:{port}",
                  extra_args=["--hypervisor", "sim", "--member-timeout", str(member_timeout),
                              "--pool-dqlite", "--unix", os.path.join(state, "xapi.sock")])


def log_has(d, text):
    with open(d.log_path, "rb") as f:
        return f.read().decode(errors="replace").count(text)


def session_on(d):
    """A session on d whatever its role: a TCP login, or on a member its
    local login (HOST_IS_SLAVE)."""
    reply = d.proxy().session.login_with_password("root", PASSWORD)
    if reply["Status"] == "Success":
        return reply["Value"]
    assert reply["ErrorDescription"][0] in ("HOST_IS_SLAVE", "HOST_STILL_BOOTING"), reply
    return ok(d.proxy().session.slave_local_login_with_password("root", PASSWORD))


def master_of(d):
    """The address d's TCP login names (HOST_IS_SLAVE), d's own when it is
    the master, None while it cannot say."""
    try:
        reply = d.proxy().session.login_with_password("root", PASSWORD)
    except OSError:
        return None
    if reply["Status"] == "Success":
        return d.address
    desc = reply["ErrorDescription"]
    return desc[1] if desc[0] == "HOST_IS_SLAVE" else None


class Writer(threading.Thread):
    """Renames one VM on one host with increasing numbers; remembers the
    last one acknowledged."""

    def __init__(self, host, vm):
        super().__init__(daemon=True)
        self.host, self.vm = host, vm
        self.acked = -1
        self.attempts = 0
        self.stop = threading.Event()
        self.errors = {}

    def run(self):
        session = None
        n = 0
        while not self.stop.is_set():
            try:
                if session is None:
                    session = session_on(self.host)
                n += 1
                self.attempts = n
                reply = self.host.proxy().VM.set_name_label(session, self.vm, str(n))
                if reply["Status"] == "Success":
                    self.acked = n
                    continue
                code = reply["ErrorDescription"][0]
                self.errors[code] = self.errors.get(code, 0) + 1
                if code == "SESSION_INVALID":
                    session = None
            except (OSError, AssertionError) as e:
                self.errors[type(e).__name__] = self.errors.get(type(e).__name__, 0) + 1
                session = None
            self.stop.wait(0.02)  # a failed write: not a busy loop while the pool recovers


def dqlite_pool(numbers, member_timeout=3):
    """For a fixture: sim daemons on 127.0.0.N for N in numbers, the first
    the master, the others joined with their nodes added; stopped (their
    state removed) after."""
    port = free_port()
    hosts = [dqlite_host(f"127.0.0.{n}", port, member_timeout) for n in numbers]
    master = hosts[0]
    for n, member in enumerate(hosts[1:]):
        join(member, master)
        wait_until(lambda: log_has(master, ") added") >= n + 1,
                   what=f"{member.address}'s node added at the master")
    yield hosts
    for d in hosts:
        d.stop()
        if not os.environ.get("XAPID_KEEP_STATE"):
            shutil.rmtree(d.state_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def pool():
    yield from dqlite_pool((7, 8, 9))


def test_kill9_of_the_master_fails_over_with_no_acknowledged_write_lost(pool):
    old, b, c = pool
    proxy, s = old.login()
    vms = [new_vm((proxy, s), f"written from {d.address}") for d in pool]
    ms = session_on(b)
    token = ok(b.proxy().event.__getattr__("from")(ms, ["vm"], "", 0.0))["token"]
    writers = [Writer(d, vm) for d, vm in zip(pool, vms)]
    for w in writers:
        w.start()
    wait_until(lambda: all(w.acked >= 5 for w in writers), what="writes on every host")
    old.kill9()
    killed = time.monotonic()
    survivors = [b, c]
    first = {}

    def new_master():
        for d in survivors:
            if master_of(d) == d.address:
                s = session_on(d)
                if d.proxy().VM.set_name_label(s, vms[0], "after the failover")["Status"] == \
                        "Success":
                    first.setdefault("t", time.monotonic() - killed)
                    return d
        return None

    wait_until(new_master, timeout=30, what="a new master accepting writes")
    new = new_master()
    other = c if new is b else b
    print(f"\nfailover: kill -9 to the first accepted write {first['t']:.3f} s "
          f"(new master {new.address})")
    wait_until(lambda: master_of(other) == new.address,
               what=f"{other.address} naming the new master")
    # The members' writers go on through the new master.
    marks = [w.acked for w in writers]
    wait_until(lambda: all(w.acked > m for w, m in zip(writers[1:], marks[1:])),
               what="the survivors' writers acknowledged again")
    for w in writers:
        w.stop.set()
    for w in writers:
        w.join(10)
    s = session_on(new)
    for w in writers[1:]:
        label = ok(new.proxy().VM.get_name_label(s, w.vm))
        assert int(label) >= w.acked, (w.host.address, label, w.acked, w.errors)
    label = ok(new.proxy().VM.get_name_label(s, vms[0]))
    assert label == "after the failover" or int(label) >= writers[0].acked
    # The token from before is still valid, at the new master and on the member.
    got = ok(new.proxy().event.__getattr__("from")(s, ["vm"], token, 0.0))
    assert any(e["ref"] in vms for e in got["events"]), got
    os_ = session_on(other)
    ok(other.proxy().event.__getattr__("from")(os_, ["vm"], token, 0.0))
    assert log_has(new, "turning master") == 1
    pool[0], pool[1], pool[2] = new, other, old  # the fixture's order: master first


def settled(hosts):
    """The master every host names, once they agree and it accepts a
    login (None until then)."""
    named = {master_of(d) for d in hosts}
    if len(named) != 1 or None in named:
        return None
    address = named.pop()
    return next((d for d in hosts if d.address == address), None)


def write_on(d, vm, label):
    """One write through d, whatever its role (False while it cannot)."""
    try:
        return d.proxy().VM.set_name_label(session_on(d), vm, label)["Status"] == "Success"
    except (OSError, AssertionError):
        return False


def test_the_killed_master_restarts_as_a_member_of_the_new_one(pool):
    new, other, old = pool
    old.start()  # ready once its node knew the leader
    assert log_has(old, "the pool's dqlite database is led by") == 1
    assert log_has(old, "serving as the master") == 0
    # A node that comes back may take the lead (dqlite 1.11's Raft has no
    # pre-vote): then one more change of master, with the same steps.
    master = wait_until(lambda: settled(pool), what="the pool agreeing on its master")
    s = session_on(master)
    vm = ok(master.proxy().VM.get_all(s))[0]
    wait_until(lambda: write_on(old, vm, "from the old master"), what="a write through it")
    master = wait_until(lambda: settled(pool), what="the pool agreeing on its master")
    assert ok(master.proxy().VM.get_name_label(session_on(master), vm)) == "from the old master"


def test_a_deposed_master_cannot_write_and_rejoins_as_a_member(pool):
    master = wait_until(lambda: settled(pool), what="the pool agreeing on its master")
    others = [d for d in pool if d is not master]
    s = session_on(master)
    vm = ok(master.proxy().VM.get_all(s))[0]
    ok(master.proxy().VM.set_name_label(s, vm, "before the partition"))
    master.proc.send_signal(signal.SIGSTOP)  # a master cut off, not dead
    try:
        new = wait_until(lambda: next((d for d in others if master_of(d) == d.address), None),
                         timeout=30, what="a master elected without the stopped one")
    finally:
        master.proc.send_signal(signal.SIGCONT)
    # Its node lost the lead: the write fails in Raft, memory is undone, and
    # the caller is sent to the new master (or asked to wait while it
    # restarts as a member).
    try:
        reply = master.proxy().VM.set_name_label(s, vm, "from the deposed master")
    except OSError:
        reply = None  # restarting
    if reply is not None:
        assert reply["Status"] == "Failure", reply
        assert reply["ErrorDescription"] in (["HOST_IS_SLAVE", new.address],
                                             ["HOST_STILL_BOOTING"]), reply
    wait_until(lambda: log_has(master, "no longer leads"), what="the deposed master stepping down")
    now = wait_until(lambda: settled(pool), what="the pool agreeing on its master")
    assert ok(now.proxy().VM.get_name_label(session_on(now), vm)) == "before the partition"
    wait_until(lambda: write_on(master, vm, "from the member it became"),
               what="a write through the deposed master")
    now = wait_until(lambda: settled(pool), what="the pool agreeing on its master")
    assert ok(now.proxy().VM.get_name_label(session_on(now), vm)) == "from the member it became"


def host_ref(api, d):
    proxy, s = api
    return next(ref for ref, rec in ok(proxy.host.get_all_records(s)).items()
                if rec["address"] == d.address)


def test_designate_new_master_moves_the_role_with_no_loss(pool):
    master = wait_until(lambda: settled(pool), what="the pool agreeing on its master")
    proxy, s = master.proxy(), session_on(master)
    target = next(d for d in pool if d is not master)
    vm = ok(proxy.VM.get_all(s))[0]
    ok(proxy.VM.set_name_label(s, vm, "before the designation"))
    assert err_of(proxy.pool.designate_new_master(s, "OpaqueRef:nope")) == \
        ["HANDLE_INVALID", "host", "OpaqueRef:nope"]
    ok(proxy.pool.designate_new_master(s, host_ref((proxy, s), master)))  # itself: nothing
    ok(proxy.pool.designate_new_master(s, host_ref((proxy, s), target)))
    wait_until(lambda: settled(pool) is target, what="the designated host the master")
    ts = session_on(target)
    assert ok(target.proxy().VM.get_name_label(ts, vm)) == "before the designation"
    wait_until(lambda: write_on(master, vm, "through the old master"),
               what="a write through the old master, a member now")
    assert ok(target.proxy().VM.get_name_label(ts, vm)) == "through the old master"
    # recover_slaves: every other host follows this master already.
    others = {host_ref((target.proxy(), ts), d) for d in pool if d is not target}
    assert set(ok(target.proxy().pool.recover_slaves(ts))) == others


def raft_nodes(d):
    with open(d.log_path, "rb") as f:
        return f.read().decode(errors="replace").count("removed from the cluster")


def test_eject_removes_the_hosts_node_and_a_two_host_pool_recovers_by_emergency(pool):
    master = wait_until(lambda: settled(pool), what="the pool agreeing on its master")
    proxy, s = master.proxy(), session_on(master)
    ejected = next(d for d in pool if d is not master)
    survivor = next(d for d in pool if d is not master and d is not ejected)
    ok(proxy.pool.eject(s, host_ref((proxy, s), ejected)))
    wait_until(lambda: raft_nodes(master) == 1, what="the ejected host's node removed")

    def standalone():
        try:
            return ejected.proxy().session.login_with_password("root", PASSWORD)["Status"] == \
                "Success"
        except OSError:
            return False
    wait_until(standalone, what="the ejected host standalone")
    assert not os.path.exists(os.path.join(ejected.state_dir, "dqlite"))
    # Two hosts: the master's node alone votes (two voters would each need
    # the other), the survivor's stands by. The member's loss leaves the
    # master writing; back, it learns the leader from the voter.
    vm = ok(proxy.VM.get_all(s))[0]
    first = ok(proxy.VM.get_name_label(s, vm))
    survivor.kill9()
    ok(proxy.VM.set_name_label(s, vm, "without the member"))
    survivor.start()
    wait_until(lambda: write_on(survivor, vm, "before the loss"),
               what="a write through the member back")
    assert ok(proxy.VM.get_name_label(s, vm)) == "before the loss"
    # The master's loss leaves the member read-only (its writes cannot
    # reach a master), until pool.emergency_transition_to_master.
    ss = session_on(survivor)  # made while the master was there
    master.kill9()
    assert err_of(survivor.proxy().VM.set_name_label(ss, vm, "no master")) == \
        ["CANNOT_CONTACT_HOST", master.address]
    assert ok(survivor.proxy().VM.get_name_label(ss, vm)) == "before the loss"
    ok(survivor.proxy().pool.emergency_transition_to_master(ss))
    wait_until(lambda: master_of(survivor) == survivor.address, what="the survivor the master")
    s2 = session_on(survivor)
    # Its database is what its standby node held: Raft commits on the
    # voter alone, so the last writes may not have reached it (here the
    # ones made in the second after its restart, while the leader
    # redialled it), as XAPI's emergency master has what its last backup
    # held.
    assert ok(survivor.proxy().VM.get_name_label(s2, vm)) in \
        ("before the loss", "without the member", first)
    ok(survivor.proxy().VM.set_name_label(s2, vm, "after the emergency"))


@pytest.fixture
def two_hosts():
    yield from dqlite_pool((12, 13))


def test_designate_new_master_in_a_pool_of_two_hands_the_one_vote_over(two_hosts):
    """A pool of two has one voter, the master; designate_new_master makes
    the member's standby node vote, hands it the lead, and the old master
    stands by: it follows as a member, and the new master alone keeps the
    pool writable when the old one is killed."""
    master, member = two_hosts
    proxy, s = master.proxy(), session_on(master)
    vm = ok(proxy.VM.get_all(s))[0]
    ok(proxy.pool.designate_new_master(s, host_ref((proxy, s), member)))
    wait_until(lambda: settled(two_hosts) is member, what="the member the master")
    wait_until(lambda: write_on(master, vm, "through the old master"),
               what="a write through the old master, a member now")
    master.kill9()
    ms = session_on(member)
    ok(member.proxy().VM.set_name_label(ms, vm, "the old master dead"))
    assert ok(member.proxy().VM.get_name_label(ms, vm)) == "the old master dead"
    master.start()
    wait_until(lambda: settled(two_hosts) is member, what="the old master a member again")
