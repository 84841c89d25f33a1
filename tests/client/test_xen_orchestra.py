"""Xen Orchestra's connector (npm xen-api 4.7.6) against a real xapid, with
each transport: connect, fetch all objects, see another client's change,
barrier(), callAsync with success and failure, disconnect."""
import json
import os
import shutil
import subprocess

import pytest

from xapid_daemon import Daemon, PASSWORD, REPO

XO_DIR = os.path.join(REPO, "tests", "xo")


@pytest.fixture(scope="module")
def connector():
    # The npm tree is the one tests/xo/package-lock.json pins (npm ci), installed
    # again whenever the lockfile differs from the one the tree was made from.
    lock = os.path.join(XO_DIR, "package-lock.json")
    stamp = os.path.join(XO_DIR, "node_modules", ".xapid-installed-lock.json")
    with open(lock, "rb") as f:
        wanted = f.read()
    installed = None
    if os.path.exists(stamp):
        with open(stamp, "rb") as f:
            installed = f.read()
    if installed != wanted:
        if not shutil.which("npm"):
            pytest.fail("npm is needed for the Xen Orchestra connector tests")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=XO_DIR,
                       check=True, timeout=300)
        shutil.copyfile(lock, stamp)
    return os.path.join(XO_DIR, "connector.mjs")


@pytest.fixture
def daemon():
    d = Daemon()
    yield d
    d.stop()


@pytest.mark.parametrize("transport", ["auto", "json-rpc", "xml-rpc"])
def test_connector(daemon, connector, transport):
    run = subprocess.run(["node", connector, daemon.url.rstrip("/"), PASSWORD, transport],
                         capture_output=True, text=True, timeout=60, cwd=XO_DIR)
    assert run.stdout, run.stderr
    findings = json.loads(run.stdout.strip().splitlines()[-1])
    assert "error" not in findings, findings.get("error")
    assert run.returncode == 0
    assert findings["objects"] > 10
    assert {"VM", "host", "pool", "SR", "network", "PIF", "PBD"} <= set(findings["types"])
    assert findings["poolMasterIsHost"]
    assert findings["otherChangeSeenMs"] >= 0  # seen, within connector.mjs's deadline
    assert findings["barrier"] is True
    assert findings["asyncResultIsRef"] is True
    assert findings["asyncNetworkLabel"] == f"xo-{transport}"
    assert findings["asyncFailure"] == "HANDLE_INVALID"
    assert findings["disconnected"] == "disconnected"
