"""Small guest disk images for the PV_bootloader tests: an ext4 filesystem
made from files by mke2fs -d (no root, no mount), over the whole disk or in
the first partition of an MBR written here, copied into a VDI's image by
qemu-img."""
import os
import struct
import subprocess
import tempfile

MiB = 1 << 20
PART_OFFSET = MiB  # sector 2048, as partitioning tools align


def ext4_image(path, files, size=64 * MiB, partitioned=True):
    """path: a raw image of size holding files ({"/boot/grub/grub.cfg": bytes
    or a host path}) in ext4, in an MBR's bootable partition 1 when
    partitioned, else over the whole disk."""
    with tempfile.TemporaryDirectory() as root:
        for name, content in files.items():
            target = os.path.join(root, name.lstrip("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if isinstance(content, bytes):
                with open(target, "wb") as f:
                    f.write(content)
            else:
                with open(content, "rb") as src, open(target, "wb") as f:
                    f.write(src.read())
        with open(path, "wb") as f:
            f.truncate(size)
        offset = PART_OFFSET if partitioned else 0
        if partitioned:
            entry = struct.pack("<B3sB3sII", 0x80, b"\0\0\0", 0x83, b"\0\0\0",
                                offset // 512, (size - offset) // 512)
            with open(path, "r+b") as f:
                f.seek(0x1BE)
                f.write(entry)
                f.seek(510)
                f.write(b"\x55\xaa")
        subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", root, "-E",
                        f"offset={offset}", path, f"{(size - offset) // 1024}k"],
                       check=True, stdout=subprocess.DEVNULL)


def write_into_vdi(image, vdi_file, fmt):
    """The raw image's contents into the VDI's existing image of format fmt."""
    subprocess.run(["qemu-img", "convert", "-n", "-f", "raw", "-O", fmt, image, vdi_file],
                   check=True)
