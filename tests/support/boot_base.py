"""A Raspberry Pi OS-shaped base image made from a real arm64 Debian, for the boot test.

Raspberry Pi OS itself cannot be downloaded here, so the base is built the way its own tools do:
an arm64 Debian 12 root with systemd and a kernel (:data:`BOOT_ROOT`, made with mmdebstrap under
qemu-user and cached, see :mod:`image.foreign`), turned rootlessly into an image with Raspberry
Pi OS's layout: an MBR with a FAT32 ``bootfs`` (``config.txt``, ``cmdline.txt``, the kernel and
initramfs) from 4 MiB and an ext4 ``rootfs`` made with ``mke2fs -d``. ``apiary-image build`` takes
it like a real Raspberry Pi OS Lite image; qemu's ``virt`` board boots it with that kernel.

What the base adds for the test, as a user's own setup would: the boot partition mounted at
/boot/firmware, the host's shared folder (9p, tag ``host``) at /srv/host with a drop-in letting
apiary.service write its storage root there, and ``apiary-probe``, a root service that runs the
shell scripts the test drops into the shared folder and writes back their output (the guest has
no network, so this is the test's only way in).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from image.foreign import RootSpec, ensure_root

# systemd as init, udev and dbus for a normal boot, the arm64 kernel (and its initramfs),
# fsck tools for both partitions, ps for the probe, passwd for /etc/shadow.
BOOT_ROOT = RootSpec(
    "boot",
    (
        "systemd-sysv",
        "udev",
        "dbus",
        "linux-image-arm64",
        "e2fsprogs",
        "dosfstools",
        "procps",
        "kmod",
        "passwd",
        "mount",
    ),
    # A small initramfs: the virt board's disk and root file system only. Debian's default
    # (MODULES=most) copies ~1,000 modules, each inspected by tools running under qemu-user:
    # 26 of the root's 39 minutes here; with this list the whole root takes ~9.
    hooks=(
        (
            "--setup-hook",
            'mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d"',
        ),
        (
            "--setup-hook",
            'printf "MODULES=list\\n" > "$1/etc/initramfs-tools/conf.d/apiary-boot-test.conf"',
        ),
        (
            "--setup-hook",
            'printf "virtio_pci\\nvirtio_mmio\\nvirtio_blk\\next4\\n" '
            '> "$1/usr/share/initramfs-tools/modules.d/apiary-boot-test"',
        ),
    ),
)

MiB = 1 << 20
BOOT_START = 8192  # sectors: 4 MiB, as Raspberry Pi OS
BOOT_MIB = 128
DISK_ID = "0x5e3da6b0"
SHARED_TAG = "host"
SHARED_MOUNT = "/srv/host"
STORAGE = f"{SHARED_MOUNT}/root"  # the storage root: host and guest see the same files
PROBE_DIR = f"{SHARED_MOUNT}/probe"
CONFIG_TXT = "# config.txt of the boot test's base\narm_64bit=1\nenable_uart=1\n"
# Raspberry Pi OS's line; qemu's virt board gets its console and root device from the test.
CMDLINE_TXT = (
    "console=serial0,115200 console=tty1 root=PARTUUID=5e3da6b0-02 rootfstype=ext4 rootwait\n"
)

FSTAB = f"""\
/dev/vda2  /              ext4  defaults,noatime  0 1
/dev/vda1  /boot/firmware vfat  defaults          0 2
{SHARED_TAG} {SHARED_MOUNT} 9p trans=virtio,version=9p2000.L,msize=1048576,nofail 0 0
"""
# The user's own addition for a storage root outside the unit's writable paths.
DROP_IN = f"""\
[Unit]
RequiresMountsFor={SHARED_MOUNT}

[Service]
ReadWritePaths={STORAGE}
"""
PROBE = f"""\
#!/bin/sh
# Runs each {PROBE_DIR}/<n>.sh once, as root, writing <n>.out and then <n>.rc.
cd {PROBE_DIR} || exit 1
echo up > {PROBE_DIR}/ready
while true; do
    for job in *.sh; do
        [ -f "$job" ] || continue
        name=${{job%.sh}}
        [ -f "$name.rc" ] && continue
        sh "$job" > "$name.out" 2>&1
        echo $? > "$name.rc.tmp" && mv "$name.rc.tmp" "$name.rc"
    done
    sleep 0.5
done
"""
PROBE_UNIT = f"""\
[Unit]
Description=Boot test probe: runs the host's scripts from {PROBE_DIR}
RequiresMountsFor={SHARED_MOUNT}

[Service]
ExecStart=/usr/local/sbin/apiary-probe

