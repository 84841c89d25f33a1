"""A member's local login when its master is gone (XAPI's emergency mode):
two sim daemons on 127.0.0.18 (master) and .19. After kill -9 of the
master, session.slave_local_login_with_password on the member still
answers (a session of the member alone, as XAPI's local sessions), a
wrong password is still refused, the session reads the replica, a write
with it fails with CANNOT_CONTACT_HOST, session.logout ends one there; when the
master is back the member's resync drops them and its local logins are
the pool's sessions again."""

import pytest

from test_pool import pool_of_two
from xapid_daemon import PASSWORD, err, new_vm, ok, wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def pool():
    with pool_of_two(18, 19) as hosts:
        yield hosts


def test_a_member_logs_in_locally_without_its_master(pool):
    master, b = pool
    proxy, s = master.login()
    vm = new_vm((proxy, s), "read on the member")
    bs = ok(b.proxy().session.slave_local_login_with_password("root", PASSWORD))
    wait_until(lambda: vm in ok(b.proxy().VM.get_all(bs)), what="the VM in the replica")
    master.kill9()
    local = ok(b.proxy().session.slave_local_login_with_password("root", PASSWORD))
    assert err(b.proxy().session.slave_local_login_with_password("root", "wrong"))[0] == \
        "SESSION_AUTHENTICATION_FAILED"
    assert ok(b.proxy().VM.get_name_label(local, vm)) == "read on the member"
    assert len(ok(b.proxy().host.get_all(local))) == 2
    assert err(b.proxy().VM.set_name_label(local, vm, "no master")) == \
        ["CANNOT_CONTACT_HOST", master.address]
    assert b.log_tail().count("a local session of this host") >= 1
    other = ok(b.proxy().session.slave_local_login_with_password("root", PASSWORD))
    ok(b.proxy().session.logout(other))
    assert err(b.proxy().VM.get_all(other))[0] == "SESSION_INVALID"
    # The master back: the member's stream resyncs (a restarted master's
    # changes start anew), which drops its local sessions; its next local
    # login is the pool's again.
    master.start()
    proxy, s = master.login()
    wait_until(lambda: b.proxy().VM.get_all(local)["Status"] == "Failure",
               what="the local session dropped at the resync")

    def pool_session():
        reply = b.proxy().session.slave_local_login_with_password("root", PASSWORD)
        return reply["Status"] == "Success" and \
            proxy.session.get_uuid(s, reply["Value"])["Status"] == "Success"
    wait_until(pool_session, what="a local login written at the master")
