"""Boot medium from the kernel command line and the mount table."""

from __future__ import annotations

import pytest

from hardware import detect

PI_MOUNTS = "proc /proc proc rw,relatime 0 0\n{root} / ext4 rw,noatime 0 0\n"


@pytest.mark.parametrize(
    ("cmdline", "mounted", "mmc_type", "medium"),
    [
        ("console=tty1 root=/dev/mmcblk0p2 rootwait", None, None, "sd"),
        ("console=tty1 root=/dev/mmcblk0p2 rootwait", None, "SD", "sd"),
        ("console=tty1 root=/dev/mmcblk0p2 rootwait", None, "MMC", "emmc"),
        ("console=tty1 root=/dev/sda2 rootwait", None, None, "usb"),
        ("console=tty1 root=/dev/nvme0n1p2 rootwait", None, None, "nvme"),
        ("root=PARTUUID=4e639091-02 rootfstype=ext4", "/dev/mmcblk0p2", None, "sd"),
        ("root=PARTUUID=4e639091-02 rootfstype=ext4", "/dev/sdb2", None, "usb"),
        ("root=PARTUUID=4e639091-02 rootfstype=ext4", "/dev/nvme0n1p2", None, "nvme"),
        ("root=PARTUUID=4e639091-02 rootfstype=ext4", "/dev/root", None, "unknown"),
        ("root=PARTUUID=4e639091-02 rootfstype=ext4", None, None, "unknown"),
        ("root=/dev/nfs nfsroot=10.0.0.1:/srv/pi", None, None, "unknown"),
        ("root=UUID=3f2a9c4e ro quiet", "/dev/vda", None, "unknown"),
    ],
)
def test_medium(cmdline: str, mounted: str | None, mmc_type: str | None, medium: str, tree) -> None:
    files: dict[str, str | bytes] = {"proc/cmdline": cmdline + "\n"}
    if mounted:
        files["proc/mounts"] = PI_MOUNTS.format(root=mounted)
    if mmc_type:
        files["sys/block/mmcblk0/device/type"] = mmc_type + "\n"
    assert detect(*tree(files)).boot_medium == medium


def test_the_last_mount_on_root_wins(tree) -> None:
    mounts = "rootfs / rootfs rw 0 0\n/dev/nvme0n1p2 / ext4 rw,noatime 0 0\n"
    profile = detect(*tree({"proc/mounts": mounts}))
    assert profile.root_device == "/dev/nvme0n1p2" and profile.boot_medium == "nvme"


def test_an_explicit_root_on_the_command_line_wins(tree) -> None:
    profile = detect(
        *tree({"proc/cmdline": "root=/dev/sda2\n", "proc/mounts": PI_MOUNTS.format(root="/dev/x")})
    )
    assert profile.root_device == "/dev/sda2"
