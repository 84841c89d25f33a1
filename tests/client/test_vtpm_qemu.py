"""A vTPM on one real guest: swtpm started for the domain on the VTPM's
state directory, the guest's kernel finding a TPM (tpm-tis under
SeaBIOS), QEMU's query-tpm naming the emulator, swtpm outliving a kill -9
of xapid with its QEMU and staying over the guest's reboot, a new one for
the resumed domain after VM.suspend, and ending with the domain while the
TPM's state stays."""
import os
import shutil

import pytest

from qemu_guest import GUEST_DIR, build_guest, console_log, qemu_daemon, qmp, wait_for
from xapid_daemon import ok

MiB = 1 << 20

pytestmark = [pytest.mark.plain_build, pytest.mark.timeout(300),
              pytest.mark.skipif(not shutil.which("swtpm"), reason="swtpm not installed")]


@pytest.fixture(scope="module")
def daemon():
    build_guest()
    with qemu_daemon() as d:
        yield d


def swtpm_pids(state):
    """The swtpm processes holding the TPM state file in state open."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if not f.read().split(b"\0")[0].endswith(b"swtpm"):
                    continue
            fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        if os.path.join(state, "tpm2-state") in fds:
            pids.append(int(pid))
    return pids


def test_vtpm_in_a_real_guest(daemon):
    proxy, s = daemon.login()
    vm = ok(proxy.VM.create(s, {
        "name_label": "vtpm guest", "memory_static_max": str(256 * MiB),
        "VCPUs_max": "1", "VCPUs_at_startup": "1",
        "PV_kernel": os.path.join(GUEST_DIR, "vmlinuz"),
        "PV_ramdisk": os.path.join(GUEST_DIR, "initrd.img"),
        "PV_args": "console=ttyS0 quiet panic=-1 cryptomgr.notests",
        "actions_after_shutdown": "destroy", "actions_after_reboot": "restart",
        "actions_after_crash": "destroy"}))
    uuid = ok(proxy.VM.get_uuid(s, vm))
    vtpm = ok(proxy.VTPM.create(s, vm, False))
    state = os.path.join(daemon.state_dir, "vtpm", ok(proxy.VTPM.get_uuid(s, vtpm)))
    ok(proxy.VM.start(s, vm, False, False))
    log = lambda: console_log(daemon, uuid)  # noqa: E731
    assert wait_for(lambda: "XAPID-GUEST-TPM" in log(), 180), log()
    assert "XAPID-GUEST-TPM tpm0" in log()  # the guest's kernel found the TPM
    tpms = qmp(daemon, uuid, "query-tpm")
    assert [(t["model"], t["options"]["type"]) for t in tpms] == [("tpm-tis", "emulator")]
    pids = swtpm_pids(state)
    assert len(pids) == 1
    assert os.path.getsize(os.path.join(state, "tpm2-state")) > 0  # the TPM's state, on disk
    # swtpm goes on with its QEMU when xapid does not, and over a reboot
    daemon.kill9()
    daemon.start()
    proxy, s = daemon.login()
    assert swtpm_pids(state) == pids
    ok(proxy.VM.clean_reboot(s, vm))
    assert wait_for(lambda: log().count("XAPID-GUEST-TPM tpm0") == 2, 180), log()
    assert swtpm_pids(state) == pids
    # a suspended domain's TPM goes into its saved state and comes back
    ok(proxy.VM.suspend(s, vm))
    assert wait_for(lambda: not swtpm_pids(state), 10)
    alive = log().count("XAPID-GUEST-ALIVE")
    ok(proxy.VM.resume(s, vm, False, False))
    assert len(swtpm_pids(state)) == 1
    assert [t["model"] for t in qmp(daemon, uuid, "query-tpm")] == ["tpm-tis"]
    assert wait_for(lambda: log().count("XAPID-GUEST-ALIVE") > alive, 60), log()
    # it ends with the domain; the state stays with the VTPM
    ok(proxy.VM.hard_shutdown(s, vm))
    assert wait_for(lambda: not swtpm_pids(state), 10)
    assert os.path.exists(os.path.join(state, "tpm2-state"))
    ok(proxy.VM.destroy(s, vm))
    assert not os.path.exists(state)
