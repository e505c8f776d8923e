"""The MBR partition table of a Raspberry Pi OS image, read and resized with ``sfdisk``.

Raspberry Pi OS images have a DOS label with two partitions: a FAT32 ``bootfs`` (firmware,
``config.txt``, ``cmdline.txt``; mounted at ``/boot/firmware``) and an ext4 ``rootfs``.
``cmdline.txt`` finds the root by ``PARTUUID=<disk id>-02``, so the disk id must never change:
``sfdisk -N 2`` edits one partition and keeps the label as it is.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from image.errors import ImageError
from image.tools import run

SECTOR = 512
FAT_TYPES = {"b", "c", "e"}  # FAT32 CHS, FAT32 LBA, FAT16 LBA (older images)
LINUX_TYPE = "83"


@dataclass(frozen=True)
class Partition:
    number: int
    start: int  # sectors
    size: int  # sectors
    type: str  # MBR type in hex, lower case, as sfdisk prints it

    @property
    def offset(self) -> int:
        return self.start * SECTOR

    @property
    def bytes(self) -> int:
        return self.size * SECTOR

    @property
    def end(self) -> int:
        return self.offset + self.bytes


@dataclass(frozen=True)
class Layout:
    disk_id: str
    boot: Partition
    root: Partition


def read_table(path: Path, *, epoch: int, name: str) -> tuple[str, list[Partition]]:
    """(disk id, partitions) as ``sfdisk --json`` reads them; ``name`` is used in messages."""
    done = run(
        ["sfdisk", "--json", str(path)],
        epoch=epoch,
        what=f"reading the partition table of {name}",
        ok_codes=(0, 1),
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise ImageError(
            f"{name} has no partition table, so it is not a disk image: pass a Raspberry Pi OS "
            "Lite arm64 image (.img or .img.xz) as downloaded from raspberrypi.com"
        )
    table = json.loads(done.stdout)["partitiontable"]
    if table.get("label") != "dos":
        raise ImageError(
            f"{name} has a {table.get('label')} partition table, but Raspberry Pi OS images "
            "use an MBR (dos) one: pass a Raspberry Pi OS Lite arm64 image"
        )
    parts = []
    for entry in table.get("partitions", []):
        # sfdisk names partitions after the file: "base.img2", "disk1p2".
        number = re.search(r"(\d+)$", entry["node"])
        parts.append(
            Partition(
                number=int(number.group(1)) if number else len(parts) + 1,
                start=int(entry["start"]),
                size=int(entry["size"]),
                type=str(entry["type"]).lower(),
            )
        )
    return str(table.get("id", "")), parts


def check_layout(disk_id: str, parts: list[Partition], *, name: str, size: int) -> Layout:
    """The boot and root partitions, if ``parts`` has Raspberry Pi OS's layout; else an error.

    ``size`` is the (uncompressed) image size: a partition that runs past it means a truncated
    download.
    """
    found = ", ".join(f"#{p.number} type {p.type}" for p in parts) or "none"
    if len(parts) != 2:
        raise ImageError(
            f"{name} has {len(parts)} partition(s) ({found}); Raspberry Pi OS images have two "
            "(FAT32 bootfs, ext4 rootfs): pass an unmodified Raspberry Pi OS Lite arm64 image"
        )
    boot, root = sorted(parts, key=lambda p: p.start)
    if boot.type not in FAT_TYPES or root.type != LINUX_TYPE:
        raise ImageError(
            f"{name} has partitions {found}; Raspberry Pi OS has a FAT32 boot partition "
            "(type c) followed by a Linux root partition (type 83)"
        )
    if root.end > size:
        raise ImageError(
            f"{name} is {size:,} bytes but its root partition ends at byte {root.end:,}: "
            "the file is truncated, download it again"
        )
    return Layout(disk_id=disk_id, boot=boot, root=root)


def resize_partition(path: Path, number: int, sectors: int, *, epoch: int) -> None:
    """Give partition ``number`` a new size in sectors; start, type and disk id stay."""
    run(
        ["sfdisk", "--no-reread", "--no-tell-kernel", "-q", "-N", str(number), str(path)],
        input=f"size={sectors}\n".encode(),
        epoch=epoch,
        what=f"resizing partition {number}",
    )
