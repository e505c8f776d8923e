"""The ext4 root file system, edited as a plain file with e2fsprogs (no mount, no root).

``debugfs -w -f script`` creates folders, files and symlinks and sets owner, mode and times on
inodes; ``resize2fs`` grows the file system; ``e2fsck`` checks it. They work on a file holding
just the partition: ``resize2fs`` truncates a regular file to the new file-system size, which
would cut off the end of a whole disk image read through ``?offset=``.

``debugfs`` exits 0 even when a command in its script fails, so anything it prints on stderr
other than its version banner counts as a failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from image.errors import ImageError
from image.tools import run

# A file holding the file system, or "image.img?offset=N" (read-only use: see the module doc).
Device = str | Path

# Characters a path in a debugfs script cannot carry: it splits arguments on blanks, honours
# double quotes, and reads one command per line.
_UNSAFE = re.compile(r'["\n\r\\]')


def quote(path: str) -> str:
    if _UNSAFE.search(path):
        raise ImageError(f"cannot install a file named {path!r}: quotes, backslashes or newlines")
    return f'"{path}"'


@dataclass
class Script:
    """debugfs commands, run in one process. Paths are absolute paths inside the file system."""

    lines: list[str] = field(default_factory=list)

    def mkdir(self, path: str, *, mode: int, uid: int = 0, gid: int = 0) -> None:
        self.lines.append(f"mkdir {quote(path)}")
        self.owner(path, mode=0o040000 | mode, uid=uid, gid=gid)

    def write(self, local: Path, path: str, *, mode: int, uid: int = 0, gid: int = 0) -> None:
        self.lines.append(f"write {quote(str(local))} {quote(path)}")
        self.owner(path, mode=0o100000 | mode, uid=uid, gid=gid)

    def symlink(self, path: str, target: str) -> None:
        # Symlinks are 0777 by definition; debugfs creates them owned by root.
        self.lines.append(f"symlink {quote(path)} {quote(target)}")

    def remove(self, path: str) -> None:
        self.lines.append(f"rm {quote(path)}")

    def owner(self, path: str, *, mode: int, uid: int, gid: int) -> None:
        # Set explicitly: debugfs would copy the builder's own uid and umask into the image.
        for name, value in (("mode", f"0{mode:o}"), ("uid", uid), ("gid", gid)):
            self.lines.append(f"set_inode_field {quote(path)} {name} {value}")

    def text(self) -> str:
        return "".join(f"{line}\n" for line in self.lines)


def _errors(stderr: bytes) -> list[str]:
    lines = stderr.decode(errors="replace").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("debugfs 1.")]


def apply(fs: Device, script: Script, *, epoch: int, scratch: Path) -> None:
    """Run ``script`` against the file system in ``fs`` (writable)."""
    script_file = scratch / "debugfs-script"
    script_file.write_text(script.text())
    done = run(
        ["debugfs", "-w", "-f", str(script_file), str(fs)],
        epoch=epoch,
        what="editing the root file system",
    )
    problems = _errors(done.stderr)
    if problems:
        raise ImageError("editing the root file system failed: " + "; ".join(problems[:5]))


def cat(fs: Device, path: str, *, epoch: int) -> bytes | None:
    """The contents of ``path``, or None if it does not exist."""
    done = run(
        ["debugfs", "-R", f"cat {quote(path)}", str(fs)], epoch=epoch, what=f"reading {path}"
    )
    return None if _errors(done.stderr) else done.stdout


@dataclass(frozen=True)
class Inode:
    kind: str  # "regular", "directory", "symlink", ...
    mode: int  # permission bits only
    uid: int
    gid: int


_STAT = re.compile(r"Type:\s+(\S+)\s+Mode:\s+(\d+).*?User:\s+(\d+)\s+Group:\s+(\d+)", re.S)


def stat(fs: Device, path: str, *, epoch: int) -> Inode | None:
    """Type, permission bits and owner of ``path``, or None if it does not exist."""
    done = run(
        ["debugfs", "-R", f"stat {quote(path)}", str(fs)], epoch=epoch, what=f"reading {path}"
    )
    found = _STAT.search(done.stdout.decode(errors="replace"))
    if _errors(done.stderr) or not found:
        return None
    kind, mode, uid, gid = found.groups()
    return Inode(kind=kind, mode=int(mode, 8), uid=int(uid), gid=int(gid))


@dataclass(frozen=True)
class FsInfo:
    block_size: int
    block_count: int
    free_blocks: int
    reserved_blocks: int
    free_inodes: int
    inodes_per_group: int
    blocks_per_group: int
    clean: bool
    needs_recovery: bool

    @property
    def available_bytes(self) -> int:
        """Space an ordinary user (the apiary service) could still fill."""
        return max(self.free_blocks - self.reserved_blocks, 0) * self.block_size


def info(fs: Device, *, epoch: int, name: str) -> FsInfo:
    """The superblock of the ext4 file system in ``fs``; an error if it is not one."""
    done = run(
        ["dumpe2fs", "-h", str(fs)],
        epoch=epoch,
        what=f"reading the root file system of {name}",
        ok_codes=(0, 1),
    )
    fields: dict[str, str] = {}
    for line in done.stdout.decode(errors="replace").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    if done.returncode != 0 or "Block count" not in fields:
        raise ImageError(
            f"the second partition of {name} is not an ext4 file system; pass an unmodified "
            "Raspberry Pi OS Lite arm64 image"
        )
    features = fields.get("Filesystem features", "").split()
    return FsInfo(
        block_size=int(fields["Block size"]),
        block_count=int(fields["Block count"]),
        free_blocks=int(fields["Free blocks"]),
        reserved_blocks=int(fields.get("Reserved block count", "0")),
        free_inodes=int(fields["Free inodes"]),
        inodes_per_group=int(fields["Inodes per group"]),
        blocks_per_group=int(fields["Blocks per group"]),
        clean=fields.get("Filesystem state") == "clean",
        needs_recovery="needs_recovery" in features,
    )


def check(fs: Device, *, epoch: int, repair: bool = False) -> None:
    """``e2fsck -f``: read-only (``-n``), or preen (``-p``: fix only what is safe to fix)."""
    done = run(
        ["e2fsck", "-f", "-p" if repair else "-n", str(fs)],
        epoch=epoch,
        what="checking the root file system",
        ok_codes=(0, 1, 2, 4, 8),
    )
    # 0 clean; 1 errors corrected (preen); anything else: errors left or e2fsck failed.
    if done.returncode > (1 if repair else 0):
        detail = (done.stdout + done.stderr).decode(errors="replace").strip().splitlines()
        raise ImageError(
            "the root file system has errors e2fsck cannot fix safely: " + "; ".join(detail[-3:])
        )


def resize(fs: Device, blocks: int, *, epoch: int) -> None:
    """Grow the file system in ``fs`` to ``blocks`` file-system blocks (the file grows too)."""
    run(["resize2fs", str(fs), str(blocks)], epoch=epoch, what="growing the root file system")
