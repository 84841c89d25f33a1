"""A pool of three sim daemons on 127.0.0.4, .5 and .6 with --pool-dqlite:
the master founds the pool's dqlite database from its xapid.db at the
first join, each member's node is added through the pool tunnel on the
HTTP port, writes at the master commit through Raft and reach every
member's replica, and each member's node holds the Raft log."""
import os
import shutil
import tempfile

import pytest

from xapid_daemon import Daemon, free_port, new_vm, ok, wait_until
from test_pool import join, login_member

pytestmark = pytest.mark.timeout(120)


def dqlite_host(address, port):
    state = tempfile.mkdtemp(prefix="xapid-dqlite-")
    return Daemon(state_dir=state, listen=f"{address}:{port}",
                  extra_args=["--hypervisor", "sim", "--member-timeout", "3", "--pool-dqlite",
                              "--unix", os.path.join(state, "xapi.sock")])


def log_has(d, text):
    with open(d.log_path, "rb") as f:
        return f.read().decode(errors="replace").count(text)


def raft_files(d):
    path = os.path.join(d.state_dir, "dqlite")
    return [n for n in os.listdir(path) if n != "node-id"] if os.path.isdir(path) else []


@pytest.fixture(scope="module")
def pool():
    port = free_port()
    hosts = [dqlite_host(f"127.0.0.{n}", port) for n in (4, 5, 6)]
    yield hosts
    for d in hosts:
        d.stop()
        if not os.environ.get("XAPID_KEEP_STATE"):
            shutil.rmtree(d.state_dir, ignore_errors=True)


def test_the_master_founds_dqlite_and_members_replicate(pool):
    master, b, c = pool
    proxy, s = master.login()
    before = new_vm((proxy, s), "before the pool")
    # Each member's node is added at the master (the first add founds).
    for n, member in enumerate((b, c)):
        join(member, master)
        wait_until(lambda: log_has(master, ") added") >= n + 1,
                   what=f"{member.address}'s node added at the master")
    assert log_has(master, "pool: founded the pool's dqlite database from xapid.db") == 1
    assert log_has(master, "db: the database now lives in dqlite") == 1
    proxy, s = master.login()
    after = new_vm((proxy, s), "after the pool")
    ok(proxy.VM.set_name_label(s, before, "renamed in dqlite"))
    for member in (b, c):
        wait_until(lambda: raft_files(member), what=f"{member.address}'s node holds the log")
        ms = login_member(member)
        wait_until(lambda: ok(member.proxy().VM.get_name_label(ms, before)) == "renamed in dqlite",
                   what="the write in the member's replica")
        assert ok(member.proxy().VM.get_name_label(ms, after)) == "after the pool"
    # A write made on a member goes to the master and commits in dqlite.
    ms = login_member(b)
    ok(b.proxy().VM.set_name_label(ms, after, "from a member"))
    assert ok(proxy.VM.get_name_label(s, after)) == "from a member"
