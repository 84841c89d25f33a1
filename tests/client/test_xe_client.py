"""build/xe, the thin client, against a real daemon (sim driver): an
operator's run-book (install from a template, a disk, an import, start,
event-wait, shutdown, uninstall), the param-* family, --minimal and
params=, selectors and --multiple, xe's error texts and exit codes, the
unix socket, TCP and TLS, -pwf and ~/.xe, and two parsers from the field:
nova's xenhost plugin on `xe host-param-list`, CloudStack on `xe sm-list`."""
import os
import re
import subprocess

import pytest

from golden_files import check_golden
from xapid_daemon import PASSWORD, REPO, Daemon

XE = os.environ.get("XE_BIN", os.path.join(os.path.dirname(os.environ.get(
    "XAPID_BIN", os.path.join(REPO, "build", "xapid"))), "xe"))
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    base = tmp_path_factory.mktemp("xe")
    sock = str(base / "xapi.sock")
    d = Daemon(extra_args=["--hypervisor", "sim", "--unix", sock,
                           "--listen-tls", "127.0.0.2:0"])
    d.sock = sock
    d.home = str(base / "home")
    os.mkdir(d.home)
    yield d
    d.stop()


def xe(daemon, *args, stdin=None, home=None):
    env = dict(os.environ, XAPID_SOCKET=daemon.sock, HOME=home or daemon.home)
    p = subprocess.run([XE, *args], input=stdin, capture_output=True, text=True, env=env,
                       timeout=60)
    return p.returncode, p.stdout, p.stderr


def xe_ok(daemon, *args):
    code, out, errtext = xe(daemon, *args)
    assert code == 0, (args, out, errtext)
    return out


def install(daemon, name):
    uuid = xe_ok(daemon, "vm-install", "template=Other install media", f"new-name-label={name}").strip()
    assert re.fullmatch(UUID, uuid)
    return uuid


def test_vm_disk_remove_destroys_the_vbd_and_its_vdi(daemon):
    uuid = install(daemon, "disk-remove")
    vdi = xe_ok(daemon, "vm-disk-add", f"uuid={uuid}", "disk-size=1MiB", "device=1").strip()
    code, _, errtext = xe(daemon, "vm-disk-remove", f"uuid={uuid}", "device=2")
    assert (code, errtext) == (1, "Error: Disk not found\n")
    xe_ok(daemon, "vm-disk-remove", f"uuid={uuid}", "device=1")
    assert xe_ok(daemon, "vbd-list", f"vm-uuid={uuid}", "--minimal") == "\n"
    assert xe_ok(daemon, "vdi-list", f"uuid={vdi}", "--minimal") == "\n"
    xe_ok(daemon, "vm-uninstall", f"uuid={uuid}", "--force")




def normalized(text):
    """uuids numbered by first appearance, so that a golden file holds."""
    seen = {}
    return re.sub(UUID, lambda m: seen.setdefault(m.group(0), f"<uuid-{len(seen) + 1}>"), text)


def golden(name, text):
    check_golden(os.path.join("xe", name), text)


def test_list_and_param_output_golden(daemon):
    """XenServer's layout of list, param-list, param-get and --minimal, for
    a VM, its disk and a network made here (the host's own records vary
    with the machine)."""
    uuid = install(daemon, "golden")
    vdi = xe_ok(daemon, "vm-disk-add", f"uuid={uuid}", "disk-size=4MiB", "device=0").strip()
    net = xe_ok(daemon, "network-create", "name-label=golden-net").strip()
    out = "".join([
        "$ xe vm-list name-label=golden\n", xe_ok(daemon, "vm-list", "name-label=golden"),
        "$ xe vm-param-list uuid=...\n", xe_ok(daemon, "vm-param-list", f"uuid={uuid}"),
        "$ xe vm-param-get uuid=... param-name=platform\n",
        xe_ok(daemon, "vm-param-get", f"uuid={uuid}", "param-name=platform"),
        "$ xe vm-param-get uuid=... param-name=platform param-key=pae\n",
        xe_ok(daemon, "vm-param-get", f"uuid={uuid}", "param-name=platform", "param-key=pae"),
        "$ xe vdi-list uuid=...\n", xe_ok(daemon, "vdi-list", f"uuid={vdi}"),
        "$ xe vdi-list uuid=... params=name-label,virtual-size --minimal\n",
        xe_ok(daemon, "vdi-list", f"uuid={vdi}", "params=name-label,virtual-size", "--minimal"),
        "$ xe network-param-list uuid=...\n", xe_ok(daemon, "network-param-list", f"uuid={net}"),
        "$ xe network-list uuid=... params=bridge,MTU\n",
        xe_ok(daemon, "network-list", f"uuid={net}", "params=bridge,MTU"),
    ])
    # the bridge's number depends on the networks made before in the module
    out = re.sub(r"xapi[0-9]+", "xapiN", out)
    golden("list-and-param.txt", normalized(out))
    xe_ok(daemon, "vm-uninstall", f"uuid={uuid}", "--force")
    xe_ok(daemon, "network-destroy", f"uuid={net}")


