"""A dqlite pool keeps three voters when a voter's host dies: four sim
daemons on 127.0.0.12-.15 with --pool-dqlite (the master and the first
two members vote, the third stands by). kill -9 of a voting member: once
the master counts it dead (--member-timeout) the standby votes in its
place, so that after kill -9 of the other voting member the pool still
has a quorum (the master and the former standby) and takes writes, which
the former standby's replica shows."""
import os
import shutil

import pytest

from test_pool import join, login_member
from test_pool_failover import dqlite_host, log_has
from xapid_daemon import free_port, new_vm, ok, wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def pool():
    port = free_port()
    hosts = [dqlite_host(f"127.0.0.{n}", port) for n in (12, 13, 14, 15)]
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
