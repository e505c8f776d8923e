"""One build: check every input, then copy, grow, install, check and checksum.

Steps, in order — nothing is written before all inputs have passed their checks:

1. tools present; binary is an AArch64 program; base has Raspberry Pi OS's partitions, a boot
   partition with ``config.txt`` and ``cmdline.txt`` and an arm64 root file system (a ``.xz``
   base: the partition table first, the partitions as soon as they are decompressed); enough
   free space next to the output
2. the base is split into ``<out>.partial`` (everything before the root partition) and a file
   holding the root partition
3. the root file system grows if the program plus a margin does not fit
4. user, program, units and first-boot script go into the root file system; the settings
   template onto the boot partition, and the memory cgroup onto the kernel command line
5. ``e2fsck`` checks the root file system; it is appended, the partition table updated, the
   image checksummed and renamed into place with its ``.sha256`` file
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from image import cmdline, ext4, fat, partitions, payload, rootfs, source
from image.config import BuildConfig
from image.errors import ImageError
from image.tools import TOOLS, XZ_TOOL, require_tools

MiB = 1 << 20
ALIGN = 4 * MiB  # Raspberry Pi OS aligns partitions to 4 MiB
# Free space left in the root file system after installing: first boot writes logs and the
# node's state before Raspberry Pi OS grows the root partition to fill the card.
MARGIN = 16 * MiB
INODE_MARGIN = 64
BOOT_FILES = ("config.txt", "cmdline.txt")
TEMPLATE_NAME = "apiary.toml"

Report = Callable[[str], None]


@dataclass(frozen=True)
class BuildResult:
    out: Path
    checksum_file: Path
    sha256: str
    size: int
    grown_bytes: int  # how much the root partition grew (0: it had room)
    uid: int  # the apiary user's uid (= gid)
    files: int  # entries of the program tree installed
    seconds: float


def check_boot(image: Path, offset: int, *, epoch: int, name: str) -> None:
    names = fat.root_names(image, offset, epoch=epoch, name=name)
    missing = [f for f in BOOT_FILES if f not in names]
    if missing:
        raise ImageError(
            f"the boot partition of {name} has no {' or '.join(missing)}, so it is not "
            "Raspberry Pi OS: pass an unmodified Raspberry Pi OS Lite arm64 image"
        )
    if TEMPLATE_NAME in names:
        raise ImageError(
            f"the boot partition of {name} already has {TEMPLATE_NAME}: start from a clean "
            "Raspberry Pi OS image, not from one apiary-image has built"
        )


def check_space(folder: Path, needed: int, free: int | None = None) -> None:
    """Refuse to start when ``folder`` has less than ``needed`` bytes free."""
    free = shutil.disk_usage(folder).free if free is None else free
    if free < needed:
        raise ImageError(
            f"{folder} has {free / 2**30:.2f} GiB free but the build needs about "
            f"{needed / 2**30:.2f} GiB (the image plus a working copy of its root partition): "
            "free some space or write the image elsewhere"
        )


def growth_needed(fs: ext4.FsInfo, program_bytes: int, program_files: int, root_end: int) -> int:
    """Bytes the root partition must grow by so the program fits with ``MARGIN`` to spare.

    Each file takes whole blocks; each new folder and symlink at least an inode. The new end of
    the partition is aligned to 4 MiB, as Raspberry Pi OS aligns its partitions.
    """
    blocks = program_bytes // fs.block_size + 2 * program_files + 64  # data, dirs, extents, units
    shortfall = blocks * fs.block_size + MARGIN - fs.available_bytes
    inode_shortfall = program_files + INODE_MARGIN - fs.free_inodes
    if inode_shortfall > 0:  # more block groups bring more inodes
        groups = -(-inode_shortfall // fs.inodes_per_group)
        shortfall = max(shortfall, groups * fs.blocks_per_group * fs.block_size)
    if shortfall <= 0:
        return 0
    new_end = -(-(root_end + shortfall) // ALIGN) * ALIGN
    return new_end - root_end


def build(config: BuildConfig, report: Report = lambda step: None) -> BuildResult:
    started = time.monotonic()
    epoch = config.source_date_epoch
    name = config.base.name

    report("Checking the inputs")
    require_tools(TOOLS)
    program_kind = payload.check(config.binary)
    program_bytes = payload.estimate_bytes(config.binary)
    base = source.open_base(config.base, epoch=epoch)
    if base.compressed:
        require_tools(XZ_TOOL)

    work = Path(tempfile.mkdtemp(prefix=".apiary-image-", dir=config.out.parent))
    partial = config.out.with_name(config.out.name + ".partial")
    try:
        table_file = work / "head.img"
        table_file.write_bytes(source.head(base, MiB))
        disk_id, parts = partitions.read_table(table_file, epoch=epoch, name=name)
        layout = partitions.check_layout(disk_id, parts, name=name, size=base.size)
        boot, root = layout.boot, layout.root
        if not base.compressed:  # check the partitions in place, before copying anything
            check_boot(base.path, boot.offset, epoch=epoch, name=name)
            in_place = f"{base.path}?offset={root.offset}"
            ext4.info(in_place, epoch=epoch, name=name)
            rootfs.check_base(in_place, epoch=epoch, name=name)
        unpacked = 0 if config.binary.is_dir() else program_bytes
        check_space(config.out.parent, base.size + root.bytes + 2 * program_bytes + unpacked)

        report(f"Reading {name}" + (" (decompressing)" if base.compressed else ""))
        root_file = work / "rootfs.ext4"

        def boot_ready() -> None:
            if base.compressed:
                check_boot(partial, boot.offset, epoch=epoch, name=name)

        source.split(
            base,
            at=root.offset,
            end=root.end,
            head_to=partial,
            tail_to=root_file,
            on_head=boot_ready,
        )
        fs = ext4.info(root_file, epoch=epoch, name=name)
        if base.compressed:
            rootfs.check_base(root_file, epoch=epoch, name=name)
        if not fs.clean or fs.needs_recovery:
            raise ImageError(
                f"the root file system of {name} was not unmounted cleanly; pass an unmodified "
                "Raspberry Pi OS image"
            )

        program = payload.load(config.binary, work)
        grow = growth_needed(fs, program.total_bytes, len(program.entries), root.end)
        if grow:
            report(f"Growing the root partition by {grow / MiB:,.0f} MiB")
            ext4.check(root_file, epoch=epoch, repair=True)  # resize2fs wants a fresh check
            ext4.resize(root_file, (root.bytes + grow) // fs.block_size, epoch=epoch)

        report(
            f"Installing the {program_kind} ({program.total_bytes / MiB:,.1f} MiB, "
            f"{len(program.entries)} entries), the apiary user and the units"
        )
        installed = rootfs.install(root_file, program, epoch=epoch, scratch=work)
        template = work / TEMPLATE_NAME
        template.write_bytes(rootfs.template(TEMPLATE_NAME))
        fat.put_file(partial, boot.offset, template, TEMPLATE_NAME, epoch=epoch)
        if config.memory_cgroup:
            current = fat.read_file(partial, boot.offset, "cmdline.txt", epoch=epoch).decode()
            wanted = cmdline.with_memory_cgroup(current)
            if wanted != current:
                edited = work / "cmdline.txt"
                edited.write_text(wanted)
                fat.put_file(partial, boot.offset, edited, "cmdline.txt", epoch=epoch)

        report("Checking the root file system")
        ext4.check(root_file, epoch=epoch)

        report("Writing the image")
        source.append(root_file, partial, root.offset)
        root_file.unlink()
        if grow:
            partitions.resize_partition(
                partial, root.number, (root.bytes + grow) // 512, epoch=epoch
            )
        with partial.open("rb") as image_file:
            sha256 = hashlib.file_digest(image_file, "sha256").hexdigest()
        partial.replace(config.out)
        checksum_file = config.out.with_name(config.out.name + ".sha256")
        checksum_file.write_text(f"{sha256}  {config.out.name}\n")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return BuildResult(
        out=config.out,
        checksum_file=checksum_file,
        sha256=sha256,
        size=config.out.stat().st_size,
        grown_bytes=grow,
        uid=installed.uid,
        files=installed.files,
        seconds=time.monotonic() - started,
    )
