"""The FAT boot partition, read and written in place with mtools (``image@@offset``)."""

from __future__ import annotations

import os
from pathlib import Path

from image.errors import ImageError
from image.tools import run


def _drive(image: Path, offset: int) -> str:
    return f"{image}@@{offset}"


def root_names(image: Path, offset: int, *, epoch: int, name: str) -> set[str]:
    """Lower-cased names of the files in the root folder of the FAT file system at ``offset``."""
    done = run(
        ["mdir", "-b", "-i", _drive(image, offset), "::/"],
        epoch=epoch,
        what=f"reading the boot partition of {name}",
        ok_codes=(0, 1),
    )
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip()
        raise ImageError(
            f"the first partition of {name} is not a readable FAT file system ({detail}); "
            "pass an unmodified Raspberry Pi OS Lite arm64 image"
        )
    # `mdir -b` prints one "::/NAME" per entry, with the long (VFAT) name when there is one.
    return {line.rsplit("/", 1)[-1].lower() for line in done.stdout.decode().splitlines() if line}


def read_file(image: Path, offset: int, name: str, *, epoch: int) -> bytes:
    return run(
        ["mtype", "-i", _drive(image, offset), f"::/{name}"],
        epoch=epoch,
        what=f"reading {name} from the boot partition",
    ).stdout


def put_file(image: Path, offset: int, local: Path, name: str, *, epoch: int) -> None:
    """Copy ``local`` to ``/name`` on the FAT partition, dated ``epoch`` (reproducible)."""
    os.utime(local, (epoch, epoch))  # `mcopy -m` keeps this time in the directory entry
    run(
        ["mcopy", "-m", "-o", "-i", _drive(image, offset), str(local), f"::/{name}"],
        epoch=epoch,
        what=f"writing {name} to the boot partition",
    )
