"""Xen Orchestra's connector (npm xen-api) reads xapid's stats and
messages as xo-server does (tests/xo/stats.mjs): /rrd_updates?json=true
through getResource, parsed and keyed as xapi-stats.mjs keys it, and
message objects added and removed through its event loop. No guest: the
host's own figures (sim hypervisor)."""
import json
import subprocess
import time
import urllib.request
import base64

from xapid_daemon import Daemon, PASSWORD, wait_until
from test_xen_orchestra import XO_DIR, connector  # noqa: F401 (fixture)


def host_cpu_known(d):
    req = urllib.request.Request(d.url + "rrd_updates?start=-60&host=true&json=true&cf=AVERAGE")
    req.add_header("Authorization", "Basic " + base64.b64encode(f"root:{PASSWORD}".encode()).decode())
    with urllib.request.urlopen(req, timeout=10) as r:
        u = json.loads(r.read())
    i = [n for n, e in enumerate(u["meta"]["legend"]) if e.endswith(":cpu0")]
    return i and any(row["values"][i[0]] != "NaN" for row in u["data"])


def test_xo_reads_stats_and_messages(connector):  # noqa: F811
    d = Daemon(extra_args=["--hypervisor", "sim"])
    try:
        wait_until(lambda: host_cpu_known(d), timeout=30, what="two samples of the host")
        run = subprocess.run(["node", connector.replace("connector.mjs", "stats.mjs"),
                              d.url.rstrip("/"), PASSWORD],
                             capture_output=True, text=True, timeout=60, cwd=XO_DIR)
        assert run.stdout, run.stderr
        findings = json.loads(run.stdout.strip().splitlines()[-1])
        assert "error" not in findings, findings.get("error")
        assert findings["message"] == {"name": "XO_SEES_ME", "body": "hello XO", "priority": 3,
                                       "obj_uuid": True}
        assert findings["messageRemoved"] is True
        assert findings["stepMatches"] is True
        assert findings["series"] >= 5
        assert findings["hostCpu0"] and all(0 <= v <= 1 for v in findings["hostCpu0"])
        assert findings["hostMemoryTotalKib"] and findings["hostMemoryTotalKib"][0] > 0
    finally:
        d.stop()