@pytest.mark.parametrize("compress", ["false", "true", "zstd"])
def test_vm_export_and_import_round_trip(daemon, tmp_path, compress):
    """xe vm-export to a file and vm-import from it (XVA over /export and
    /import): a new VM with a disk of the same bytes; the uuid printed."""
    uuid = install(daemon, f"xva-{compress}")
    vdi = xe_ok(daemon, "vm-disk-add", f"uuid={uuid}", "disk-size=4MiB", "device=0").strip()
    disk = tmp_path / "disk.raw"
    disk.write_bytes(os.urandom(1 << 20) + bytes(2 << 20) + os.urandom(1 << 20))
    xe_ok(daemon, "vdi-import", f"uuid={vdi}", f"filename={disk}", "format=raw")
    xva = tmp_path / "vm.xva"
    assert xe_ok(daemon, "vm-export", f"vm={uuid}", f"filename={xva}",
                 f"compress={compress}") == "Export succeeded\n"
    head = xva.read_bytes()[:4]
    assert head.startswith({"false": b"ova.", "true": b"\x1f\x8b", "zstd": b"\x28\xb5\x2f\xfd"}[compress])
    new = xe_ok(daemon, "vm-import", f"filename={xva}").strip()
    assert re.fullmatch(UUID, new) and new != uuid
    assert xe_ok(daemon, "vm-param-get", f"uuid={new}", "param-name=name-label") == f"xva-{compress}\n"
    new_vdi = xe_ok(daemon, "vbd-list", f"vm-uuid={new}", "type=Disk", "params=vdi-uuid",
                    "--minimal").strip()
    back = tmp_path / "back.raw"
    xe_ok(daemon, "vdi-export", f"uuid={new_vdi}", f"filename={back}", "format=raw")
    assert back.read_bytes() == disk.read_bytes()
    for v in (uuid, new):
        xe_ok(daemon, "vm-uninstall", f"uuid={v}", "--force")


