"""Build the frozen ``apiary`` program: ``python3 -m image.binary`` (``just binary``).

    python3 -m image.binary [--out dist] [--venv build/binary-venv] [--reuse-venv]

1. A clean venv holding Apiary's runtime dependencies and PyInstaller only, so nothing a test
   or a benchmark installs (moto, pandas, pytest…) can end up in the binary. With
   ``--reuse-venv`` an existing venv is kept while ``pyproject.toml`` is unchanged.
2. PyInstaller with ``image/pyinstaller/apiary.spec`` in onedir mode: ``<out>/apiary/apiary``
   plus ``<out>/apiary/_internal/``. That tree is what gets installed (``/opt/apiary``).
3. A reproducible release tarball ``<out>/apiary-<version>-linux-<arch>.tar.gz`` (top folder
   ``apiary/``) and its ``.sha256`` in ``sha256sum`` format: the download form.
"""

from __future__ import annotations

import argparse
import fcntl
import gzip
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "image" / "pyinstaller" / "apiary.spec"
VENV_MARKER = "apiary-pyproject.sha256"

console = Console(stderr=True)


class BuildError(RuntimeError):
    """A build step failed; the message says which and why."""


@dataclass(frozen=True)
class Release:
    tree: Path  # <out>/apiary, holding the `apiary` executable
    executable: Path
    tarball: Path
    sha256: str
    version: str
    arch: str


def version() -> str:
    namespace: dict[str, str] = {}
    exec((REPO / "apiary" / "version.py").read_text(), namespace)
    return namespace["__version__"]


def arch() -> str:
    """``x86_64`` or ``aarch64``: the names ``uname -m`` and Ansible's facts use."""
    return platform.machine()


def tarball_name(release_version: str, machine: str) -> str:
    return f"apiary-{release_version}-linux-{machine}.tar.gz"


def runtime_requirements(pyproject: Path = REPO / "pyproject.toml") -> list[str]:
    """Runtime dependencies plus the ``binary`` extra, as pyproject.toml declares them.

    Installing these (rather than the project itself) keeps the venv independent of the sources:
    the spec analyses the working tree, so a venv is reusable until pyproject.toml changes.
    """
    project = tomllib.loads(pyproject.read_text())["project"]
    return [*project["dependencies"], *project["optional-dependencies"]["binary"]]


def _run(cmd: list[str], step: str, **kwargs: object) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        raise BuildError(f"{step} failed (exit {result.returncode}): {' '.join(cmd)}\n{tail}")


