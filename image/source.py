"""Reading the base image (``.img`` or ``.img.xz``) and writing image files sparsely.

A ``.img.xz`` is decompressed with Python's ``lzma`` while streaming, never to a whole
temporary copy: the bytes before the root partition go to the output image and the root
partition to its own file, which the builder edits and then appends. Runs of zeros are skipped
with a seek instead of written, so images take only the disk space their data needs.
"""

from __future__ import annotations

import lzma
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from image.errors import ImageError
from image.tools import run

CHUNK = 1 << 20
_ZERO = bytes(CHUNK)
XZ_MAGIC = b"\xfd7zXZ\x00"


@dataclass(frozen=True)
class Base:
    path: Path
    compressed: bool
    size: int  # uncompressed bytes


def open_base(path: Path, *, epoch: int) -> Base:
    with path.open("rb") as f:
        magic = f.read(len(XZ_MAGIC))
    if magic != XZ_MAGIC:
        return Base(path=path, compressed=False, size=path.stat().st_size)
    done = run(
        ["xz", "--robot", "--list", str(path)],
        epoch=epoch,
        what=f"reading the size of {path.name}",
        ok_codes=(0, 1),
    )
    for line in done.stdout.decode().splitlines():
        fields = line.split("\t")
        if fields[0] == "totals" and len(fields) > 4 and done.returncode == 0:
            return Base(path=path, compressed=True, size=int(fields[4]))
    raise ImageError(f"{path} is not a readable .xz file (truncated download?); download it again")


def chunks(base: Base) -> Iterator[bytes]:
    try:
        opener = lzma.open if base.compressed else open
        with opener(base.path, "rb") as f:
            while block := f.read(CHUNK):
                yield block
    except lzma.LZMAError as exc:
        raise ImageError(f"{base.path} is damaged ({exc}); download it again") from None


def head(base: Base, n: int) -> bytes:
    out = bytearray()
    for block in chunks(base):
        out += block
        if len(out) >= n:
            break
    return bytes(out[:n])


class SparseWriter:
    """Writes a file front to back, seeking over all-zero chunks instead of writing them."""

    def __init__(self, path: Path, *, append_at: int | None = None) -> None:
        self._file = path.open("r+b" if append_at is not None else "wb")
        self.position = append_at or 0
        self._file.seek(self.position)

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        for start in range(0, len(view), CHUNK):
            piece = view[start : start + CHUNK]
            if piece != _ZERO[: len(piece)]:
                self._file.seek(self.position)
                self._file.write(piece)
            self.position += len(piece)

    def close(self) -> None:
        self._file.truncate(self.position)  # makes the trailing skipped zeros part of the file
        self._file.close()


def split(
    base: Base, *, at: int, end: int, head_to: Path, tail_to: Path, on_head: Callable[[], None]
) -> None:
    """Bytes [0, at) of the base into ``head_to``, [at, end) into ``tail_to``.

    ``on_head`` runs as soon as the head is complete — before the (larger) rest is read — so
    checks of the boot partition fail fast on a compressed base too.
    """
    writer = SparseWriter(head_to)
    position = 0
    for block in chunks(base):
        view = memoryview(block)
        while len(view) and position < end:
            limit = at if position < at else end
            take = min(len(view), limit - position)
            writer.write(view[:take])
            position += take
            view = view[take:]
            if position == at:
                writer.close()
                on_head()
                writer = SparseWriter(tail_to)
        if position >= end:
            break
    writer.close()
    if position < end:
        raise ImageError(f"{base.path} ends at byte {position:,}, before its root partition does")


def _copy(src: int, dst: int, start: int, to: int, length: int) -> None:
    """Copy ``length`` bytes in the kernel (``copy_file_range``), or by reading and writing."""
    while length > 0:
        try:
            done = os.copy_file_range(src, dst, min(length, 1 << 30), start, to)
        except OSError:  # a file system or kernel without it
            done = os.pwrite(dst, os.pread(src, min(length, CHUNK), start), to)
        if done <= 0:
            raise ImageError(f"copying the root partition stopped at byte {start:,}")
        start, to, length = start + done, to + done, length - done


def append(src: Path, dst: Path, at: int) -> None:
    """Copy ``src`` into ``dst`` starting at byte ``at``; ``dst`` ends where ``src`` does.

    Only the data extents of ``src`` are copied (``SEEK_DATA``/``SEEK_HOLE``): holes stay holes
    and the kernel moves the bytes, which matters for a root partition of several GB.
    """
    with src.open("rb") as fin, dst.open("r+b") as fout:
        size = os.fstat(fin.fileno()).st_size
        position = 0
        while position < size:
            try:
                data = os.lseek(fin.fileno(), position, os.SEEK_DATA)
            except OSError:  # ENXIO: nothing but a hole up to the end
                break
            hole = os.lseek(fin.fileno(), data, os.SEEK_HOLE)
            _copy(fin.fileno(), fout.fileno(), data, at + data, hole - data)
            position = hole
        fout.truncate(at + size)
