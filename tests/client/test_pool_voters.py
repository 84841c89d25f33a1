"""A dqlite pool keeps three voters when a voter's host dies: four sim
daemons on 127.0.0.12-.15 with --pool-dqlite (the master and the first
two members vote, the third stands by). kill -9 of a voting member: once
the master counts it dead (--member-timeout) the standby votes in its
place, so that after kill -9 of the other voting member the pool still
has a quorum (the master and the former standby) and takes writes, which
the former standby's replica shows. And four more on 127.0.0.56-.59
(--member-timeout 60): a write shipped to a master that passed the
role on goes to the new one; the standby follows a new master when the
old one stops answering (SIGSTOP) and after kill -9 of the master,
as every survivor does."""
import signal
import threading

import pytest

from test_pool import login_member
from test_pool_failover import (dqlite_pool, host_ref, log_has, master_of, session_on, settled,
                                write_on)
from xapid_daemon import new_vm, ok, wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture  # one test: stopped before the next pool starts
def pool():
    yield from dqlite_pool((12, 13, 14, 15))


def test_a_standby_votes_in_place_of_a_dead_voter(pool):
    master, voter1, voter2, standby = pool
    proxy, s = master.login()
    vm = new_vm((proxy, s), "before")
    voter1.kill9()
    wait_until(lambda: log_has(master, f"the dqlite voter of {voter1.address} is dead: node"),
               timeout=30, what="the standby voting in the dead voter's place")
    voter2.kill9()
    # Two live voters of three: the pool still writes.
    ok(proxy.VM.set_name_label(s, vm, "after two deaths"))
    ms = login_member(standby)
    wait_until(lambda: ok(standby.proxy().VM.get_name_label(ms, vm)) == "after two deaths",
               what="the write in the former standby's replica")
    # The second dead host's node voted too, and no standby is left.
    wait_until(lambda: log_has(master, f"the dqlite voter of {voter2.address} is dead and no "
                                       "live standby"),
               timeout=30, what="the second death seen")
    ok(proxy.VM.set_name_label(s, vm, "still writing"))


@pytest.fixture(scope="module")
def slow_pool():
    """Four hosts on 127.0.0.56-.59 whose master counts a host dead only
    after 60 s: no standby takes a dead voter's vote during the tests, so
    the standby (.59) stays one."""
    yield from dqlite_pool((56, 57, 58, 59), member_timeout=60)


def test_a_write_shipped_to_a_master_no_longer_one_goes_to_the_new_master(slow_pool):
    """The standby frozen (SIGSTOP) while the master role moves: its
    role still names the old master, which answers its commit 409
    HOST_IS_SLAVE [new master]; the write goes there (before, the
    caller got INTERNAL_ERROR)."""
    old, new, _, standby = slow_pool
    proxy, s = old.login()
    vm = new_vm((proxy, s), "before the move")
    ss = login_member(standby)
    wait_until(lambda: ok(standby.proxy().VM.get_name_label(ss, vm)) == "before the move",
               what="the VM in the standby's replica")
    standby.proc.send_signal(signal.SIGSTOP)
    try:
        ok(proxy.pool.designate_new_master(s, host_ref((proxy, s), new)))
        wait_until(lambda: master_of(old) == new.address, what="the old master a member")
        replies = []
        writer = threading.Thread(target=lambda: replies.append(
            standby.proxy().VM.set_name_label(ss, vm, "from the standby")))
        writer.start()  # its request waits in the frozen host's socket
    finally:
        standby.proc.send_signal(signal.SIGCONT)
    writer.join(60)
    assert replies and replies[0]["Status"] == "Success", replies
    ns = session_on(new)
    assert ok(new.proxy().VM.get_name_label(ns, vm)) == "from the standby"
    wait_until(lambda: master_of(standby) == new.address, what="the standby following")


def test_a_standby_follows_when_its_master_stops_answering(slow_pool):
    """The master frozen (SIGSTOP: no connection is refused or reset,
    the standby's poll just waits): the voters elect another, which tells
    the standby; it follows, and its write reaches the new master. The
    frozen one, thawed, is deposed and rejoins as a member."""
    master = wait_until(lambda: settled(slow_pool), what="the pool agreeing on its master")
    standby = slow_pool[3]
    others = [d for d in slow_pool if d is not master]
    ss = login_member(standby)
    vm = ok(standby.proxy().VM.get_all(ss))[0]
    master.proc.send_signal(signal.SIGSTOP)
    try:
        new = wait_until(lambda: next((d for d in others if master_of(d) == d.address), None),
                         timeout=30, what="a master elected without the frozen one")
        assert new is not standby
        wait_until(lambda: master_of(standby) == new.address, what="the standby following")
        ok(standby.proxy().VM.set_name_label(ss, vm, "while the old master is frozen"))
    finally:
        master.proc.send_signal(signal.SIGCONT)
    assert ok(new.proxy().VM.get_name_label(session_on(new), vm)) == \
        "while the old master is frozen"
    wait_until(lambda: settled(slow_pool), what="the pool agreeing on its master")


def test_every_standby_follows_a_new_master_after_kill9(slow_pool):
    """kill -9 of the master: the voters elect one of themselves, and the
    standby, whose dqlite node never names a leader, follows it too (it
    asks the voters; the new master also tells it); its writes go
    there."""
    master = wait_until(lambda: settled(slow_pool), what="the pool agreeing on its master")
    standby = slow_pool[3]
    survivors = [d for d in slow_pool if d is not master]
    s = session_on(master)
    vm = ok(master.proxy().VM.get_all(s))[0]
    master.kill9()
    new = wait_until(lambda: settled(survivors), timeout=60,
                     what="every survivor naming one new master")
    assert new is not standby
    wait_until(lambda: write_on(standby, vm, "after the kill"), what="a write through the standby")
    assert ok(new.proxy().VM.get_name_label(session_on(new), vm)) == "after the kill"
    # It followed as a standby: no dead voter was replaced (60 s).
    assert log_has(new, "votes in its place") == 0
