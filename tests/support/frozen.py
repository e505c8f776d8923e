"""The frozen ``apiary`` release, built once and shared by every test that needs it.

``frozen_release()`` runs ``python3 -m image.binary`` (a clean venv with runtime dependencies
only, PyInstaller onedir, tarball + sha256) into ``~/.cache/apiary-build/frozen/<arch>-<hash>/``
(``$APIARY_BUILD_CACHE`` moves it), where ``<hash>`` covers everything that goes into the binary:
the sources, the spec and the runtime requirements. An unchanged tree reuses the previous build,
even from another clone on the same machine, so a re-run costs nothing; a fresh machine builds once
(~2 minutes for x86-64, tens of minutes for aarch64 under qemu-user). A file lock makes
concurrent callers in other processes wait for one build instead of racing it.

Under ``CI=true`` a failed build fails the test; elsewhere it skips with the reason.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from image.binary import runtime_requirements
from image.foreign import BUILDER, cache_root

REPO = Path(__file__).resolve().parents[2]
FROZEN = cache_root() / "frozen"
VENV = cache_root() / "binary-venv"  # the native build's venv (aarch64 keeps its own in its root)
# What goes into the binary: a change in any of these (or in the runtime requirements) means a
# new build.
SOURCES = ("apiary", "hardware", "tui", "image/pyinstaller")
SOURCE_FILES = ("image/binary.py",)
SUFFIXES = {".py", ".tcss", ".spec", ".toml", ".json"}
KEEP_BUILDS = 2  # older trees (~370 MB each) are deleted after a new build


@dataclass(frozen=True)
class FrozenRelease:
    tree: Path  # the onedir tree: the `apiary` executable and `_internal/`
    executable: Path
    tarball: Path
    sha256: str
    version: str
    arch: str


def sources_hash() -> str:
    digest = hashlib.sha256()
    # pyproject.toml counts by what it puts into the binary (the runtime requirements), so a
    # new pytest marker or ruff rule does not cost a rebuild.
    digest.update("\n".join(runtime_requirements()).encode() + b"\0")
    digest.update(BUILDER.key().encode() + b"\0")  # the aarch64 builder root's package list
    files = [REPO / name for name in SOURCE_FILES]
    for folder in SOURCES:
        files += [
            p
            for p in (REPO / folder).rglob("*")
            if p.suffix in SUFFIXES and p.is_file() and "__pycache__" not in p.parts
        ]
    for path in sorted(files):
        if path.exists():
            digest.update(path.relative_to(REPO).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _load(manifest: Path) -> FrozenRelease:
    data = json.loads(manifest.read_text())
    base = manifest.parent  # paths are stored relative to it: a copied cache stays valid
    return FrozenRelease(
        tree=base / data["tree"],
        executable=base / data["executable"],
        tarball=base / data["tarball"],
        sha256=data["sha256"],
        version=data["version"],
        arch=data["arch"],
    )


def _build(target: Path, machine: str) -> FrozenRelease:
    if target.exists():
        shutil.rmtree(target)  # a build that died half-way
    dist = target / "dist"
    dist.mkdir(parents=True)
    log = target / "build.log"
    with log.open("w") as out:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "image.binary",
                "--arch",
                machine,
                "--out",
                str(dist),
                "--venv",
                str(VENV),
                "--reuse-venv",
                "--work",
                str(target / "work"),
            ],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "120"},
        )
    if result.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise RuntimeError(f"`python3 -m image.binary` failed (see {log}):\n{tail}")
    shutil.rmtree(target / "work", ignore_errors=True)  # PyInstaller's cache: not needed again
    # The tarball's name carries the version and architecture: apiary-<version>-linux-<arch>.
    (tarball,) = dist.glob("apiary-*-linux-*.tar.gz")
    match = re.fullmatch(r"apiary-(.+)-linux-(.+)\.tar\.gz", tarball.name)
    assert match is not None, tarball.name
    sha256 = Path(f"{tarball}.sha256").read_text().split()[0]
    release = FrozenRelease(
        tree=dist / "apiary",
        executable=dist / "apiary" / "apiary",
        tarball=tarball,
        sha256=sha256,
        version=match[1],
        arch=match[2],
    )
    manifest = {
        k: str(v.relative_to(target)) if isinstance(v, Path) else v
        for k, v in release.__dict__.items()
    }
    # The manifest is written last: its presence means "complete build".
    (target / "release.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return release


def _prune(keep: Path, machine: str) -> None:
    builds = sorted(
        (p for p in FROZEN.glob(f"{machine}-*") if p.is_dir() and p != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in builds[KEEP_BUILDS - 1 :]:
        shutil.rmtree(old, ignore_errors=True)


def build_frozen_release(machine: str) -> FrozenRelease:
    """The ``machine`` release of the current sources: reused if already built, else built."""
    FROZEN.mkdir(parents=True, exist_ok=True)
    target = FROZEN / f"{machine}-{sources_hash()}"
    # One lock per architecture: an hour-long aarch64 build does not hold up the x86-64 one.
    with (FROZEN / f".{machine}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, even on a crash
        manifest = target / "release.json"
        if manifest.exists():
            release = _load(manifest)
            if release.executable.is_file() and release.tarball.is_file():
                return release
        release = _build(target, machine)
        _prune(target, machine)
        return release


_session: dict[str, FrozenRelease | BaseException] = {}


def frozen_release(machine: str | None = None) -> FrozenRelease:
    """The frozen release for tests (this machine's architecture unless ``machine``): built at
    most once per session; fail in CI, else skip."""
    machine = machine or platform.machine()
    if machine not in _session:
        try:
            _session[machine] = build_frozen_release(machine)
        except Exception as exc:  # remembered, so later tests do not rebuild a broken tree
            _session[machine] = exc
    outcome = _session[machine]
    if isinstance(outcome, BaseException):
        reason = f"the frozen {machine} binary could not be built: {outcome}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return outcome
