"""Ansible's community.general xenserver modules (Debian's `ansible`)
against a real daemon (sim hypervisor), importing xapid's own shipped
XenAPI module (python/ on PYTHONPATH; no other XenAPI is installed):
xenserver_guest deploys a VM from a template with a disk and a NIC and
starts it, a second run of the same play changes nothing, xenserver_guest_info
reads its facts (also over xapid's unix socket, as `hostname: localhost`
does through XenAPI.xapi_local), xenserver_guest_powerstate restarts and
stops it, and xenserver_guest removes it with its disk."""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from xapid_daemon import PASSWORD, REPO, Daemon, ok

ANSIBLE = shutil.which("ansible-playbook")
TEMPLATE = "Other install media"
NETWORK = "Pool-wide network associated with eth0"
MAC = "aa:00:00:00:00:01"
GiB = 1 << 30



@pytest.fixture(scope="module")
def daemon():
    sock = os.path.join(tempfile.mkdtemp(prefix="xapid-ansible-"), "xapi")
    d = Daemon(extra_args=["--hypervisor", "sim", "--unix", sock])
    d.sock = sock
    yield d
    d.stop()
    shutil.rmtree(os.path.dirname(sock), ignore_errors=True)


@pytest.fixture(scope="module")
def api(daemon):
    return daemon.login()


def play(daemon, tmp_path, module, params, local=False):
    """Runs one task of module with params against daemon (over TCP, or the
    unix socket when local); returns the task's result (fails the test when
    the play failed)."""
    if ANSIBLE is None:
        pytest.fail("Debian's ansible is needed (scripts/install-deps installs it)")
    connection = ({"hostname": "localhost", "username": "", "password": ""} if local else
                  {"hostname": f"127.0.0.1:{daemon.port}", "username": "root",
                   "password": PASSWORD})
    playbook = [{"hosts": "localhost", "gather_facts": False,
                 "tasks": [{"name": "step", f"community.general.{module}":
                            dict(connection, **params), "register": "out"}]}]
    path = tmp_path / f"{module}.yml"
    path.write_text(json.dumps(playbook))  # JSON is YAML
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "python"),
               ANSIBLE_PYTHON_INTERPRETER="/usr/bin/python3", ANSIBLE_STDOUT_CALLBACK="json",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
               ANSIBLE_HOME=str(tmp_path / "ansible-home"), XAPID_SOCKET=daemon.sock)
    env.pop("PYTHONSAFEPATH", None)
    proc = subprocess.run([ANSIBLE, "-i", "localhost,", "-c", "local", str(path)], env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    report = json.loads(proc.stdout)
    return report["plays"][0]["tasks"][0]["hosts"]["localhost"]


def vm_by_name(api, name):
    proxy, s = api
    refs = ok(proxy.VM.get_by_name_label(s, name))
    return refs[0] if refs else None


DEPLOY = {
    "name": "ansible-vm", "template": TEMPLATE, "state": "poweredon",
    "hardware": {"num_cpus": 2, "memory_mb": 256},
    "disks": [{"size_gb": 1, "name": "ansible-disk", "sr": "Local storage"}],
    "networks": [{"name": NETWORK, "mac": MAC}],
}


@pytest.mark.timeout(600)
def test_deploy_read_power_and_remove_a_vm(daemon, api, tmp_path):
    proxy, s = api
    # The modules run with xapid's XenAPI module and no other.
    probe = subprocess.run(["/usr/bin/python3", "-c", "import XenAPI; print(XenAPI.__file__)"],
                           env=dict(os.environ, PYTHONPATH=os.path.join(REPO, "python")),
                           capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == os.path.join(REPO, "python", "XenAPI.py")

    out = play(daemon, tmp_path, "xenserver_guest", DEPLOY)
    assert out["changed"] is True, out
    vm = vm_by_name(api, "ansible-vm")
    record = ok(proxy.VM.get_record(s, vm))
    assert record["power_state"] == "Running"
    assert record["is_a_template"] is False
    assert record["VCPUs_max"] == "2" and record["memory_static_max"] == str(256 << 20)
    disks = [ok(proxy.VBD.get_record(s, b)) for b in record["VBDs"]]
    disks = [b for b in disks if b["type"] == "Disk"]
    assert len(disks) == 1
    vdi = ok(proxy.VDI.get_record(s, disks[0]["VDI"]))
    assert vdi["name_label"] == "ansible-disk" and vdi["virtual_size"] == str(GiB)
    assert ok(proxy.SR.get_name_label(s, vdi["SR"])) == "Local storage"
    vifs = [ok(proxy.VIF.get_record(s, v)) for v in record["VIFs"]]
    assert [v["MAC"] for v in vifs] == [MAC]
    assert ok(proxy.network.get_name_label(s, vifs[0]["network"])) == NETWORK
    instance = out["instance"]
    assert instance["uuid"] == record["uuid"] and instance["state"] == "poweredon"

    # The same play again: the module reads everything back and finds
    # nothing to change.
    again = play(daemon, tmp_path, "xenserver_guest", DEPLOY)
    assert again["changed"] is False, again

    facts = play(daemon, tmp_path, "xenserver_guest_info", {"name": "ansible-vm"},
                 local=True)["instance"]
    assert facts["uuid"] == record["uuid"] and facts["state"] == "poweredon"
    assert facts["hardware"]["num_cpus"] == 2 and facts["hardware"]["memory_mb"] == 256
    assert [(d["name"], d["size"], d["sr"]) for d in facts["disks"]] == [
        ("ansible-disk", GiB, "Local storage")]
    assert [(n["name"], n["mac"]) for n in facts["networks"]] == [(NETWORK, MAC)]

    start_time = ok(proxy.VM_metrics.get_start_time(s, record["metrics"]))
    out = play(daemon, tmp_path, "xenserver_guest_powerstate",
               {"name": "ansible-vm", "state": "restarted"})
    assert out["changed"] is True and out["instance"]["state"] == "poweredon", out
    assert ok(proxy.VM.get_power_state(s, vm)) == "Running"
    assert ok(proxy.VM_metrics.get_start_time(s, record["metrics"])) >= start_time
    out = play(daemon, tmp_path, "xenserver_guest_powerstate",
               {"name": "ansible-vm", "state": "powered-off"})
    assert out["changed"] is True and out["instance"]["state"] == "poweredoff", out
    assert ok(proxy.VM.get_power_state(s, vm)) == "Halted"

    out = play(daemon, tmp_path, "xenserver_guest", {"name": "ansible-vm", "state": "absent"})
    assert out["changed"] is True, out
    assert vm_by_name(api, "ansible-vm") is None
    assert ok(proxy.VDI.get_by_name_label(s, "ansible-disk")) == []
    # The template is left as it was.
    assert vm_by_name(api, TEMPLATE)
