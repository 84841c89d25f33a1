"""host.call_plugin against real plugins in a temporary plugin dir: a
Python one that uses only xapid's shipped XenAPIPlugin/XenAPI modules and
calls back into xapid, a shell one, plugins that raise Failure or another
exception, exit non-zero, die of a signal, hang (killed at the time
limit, with what they started), flood their output, print garbage or a
fault; the built-in echo; Async.host.call_plugin and its cancel; the
plugin's own session; extensions."""
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import xmlrpc.client

import pytest

from xapid_daemon import REPO, Daemon, err, ok, wait_until

TIME_LIMIT = 3
OUTPUT_LIMIT = 65536
CALL = "<methodCall><methodName>"

PLUGINS = {
    # Python, with only the shipped modules: reads its host record through
    # the session it was given, and logs in over the unix socket itself.
    "py_host": """\
        #!/usr/bin/env python3
        import sys
        import XenAPI
        import XenAPIPlugin

        def host_record(session, args):
            host = session.xenapi.session.get_this_host(session._session)
            return session.xenapi.host.get_record(host)["uuid"]

        def local_login(session, args):
            local = XenAPI.xapi_local()
            local.xenapi.login_with_password(args.get("user", "someone"), "")
            try:
                host = local.xenapi.host.get_all()[0]
                user = local.xenapi.session.get_auth_user_name(local._session)
                return user + " " + local.xenapi.host.get_uuid(host)
            finally:
                local.xenapi.session.logout()

        def my_session(session, args):
            return session._session

        def raise_failure(session, args):
            raise XenAPIPlugin.Failure("MY_PLUGIN_ERROR", ["one", args.get("two", "")])

        def raise_other(session, args):
            raise ValueError("boom " + args.get("x", ""))

        def call_failure(session, args):
            return session.xenapi.VM.get_record("OpaqueRef:nothing")

        def to_stderr(session, args):
            sys.stderr.write(args["marker"] + "\\n")
            return "written"

        XenAPIPlugin.dispatch({"host_record": host_record, "local_login": local_login,
                               "my_session": my_session, "raise_failure": raise_failure,
                               "raise_other": raise_other, "call_failure": call_failure,
                               "to_stderr": to_stderr})
        """,
    # Shell: answers with what it was given (argc and the call's start).
    "shell": """\
        #!/bin/sh
        case "$1" in
          "<methodCall><methodName>hello</methodName><params><param><value>OpaqueRef:"*) ok=call-ok ;;
          *) ok=call-bad ;;
        esac
        printf '<methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name><value>argc=%s %s</value></member></struct></value></param></params></methodResponse>' "$#" "$ok"
        """,
    "nonzero": """\
        #!/bin/sh
        echo partial output
        echo something failed >&2
        exit 3
        """,
    "signal": """\
        #!/bin/sh
        kill -TERM $$
        """,
    "stop": """\
        #!/bin/sh
        echo stopping
        kill -STOP $$
        """,
    # Starts a child of its own, notes its pid, and waits for ever.
    "hang": """\
        #!/bin/sh
        sleep 1000 &
        echo $! > "$(dirname "$0")/../hang.pid"
        echo started
        wait
        """,
    "flood": """\
        #!/bin/sh
        exec yes
        """,
    "garbage": """\
        #!/bin/sh
        echo this is not XML
        """,
    "fault": """\
        #!/bin/sh
        printf '<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>42</int></value></member><member><name>faultString</name><value>bad things</value></member></struct></value></fault></methodResponse>'
        """,
    # Waits for a gate file, so that a test can act while it runs.
    "gate": """\
        #!/bin/sh
        while [ ! -e "$(dirname "$0")/../gate" ]; do sleep 0.01; done
        printf '<methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name><value>gate open</value></member></struct></value></param></params></methodResponse>'
        """,
}

