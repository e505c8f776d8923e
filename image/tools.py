"""The external programs the builder drives, and one way to run them.

Everything is edited in ordinary files with ordinary tools — no loop devices, no mounts, no root:
partition tables with ``sfdisk``, FAT with ``mtools``, ext4 with ``e2fsprogs``. The environment
pins the clock (``SOURCE_DATE_EPOCH``, ``E2FSPROGS_FAKE_TIME``, ``E2FSCK_TIME``), the time zone
(FAT stores local time) and the locale, and hides the user's mtools configuration, so output
bytes depend only on the inputs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence

from image.errors import ImageError

# program → Debian package that provides it (the names `.ci/run` installs).
TOOLS: dict[str, str] = {
    "sfdisk": "fdisk",
    "mcopy": "mtools",
    "mdir": "mtools",
    "mtype": "mtools",
    "debugfs": "e2fsprogs",
    "dumpe2fs": "e2fsprogs",
    "e2fsck": "e2fsprogs",
    "resize2fs": "e2fsprogs",
}
XZ_TOOL = {"xz": "xz-utils"}  # only for reading the size of a .img.xz base


def missing_tools(needed: Mapping[str, str] = TOOLS) -> list[str]:
    return [name for name in needed if shutil.which(name) is None]


def require_tools(needed: Mapping[str, str] = TOOLS) -> None:
    missing = missing_tools(needed)
    if missing:
        packages = sorted({needed[name] for name in missing})
        raise ImageError(
            f"missing tools: {', '.join(missing)}; install them with "
            f"`sudo apt-get install {' '.join(packages)}` (Debian/Ubuntu package names)"
        )


def tool_env(epoch: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SOURCE_DATE_EPOCH=str(epoch),  # mtools honours it for FAT entry times
        E2FSPROGS_FAKE_TIME=str(epoch),  # inode and superblock times written by e2fsprogs
        E2FSCK_TIME=str(epoch),  # e2fsck's own clock ("last checked" in the superblock)
        TZ="UTC",  # FAT timestamps are local time: make "local" the same on every machine
        LC_ALL="C",  # tool messages we parse stay in English
        MTOOLSRC="/dev/null",  # a user's ~/.mtoolsrc must not change how images are read
        MTOOLS_SKIP_CHECK="1",  # partition images have no floppy geometry to check
    )
    return env


def run(
    args: Sequence[str],
    *,
    epoch: int,
    input: bytes | None = None,
    what: str,
    ok_codes: tuple[int, ...] = (0,),
) -> subprocess.CompletedProcess[bytes]:
    """Run a tool; a non-zero exit becomes an ``ImageError`` saying ``what`` failed and why."""
    try:
        done = subprocess.run(
            list(args), input=input, capture_output=True, env=tool_env(epoch), check=False
        )
    except FileNotFoundError:
        raise ImageError(f"{what}: {args[0]} is not installed") from None
    if done.returncode not in ok_codes:
        detail = (done.stderr or done.stdout).decode(errors="replace").strip()
        raise ImageError(f"{what} failed ({args[0]} exit {done.returncode}): {detail}")
    return done
