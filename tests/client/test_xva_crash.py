"""An XVA import killed (kill -9, XAPID_CRASH_AT: right before and right
after each of its database commits in turn) is finished or undone at the
next start: either the VM is there with its disk whole, or nothing of the
import is (no VDI, no image file, no VM, VBD or VIF)."""
import gzip
import http.client
import os
import shutil
import tempfile
import xmlrpc.client

import pytest

from test_xva import XS_DISK, get_raw, xenserver_xva
from xapid_daemon import Daemon, ok

SIM = ["--hypervisor", "sim"]


def sr_dir(proxy, s):
    pool = ok(proxy.pool.get_all(s))[0]
    sr = ok(proxy.pool.get_default_SR(s, pool))
    return ok(proxy.PBD.get_device_config(s, ok(proxy.SR.get_PBDs(s, sr))[0]))["location"]


def state_of(proxy, s):
    vdis = ok(proxy.VDI.get_all_records(s))
    return {"VM": {v["name_label"] for v in ok(proxy.VM.get_all_records(s)).values()
                   if not v["is_control_domain"]},
            "VDI": {r: v for r, v in vdis.items()},
            "VBD": len(ok(proxy.VBD.get_all(s))), "VIF": len(ok(proxy.VIF.get_all(s)))}


def upload(daemon, s, body):
    c = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=60)
    c.request("PUT", f"/import?session_id={s}", body=body)
    r = c.getresponse()
    r.read()
    return r.status


@pytest.mark.timeout(600)
def test_crash_at_every_commit_of_an_import_is_finished_or_undone():
    body = gzip.compress(xenserver_xva(XS_DISK), 1)
    state = tempfile.mkdtemp(prefix="xapid-xva-crash-")
    template = state + ".prepared"
    d = Daemon(state_dir=state, extra_args=SIM)
    proxy, s = d.login()
    where = sr_dir(proxy, s)
    files_before = set(os.listdir(where))
    before = state_of(proxy, s)
    d.stop()
    shutil.copytree(state, template)
    found, trials, finished = [], 0, False
    try:
        for k in range(1, 30):
            for when in ("before", "after"):
                shutil.rmtree(state)
                shutil.copytree(template, state)
                os.environ["XAPID_CRASH_AT"] = f"{when}:{k}"
                try:
                    t = Daemon(state_dir=state, extra_args=SIM)
                finally:
                    del os.environ["XAPID_CRASH_AT"]
                try:
                    p, ts = t.login()
                    status = upload(t, ts, body)
                    assert status == 200, status
                    finished = True
                    t.proc.kill()
                    t.proc.wait()
                except (ConnectionError, http.client.HTTPException, OSError,
                        xmlrpc.client.ProtocolError):
                    t.proc.wait(timeout=30)
                    assert t.proc.returncode == -9, t.proc.returncode
                t.log.close()
                t.start()
                p, ts = t.login()
                trials += 1
                now = state_of(p, ts)
                files = set(os.listdir(where))
                new_vdis = {r: v for r, v in now["VDI"].items() if r not in before["VDI"]}
                if "from-xs" in now["VM"]:  # finished: the VM, its devices, its disk whole
                    vm = [r for r, v in ok(p.VM.get_all_records(ts)).items()
                          if v["name_label"] == "from-xs"][0]
                    disk = [ok(p.VBD.get_VDI(ts, b)) for b in ok(p.VM.get_VBDs(ts, vm))
                            if ok(p.VBD.get_type(ts, b)) == "Disk"]
                    if len(disk) != 1 or get_raw(t, ts, disk[0]) != XS_DISK:
                        found.append(f"{when}:{k}: the imported VM's disk is not whole")
                    if any("xapid_import_pending" in v["other_config"] for v in new_vdis.values()):
                        found.append(f"{when}:{k}: a recorded VM's disk still pending")
                else:  # undone: nothing of it
                    if new_vdis:
                        found.append(f"{when}:{k}: VDIs left: {[v['name_label'] for v in new_vdis.values()]}")
                    if (now["VBD"], now["VIF"]) != (before["VBD"], before["VIF"]):
                        found.append(f"{when}:{k}: VBDs or VIFs left")
                    if files != files_before:
                        found.append(f"{when}:{k}: files left: {sorted(files - files_before)}")
                t.stop()
                if finished:
                    break
            if finished:
                break
    finally:
        shutil.rmtree(template, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)
    assert finished, "the import never got through"
    assert trials > 2
    assert found == [], found
