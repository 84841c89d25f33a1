"""HVM_boot_params:firmware=uefi on one real guest: the test guest's kernel
(an EFI stub) booted by OVMF, its EFI variables kept in the VM's NVRAM
field across the end of the domain and given back at the next start."""
import base64
import glob
import os
import signal
import subprocess
import time

import pytest

from xapid_daemon import REPO, Daemon, ok

MiB = 1 << 20
GUEST_DIR = os.environ.get("XAPID_TEST_GUEST", os.path.join(REPO, "build", "test-guest"))
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS.fd"

pytestmark = pytest.mark.skipif(not os.path.exists(OVMF_VARS), reason="ovmf not installed")


@pytest.fixture(scope="module")
def daemon():
    subprocess.run([os.path.join(REPO, "scripts", "build-test-guest"), GUEST_DIR], check=True,
                   stdout=subprocess.DEVNULL)
    d = Daemon(extra_args=["--guest-kernel-dir", GUEST_DIR])
    yield d
    d.stop()
    for pidfile in glob.glob(os.path.join(d.state_dir, "domains", "*", "qemu.pid")):
        try:
            os.kill(int(open(pidfile).read()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def console(daemon, uuid):
    path = os.path.join(daemon.state_dir, "domains", uuid, "console.log")
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def wait_for(predicate, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_uefi_boot_and_nvram_kept(daemon):
    proxy, s = daemon.login()
    vm = ok(proxy.VM.create(s, {
        "name_label": "uefi guest", "memory_static_max": str(256 * MiB),
        "VCPUs_max": "1", "VCPUs_at_startup": "1",
        "PV_kernel": os.path.join(GUEST_DIR, "vmlinuz"),
        "PV_ramdisk": os.path.join(GUEST_DIR, "initrd.img"),
        "PV_args": "console=ttyS0 quiet panic=-1 cryptomgr.notests",
        "HVM_boot_params": {"firmware": "uefi"},
        "actions_after_shutdown": "destroy", "actions_after_reboot": "restart",
        "actions_after_crash": "destroy", "other_config": {"clean_shutdown_timeout": "60"}}))
    uuid = ok(proxy.VM.get_uuid(s, vm))
    assert ok(proxy.VM.get_NVRAM(s, vm)) == {}
    ok(proxy.VM.start(s, vm, False, False))
    with open(os.path.join(daemon.state_dir, "domains", uuid, "qemu.pid")) as f:
        pid = int(f.read())
    with open(f"/proc/{pid}/cmdline") as f:
        args = f.read().split("\0")
    # OVMF and the store reach QEMU as descriptors xapid opened
    assert "driver=file,filename=/dev/fdset/2,node-name=ovmf-code,read-only=on" in args
    fds = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    assert "/usr/share/OVMF/OVMF_CODE.fd" in fds
    assert os.path.join(daemon.state_dir, "nvram", uuid + ".fd") in fds
    assert wait_for(lambda: "XAPID-GUEST-FIRMWARE" in console(daemon, uuid)), console(daemon, uuid)
    assert "XAPID-GUEST-FIRMWARE efi" in console(daemon, uuid)  # the kernel came up under UEFI
    ok(proxy.VM.clean_shutdown(s, vm))
    nvram = ok(proxy.VM.get_NVRAM(s, vm))
    store = base64.b64decode(nvram["EFI-variables"])
    with open(OVMF_VARS, "rb") as f:
        empty = f.read()
    assert len(store) == len(empty) and store != empty  # OVMF wrote its variables
    # the next start gives the firmware that store back
    ok(proxy.VM.start(s, vm, True, False))
    with open(os.path.join(daemon.state_dir, "nvram", uuid + ".fd"), "rb") as f:
        assert f.read() == store
    ok(proxy.VM.hard_shutdown(s, vm))
    ok(proxy.VM.destroy(s, vm))