EXTENSIONS = {
    # Reads the XML-RPC call on stdin and answers with its method and params.
    "ext_echo": """\
        #!/usr/bin/env python3
        import sys
        import xmlrpc.client
        assert sys.argv[1:] == ["--xmlrpc"], sys.argv
        params, method = xmlrpc.client.loads(sys.stdin.read())
        print(xmlrpc.client.dumps(({"Status": "Success",
                                    "Value": "%s %r" % (method, params)},), methodresponse=True))
        """,
    # Answers without reading its input.
    "ext_noread": """\
        #!/bin/sh
        printf '<methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name><value>not read</value></member></struct></value></param></params></methodResponse>'
        """,
    "ext_nonzero": """\
        #!/bin/sh
        echo out; echo err >&2; exit 1
        """,
    "ext_garbage": """\
        #!/bin/sh
        echo garbage
        """,
    "ext_bad_error": """\
        #!/bin/sh
        printf '<methodResponse><params><param><value><struct><member><name>Status</name><value>Failure</value></member><member><name>ErrorDescription</name><value><array><data><value><int>1</int></value></data></array></value></member></struct></value></param></params></methodResponse>'
        """,
    "ext_fail": """\
        #!/usr/bin/env python3
        import xmlrpc.client
        print(xmlrpc.client.dumps(({"Status": "Failure",
                                    "ErrorDescription": ["EXT_ERROR", "p"]},), methodresponse=True))
        """,
}


def write_scripts(directory, scripts):
    os.makedirs(directory, exist_ok=True)
    for name, text in scripts.items():
        path = os.path.join(directory, name)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))
        os.chmod(path, 0o755)


@pytest.fixture(scope="module")
def env():
    top = tempfile.mkdtemp(prefix="xapid-plugins-")
    plugin_dir = os.path.join(top, "plugins")
    extension_dir = os.path.join(top, "extensions")
    write_scripts(plugin_dir, PLUGINS)
    write_scripts(extension_dir, EXTENSIONS)
    os.mkdir(os.path.join(plugin_dir, "a_directory"))
    sock = os.path.join(top, "xapi.sock")
    d = Daemon(extra_args=["--hypervisor", "sim", "--unix", sock, "--plugin-dir", plugin_dir,
                           "--extension-dir", extension_dir,
                           "--plugin-time-limit", str(TIME_LIMIT),
                           "--plugin-output-limit", str(OUTPUT_LIMIT)])
    api, s = d.login()
    host = ok(api.host.get_all(s))[0]
    yield {"daemon": d, "api": api, "s": s, "host": host, "top": top}
    d.stop()
    shutil.rmtree(top, ignore_errors=True)


def call(env, plugin, fn, args=None):
    return env["api"].host.call_plugin(env["s"], env["host"], plugin, fn, args or {})


def test_echo_is_built_in(env):
    assert ok(call(env, "echo", "main", {"a": "b"})) == "args were: {'a': 'b'}"
    assert ok(call(env, "echo", "main", {})) == "args were: {}"
    # XML-special characters travel both ways
    assert ok(call(env, "echo", "main", {"k<&>": "v\"'<"})) == "args were: {'k<&>': 'v\"\\'<'}"
    assert ok(call(env, "echo", "main", {"sleep": "0"})) == "args were: {'sleep': '0'}"


def test_python_plugin_calls_back_into_xapid(env):
    uuid = ok(env["api"].host.get_uuid(env["s"], env["host"]))
    assert ok(call(env, "py_host", "host_record")) == uuid
    # xapi_local() logs in over the unix socket with any user and no password
    assert ok(call(env, "py_host", "local_login", {"user": "anybody"})) == "anybody " + uuid


def test_plugin_gets_a_session_of_its_own_that_ends_with_it(env):
    api, s = env["api"], env["s"]
    theirs = ok(call(env, "py_host", "my_session"))
    assert theirs.startswith("OpaqueRef:") and theirs != s
    assert err(api.session.get_uuid(s, theirs))[0] == "HANDLE_INVALID"
    assert err(api.session.get_uuid(theirs, theirs))[0] == "SESSION_INVALID"


