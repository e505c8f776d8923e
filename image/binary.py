"""Build the frozen ``apiary`` program: ``python3 -m image.binary`` (``just binary``).

    python3 -m image.binary [--arch x86_64|aarch64] [--out dist] [--venv build/binary-venv]
                            [--reuse-venv] [--find-links WHEELS]

Needs only Python 3.11 with its ``venv`` module: no package of the host Python is used.

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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "image" / "pyinstaller" / "apiary.spec"
VENV_MARKER = "apiary-pyproject.sha256"
ARCHES = ("aarch64", "x86_64")
PYTHON_VERSION = "3.11"  # Debian 12 and Raspberry Pi OS 12: what the frozen tree bundles
TARGET_GLIBC_MINOR = 36  # Debian 12 / Raspberry Pi OS 12 have glibc 2.36


def wheel_platforms(machine: str) -> list[str]:
    """pip ``--platform`` tags a glibc-2.36 ``machine`` accepts. pip does not widen one
    manylinux tag to older ones, and the wheels differ: datafusion ships manylinux_2_28 only,
    obstore manylinux_2_24 only."""
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(TARGET_GLIBC_MINOR, 16, -1)]
    return [*tags, f"manylinux2014_{machine}"]


def say(message: str) -> None:
    """Progress on stderr: plain text, so the builder needs nothing but the standard library."""
    print(message, file=sys.stderr, flush=True)


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


def ensure_venv(venv: Path, reuse: bool, find_links: Path | None = None) -> Path:
    """A venv with runtime dependencies only; returns its python. With ``find_links`` pip
    installs from that folder of wheels only (no network)."""
    digest = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()
    python = venv / "bin" / "python"
    marker = venv / VENV_MARKER
    if reuse and python.exists() and marker.exists() and marker.read_text().strip() == digest:
        say(f"reusing {venv} (pyproject.toml unchanged)")
        return python
    if venv.exists():
        shutil.rmtree(venv)
    say(f"creating clean venv {venv}")
    _run([sys.executable, "-m", "venv", str(venv)], "creating the venv")
    offline = ["--no-index", "--find-links", str(find_links)] if find_links else []
    _run(
        [str(python), "-m", "pip", "install", "-q", *offline, *runtime_requirements()],
        "installing runtime dependencies",
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    marker.write_text(digest + "\n")  # written last: a half-built venv is never reused
    return python


def freeze(python: Path, out: Path, work: Path) -> Path:
    """Run PyInstaller; returns the onedir tree ``<out>/apiary``."""
    say("running PyInstaller (onedir)")
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


def smoke_test(executable: Path, expected: str, runner: Sequence[str] = ()) -> None:
    """The frozen program must at least start and know its version (``runner``: the emulator
    command for a foreign architecture)."""
    result = subprocess.run(
        [*runner, str(executable), "--version"], capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0 or expected not in result.stdout:
        raise BuildError(
            f"{executable} --version failed (exit {result.returncode}): "
            f"{(result.stdout + result.stderr)[-2000:]}"
        )


def freeze_tree(
    out: Path, venv: Path, reuse_venv: bool, work: Path, find_links: Path | None
) -> Path:
    """Steps 1-2 on this machine: the venv and PyInstaller; returns the onedir tree."""
    venv.parent.mkdir(parents=True, exist_ok=True)
    # `just binary` and a test session may share one venv: one build at a time uses it.
    with (venv.parent / f"{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        python = ensure_venv(venv, reuse_venv, find_links)
        return freeze(python, out, work)


def package(tree: Path, out: Path, release_version: str, machine: str) -> Release:
    """Step 3: the reproducible tarball and its checksum file."""
    tarball = out / tarball_name(release_version, machine)
    say(f"writing {tarball.name}")
    digest = write_tarball(tree, tarball, source_date_epoch())
    Path(f"{tarball}.sha256").write_text(f"{digest}  {tarball.name}\n")
    return Release(tree, tree / "apiary", tarball, digest, release_version, machine)


def build(
    out: Path, venv: Path, reuse_venv: bool, work: Path, find_links: Path | None = None
) -> Release:
    release_version, machine = version(), arch()
    tree = freeze_tree(out, venv, reuse_venv, work, find_links)
    smoke_test(tree / "apiary", release_version)
    return package(tree, out, release_version, machine)


def download_wheels(machine: str, cache: Path) -> Path:
    """Every runtime wheel for ``machine`` (CPython 3.11, manylinux), downloaded here with a
    pip of our own and cached by the requirement list; returns the folder."""
    from image import foreign

    requirements = runtime_requirements()
    key = hashlib.sha256("\n".join([machine, PYTHON_VERSION, *requirements]).encode())
    wheels = cache / f"wheels-{machine}-{key.hexdigest()[:12]}"
    with foreign.locked(cache / f"{wheels.name}.lock"):
        if (wheels / ".complete").is_file():
            return wheels
        pip_venv = cache / "host-pip"
        if not (pip_venv / "bin" / "pip").exists():
            _run([sys.executable, "-m", "venv", str(pip_venv)], "creating a venv for pip")
        say(f"downloading {machine} wheels into {wheels}")
        shutil.rmtree(wheels, ignore_errors=True)
        _run(
            [
                str(pip_venv / "bin" / "pip"),
                "download",
                "-q",
                "--only-binary=:all:",
                *(arg for tag in wheel_platforms(machine) for arg in ("--platform", tag)),
                "--python-version",
                PYTHON_VERSION,
                "--implementation",
                "cp",
                "-d",
                str(wheels),
                *requirements,
            ],
            f"downloading the {machine} wheels",
            env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        )
        (wheels / ".complete").write_text("\n".join(requirements) + "\n")
        return wheels


# What the spec analyses: copied into the root for each build (small; the venv is what is slow).
SOURCE_PATHS = ("apiary", "hardware", "tui", "image", "pyproject.toml")


def _copy_sources(target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCE_PATHS:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, target / name)


def build_foreign(out: Path, machine: str) -> Release:
    """Steps 1-2 inside a cached arm64 Debian root under qemu-user, step 3 here."""
    from image import foreign

    release_version = version()
    try:
        root = foreign.ensure_root(foreign.BUILDER)
        say(f"arm64 builder root: {root}")
        wheels = download_wheels(machine, foreign.cache_root())
        stage = root / "build"
        with foreign.locked(foreign.cache_root() / f"{root.name}.build.lock"):
            _copy_sources(stage / "src")
            shutil.rmtree(stage / "wheels", ignore_errors=True)
            shutil.copytree(wheels, stage / "wheels")
            shutil.rmtree(stage / "dist", ignore_errors=True)
            script = (
                "cd /build/src && exec python3 -m image.binary --tree-only --out /build/dist "
                "--venv /build/venv --reuse-venv --work /build/work --find-links /build/wheels"
            )
            say(f"freezing inside the {machine} root under qemu-user (tens of minutes cold)")
            foreign.run(
                foreign.chroot_command(root, script),
                f"freezing inside the {machine} root",
                env=foreign.chroot_env(SOURCE_DATE_EPOCH=str(source_date_epoch())),
            )
            tree = out / "apiary"
            shutil.rmtree(tree, ignore_errors=True)
            shutil.copytree(stage / "dist" / "apiary", tree, symlinks=True)
    except foreign.ForeignError as exc:
        raise BuildError(str(exc)) from None
    smoke_test(tree / "apiary", release_version, runner=emulator(machine, root))
    return package(tree, out, release_version, machine)


def emulator(machine: str, sysroot: Path) -> list[str]:
    """Run a ``machine`` program here: qemu-user, with ``sysroot`` supplying its loader and
    libc. PyInstaller's bootloader re-executes itself, and the kernel hands that second start to
    the binfmt handler, which knows no ``-L``: QEMU_LD_PREFIX tells both."""
    qemu = shutil.which(f"qemu-{machine}-static") or shutil.which(f"qemu-{machine}")
    if qemu is None:
        raise BuildError(f"qemu-{machine}-static not found: `apt-get install qemu-user-static`")
    return ["env", f"QEMU_LD_PREFIX={sysroot}", qemu, "-L", str(sysroot)]


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def summary(release: Release, seconds: float) -> str:
    rows = [
        ("tree (install this)", f"{release.tree}  {_mb(tree_bytes(release.tree))}"),
        ("tarball (download)", f"{release.tarball}  {_mb(release.tarball.stat().st_size)}"),
        ("sha256", release.sha256),
        ("build time", f"{seconds:.0f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"apiary {release.version} for linux-{release.arch}"]
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m image.binary", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--arch",
        choices=ARCHES,
        default=arch(),
        help="target architecture (default: this machine's); aarch64 on x86-64 uses qemu-user",
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
    parser.add_argument(
        "--find-links", type=Path, default=None, help="install from this folder of wheels only"
    )
    parser.add_argument(
        "--tree-only", action="store_true", help="stop after the smoke test (no tarball)"
    )
    args = parser.parse_args(argv)
    out, venv = args.out.resolve(), args.venv.resolve()
    work = (args.work or REPO / "build" / "pyinstaller").resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        if args.arch != arch():
            release = build_foreign(out, args.arch)
        elif args.tree_only:
            tree = freeze_tree(out, venv, args.reuse_venv, work, args.find_links)
            smoke_test(tree / "apiary", version())
            say(f"{tree} ready ({time.monotonic() - started:.0f} s)")
            return 0
        else:
            release = build(out, venv, args.reuse_venv, work, args.find_links)
    except BuildError as exc:
        say(f"build failed: {exc}")
        return 1
    say(summary(release, time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
