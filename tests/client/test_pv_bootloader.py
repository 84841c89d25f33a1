"""PV_bootloader=pygrub on the sim driver: the disk is really read at
VM.start (the sim boots nothing), so what is not bootable is
BOOTLOADER_FAILED [vm, why] and a bootable disk starts; the staging
directory is gone after every start, also one a crash left.
test_pv_bootloader_qemu.py boots the kernel it finds."""
import os

import pytest

from guest_disk import ext4_image, fat_image, write_into_vdi
from sim_daemon import api, daemon  # noqa: F401 (fixtures)
from xapid_daemon import err, ok

MiB = 1 << 20
GRUB = (b"set default=\"0\"\nmenuentry 'Debian' {\n\tlinux /boot/vmlinuz-6 root=/dev/vda1 ro\n"
        b"\tinitrd /boot/initrd.img-6\n}\n")


def vdi_file(api, vdi):
    proxy, s = api
    rec = ok(proxy.VDI.get_record(s, vdi))
    pbd = ok(proxy.SR.get_PBDs(s, rec["SR"]))[0]
    return os.path.join(ok(proxy.PBD.get_device_config(s, pbd))["location"], rec["location"])


@pytest.mark.timeout(120)
def test_pygrub_reads_the_disk_or_fails_as_xapi(api, daemon, tmp_path):
    proxy, s = api
    vm = ok(proxy.VM.create(s, {
        "name_label": "pygrub", "memory_static_max": str(256 * MiB), "VCPUs_max": "1",
        "VCPUs_at_startup": "1", "domain_type": "pv", "PV_bootloader": "pygrub",
        "PV_args": "extra=1", "actions_after_shutdown": "destroy",
        "actions_after_reboot": "restart", "actions_after_crash": "destroy"}))
    uuid = ok(proxy.VM.get_uuid(s, vm))
    assert err(proxy.VM.start(s, vm, False, False)) == \
        ["BOOTLOADER_FAILED", vm, "the VM has no disk to boot from"]
    sr = ok(proxy.pool.get_default_SR(s, ok(proxy.pool.get_all(s))[0]))
    vdi = ok(proxy.VDI.create(s, {"name_label": "root", "SR": sr, "virtual_size": str(64 * MiB),
                                  "type": "user", "sharable": False, "read_only": False,
                                  "other_config": {}}))
    ok(proxy.VBD.create(s, {"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": True,
                            "mode": "RW", "type": "Disk", "unpluggable": True, "empty": False,
                            "other_config": {}, "qos_algorithm_type": "",
                            "qos_algorithm_params": {}}))
    fmt = "raw" if vdi_file(api, vdi).endswith(".raw") else "qcow2"
    e = err(proxy.VM.start(s, vm, False, False))  # an empty disk
    assert e[:2] == ["BOOTLOADER_FAILED", vm] and "no partition or filesystem" in e[2]
    image = str(tmp_path / "disk.raw")
    ext4_image(image, {"/boot/grub/grub.cfg": GRUB})
    write_into_vdi(image, vdi_file(api, vdi), fmt)
    e = err(proxy.VM.start(s, vm, False, False))
    assert e == ["BOOTLOADER_FAILED", vm, "/boot/grub/grub.cfg names kernel "
                 "/boot/vmlinuz-6, which its filesystem lacks"]
    # a whole-disk filesystem with its kernel and initrd boots
    ext4_image(image, {"/boot/grub/grub.cfg": GRUB, "/boot/vmlinuz-6": b"kernel",
                       "/boot/initrd.img-6": b"initrd"}, partitioned=None)
    write_into_vdi(image, vdi_file(api, vdi), fmt)
    staging = os.path.join(daemon.state_dir, "bootloader", uuid)
    os.makedirs(staging)
    open(os.path.join(staging, "kernel"), "w").close()  # what a crashed start left
    ok(proxy.VM.start(s, vm, False, False))
    assert ok(proxy.VM.get_power_state(s, vm)) == "Running"
    assert not os.path.exists(staging)
    ok(proxy.VM.hard_shutdown(s, vm))
    # a GPT partition; a FAT filesystem with extlinux.conf (paths relative to it)
    ext4_image(image, {"/boot/grub/menu.lst": b"default 0\ntitle x\n kernel /k ro\n",
                       "/k": b"kernel"}, partitioned="gpt")
    write_into_vdi(image, vdi_file(api, vdi), fmt)
    ok(proxy.VM.start(s, vm, False, False))
    ok(proxy.VM.hard_shutdown(s, vm))
    fat_image(image, {"/extlinux/extlinux.conf": b"DEFAULT a\nLABEL a\n KERNEL vmlinuz\n"
                                                  b" APPEND initrd=../i.img ro\n"})
    write_into_vdi(image, vdi_file(api, vdi), fmt)
    e = err(proxy.VM.start(s, vm, False, False))
    assert e == ["BOOTLOADER_FAILED", vm, "/extlinux/extlinux.conf names kernel "
                 "/extlinux/vmlinuz, which its filesystem lacks"]
    fat_image(image, {"/extlinux/extlinux.conf": b"DEFAULT a\nLABEL a\n KERNEL vmlinuz\n"
                                                  b" APPEND initrd=/i.img ro\n",
                      "/extlinux/vmlinuz": b"kernel", "/i.img": b"initrd"})
    write_into_vdi(image, vdi_file(api, vdi), fmt)
    ok(proxy.VM.start(s, vm, False, False))
    ok(proxy.VM.hard_shutdown(s, vm))
    # only pygrub, and without options
    ok(proxy.VM.set_PV_bootloader_args(s, vm, "--entry=1"))
    assert err(proxy.VM.start(s, vm, False, False))[:3] == \
        ["VALUE_NOT_SUPPORTED", "PV_bootloader_args", "--entry=1"]
    ok(proxy.VM.set_PV_bootloader_args(s, vm, ""))
    ok(proxy.VM.set_PV_bootloader(s, vm, "eliloader"))
    assert err(proxy.VM.start(s, vm, False, False))[:3] == \
        ["VALUE_NOT_SUPPORTED", "PV_bootloader", "eliloader"]
    assert ok(proxy.VM.get_power_state(s, vm)) == "Halted"
    for vbd in ok(proxy.VM.get_VBDs(s, vm)):
        ok(proxy.VBD.destroy(s, vbd))
    ok(proxy.VM.destroy(s, vm))
    ok(proxy.VDI.destroy(s, vdi))
