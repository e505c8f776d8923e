"""Which medium the root filesystem lives on: SD cards wear out, so Apiary cares.

The kernel command line says ``root=/dev/mmcblk0p2`` on older images, but Raspberry Pi OS now uses
``root=PARTUUID=…``, which cannot be resolved without ``/dev``; then the device mounted on ``/``
in ``/proc/mounts`` answers. Inside a container ``/`` is an overlay and the medium is "unknown".
"""

from __future__ import annotations

import re
from pathlib import Path

from hardware.files import read_text

MEDIA = ("sd", "emmc", "usb", "nvme", "unknown")

_MMC = re.compile(r"/dev/mmcblk(\d+)(p\d+)?$")
_SCSI = re.compile(r"/dev/sd[a-z]+\d*$")
_NVME = re.compile(r"/dev/nvme\d+n\d+(p\d+)?$")


def root_device(proc: Path) -> str | None:
    """The root device as a ``/dev`` path, from the kernel command line or else the mount table."""
    for arg in (read_text(proc / "cmdline") or "").split():
        if arg.startswith("root=/dev/"):
            return arg.removeprefix("root=")
    device = None
    for line in (read_text(proc / "mounts") or "").splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[1] == "/":
            device = fields[0]  # the last mount on "/" is the one in effect
    return device if device and device.startswith("/dev/") else None


def medium(device: str | None, sys_root: Path) -> str:
    """The medium a root device lives on: one of ``MEDIA``.

    An MMC device is an SD card unless sysfs says it is soldered-on eMMC (CM4, CM5). A Pi has
    no SATA, so a SCSI disk (``sdX``) is USB mass storage.
    """
    if device is None:
        return "unknown"
    if match := _MMC.match(device):
        kind = read_text(sys_root / f"block/mmcblk{match.group(1)}/device/type")
        return "emmc" if (kind or "").strip() == "MMC" else "sd"
    if _SCSI.match(device):
        return "usb"
    if _NVME.match(device):
        return "nvme"
    return "unknown"