def test_vm_import_of_a_corrupt_file_fails_and_leaves_nothing(daemon, tmp_path):
    uuid = install(daemon, "xva-corrupt")
    xe_ok(daemon, "vm-disk-add", f"uuid={uuid}", "disk-size=1MiB", "device=0")
    xva = tmp_path / "vm.xva"
    xe_ok(daemon, "vm-export", f"uuid={uuid}", f"filename={xva}")
    vms = xe_ok(daemon, "vm-list", "--minimal")
    data = bytearray(xva.read_bytes())
    xva.write_bytes(bytes(data[:len(data) // 2]))  # cut in the middle
    code, _, errtext = xe(daemon, "vm-import", f"filename={xva}")
    assert code == 1 and errtext, errtext
    assert xe_ok(daemon, "vm-list", "--minimal") == vms
    code, _, errtext = xe(daemon, "vm-export", f"uuid={uuid}", f"filename={xva}", "compress=lz4")
    assert code == 1 and "Unknown compression" in errtext
    xe_ok(daemon, "vm-uninstall", f"uuid={uuid}", "--force")


def test_runbook(daemon, tmp_path):
    uuid = install(daemon, "runbook")
    assert xe_ok(daemon, "vm-param-get", f"uuid={uuid}", "param-name=is-a-template") == "false\n"
    vdi = xe_ok(daemon, "vm-disk-add", f"uuid={uuid}", "disk-size=4MiB", "device=0").strip()
    assert re.fullmatch(UUID, vdi)
    disk = tmp_path / "disk.raw"
    disk.write_bytes(os.urandom(4 << 20))
    xe_ok(daemon, "vdi-import", f"uuid={vdi}", f"filename={disk}", "format=raw")
    back = tmp_path / "back.raw"
    xe_ok(daemon, "vdi-export", f"uuid={vdi}", f"filename={back}", "format=raw")
    assert back.read_bytes() == disk.read_bytes()
    assert "Disk 0 VDI:" in xe_ok(daemon, "vm-disk-list", f"uuid={uuid}")
    xe_ok(daemon, "vm-start", "vm=runbook")
    xe_ok(daemon, "event-wait", "class=vm", "power-state=running", f"uuid={uuid}", "timeout=30")
    assert xe_ok(daemon, "vm-list", "power-state=running", "name-label=runbook", "--minimal").strip() == uuid
    code, _, errtext = xe(daemon, "vm-start", f"uuid={uuid}")
    assert code == 1
    assert errtext.startswith("You attempted an operation on a VM that was not in an appropriate "
                              "power state at the time")
    assert "\nexpected: halted" in errtext.lower() and "actual: running" in errtext.lower()
    xe_ok(daemon, "vm-shutdown", f"uuid={uuid}")
    assert xe_ok(daemon, "vm-param-get", f"uuid={uuid}", "param-name=power-state") == "halted\n"
    out = xe_ok(daemon, "vm-uninstall", f"uuid={uuid}", "--force")
    assert out.startswith("The following items are about to be destroyed\n")
    assert f"VM : {uuid} (runbook)" in out and f"VDI: {vdi}" in out
    assert out.endswith("All objects destroyed\n")
    assert xe_ok(daemon, "vm-list", f"uuid={uuid}", "--minimal") == "\n"
    code, _, errtext = xe(daemon, "vdi-param-list", f"uuid={vdi}")
    assert (code, errtext) == (1, f"The uuid you supplied was invalid.\ntype: VDI\nuuid: {vdi}\n")


def test_param_family(daemon):
    uuid = install(daemon, "params")
    out = xe_ok(daemon, "vm-param-list", f"uuid={uuid}")
    first = out.splitlines()[0]
    assert re.fullmatch(r"uuid \( RO\) +: " + UUID, first)
    width = first.index(":")
    for line in out.splitlines()[1:]:
        if line:  # every key right-aligned on the same colon
            assert line.index(":") == width, line
    assert re.search(r"\n +name-label \( RW\): params\n", out)
    assert re.search(r"\n +power-state \( RO\): halted\n", out)
    assert re.search(r"\n +other-config \(MRW\): ", out)
    assert re.search(r"\n +tags \(SRW\): \n", out)
    xe_ok(daemon, "vm-param-set", f"uuid={uuid}", "name-label=renamed", "other-config:xe-test=1",
          "name-description=two words")
    assert xe_ok(daemon, "vm-param-get", f"uuid={uuid}", "param-name=name-label") == "renamed\n"
    assert xe_ok(daemon, "vm-param-get", f"uuid={uuid}", "param-name=other-config",
                 "param-key=xe-test") == "1\n"
    xe_ok(daemon, "vm-param-add", f"uuid={uuid}", "param-name=tags", "param-key=blue")
    xe_ok(daemon, "vm-param-add", f"uuid={uuid}", "param-name=tags", "param-key=green")
    assert xe_ok(daemon, "vm-param-get", f"uuid={uuid}", "param-name=tags") == "blue; green\n"
    xe_ok(daemon, "vm-param-remove", f"uuid={uuid}", "param-name=tags", "param-key=blue")
    assert xe_ok(daemon, "vm-param-get", f"uuid={uuid}", "param-name=tags") == "green\n"
    code, _, errtext = xe(daemon, "vm-param-remove", f"uuid={uuid}", "param-name=tags", "param-key=blue")
    assert (code, errtext) == (1, "Error: Key blue is not in the set\n")
    xe_ok(daemon, "vm-param-add", f"uuid={uuid}", "param-name=other-config", "a=1", "b=2")
    xe_ok(daemon, "vm-param-clear", f"uuid={uuid}", "param-name=other-config")
    assert xe_ok(daemon, "vm-param-get", f"uuid={uuid}", "param-name=other-config") == "\n"
    code, _, errtext = xe(daemon, "vm-param-set", f"uuid={uuid}", "power-state=running")
    assert (code, errtext) == (1, "Error: Field 'power-state' is read-only.\n")
    code, _, errtext = xe(daemon, "vm-param-set", f"uuid={uuid}", "VCPUs-max=lots")
    assert (code, errtext) == (1, "Error: Parameter VCPUs-max must be an integer\n")
    code, _, errtext = xe(daemon, "vm-param-get", f"uuid={uuid}", "param-name=other-config",
                          "param-key=absent")
    assert (code, errtext) == (1, "Error: Key absent not found in map\n")
    # a map filter and a set filter on the list
    xe_ok(daemon, "vm-param-set", f"uuid={uuid}", "other-config:role=db")
    assert xe_ok(daemon, "vm-list", "other-config:role=db", "--minimal").strip() == uuid
    assert xe_ok(daemon, "vm-list", "tags:contains=green", "--minimal").strip() == uuid
    xe_ok(daemon, "vm-uninstall", f"uuid={uuid}", "--force")


def test_minimal_and_params(daemon):
    a, b = install(daemon, "min-a"), install(daemon, "min-b")
    uuids = set(xe_ok(daemon, "vm-list", "is-control-domain=false", "--minimal").strip().split(","))
    assert {a, b} <= uuids
    assert xe_ok(daemon, "vm-list", "name-label=min-a", "params=name-label", "--minimal") == "min-a\n"
    out = xe_ok(daemon, "vm-list", "name-label=min-a", "params=uuid,power-state")
    assert out == f"uuid ( RO)           : {a}\n    power-state ( RO): halted\n\n\n"
    out = xe_ok(daemon, "vm-list", "name-label=min-b")
    assert out == (f"uuid ( RO)           : {b}\n     name-label ( RW): min-b\n"
                   f"    power-state ( RO): halted\n\n\n")
    templates = xe_ok(daemon, "template-list", "params=name-label", "--minimal").strip().split(",")
    assert "Other install media" in templates
    # vm-list leaves templates out, always, as XAPI's def_filters
    assert "Other install media" not in xe_ok(daemon, "vm-list", "params=name-label")
    assert xe_ok(daemon, "vm-list", "is-a-template=true", "--minimal") == "\n"
    tmpl = xe_ok(daemon, "template-list", "name-label=Other install media", "--minimal").strip()
    assert "is-a-template ( RW): true" in xe_ok(daemon, "template-param-list", f"uuid={tmpl}")
    snap = xe_ok(daemon, "vm-snapshot", f"uuid={a}", "new-name-label=min-a-snap").strip()
    out = xe_ok(daemon, "snapshot-list", f"snapshot-of={a}")
    assert out.startswith(f"uuid ( RO)                : {snap}\n")
    assert f"\n         snapshot-of ( RO): {a}\n" in out
    assert snap not in xe_ok(daemon, "template-list", "--minimal")
    for u in (a, b):
        xe_ok(daemon, "vm-uninstall", f"uuid={u}", "--force")


def test_selectors_and_multiple(daemon):
    a, b = install(daemon, "twin"), install(daemon, "twin")
    code, _, errtext = xe(daemon, "vm-start", "vm=twin")
    assert (code, errtext) == (1, "Error: Multiple matches VMs found. --multiple required to "
                                  "complete the operation\n")
    xe_ok(daemon, "vm-start", "name-label=twin", "--multiple")
    assert set(xe_ok(daemon, "vm-list", "power-state=running", "name-label=twin",
                     "--minimal").strip().split(",")) == {a, b}
    xe_ok(daemon, "vm-shutdown", "name-label=twin", "--multiple", "--force")
    code, _, errtext = xe(daemon, "vm-start", "vm=nobody")
    assert (code, errtext) == (1, "Error: No matching VMs found\n")
    code, _, errtext = xe(daemon, "vm-start", "colour=red")
    assert (code, errtext) == (1, "Error: Parameter 'colour' is not a field of the VM class. "
                                  "Failed to select VM for operation.\n")
    xe_ok(daemon, "vm-uninstall", "vm=twin", "--multiple", "--force")


def test_usage_errors_and_help(daemon):
    code, out, errtext = xe(daemon, "vm-frobnicate")
    assert (code, out, errtext) == (1, "", "Unknown command: vm-frobnicate\nFor usage run: 'xe help'\n")
    code, _, errtext = xe(daemon, "vm-install")
    assert (code, errtext) == (1, "Required parameter not found: new-name-label\nFor usage run: 'xe help'\n")
    out = xe_ok(daemon, "help", "vm-start")
    # Cli_printer pads the keys of help's record as any other
    assert out.startswith("command name            : vm-start\n")
    assert "\n        reqd params     : \n" in out
    assert "\n        optional params : force, on, paused" in out
    out = xe_ok(daemon, "help")
    assert out.startswith("Usage:\n  xe <command>\n") and "vm-install" in out
    assert "vm-param-list" in xe_ok(daemon, "help", "--all")


def test_transports_and_credentials(daemon, tmp_path):
    port = str(daemon.port)
    out = xe_ok(daemon, "-s", "127.0.0.1", "-p", port, "-u", "root", "-pw", PASSWORD,
                "host-list", "--minimal")
    host = out.strip()
    assert re.fullmatch(UUID, host)
    code, _, errtext = xe(daemon, "-s", "127.0.0.1", "-p", port, "-u", "root", "-pw", "wrong",
                          "host-list")
    assert (code, errtext) == (1, "Authentication failed\nFor usage run: 'xe help'\n")
    pwf = tmp_path / "pwf"
    pwf.write_text(f"root\n{PASSWORD}\n")
    assert xe_ok(daemon, "-s", "127.0.0.1", "-p", port, "-pwf", str(pwf), "host-list",
                 "--minimal").strip() == host
    # TLS, as XenServer's xe speaks to a host that is not this one
    assert xe_ok(daemon, "-s", "127.0.0.2", "-p", str(daemon.tls_port), "-u", "root", "-pw",
                 PASSWORD, "host-list", "--minimal").strip() == host
    # --nossl against the TLS port: no CLI server answers
    code, _, _ = xe(daemon, "-s", "127.0.0.2", "-p", str(daemon.tls_port), "--nossl", "host-list")
    assert code == 1
    # ~/.xe: server, port and credentials as XenServer's client reads them
    home = tmp_path / "home"
    home.mkdir()
    (home / ".xe").write_text(f"server=127.0.0.1\nport={port}\nusername=root\npassword={PASSWORD}\n")
    code, out, _ = xe(daemon, "host-list", "--minimal", home=str(home))
    assert (code, out.strip()) == (0, host)


def test_nova_xenhost(daemon):
    """What nova's xenhost plugin runs (plugins/xenserver/xenapi/etc/
    xapi.d/plugins/xenhost: host_data, set_host_enabled, _power_action)."""
    host = xe_ok(daemon, "host-list", "--minimal").strip()
    out = xe_ok(daemon, "host-param-list", f"uuid={host}")
    host_data_pattern = re.compile(r"\s*(\S+) \([^\)]+\) *: ?(.*)")
    data = {}
    for ln in out.splitlines():
        m = host_data_pattern.match(ln.strip())
        if m:
            k, v = m.groups()
            data[k] = v
    assert data["uuid"] == host and data["enabled"] == "true"
    for key in ("name-label", "name-description", "hostname", "address", "other-config",
                "capabilities"):
        assert key in data, key
    assert int(data["memory-total"]) > 0 and int(data["memory-free"]) >= 0
    assert int(data["memory-overhead"]) >= 0
    cpu = dict(kv.split(":", 1) for kv in data["cpu_info"].split("; "))
    assert int(cpu["cpu_count"].strip()) > 0
    # set_host_enabled: host-disable, then host-param-get of enabled
    assert xe_ok(daemon, "host-disable", f"uuid={host}") == ""
    assert xe_ok(daemon, "host-param-get", f"uuid={host}", "param-name=enabled") == "false\n"
    assert xe_ok(daemon, "host-enable", f"uuid={host}") == ""
    assert xe_ok(daemon, "host-param-get", f"uuid={host}", "param-name=enabled") == "true\n"
    # _power_action: every VM resident on the host shut down
    vm = install(daemon, "resident")
    xe_ok(daemon, "vm-start", f"uuid={vm}")
    assert xe_ok(daemon, "vm-shutdown", "--multiple", f"resident-on={host}", "--force") == ""
    assert xe_ok(daemon, "vm-param-get", f"uuid={vm}", "param-name=power-state") == "halted\n"
    xe_ok(daemon, "vm-uninstall", f"uuid={vm}", "--force")


def test_cloudstack_sm_list(daemon):
    out = xe_ok(daemon, "sm-list")
    records = [r for r in out.split("\n\n\n") if r.strip()]
    types = set()
    for r in records:
        fields = dict(re.match(r"\s*(\S+) \(.*?\)[^:]*: ?(.*)", line).groups()
                      for line in r.splitlines())
        types.add(fields["type"])
        assert re.fullmatch(UUID, fields["uuid"])
    assert {"file", "iso"} <= types
    uuid = xe_ok(daemon, "sm-list", "type=file", "params=uuid", "--minimal").strip()
    assert re.fullmatch(UUID, uuid)


def test_cd_commands(daemon):
    iso_sr = xe_ok(daemon, "sr-list", "content-type=iso", "--minimal").strip()
    config = xe_ok(daemon, "pbd-list", f"sr-uuid={iso_sr}", "params=device-config", "--minimal")
    location = config.strip().split("location: ", 1)[1]
    with open(os.path.join(location, "xe-test.iso"), "wb") as f:
        f.write(b"\0" * 4096)
    xe_ok(daemon, "sr-scan", f"uuid={iso_sr}")
    vm = install(daemon, "cd")
    code, _, errtext = xe(daemon, "vm-cd-add", f"uuid={vm}", "cd-name=absent.iso", "device=3")
    assert (code, errtext) == (1, "Error: CD absent.iso not found!\n")
    xe_ok(daemon, "vm-cd-add", f"uuid={vm}", "cd-name=xe-test.iso", "device=3")
    out = xe_ok(daemon, "vm-cd-list", f"uuid={vm}")
    assert out.startswith("CD 0 VBD:\n") and "\nCD 0 VDI:\n" in out
    assert re.search(r"name-label \( RW\): xe-test.iso\n", out)
    vbd, vdi = xe_ok(daemon, "vm-cd-list", f"uuid={vm}", "--minimal").strip().split(",")
    assert xe_ok(daemon, "vbd-param-get", f"uuid={vbd}", "param-name=type") == "CD\n"
    xe_ok(daemon, "vm-cd-eject", f"uuid={vm}")
    assert xe_ok(daemon, "vbd-param-get", f"uuid={vbd}", "param-name=empty") == "true\n"
    xe_ok(daemon, "vm-cd-insert", f"uuid={vm}", "cd-name=xe-test.iso")
    assert xe_ok(daemon, "vbd-param-get", f"uuid={vbd}", "param-name=vdi-uuid") == vdi + "\n"
    xe_ok(daemon, "vm-cd-remove", f"uuid={vm}", "cd-name=xe-test.iso")
    assert xe_ok(daemon, "vm-cd-list", f"uuid={vm}", "--minimal") == "\n"
    code, _, errtext = xe(daemon, "vm-cd-eject", f"uuid={vm}")
    assert (code, errtext) == (1, "Error: No CDs found\n")
    xe_ok(daemon, "vm-uninstall", f"uuid={vm}", "--force")


def test_console_without_a_text_console(daemon):
    # the sim driver gives its domains no consoles; the proxying itself
    # (HttpConnect, CONNECT /console) needs a QEMU guest
    vm = install(daemon, "no-console")
    assert xe(daemon, "console", f"uuid={vm}") == (1, "", "No text console available\n")
    assert xe(daemon, "console", "vm=nobody") == (1, "", "No VM found\n")
    xe_ok(daemon, "vm-uninstall", f"uuid={vm}", "--force")


def test_vdi_import_from_a_pipe(daemon, tmp_path):
    # no Content-Length: the upload ends with the connection
    sr = xe_ok(daemon, "sr-list", "name-label=Local storage", "--minimal").strip()
    vdi = xe_ok(daemon, "vdi-create", f"sr-uuid={sr}", "name-label=piped", "virtual-size=1MiB").strip()
    data = os.urandom(1 << 20)
    env = dict(os.environ, XAPID_SOCKET=daemon.sock, HOME=daemon.home)
    p = subprocess.run([XE, "vdi-import", f"uuid={vdi}", "filename=/dev/stdin", "format=raw"],
                       input=data, capture_output=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    out = tmp_path / "out.raw"
    xe_ok(daemon, "vdi-export", f"uuid={vdi}", f"filename={out}", "format=raw")
    assert out.read_bytes() == data
    code, _, errtext = xe(daemon, "vdi-import", f"uuid={vdi}", f"filename={out}", "format=tar")
    assert (code, errtext) == (1, "Error: Unknown format: tar\n")
    xe_ok(daemon, "vdi-destroy", f"uuid={vdi}")


def test_networks_devices_pool_and_plugins(daemon):
    net = xe_ok(daemon, "network-create", "name-label=xe-net").strip()
    assert xe_ok(daemon, "network-list", f"uuid={net}", "params=name-label", "--minimal") == "xe-net\n"
    vm = install(daemon, "devices")
    vif = xe_ok(daemon, "vif-create", f"vm-uuid={vm}", f"network-uuid={net}", "device=0").strip()
    out = xe_ok(daemon, "vm-vif-list", f"uuid={vm}")
    assert f"uuid ( RO)" in out and vif in out and f"network-uuid ( RO): {net}" in out
    assert xe_ok(daemon, "vif-list", f"vm-uuid={vm}", "--minimal").strip() == vif
    xe_ok(daemon, "vif-destroy", f"uuid={vif}")
    vbd = xe_ok(daemon, "vbd-create", f"vm-uuid={vm}", "device=3", "type=CD", "mode=RO").strip()
    assert xe_ok(daemon, "vbd-param-get", f"uuid={vbd}", "param-name=empty") == "true\n"
    xe_ok(daemon, "vbd-destroy", f"uuid={vbd}")
    xe_ok(daemon, "vm-uninstall", f"uuid={vm}", "--force")
    xe_ok(daemon, "network-destroy", f"uuid={net}")
    code, _, errtext = xe(daemon, "network-destroy", f"uuid={net}")
    assert (code, errtext) == (1, f"The uuid you supplied was invalid.\ntype: network\nuuid: {net}\n")
    pool = xe_ok(daemon, "pool-list", "--minimal").strip()
    xe_ok(daemon, "pool-param-set", f"uuid={pool}", "name-label=xe pool")
    assert xe_ok(daemon, "pool-param-get", f"uuid={pool}", "param-name=name-label") == "xe pool\n"
    host = xe_ok(daemon, "host-list", "--minimal").strip()
    out = xe_ok(daemon, "host-call-plugin", f"host-uuid={host}", "plugin=echo", "fn=main", "args:a=b")
    assert out.startswith("args were: ") and "'a': 'b'" in out
    # a command whose message xapid lacks is not in the table
    assert xe(daemon, "host-enable-display")[0:2] == (1, "")
    assert xe_ok(daemon, "host-get-server-certificate").startswith("-----BEGIN CERTIFICATE-----")
    assert xe_ok(daemon, "task-list", "--minimal") == "\n"


def test_snapshot_ignoring_disks_and_disk_list_params(daemon, tmp_path):
    vm = install(daemon, "snap-src")
    vdi = xe_ok(daemon, "vm-disk-add", f"uuid={vm}", "disk-size=1MiB", "device=0").strip()
    out = xe_ok(daemon, "vm-disk-list", f"uuid={vm}", "vbd-params=userdevice", "vdi-params=uuid")
    assert out == f"Disk 0 VBD:\nuserdevice ( RW)    : 0\n\n\nDisk 0 VDI:\nuuid ( RO)    : {vdi}\n\n\n"
    snap = xe_ok(daemon, "vm-snapshot", f"uuid={vm}", "new-name-label=no-disks",
                 f"ignore-vdi-uuids={vdi}").strip()
    # the ignored disk is left out of the snapshot (xapid's VM.snapshot)
    assert xe_ok(daemon, "snapshot-param-get", f"uuid={snap}", "param-name=VBDs") == "\n"
    full = xe_ok(daemon, "vm-snapshot", f"uuid={vm}", "new-name-label=with-disks").strip()
    vbd = xe_ok(daemon, "snapshot-param-get", f"uuid={full}", "param-name=VBDs").strip()
    assert xe_ok(daemon, "vbd-param-get", f"uuid={vbd}", "param-name=vdi-uuid") != vdi + "\n"
    code, _, errtext = xe(daemon, "vm-snapshot", f"uuid={vm}", "new-name-label=x",
                          "ignore-vdi-uuids=nope")
    assert (code, errtext) == (1, "The uuid you supplied was invalid.\ntype: VDI\nuuid: nope\n")
    # a differential export against the disk itself is all zeros
    out_file = tmp_path / "diff.raw"
    xe_ok(daemon, "vdi-export", f"uuid={vdi}", f"base={vdi}", f"filename={out_file}", "format=raw")
    assert out_file.read_bytes() == bytes(1 << 20)
    xe_ok(daemon, "vm-uninstall", f"uuid={vm}", "--force")
