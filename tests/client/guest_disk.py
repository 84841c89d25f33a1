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


def _content(content):
    if isinstance(content, bytes):
        return content
    with open(content, "rb") as f:
        return f.read()


def _partition_table(path, size, scheme):
    """An MBR with one bootable Linux partition at PART_OFFSET, or a GPT
    (a protective MBR, the header at LBA 1, its entries from LBA 2) with one
    Linux filesystem partition there; xapid reads no CRC, so none is made."""
    sectors = (size - PART_OFFSET) // 512
    with open(path, "r+b") as f:
        f.seek(0x1BE)
        if scheme == "mbr":
            f.write(struct.pack("<B3sB3sII", 0x80, b"\0" * 3, 0x83, b"\0" * 3,
                                PART_OFFSET // 512, sectors))
        else:
            f.write(struct.pack("<B3sB3sII", 0, b"\0" * 3, 0xEE, b"\0" * 3, 1,
                                size // 512 - 1))
            f.seek(512)
            f.write(b"EFI PART" + struct.pack("<IIIIQQQQ16sQII", 0x10000, 92, 0, 0, 1,
                                              size // 512 - 1, 34, size // 512 - 34,
                                              b"\1" * 16, 2, 128, 128))
            f.seek(1024)
            linux = bytes.fromhex("af3dc60f838472478e793d69d8477de4")
            f.write(linux + b"\2" * 16 + struct.pack("<QQ", PART_OFFSET // 512,
                                                    size // 512 - 35))
        f.seek(510)
        f.write(b"\x55\xaa")


def ext4_image(path, files, size=64 * MiB, partitioned="mbr"):
    """path: a raw image of size holding files ({"/boot/grub/grub.cfg": bytes
    or a host path}) in ext4, in partition 1 of an MBR ("mbr") or a GPT
    ("gpt"), or over the whole disk (None)."""
    with tempfile.TemporaryDirectory() as root:
        for name, content in files.items():
            target = os.path.join(root, name.lstrip("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as f:
                f.write(_content(content))
        with open(path, "wb") as f:
            f.truncate(size)
        offset = PART_OFFSET if partitioned else 0
        if partitioned:
            _partition_table(path, size, partitioned)
        subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", root, "-E",
                        f"offset={offset}", path, f"{(size - offset) // 1024}k"],
                       check=True, stdout=subprocess.DEVNULL)


def fat_image(path, files, size=64 * MiB):
    """A FAT filesystem over the whole disk holding files (mtools copies them in)."""
    if os.path.exists(path):
        os.unlink(path)
    subprocess.run(["mkfs.vfat", "-C", path, str(size // 1024)], check=True,
                   stdout=subprocess.DEVNULL)
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in files.items():
            parts = name.strip("/").split("/")
            for i in range(1, len(parts)):
                subprocess.run(["mmd", "-D", "s", "-i", path, "::/" + "/".join(parts[:i])],
                               env=env, stderr=subprocess.DEVNULL)
            src = os.path.join(tmp, "f")
            with open(src, "wb") as f:
                f.write(_content(content))
            subprocess.run(["mcopy", "-o", "-i", path, src, "::" + name], env=env, check=True)


def write_into_vdi(image, vdi_file, fmt):
    """The raw image's contents into the VDI's existing image of format fmt."""
    subprocess.run(["qemu-img", "convert", "-n", "-f", "raw", "-O", fmt, image, vdi_file],
                   check=True)
