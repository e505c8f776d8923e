"""The Apiary program to install: a PyInstaller onedir folder, its release tarball, or one file.

Everything is checked before any work starts — the executable exists and is an AArch64 ELF
program, no path escapes the tree — and the tree is listed in a fixed (sorted) order so the
image gets the same inodes in the same places on every build.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from image.elf import read_header, require_arm64
from image.errors import ImageError

EXECUTABLE = "apiary"
TOP = "apiary"  # the release tarball's top folder


@dataclass(frozen=True)
class Entry:
    relative: str  # POSIX path inside /opt/apiary ("" is the folder itself)
    kind: str  # "dir", "file" or "symlink"
    size: int = 0
    executable: bool = False
    target: str = ""  # symlinks only


@dataclass(frozen=True)
class Payload:
    """A checked program tree on the local disk, rooted at ``root``."""

    root: Path
    entries: tuple[Entry, ...]
    description: str

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries)

    def local(self, entry: Entry) -> Path:
        return self.root / entry.relative


def _is_tarball(path: Path) -> bool:
    return path.name.endswith((".tar.gz", ".tgz", ".tar"))


def _check_link(relative: str, target: str, where: str) -> None:
    resolved = PurePosixPath(relative).parent / target
    depth = 0
    for part in resolved.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            break
    if target.startswith("/") or depth < 0:
        raise ImageError(f"{where}: symlink {relative} -> {target} points outside the program")


def scan_folder(root: Path, where: str) -> tuple[Entry, ...]:
    entries = []
    for path in sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix()):
        relative = path.relative_to(root).as_posix()
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            target = str(path.readlink())
            _check_link(relative, target, where)
            entries.append(Entry(relative, "symlink", target=target))
        elif stat.S_ISDIR(info.st_mode):
            entries.append(Entry(relative, "dir"))
        elif stat.S_ISREG(info.st_mode):
            executable = bool(info.st_mode & 0o111)
            entries.append(Entry(relative, "file", size=info.st_size, executable=executable))
        else:
            raise ImageError(f"{where}: {relative} is not a file, folder or symlink")
    return tuple(entries)


def _folder_root(path: Path) -> Path:
    """The onedir folder: ``path`` itself, or ``path/apiary`` when given PyInstaller's dist/."""
    if (path / EXECUTABLE).is_file():
        return path
    if (path / TOP / EXECUTABLE).is_file():
        return path / TOP
    raise ImageError(
        f"{path} has no `{EXECUTABLE}` program: pass the folder `just binary` writes "
        "(dist/apiary/), its release tarball, or the program itself"
    )


def check_tarball(path: Path) -> int:
    """Check a release tarball without unpacking it: layout, architecture; return its size."""
    try:
        with tarfile.open(path) as tar:
            members = tar.getmembers()
            total = 0
            executable = None
            for m in members:
                name = PurePosixPath(m.name)
                if name.is_absolute() or ".." in name.parts or name.parts[:1] != (TOP,):
                    raise ImageError(
                        f"{path}: member {m.name} is outside the top folder {TOP}/ "
                        "(release tarballs hold apiary/apiary and apiary/_internal/)"
                    )
                if m.issym():
                    _check_link(m.name, m.linkname, str(path))
                elif not (m.isfile() or m.isdir()):
                    raise ImageError(f"{path}: {m.name} is not a file, folder or symlink")
                total += m.size
                if m.name == f"{TOP}/{EXECUTABLE}" and m.isfile():
                    executable = m
            if executable is None:
                raise ImageError(f"{path} has no {TOP}/{EXECUTABLE} program")
            stream = tar.extractfile(executable)
            assert stream is not None
            require_arm64(stream.read(64), f"{path} ({TOP}/{EXECUTABLE})")
            return total
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ImageError(f"{path} is not a readable tarball: {exc}") from None


def check(path: Path) -> str:
    """Validate the binary input before any work; returns a short description of it."""
    if not path.exists():
        raise ImageError(
            f"binary {path} does not exist: build it with `just binary` on a Raspberry Pi or "
            "another arm64 Linux machine"
        )
    if path.is_dir():
        root = _folder_root(path)
        require_arm64(read_header(root / EXECUTABLE), str(root / EXECUTABLE))
        scan_folder(root, str(path))  # links and file kinds checked now, not mid-build
        return f"folder {root}"
    if _is_tarball(path):
        check_tarball(path)
        return f"tarball {path.name}"
    require_arm64(read_header(path), str(path))
    return f"single program {path.name}"


def load(path: Path, scratch: Path) -> Payload:
    """The payload, unpacked into ``scratch`` when it is a tarball or a single program."""
    if path.is_dir():
        root = _folder_root(path)
    elif _is_tarball(path):
        with tarfile.open(path) as tar:
            tar.extractall(scratch, filter="data")
        root = scratch / TOP
    else:
        root = scratch / TOP
        root.mkdir()
        shutil.copyfile(path, root / EXECUTABLE)
        (root / EXECUTABLE).chmod(0o755)
    return Payload(root=root, entries=scan_folder(root, str(path)), description=str(path))


def estimate_bytes(path: Path) -> int:
    """Bytes the installed program takes, for the space checks (before unpacking)."""
    if path.is_dir():
        return sum(e.size for e in scan_folder(_folder_root(path), str(path)))
    if _is_tarball(path):
        return check_tarball(path)
    return path.stat().st_size
