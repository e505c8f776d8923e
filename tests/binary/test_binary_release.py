"""What `just binary` delivers: the onedir tree, the tarball and its checksum."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import tarfile
from pathlib import Path

import pytest
from support.frozen import FrozenRelease

import apiary

# The first test here may pay for building the frozen release (~2 min on 2 cores, more when
# busy): tests/support/frozen.py builds it once per session for every module that needs it.
pytestmark = [pytest.mark.binary, pytest.mark.timeout(900)]

# Test and benchmark tools that must never be frozen into what runs on a Pi.
TEST_ONLY = ("moto", "pytest", "_pytest", "pandas", "polars", "boto3", "botocore", "duckdb")


def test_version_of_the_frozen_program(frozen, release: FrozenRelease) -> None:
    assert frozen("--version").stdout.strip() == f"apiary, version {apiary.__version__}"
    assert release.version == apiary.__version__
    assert release.arch == platform.machine()


def test_tree_is_onedir_without_test_packages(release: FrozenRelease) -> None:
    internal = release.tree / "_internal"
    assert release.executable.is_file()
    assert internal.is_dir(), "expected PyInstaller's onedir layout"
    names = {p.name.split("-")[0].lower() for p in internal.iterdir()}
    assert {"datafusion", "pyarrow", "textual"} <= names
    assert names.isdisjoint(TEST_ONLY), sorted(names & set(TEST_ONLY))
    # datafusion reads its own metadata on import: without it the program dies at start.
    assert list(internal.glob("datafusion-*.dist-info/METADATA"))


def test_tarball_holds_the_tree_and_matches_its_checksum(release: FrozenRelease) -> None:
    assert release.tarball.name == f"apiary-{release.version}-linux-{release.arch}.tar.gz"
    digest = hashlib.sha256(release.tarball.read_bytes()).hexdigest()
    assert digest == release.sha256
    sha_line = release.tarball.with_name(release.tarball.name + ".sha256").read_text()
    assert sha_line == f"{digest}  {release.tarball.name}\n"  # `sha256sum -c` format

    with tarfile.open(release.tarball) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert {name.split("/")[0] for name in members} == {"apiary"}
    program = members["apiary/apiary"]
    assert program.isfile() and program.mode == 0o755
    assert program.size == release.executable.stat().st_size
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members.values()} == {(0, 0, "", "")}
    assert len({m.mtime for m in members.values()}) == 1
    on_disk = {"apiary/" + p.relative_to(release.tree).as_posix() for p in release.tree.rglob("*")}
    assert set(members) == on_disk | {"apiary"}


def test_unpacked_tarball_runs_through_a_symlink(release: FrozenRelease, tmp_path: Path) -> None:
    # The installed form: the tarball unpacked to /opt/apiary, /usr/local/bin/apiary a symlink.
    opt, bin_dir = tmp_path / "opt", tmp_path / "bin"
    bin_dir.mkdir()
    with tarfile.open(release.tarball) as tar:
        tar.extractall(opt, filter="tar")
    (bin_dir / "apiary").symlink_to(opt / "apiary" / "apiary")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"COLUMNS": "120"}
    proc = subprocess.run(
        [str(bin_dir / "apiary"), "demo", "--storage", str(tmp_path / "root"), "--rows", "1000"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Read back 3,000 rows: all present" in proc.stdout
