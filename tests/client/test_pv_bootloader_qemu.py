"""PV_bootloader=pygrub on one real guest: an MBR-partitioned ext4 disk
(in a qcow2 VDI) holding grub.cfg, the test guest's kernel and initramfs;
VM.start boots the default entry's kernel with its arguments and PV_args
after them, and the staging copies are gone once QEMU holds them."""
import os

import pytest

from guest_disk import ext4_image, write_into_vdi
from qemu_guest import GUEST_DIR, build_guest, console_log, qemu_daemon, wait_for
from xapid_daemon import ok

MiB = 1 << 20
GRUB = (b"if [ \"${next_entry}\" ] ; then\n   set default=\"${next_entry}\"\nelse\n"
        b"   set default=\"0\"\nfi\n"
        b"menuentry 'xapid test guest' --class debian {\n"
        b"\tset root='hd0,msdos1'\n"
        b"\tlinux\t/boot/vmlinuz console=ttyS0 quiet panic=-1 cryptomgr.notests\n"
        b"\tinitrd\t/boot/initrd.img\n}\n"
        b"menuentry 'not this one' {\n\tlinux /boot/missing\n}\n")

pytestmark = pytest.mark.plain_build


@pytest.fixture(scope="module")
def daemon():
    build_guest()
    with qemu_daemon() as d:
        yield d


def test_pygrub_boots_the_disks_default_kernel(daemon, tmp_path):
    proxy, s = daemon.login()
    vm = ok(proxy.VM.create(s, {
        "name_label": "pygrub guest", "memory_static_max": str(256 * MiB),
        "VCPUs_max": "1", "VCPUs_at_startup": "1", "domain_type": "pv",
        "PV_bootloader": "pygrub", "PV_args": "xapid.boot=pygrub",
        "actions_after_shutdown": "destroy", "actions_after_reboot": "restart",
        "actions_after_crash": "destroy"}))
    uuid = ok(proxy.VM.get_uuid(s, vm))
    sr = ok(proxy.pool.get_default_SR(s, ok(proxy.pool.get_all(s))[0]))
    vdi = ok(proxy.VDI.create(s, {"name_label": "root", "SR": sr, "virtual_size": str(128 * MiB),
                                  "type": "user", "sharable": False, "read_only": False,
                                  "other_config": {}}))
    ok(proxy.VBD.create(s, {"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": True,
                            "mode": "RW", "type": "Disk", "unpluggable": True, "empty": False,
                            "other_config": {}, "qos_algorithm_type": "",
                            "qos_algorithm_params": {}}))
    rec = ok(proxy.VDI.get_record(s, vdi))
    pbd = ok(proxy.SR.get_PBDs(s, sr))[0]
    vdi_file = os.path.join(ok(proxy.PBD.get_device_config(s, pbd))["location"], rec["location"])
    image = str(tmp_path / "disk.raw")
    ext4_image(image, {"/boot/grub/grub.cfg": GRUB,
                       "/boot/vmlinuz": os.path.join(GUEST_DIR, "vmlinuz"),
                       "/boot/initrd.img": os.path.join(GUEST_DIR, "initrd.img")},
               size=128 * MiB)
    write_into_vdi(image, vdi_file, "raw" if vdi_file.endswith(".raw") else "qcow2")
    ok(proxy.VM.start(s, vm, False, False))
    assert not os.path.exists(os.path.join(daemon.state_dir, "bootloader", uuid))
    with open(os.path.join(daemon.state_dir, "domains", uuid, "qemu.pid")) as f:
        pid = int(f.read())
    with open(f"/proc/{pid}/cmdline") as f:
        args = f.read().split("\0")
    # the entry's arguments, then PV_args
    assert args[args.index("-append") + 1] == \
        "console=ttyS0 quiet panic=-1 cryptomgr.notests xapid.boot=pygrub"
    assert "-initrd" in args
    assert wait_for(lambda: "XAPID-GUEST-BOOT" in console_log(daemon, uuid), 240), \
        console_log(daemon, uuid)
    assert "XAPID-GUEST-BOOT pygrub" in console_log(daemon, uuid)  # its kernel, its args
    ok(proxy.VM.hard_shutdown(s, vm))
    for vbd in ok(proxy.VM.get_VBDs(s, vm)):
        ok(proxy.VBD.destroy(s, vbd))
    ok(proxy.VM.destroy(s, vm))
    ok(proxy.VDI.destroy(s, vdi))