[Install]
WantedBy=multi-user.target
"""


MTOOLS_ENV = {**os.environ, "MTOOLSRC": "/dev/null", "MTOOLS_SKIP_CHECK": "1"}


def _sh(*args: str | Path, **kwargs: object) -> None:
    subprocess.run([str(a) for a in args], check=True, capture_output=True, **kwargs)  # type: ignore[call-overload]


def kernel_files(root: Path) -> tuple[Path, Path]:
    """The root's kernel and initramfs (what a Pi's firmware would load from the FAT)."""
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    initrds = sorted((root / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        raise RuntimeError(f"no kernel or initramfs in {root}/boot")
    return kernels[-1], initrds[-1]


def _stage(root: Path, work: Path) -> Path:
    """A copy of the cached root (hard links) with the test's additions; returns its path."""
    tree = work / "rootfs"
    shutil.copytree(root, tree, symlinks=True, copy_function=os.link, ignore_dangling_symlinks=True,
                    ignore=shutil.ignore_patterns("build", ".apiary-root-complete"))  # fmt: skip
    for rel, text, mode in (
        ("etc/fstab", FSTAB, 0o644),
        ("etc/hostname", "apiary-boot\n", 0o644),
        ("etc/systemd/system/apiary.service.d/shared-storage.conf", DROP_IN, 0o644),
        ("usr/local/sbin/apiary-probe", PROBE, 0o755),
        ("etc/systemd/system/apiary-probe.service", PROBE_UNIT, 0o644),
    ):
        path = tree / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.unlink()  # a hard link into the cache: never write through it
        path.write_text(text)
        path.chmod(mode)
    # mmdebstrap leaves /etc/machine-id "uninitialized": a first boot, on which Debian's
    # systemd-firstboot would wait at the console for a locale; Raspberry Pi OS has its own.
    (tree / "etc/systemd/system/systemd-firstboot.service").symlink_to("/dev/null")
    wants = tree / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "apiary-probe.service").symlink_to("/etc/systemd/system/apiary-probe.service")
    for folder in ("boot/firmware", SHARED_MOUNT.lstrip("/")):
        (tree / folder).mkdir(parents=True, exist_ok=True)
    return tree


def make_pi_base(out: Path, root: Path | None = None) -> Path:
    """Write the Raspberry Pi OS-shaped base image to ``out`` (rootless, ~1 GiB sparse)."""
    root = root or ensure_root(BOOT_ROOT)
    work = out.parent / f"{out.name}.parts"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    tree = _stage(root, work)
    kernel, initrd = kernel_files(root)
    boot = work / "boot.fat"
    _sh("mkfs.vfat", "-C", "-F", "32", "-S", "512", "-s", "1", "-i", DISK_ID[2:], "-n", "bootfs",
        boot, str(BOOT_MIB * 1024))  # fmt: skip
    for name, local in (
        ("config.txt", _text(work, "config.txt", CONFIG_TXT)),
        ("cmdline.txt", _text(work, "cmdline.txt", CMDLINE_TXT)),
        ("kernel8.img", kernel),
        ("initramfs8", initrd),
    ):
        _sh("mcopy", "-m", "-i", boot, local, f"::/{name}", env=MTOOLS_ENV)
    used = sum(p.lstat().st_size for p in tree.rglob("*") if p.is_file() and not p.is_symlink())
    root_mib = used // MiB + 384  # room for the apiary tree (the builder grows it if needed)
    rootfs = work / "root.ext4"
    _sh("mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-d", tree, "-L", "rootfs",
        "-E", "root_owner=0:0", rootfs, f"{root_mib}M")  # fmt: skip
    root_start = BOOT_START + BOOT_MIB * MiB // 512
    table = "\n".join(
        [
            "label: dos",
            f"label-id: {DISK_ID}",
            f"start={BOOT_START}, size={BOOT_MIB * MiB // 512}, type=c",
            f"start={root_start}, size={root_mib * MiB // 512}, type=83",
        ]
    )
    with out.open("wb") as f:
        f.truncate((root_start + root_mib * MiB // 512) * 512)
    _sh("sfdisk", "--no-reread", "--no-tell-kernel", "-q", out, input=(table + "\n").encode())
    with out.open("r+b") as f:
        for start, part in ((BOOT_START, boot), (root_start, rootfs)):
            f.seek(start * 512)
            with part.open("rb") as src:
                shutil.copyfileobj(src, f, 16 * MiB)
    shutil.rmtree(work)
    return out


def _text(work: Path, name: str, text: str) -> Path:
    path = work / name
    path.write_text(text)
    return path