def ensure_venv(venv: Path, reuse: bool) -> Path:
    """A venv with runtime dependencies only; returns its python."""
    digest = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()
    python = venv / "bin" / "python"
    marker = venv / VENV_MARKER
    if reuse and python.exists() and marker.exists() and marker.read_text().strip() == digest:
        console.print(f"[dim]reusing {venv} (pyproject.toml unchanged)[/]")
        return python
    if venv.exists():
        shutil.rmtree(venv)
    console.print(f"creating clean venv {venv}")
    _run([sys.executable, "-m", "venv", str(venv)], "creating the venv")
    _run(
        [str(python), "-m", "pip", "install", "-q", *runtime_requirements()],
        "installing runtime dependencies",
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    marker.write_text(digest + "\n")  # written last: a half-built venv is never reused
    return python


def freeze(python: Path, out: Path, work: Path) -> Path:
    """Run PyInstaller; returns the onedir tree ``<out>/apiary``."""
    console.print("running PyInstaller (onedir)")
    _run(
        [
            str(python),
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--log-level",
            "WARN",
            "--distpath",
            str(out),
            "--workpath",
            str(work),
            str(SPEC),
        ],
        "PyInstaller",
        cwd=REPO,
        # Never let the developer's PYTHONPATH leak test packages into the analysis.
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    tree = out / "apiary"
    if not (tree / "apiary").is_file():
        raise BuildError(f"PyInstaller finished but {tree / 'apiary'} is missing")
    return tree


def source_date_epoch() -> int:
    """SOURCE_DATE_EPOCH if set, else the last commit's time, else 0."""
    if "SOURCE_DATE_EPOCH" in os.environ:
        return int(os.environ["SOURCE_DATE_EPOCH"])
    result = subprocess.run(
        ["git", "-C", str(REPO), "log", "-1", "--format=%ct"], capture_output=True, text=True
    )
    text = result.stdout.strip()
    return int(text) if result.returncode == 0 and text.isdigit() else 0


def _normalised(info: tarfile.TarInfo, mtime: int) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = mtime
    if not info.issym():
        # Keep only "executable or not": umask and build user must not change the bytes.
        info.mode = 0o755 if info.isdir() or info.mode & 0o111 else 0o644
    return info


def write_tarball(tree: Path, tarball: Path, mtime: int) -> str:
    """A reproducible ``.tar.gz`` of ``tree`` under its own name; returns the sha256.

    Entries sorted, owners 0, one mtime, gzip header without name or time: the same tree gives
    the same bytes on any machine.
    """
    paths = sorted(tree.rglob("*"), key=lambda p: p.relative_to(tree).as_posix())
    partial = tarball.with_name(tarball.name + ".partial")
    with (
        partial.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in [tree, *paths]:
            arcname = (Path(tree.name) / path.relative_to(tree)).as_posix()
            info = _normalised(tar.gettarinfo(str(path), arcname), mtime)
            if info.isreg():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    partial.replace(tarball)
    with tarball.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def tree_bytes(tree: Path) -> int:
    return sum(p.lstat().st_size for p in tree.rglob("*") if p.is_file() and not p.is_symlink())


def smoke_test(executable: Path, expected: str) -> None:
    """The frozen program must at least start and know its version."""
    result = subprocess.run(
        [str(executable), "--version"], capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0 or expected not in result.stdout:
        raise BuildError(
            f"{executable} --version failed (exit {result.returncode}): "
            f"{(result.stdout + result.stderr)[-2000:]}"
        )


def build(out: Path, venv: Path, reuse_venv: bool, work: Path) -> Release:
    release_version, machine = version(), arch()
    venv.parent.mkdir(parents=True, exist_ok=True)
    # `just binary` and a test session may share one venv: one build at a time uses it.
    with (venv.parent / f"{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        python = ensure_venv(venv, reuse_venv)
        tree = freeze(python, out, work)
    executable = tree / "apiary"
    smoke_test(executable, release_version)
    tarball = out / tarball_name(release_version, machine)
    console.print(f"writing {tarball.name}")
    digest = write_tarball(tree, tarball, source_date_epoch())
    Path(f"{tarball}.sha256").write_text(f"{digest}  {tarball.name}\n")
    return Release(tree, executable, tarball, digest, release_version, machine)


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def summary(release: Release, seconds: float) -> Table:
    table = Table(title=f"apiary {release.version} for linux-{release.arch}", show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")  # wrap, never cut, a path or the checksum
    table.add_row("tree (install this)", f"{release.tree}  {_mb(tree_bytes(release.tree))}")
    table.add_row("tarball (download)", f"{release.tarball}  {_mb(release.tarball.stat().st_size)}")
    table.add_row("sha256", release.sha256)
    table.add_row("build time", f"{seconds:.0f} s")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m image.binary", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, default=REPO / "dist", help="output folder")
    parser.add_argument("--venv", type=Path, default=REPO / "build" / "binary-venv")
    parser.add_argument(
        "--reuse-venv", action="store_true", help="keep the venv while pyproject.toml is unchanged"
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="PyInstaller work folder (default build/pyinstaller)",
    )
    args = parser.parse_args(argv)
    out, venv = args.out.resolve(), args.venv.resolve()
    work = (args.work or REPO / "build" / "pyinstaller").resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        release = build(out, venv, args.reuse_venv, work)
    except BuildError as exc:
        console.print(f"[red]build failed:[/] {exc}")
        return 1
    console.print(summary(release, time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
