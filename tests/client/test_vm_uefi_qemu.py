"""HVM_boot_params:firmware=uefi on one real guest: the test guest's kernel
(an EFI stub) booted by OVMF, its EFI variables kept in the VM's NVRAM
field across the end of the domain and given back at the next start; and
platform:secureboot=true, whose guest kernel reports Secure Boot enabled."""
import base64
import os

import pytest

from qemu_guest import GUEST_DIR, build_guest, console_log, qemu_daemon, wait_for
from xapid_daemon import ok

MiB = 1 << 20
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS.fd"

pytestmark = pytest.mark.skipif(not os.path.exists(OVMF_VARS), reason="ovmf not installed")


@pytest.fixture(scope="module")
def daemon():
    build_guest()
    with qemu_daemon() as d:
        yield d


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
    assert wait_for(lambda: "XAPID-GUEST-FIRMWARE" in console_log(daemon, uuid), 180), \
        console_log(daemon, uuid)
    assert "XAPID-GUEST-FIRMWARE efi" in console_log(daemon, uuid)  # the kernel came up under UEFI
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


SECBOOT_CODE = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
SECBOOT_VARS = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"


@pytest.mark.plain_build
@pytest.mark.skipif(not os.path.exists(SECBOOT_VARS), reason="no Secure Boot OVMF")
def test_secure_boot_guest_sees_it_enabled(daemon):
    """platform:secureboot=true: a q35 machine with SMM and secure pflash runs
    OVMF's Secure Boot build with Microsoft's keys; the guest's kernel (its
    EFI stub reads the firmware's SecureBoot variable) says it is on."""
    proxy, s = daemon.login()
    vm = ok(proxy.VM.create(s, {
        "name_label": "secure boot guest", "memory_static_max": str(256 * MiB),
        "VCPUs_max": "1", "VCPUs_at_startup": "1",
        "PV_kernel": os.path.join(GUEST_DIR, "vmlinuz"),
        "PV_ramdisk": os.path.join(GUEST_DIR, "initrd.img"),
        "PV_args": "console=ttyS0 panic=-1 cryptomgr.notests",  # not quiet: the stub's words
        "HVM_boot_params": {"firmware": "uefi"}, "platform": {"secureboot": "true"},
        "actions_after_shutdown": "destroy", "actions_after_reboot": "restart",
        "actions_after_crash": "destroy"}))
    uuid = ok(proxy.VM.get_uuid(s, vm))
    ok(proxy.VM.start(s, vm, False, False))
    with open(os.path.join(daemon.state_dir, "domains", uuid, "qemu.pid")) as f:
        pid = int(f.read())
    with open(f"/proc/{pid}/cmdline") as f:
        args = f.read().split("\0")
    assert args[args.index("-machine") + 1].startswith("q35,smm=on,")
    assert "driver=cfi.pflash01,property=secure,value=on" in args
    fds = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    assert SECBOOT_CODE in fds
    assert wait_for(lambda: "XAPID-GUEST-FIRMWARE" in console_log(daemon, uuid), 240), \
        console_log(daemon, uuid)
    log = console_log(daemon, uuid)
    assert "XAPID-GUEST-FIRMWARE efi" in log
    assert "UEFI Secure Boot is enabled" in log  # the EFI stub, from the firmware's variable
    assert "secureboot: Secure boot enabled" in log  # the kernel, from the stub's report
    ok(proxy.VM.hard_shutdown(s, vm))
    store = base64.b64decode(ok(proxy.VM.get_NVRAM(s, vm))["EFI-variables"])
    assert len(store) == os.path.getsize(SECBOOT_VARS)  # the enrolled store, kept
    ok(proxy.VM.destroy(s, vm))