def test_shell_plugin_gets_the_call_in_argv1(env):
    assert ok(call(env, "shell", "hello", {"x": "y"})) == "argc=1 call-ok"


def test_failure_raised_is_the_plugins_own_error(env):
    assert err(call(env, "py_host", "raise_failure", {"two": "2"})) == ["MY_PLUGIN_ERROR", "one", "2"]
    # an error of a call the plugin made, not caught, is its failure too
    e = err(call(env, "py_host", "call_failure"))
    assert e[:3] == ["XENAPI_PLUGIN_FAILURE", "call_failure", "Failure"]


def test_other_exception_and_unknown_function(env):
    assert err(call(env, "py_host", "raise_other", {"x": "1"})) == \
        ["XENAPI_PLUGIN_FAILURE", "raise_other", "ValueError", "boom 1"]
    assert err(call(env, "py_host", "nothing_such")) == \
        ["UNKNOWN_XENAPI_PLUGIN_FUNCTION", "nothing_such"]


def test_non_zero_exit_and_signal(env):
    assert err(call(env, "nonzero", "main")) == \
        ["XENAPI_PLUGIN_FAILURE", "non-zero exit", "partial output\n", "something failed\n"]
    assert err(call(env, "signal", "main")) == ["XENAPI_PLUGIN_FAILURE", "signal: SIGTERM", "", ""]
    # a stopped plugin is killed at once, as XAPI reports it
    e = err(call(env, "stop", "main"))
    assert e[:2] == ["XENAPI_PLUGIN_FAILURE", "task stopped"] and e[2] in ("", "stopping\n")


def test_garbage_and_fault(env):
    e = err(call(env, "garbage", "main"))
    assert e[:3] == ["XENAPI_PLUGIN_FAILURE", "failed to parse plugin output", "this is not XML\n"]
    assert len(e) == 4 and e[3]
    assert err(call(env, "fault", "main")) == ["XENAPI_PLUGIN_FAILURE", "fault", "42", "bad things"]


def test_hanging_plugin_is_killed_with_its_children(env):
    pid_file = os.path.join(env["top"], "hang.pid")
    e = err(call(env, "hang", "main"))
    assert e == ["XENAPI_PLUGIN_FAILURE", f"time limit exceeded: killed after {TIME_LIMIT} s",
                 "started\n", ""]
    child = int(open(pid_file).read())

    def gone():
        try:
            with open(f"/proc/{child}/stat") as f:
                return f.read().split(") ")[1][0] == "Z"  # a zombie left for init
        except FileNotFoundError:
            return True
    wait_until(gone, what="the plugin's child to be killed")


def test_flood_is_killed_at_the_output_cap(env):
    e = err(call(env, "flood", "main"))
    assert e[:2] == ["XENAPI_PLUGIN_FAILURE",
                     f"output limit exceeded: killed after {OUTPUT_LIMIT} bytes"]
    assert len(e[2]) == OUTPUT_LIMIT and e[2].startswith("y\ny\n")


def test_missing_plugins(env):
    for name in ["no_such_plugin", "../plugins/shell", "shell/", ".", "..", "",
                 "/bin/true", "a_directory/x"]:
        assert err(call(env, name, "main")) == ["XENAPI_MISSING_PLUGIN", name], name
    # an entry that cannot run is the plugin's failure, not a missing one
    e = err(call(env, "a_directory", "main"))
    assert e[:2] == ["XENAPI_PLUGIN_FAILURE", "non-zero exit"]


def test_plugin_stderr_reaches_the_log(env):
    marker = "plugin-stderr-marker-%d" % os.getpid()
    assert ok(call(env, "py_host", "to_stderr", {"marker": marker})) == "written"
    assert marker in ok(env["api"].host.get_log(env["s"], env["host"]))


def wait_task(api, s, task):
    def finished():
        record = ok(api.task.get_record(s, task))
        return record if record["status"] not in ("pending", "cancelling") else None
    return wait_until(finished, what="the task to finish")


