"""Xen Orchestra's connector (npm xen-api 4.7.6) exports a VM with
getResource('/export/') and imports the stream with putResource(...,
'/import/') as XO does (tests/xo/xva.mjs), against a real daemon (sim
driver); the imported VM's disks are compared byte for byte."""
import json
import subprocess

import pytest

from test_xen_orchestra import XO_DIR, connector  # noqa: F401 (fixture)
from test_xva import default_sr, get_raw, make_vm, vm_disks
from xapid_daemon import PASSWORD, Daemon, ok


@pytest.fixture(scope="module")
def daemon():
    d = Daemon(extra_args=["--hypervisor", "sim"])
    yield d
    d.stop()


@pytest.mark.parametrize("compression", ["zstd", "false"])
def test_connector_export_import_round_trip(daemon, connector, compression):
    api = daemon.login()
    proxy, s = api
    vm, contents = make_vm(daemon, api, f"xo-{compression}")
    run = subprocess.run(["node", connector.replace("connector.mjs", "xva.mjs"),
                          daemon.url.rstrip("/"), PASSWORD, vm, default_sr(api), compression],
                         capture_output=True, text=True, timeout=120, cwd=XO_DIR)
    assert run.stdout, run.stderr
    findings = json.loads(run.stdout.strip().splitlines()[-1])
    assert "error" not in findings, findings["error"]
    assert findings["exportStatus"] == 200
    new_vm = findings["vm"]
    assert new_vm and new_vm != vm
    assert ok(proxy.VM.get_name_label(s, new_vm)) == f"xo-{compression}"
    for vdi, data in zip(vm_disks(api, new_vm), contents):
        assert get_raw(daemon, s, vdi) == data
