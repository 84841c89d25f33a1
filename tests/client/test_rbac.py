"""Users other than root: external authentication of type PAM with Linux
users and groups as subjects, their roles over the wire (every message
and HTTP handler, protected map keys), and the audit log. Real Linux
accounts (useradd, chpasswd; names prefixed xapidt), removed at the end.
Needs root (CI runs as root)."""
import base64
import hashlib
import http.client
import json
import os
import pwd
import grp
import subprocess
import xmlrpc.client

import pytest

from xapid_daemon import Daemon, REPO, ok, err, new_vm, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creates Linux users (needs root)")

USER_PASSWORD = "Pw-xapidt-1"
GROUP = "xapidt_ops"
USERS = {  # name: (role of its own subject, or None; supplementary group)
    "xapidt_ro": ("read-only", None),
    "xapidt_op": (None, GROUP),  # vm-operator through its group's subject
    "xapidt_va": ("vm-admin", None),
    "xapidt_pa": ("pool-admin", None),
    "xapidt_no": (None, None),  # no subject at all
    "xapidt_nr": ("", None),  # a subject with no role
}


def run(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def remove_accounts():
    for name in USERS:
        subprocess.run(["userdel", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["groupdel", GROUP], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def accounts():
    remove_accounts()  # a run killed before its cleanup
    try:
        run("groupadd", GROUP)
        for name, (_, group) in USERS.items():
            run("useradd", "-M", "-s", "/usr/sbin/nologin", *(["-G", group] if group else []),
                name)
        subprocess.run(["chpasswd"], check=True,
                       input="".join(f"{n}:{USER_PASSWORD}\n" for n in USERS).encode())
        yield
    finally:
        remove_accounts()


@pytest.fixture(scope="module")
def daemon(accounts):
    d = Daemon(extra_args=["--hypervisor", "sim", "--login-failure-delay", "1"])
    yield d
    d.stop()


def uid(name):
    return f"u{pwd.getpwnam(name).pw_uid}"


def gid(name):
    return f"g{grp.getgrnam(name).gr_gid}"


def role_ref(proxy, s, name):
    return ok(proxy.role.get_by_name_label(s, name))[0]


@pytest.fixture(scope="module")
def setup(daemon):
    """External authentication on, the subjects made, their roles given."""
    proxy, s = daemon.login()
    pool = ok(proxy.pool.get_all(s))[0]
    ok(proxy.pool.enable_external_auth(s, pool, {}, "xapidt", "PAM"))
    for name, (role, _) in USERS.items():
        if role is None:
            continue
        subject = ok(proxy.subject.create(s, {"subject_identifier": uid(name)}))
        if role:
            ok(proxy.subject.add_to_roles(s, subject, role_ref(proxy, s, role)))
    group = ok(proxy.subject.create(s, {"subject_identifier": gid(GROUP)}))
    ok(proxy.subject.add_to_roles(s, group, role_ref(proxy, s, "vm-operator")))
    return proxy, s


def login(daemon, name):
    proxy = daemon.proxy()
    return proxy, ok(proxy.session.login_with_password(name, USER_PASSWORD, "1.0", "test"))


def test_enable_refusals_and_auth_off(accounts):
    """Before enabling: no user logs in, auth answers AUTH_IS_DISABLED;
    enabling checks its type and that no host has it on already."""
    d = Daemon(extra_args=["--hypervisor", "sim", "--login-failure-delay", "1"])
    try:
        proxy, s = d.login()
        pool = ok(proxy.pool.get_all(s))[0]
        host = ok(proxy.host.get_all(s))[0]
        assert err(proxy.session.login_with_password("xapidt_pa", USER_PASSWORD))[0] == \
            "SESSION_AUTHENTICATION_FAILED"
        assert err(proxy.auth.get_subject_identifier(s, "xapidt_pa")) == ["AUTH_IS_DISABLED"]
        assert err(proxy.subject.create(s, {"subject_identifier": uid("xapidt_pa")})) == \
            ["AUTH_IS_DISABLED"]
        assert err(proxy.pool.enable_external_auth(s, pool, {}, "x", "LDAP")) == \
            ["AUTH_UNKNOWN_TYPE", "LDAP"]
        assert ok(proxy.host.get_external_auth_type(s, host)) == ""
        ok(proxy.pool.enable_external_auth(s, pool, {"k": "v"}, "xapidt", "PAM"))
        assert ok(proxy.host.get_external_auth_type(s, host)) == "PAM"
        assert ok(proxy.host.get_external_auth_service_name(s, host)) == "xapidt"
        assert ok(proxy.host.get_external_auth_configuration(s, host)) == {"k": "v"}
        assert err(proxy.pool.enable_external_auth(s, pool, {}, "xapidt", "PAM")) == \
            ["POOL_AUTH_ALREADY_ENABLED", host]
        ok(proxy.pool.disable_external_auth(s, pool, {}))
        ok(proxy.pool.disable_external_auth(s, pool, {}))  # off already: no error
        assert ok(proxy.host.get_external_auth_type(s, host)) == ""
        # one host's
        ok(proxy.host.enable_external_auth(s, host, {}, "one", "PAM"))
        assert err(proxy.host.enable_external_auth(s, host, {}, "two", "PAM")) == \
            ["AUTH_ALREADY_ENABLED", "PAM", "one"]
        assert ok(proxy.auth.get_subject_identifier(s, "xapidt_pa")) == uid("xapidt_pa")
        ok(proxy.host.disable_external_auth(s, host, {}))
        assert ok(proxy.host.get_external_auth_type(s, host)) == ""
    finally:
        d.stop()


def test_auth_questions(setup, daemon):
    proxy, s = setup
    assert ok(proxy.auth.get_subject_identifier(s, "xapidt_ro")) == uid("xapidt_ro")
    assert ok(proxy.auth.get_subject_identifier(s, GROUP)) == gid(GROUP)
    assert err(proxy.auth.get_subject_identifier(s, "xapidt_nobody")) == \
        ["SUBJECT_CANNOT_BE_RESOLVED"]
    info = ok(proxy.auth.get_subject_information_from_identifier(s, uid("xapidt_op")))
    assert info["subject-name"] == "xapidt_op" and info["subject-is-group"] == "false"
    assert info["subject-uid"] == uid("xapidt_op")
    ginfo = ok(proxy.auth.get_subject_information_from_identifier(s, gid(GROUP)))
    assert ginfo["subject-name"] == GROUP and ginfo["subject-is-group"] == "true"
    assert err(proxy.auth.get_subject_information_from_identifier(s, "u999999")) == \
        ["SUBJECT_CANNOT_BE_RESOLVED"]
    groups = ok(proxy.auth.get_group_membership(s, uid("xapidt_op")))
    assert gid(GROUP) in groups
    assert ok(proxy.auth.get_group_membership(s, gid(GROUP))) == [gid(GROUP)]


def test_subjects_and_roles(setup):
    proxy, s = setup
    assert err(proxy.subject.create(s, {"subject_identifier": uid("xapidt_ro")})) == \
        ["SUBJECT_ALREADY_EXISTS"]
    assert err(proxy.subject.create(s, {"subject_identifier": "u999999"})) == \
        ["SUBJECT_CANNOT_BE_RESOLVED"]
    by_sid = {r["subject_identifier"]: (ref, r)
              for ref, r in ok(proxy.subject.get_all_records(s)).items()}
    ref, record = by_sid[uid("xapidt_ro")]
    assert record["other_config"]["subject-name"] == "xapidt_ro"
    ro = role_ref(proxy, s, "read-only")
    assert record["roles"] == [ro]
    assert err(proxy.subject.add_to_roles(s, ref, ro)) == ["ROLE_ALREADY_EXISTS"]
    assert err(proxy.subject.add_to_roles(s, ref, "OpaqueRef:nope")) == ["ROLE_NOT_FOUND"]
    va = role_ref(proxy, s, "vm-admin")
    assert err(proxy.subject.remove_from_roles(s, ref, va)) == ["ROLE_NOT_FOUND"]
    perms = ok(proxy.subject.get_permissions_name_label(s, ref))
    assert "vm.get_record" in perms and "vm.start" not in perms
    assert "read-only" not in perms
    assert set(ok(proxy.role.get_permissions_name_label(s, ro))) == set(perms)
    holders = ok(proxy.role.get_by_permission_name_label(s, "vm.start"))
    names = {ok(proxy.role.get_name_label(s, r)) for r in holders}
    assert names == {"pool-admin", "pool-operator", "vm-power-admin", "vm-admin", "vm-operator"}
    key = ok(proxy.role.get_by_permission_name_label(s, "vm.add_to_other_config/key:pci"))
    assert [ok(proxy.role.get_name_label(s, r)) for r in key] == ["pool-admin"]
    # permissions are role records too, as XAPI's: the subroles of the roles
    subroles = ok(proxy.role.get_permissions(s, ro))
    assert subroles == ok(proxy.role.get_subroles(s, ro))
    labels = {ok(proxy.role.get_name_label(s, r)) for r in subroles}
    assert labels == set(perms)
    start = ok(proxy.role.get_by_name_label(s, "vm.start"))[0]
    assert ok(proxy.role.get_subroles(s, start)) == []
    assert {ok(proxy.role.get_name_label(s, r))
            for r in ok(proxy.role.get_by_permission(s, start))} == names
    assert err(proxy.subject.add_to_roles(s, ref, start)) == ["ROLE_NOT_FOUND"]


def test_logins(setup, daemon):
    proxy, s = setup
    p, ro = login(daemon, "xapidt_ro")
    record = ok(p.session.get_record(ro, ro))
    assert record["is_local_superuser"] is False
    assert record["auth_user_sid"] == uid("xapidt_ro")
    assert record["auth_user_name"] == "xapidt_ro"
    assert ok(p.subject.get_subject_identifier(ro, record["subject"])) == uid("xapidt_ro")
    perms = ok(p.session.get_rbac_permissions(ro, ro))
    assert perms[0] == "read-only" and "vm.get_record" in perms and "vm.start" not in perms
    # through the group's subject
    p2, op = login(daemon, "xapidt_op")
    record = ok(p2.session.get_record(op, op))
    assert ok(p2.subject.get_subject_identifier(op, record["subject"])) == gid(GROUP)
    assert "vm.start" in record["rbac_permissions"]
    refused = err(daemon.proxy().session.login_with_password("xapidt_ro", "wrong"))
    assert refused[:1] == ["SESSION_AUTHENTICATION_FAILED"] and refused[1] == "xapidt_ro"
    refused = err(daemon.proxy().session.login_with_password("xapidt_no", USER_PASSWORD))
    assert refused[:2] == ["SESSION_AUTHORIZATION_FAILED", "xapidt_no"]
    refused = err(daemon.proxy().session.login_with_password("xapidt_nr", USER_PASSWORD))
    assert refused[:2] == ["RBAC_PERMISSION_DENIED", "session.login_with_password"]
    # root still logs in with its own password
    daemon.login()
    assert uid("xapidt_ro") in ok(proxy.session.get_all_subject_identifiers(s))


def wire_value(t, enums):
    t = t.strip()
    if t.endswith(" ref"):
        return "OpaqueRef:NULL"
    if t.endswith(" set"):
        return []
    if t.endswith(" map") or t.endswith(" record"):
        return {}
    if t.startswith("enum "):
        t = t[len("enum "):]
    if t in enums:
        return enums[t][0]
    return {"string": "", "int": "0", "float": 0.0, "bool": False,
            "datetime": xmlrpc.client.DateTime("19700101T00:00:00Z")}[t]


def snapshot(proxy, s):
    return {cls: getattr(proxy, cls).get_all_records(s)["Value"]
            for cls in ("VM", "SR", "network", "pool", "subject", "VDI")}


def test_read_only_reads_everything_and_writes_nothing(setup, daemon):
    """The registry walk: every message whose roles exclude read-only is
    refused a read-only session, before its arguments are looked at;
    every get_all_records answers."""
    root_proxy, root = setup
    new_vm((root_proxy, root), "walk")
    proxy, ro = login(daemon, "xapidt_ro")
    listed = set(proxy.system.listMethods())
    dm = json.load(open(os.path.join(REPO, "idl", "datamodel.json")))
    enums = {e["name"]: e["values"] for c in dm["classes"] for e in c["enums"]}
    before = snapshot(root_proxy, root)
    denied = read = 0
    for c in dm["classes"]:
        for m in c["messages"]:
            wire = f"{c['name']}.{m['name']}"
            params = m["params"]
            if wire not in listed or not params or params[0]["name"] != "session_id":
                continue
            if "read-only" in m["roles"]:
                if m["name"] == "get_all_records":
                    ok(getattr(proxy, wire)(ro))
                    read += 1
                continue
            args = [wire_value(p["type"], enums) for p in params[1:]]
            reply = getattr(proxy, wire)(ro, *args)
            assert reply["Status"] == "Failure", (wire, reply)
            e = reply["ErrorDescription"]
            assert e[0] == "RBAC_PERMISSION_DENIED" and e[1] == wire.lower(), (wire, e)
            denied += 1
    assert denied > 300 and read > 30, (denied, read)
    assert snapshot(root_proxy, root) == before
    # Async forms are refused too
    e = err(getattr(proxy, "Async.VM.start")(ro, "OpaqueRef:NULL", False, False))
    assert e[:2] == ["RBAC_PERMISSION_DENIED", "vm.start"]


def test_vm_operator(setup, daemon):
    root_proxy, root = setup
    vm = new_vm((root_proxy, root), "op-vm")
    proxy, op = login(daemon, "xapidt_op")
    ok(proxy.VM.start(op, vm, False, False))
    assert ok(proxy.VM.get_power_state(op, vm)) == "Running"
    ok(proxy.VM.hard_shutdown(op, vm))
    e = err(proxy.SR.create(op, "OpaqueRef:NULL", {}, "0", "sr", "", "file", "", False, {}))
    assert e == ["RBAC_PERMISSION_DENIED", "sr.create",
                 "No permission in user session. (Roles with this permission: pool-admin, "
                 "pool-operator)"]
    # per-key permissions on the map (XSA-489)
    ok(proxy.VM.add_to_other_config(op, vm, "folder", "/mine"))
    ok(proxy.VM.add_to_other_config(op, vm, "XenCenter.CustomFields.colour", "red"))
    ok(proxy.VM.remove_from_other_config(op, vm, "folder"))
    e = err(proxy.VM.add_to_other_config(op, vm, "pci", "0/0000:00:01.0"))
    assert e[:2] == ["RBAC_PERMISSION_DENIED", "vm.add_to_other_config/key:pci"]
    assert "pool-admin)" in e[2]
    e = err(proxy.VM.add_to_other_config(op, vm, "mine", "x"))
    assert e[:2] == ["RBAC_PERMISSION_DENIED", "vm.add_to_other_config"]
    e = err(proxy.VM.add_to_platform(op, vm, "hvm_serial", "pty"))
    assert e[:2] == ["RBAC_PERMISSION_DENIED", "vm.add_to_platform/key:hvm_serial"]
    other = ok(root_proxy.VM.get_other_config(root, vm))
    assert "pci" not in other and "mine" not in other and "folder" not in other
    # another session's task: task.destroy/any
    task = ok(root_proxy.task.create(root, "root's", ""))
    e = err(proxy.task.destroy(op, task))
    assert e[:2] == ["RBAC_PERMISSION_DENIED", "task.destroy/any"]
    ok(root_proxy.task.destroy(root, task))


def test_vm_admin_set_of_protected_map(setup, daemon):
    """set_other_config may keep a protected entry as it is, not change,
    add or remove one (XAPI's set_map_with_rbac)."""
    root_proxy, root = setup
    vm = new_vm((root_proxy, root), "va-vm")
    ok(root_proxy.VM.add_to_other_config(root, vm, "pci", "0/0000:00:02.0"))
    proxy, va = login(daemon, "xapidt_va")
    kept = ok(proxy.VM.get_other_config(va, vm))
    ok(proxy.VM.set_other_config(va, vm, dict(kept, note="free")))
    e = err(proxy.VM.set_other_config(va, vm, dict(kept, pci="0/0000:00:03.0")))
    assert e[:2] == ["RBAC_PERMISSION_DENIED", "vm.add_to_other_config/key:pci"]
    without = {k: v for k, v in kept.items() if k != "pci"}
    e = err(proxy.VM.set_other_config(va, vm, without))
    assert e[:2] == ["RBAC_PERMISSION_DENIED", "vm.remove_from_other_config/key:pci"]
    assert ok(root_proxy.VM.get_other_config(root, vm))["pci"] == "0/0000:00:02.0"


def http_get(daemon, path, user=None, password=None):
    c = http.client.HTTPConnection(daemon.address, daemon.port, timeout=30)
    headers = {}
    if user:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    c.request("GET", path, headers=headers)
    r = c.getresponse()
    body = r.read().decode(errors="replace")
    c.close()
    return r.status, body


def test_pool_admin_and_http(setup, daemon):
    root_proxy, root = setup
    vm = new_vm((root_proxy, root), "pa-vm")
    proxy, pa = login(daemon, "xapidt_pa")
    ok(proxy.VM.add_to_other_config(pa, vm, "pci", "0/0000:00:04.0"))
    pool = ok(proxy.pool.get_all(pa))[0]
    ok(proxy.pool.set_name_label(pa, pool, "pool of pa"))
    p_ro, ro = login(daemon, "xapidt_ro")
    status, _ = http_get(daemon, f"/export?session_id={ro}&ref={vm}")
    assert status == 403  # http/get_export is vm-admin and above
    status, _ = http_get(daemon, f"/audit_log?session_id={ro}")
    assert status == 200  # http/get_audit_log: every role, as XAPI
    status, _ = http_get(daemon, "/audit_log?session_id=OpaqueRef:nope")
    assert status == 401
    # HTTP basic auth logs a PAM user in for the request
    assert http_get(daemon, "/audit_log", "xapidt_ro", USER_PASSWORD)[0] == 200
    assert http_get(daemon, "/audit_log", "xapidt_ro", "wrong")[0] == 401
    assert http_get(daemon, f"/export?ref={vm}", "xapidt_ro", USER_PASSWORD)[0] == 403


def audit_lines(daemon, s, marker):
    status, body = http_get(daemon, f"/audit_log?session_id={s}")
    assert status == 200
    return [line for line in body.splitlines() if marker in line]


def test_audit_log(setup, daemon):
    """One line per side-effecting call (allowed, denied, failed), none
    for reads; objects named by name, uuid and ref, as XAPI's."""
    root_proxy, root = setup
    vm = new_vm((root_proxy, root), "audit-vm")
    other = new_vm((root_proxy, root), "audit-other")
    proxy, pa = login(daemon, "xapidt_pa")
    ok(proxy.VM.set_name_label(pa, vm, "audit-renamed"))
    ok(proxy.VM.get_record(pa, vm))  # a read: not in the log
    p_ro, ro = login(daemon, "xapidt_ro")
    err(p_ro.VM.set_name_label(ro, other, "x"))
    err(proxy.VM.set_name_description(pa, "OpaqueRef:gone", "x"))
    allowed = audit_lines(daemon, pa, f"'{vm}'")
    assert len(allowed) == 1, allowed
    line = allowed[0]
    assert line.startswith("[") and "|audit] ('trackid=" in line
    assert f"'{uid('xapidt_pa')}' 'xapidt_pa' 'ALLOWED' 'OK' 'API' 'VM.set_name_label'" in line
    uuid = ok(root_proxy.VM.get_uuid(root, vm))
    assert f"(('self' 'audit-vm' '{uuid}' '{vm}'))" in line  # named as it was before
    denied = audit_lines(daemon, pa, f"'{other}'")
    assert len(denied) == 1, denied
    assert f"'{uid('xapidt_ro')}' 'xapidt_ro' 'DENIED' '' 'API' 'VM.set_name_label'" in denied[0]
    failed = audit_lines(daemon, pa, "'OpaqueRef:gone'")
    assert len(failed) == 1 and "'ALLOWED' 'ERROR:HANDLE_INVALID'" in failed[0], failed
    assert not audit_lines(daemon, pa, "'VM.get_record'")
    # an Async call: its line once the task is made
    doomed = new_vm((root_proxy, root), "audit-doomed")
    task = ok(getattr(proxy, "Async.VM.destroy")(pa, doomed))
    wait_until(lambda: ok(proxy.task.get_status(pa, task)) != "pending", what="the destroy")
    async_lines = audit_lines(daemon, pa, f"'{doomed}'")
    assert len(async_lines) == 1 and "'ALLOWED' 'OK' 'API' 'VM.destroy'" in async_lines[0]
    assert "'audit-doomed'" in async_lines[0]
    # a subject's login and logout: session.create, session.destroy
    p_va, va = login(daemon, "xapidt_va")
    ok(p_va.session.logout(va))
    trackid = f"'trackid={hashlib.md5(va.encode()).hexdigest()}'"
    ends = audit_lines(daemon, pa, trackid)
    assert len(ends) == 2, ends
    assert "'ALLOWED' 'OK' 'API' 'session.create' (('uname' 'xapidt_va' '' '') " \
        "('originator' 'test' '' ''))" in ends[0]
    assert "'session.destroy' (('originator' 'test' '' ''))" in ends[1]
    with open(os.path.join(daemon.state_dir, "audit.log")) as f:
        assert sum(f"'{vm}'" in line for line in f) == 1
    status, body = http_get(daemon, f"/audit_log?session_id={pa}&since=2999-01-01")
    assert status == 200 and body == ""


def test_logout_subject_identifier_and_disable(setup, daemon):
    root_proxy, root = setup
    p_ro, ro = login(daemon, "xapidt_ro")
    p_pa, pa = login(daemon, "xapidt_pa")
    ok(p_pa.session.logout_subject_identifier(pa, uid("xapidt_ro")))
    assert err(p_ro.VM.get_all(ro))[0] == "SESSION_INVALID"
    ok(p_pa.VM.get_all(pa))  # the caller's own session stays
    p_op, op = login(daemon, "xapidt_op")
    pool = ok(root_proxy.pool.get_all(root))[0]
    ok(root_proxy.pool.disable_external_auth(root, pool, {}))
    assert err(p_op.VM.get_all(op))[0] == "SESSION_INVALID"
    assert err(p_pa.VM.get_all(pa))[0] == "SESSION_INVALID"
    assert err(daemon.proxy().session.login_with_password("xapidt_pa", USER_PASSWORD))[0] == \
        "SESSION_AUTHENTICATION_FAILED"
    ok(root_proxy.VM.get_all(root))
    ok(root_proxy.pool.enable_external_auth(root, pool, {}, "xapidt", "PAM"))