def test_async_call_plugin(env):
    api, s, host = env["api"], env["s"], env["host"]
    task = ok(api.Async.host.call_plugin(s, host, "echo", "main", {"q": "r"}))
    record = wait_task(api, s, task)
    assert record["status"] == "success"
    assert record["result"] == "<value>args were: {'q': 'r'}</value>"
    task = ok(api.Async.host.call_plugin(s, host, "py_host", "raise_failure", {}))
    record = wait_task(api, s, task)
    assert record["status"] == "failure" and record["error_info"] == ["MY_PLUGIN_ERROR", "one", ""]


def test_no_database_lock_while_a_plugin_runs(env):
    api, s, host = env["api"], env["s"], env["host"]
    gate = os.path.join(env["top"], "gate")
    task = ok(api.Async.host.call_plugin(s, host, "gate", "main", {}))
    # the plugin is waiting: writes go through meanwhile
    net = ok(api.network.create(s, {"name_label": "written while a plugin runs"}))
    ok(api.network.set_name_description(s, net, "still running"))
    assert ok(api.task.get_status(s, task)) == "pending"
    open(gate, "w").close()
    try:
        record = wait_task(api, s, task)
        assert record["status"] == "success" and record["result"] == "<value>gate open</value>"
    finally:
        os.unlink(gate)
        ok(api.network.destroy(s, net))


def test_cancel_kills_the_plugin(env):
    api, s, host = env["api"], env["s"], env["host"]
    pid_file = os.path.join(env["top"], "hang.pid")
    if os.path.exists(pid_file):
        os.unlink(pid_file)
    task = ok(api.Async.host.call_plugin(s, host, "hang", "main", {}))
    wait_until(lambda: os.path.exists(pid_file) and open(pid_file).read().strip(),
               what="the plugin to start")
    ok(api.task.cancel(s, task))
    record = wait_task(api, s, task)
    assert record["status"] == "cancelled", record
    child = int(open(pid_file).read())
    wait_until(lambda: not os.path.exists(f"/proc/{child}") or
               open(f"/proc/{child}/stat").read().split(") ")[1][0] == "Z",
               what="the plugin's child to be killed")


def test_extensions(env):
    api, s, host = env["api"], env["s"], env["host"]
    assert ok(api.host.has_extension(s, host, "ext_echo")) is True
    for name in ["no_such_extension", "../extensions/ext_echo", ""]:
        assert ok(api.host.has_extension(s, host, name)) is False
    assert err(api.host.call_extension(
        s, host, '{"jsonrpc": "2.0", "method": "no_such_extension", "params": [], "id": 1}')) == \
        ["MESSAGE_METHOD_UNKNOWN", "no_such_extension"]
    assert ok(api.host.call_extension(
        s, host, '{"jsonrpc": "2.0", "method": "ext_echo", "params": ["a", {"b": "c"}], "id": 1}')) \
        == "ext_echo ('a', {'b': 'c'})"
    assert err(api.host.call_extension(
        s, host, '{"jsonrpc": "2.0", "method": "ext_fail", "params": [], "id": 1}')) == \
        ["EXT_ERROR", "p"]
    ext_dir = os.path.join(env["top"], "extensions")

    def ext(name):
        return api.host.call_extension(
            s, host, '{"jsonrpc": "2.0", "method": "%s", "params": [], "id": 1}' % name)
    assert err(ext("ext_nonzero")) == ["INTERNAL_ERROR", os.path.join(ext_dir, "ext_nonzero"),
                                       "non-zero exit", "out\n", "err\n"]
    e = err(ext("ext_garbage"))
    assert e[:4] == ["INTERNAL_ERROR", os.path.join(ext_dir, "ext_garbage"),
                     "failed to parse extension output", "garbage\n"]
    assert err(ext("ext_bad_error")) == ["EXTENSION_PROTOCOL_FAILURE", "[1]"]
    # an extension that leaves a large input unread: xapid is not hurt
    big = "x" * 200000
    for _ in range(5):
        assert ok(api.host.call_extension(
            s, host, '{"jsonrpc": "2.0", "method": "ext_noread", "params": ["%s"], "id": 1}' % big)) \
            == "not read"
    assert ok(api.host.has_extension(s, host, "ext_noread")) is True


def test_plugin_dir_flag_is_documented():
    text = subprocess.run([os.environ.get("XAPID_BIN", os.path.join(REPO, "build", "xapid")),
                           "--help"], capture_output=True, text=True).stdout
    for flag in ["--plugin-dir", "--python-dir", "--plugin-time-limit", "--plugin-output-limit",
                 "--extension-dir"]:
        assert flag in text, flag


def test_shipped_xenapi_module_over_tcp_and_unix(env):
    """The shipped XenAPI module as a client script uses it: attribute calls,
    Failure with details, a new login when the session is gone."""
    sys.path.insert(0, os.path.join(REPO, "python"))
    try:
        import XenAPI
    finally:
        sys.path.pop(0)
    d = env["daemon"]
    session = XenAPI.Session(d.url)
    session.xenapi.login_with_password("root", "xapid-test-pw", "2.21", "test")
    host = session.xenapi.host.get_all()[0]
    assert session.xenapi.host.get_uuid(host) == ok(env["api"].host.get_uuid(env["s"], host))
    assert session.API_version == "2.21"
    with pytest.raises(XenAPI.Failure) as failure:
        session.xenapi.VM.get_record("OpaqueRef:nothing")
    assert failure.value.details == ["HANDLE_INVALID", "VM", "OpaqueRef:nothing"]
    # the session ends behind its back: the next call logs in again
    first = session._session
    ok(env["api"].session.logout(first))
    assert session.xenapi.host.get_uuid(host)
    assert session._session != first
    session.xenapi.session.logout()
    assert session._session is None
    # over the unix socket: any user name, no password
    os.environ["XAPID_SOCKET"] = os.path.join(env["top"], "xapi.sock")
    try:
        local = XenAPI.xapi_local()
    finally:
        del os.environ["XAPID_SOCKET"]
    local.xenapi.login_with_password("whoever", "")
    assert local.xenapi.session.get_auth_user_name(local._session) == "whoever"
    assert local.xenapi.session.get_is_local_superuser(local._session) is True
    local.xenapi.session.logout()
    # over TCP only root logs in, with its password
    assert err(env["api"].session.login_with_password("whoever", "xapid-test-pw"))[0] == \
        "SESSION_AUTHENTICATION_FAILED"


def test_restart_agent_kills_running_plugins(env):
    top = tempfile.mkdtemp(prefix="xapid-plugins-restart-")
    plugin_dir = os.path.join(top, "plugins")
    write_scripts(plugin_dir, {"hang": PLUGINS["hang"]})
    d = Daemon(extra_args=["--hypervisor", "sim", "--plugin-dir", plugin_dir])
    try:
        api, s = d.login()
        host = ok(api.host.get_all(s))[0]
        started = ok(api.host.get_other_config(s, host))["agent_start_time"]
        pid_file = os.path.join(top, "hang.pid")
        ok(api.Async.host.call_plugin(s, host, "hang", "main", {}))
        wait_until(lambda: os.path.exists(pid_file) and open(pid_file).read().strip(),
                   what="the plugin to start")
        child = int(open(pid_file).read())
        ok(api.host.restart_agent(s, host))

        def back():
            try:
                p, s2 = d.login()
                reply = p.host.get_other_config(s2, host)
            except OSError:
                return None
            return reply["Status"] == "Success" and \
                float(reply["Value"]["agent_start_time"]) > float(started)
        wait_until(back, what="the agent to come back")

        def gone():
            try:
                with open(f"/proc/{child}/stat") as f:
                    return f.read().split(") ")[1][0] == "Z"
            except FileNotFoundError:
                return True
        wait_until(gone, what="the plugin's child to be killed")
    finally:
        d.stop()
        shutil.rmtree(top, ignore_errors=True)
