"""The release tarball is reproducible: the same tree gives the same bytes (no build needed)."""

from __future__ import annotations

import gzip
import os
import re
import tarfile
from pathlib import Path

import pytest

from image.binary import runtime_requirements, source_date_epoch, write_tarball


def _tree(root: Path, *, mtime: int, exec_mode: int, file_mode: int) -> Path:
    tree = root / "apiary"
    (tree / "_internal" / "pyarrow").mkdir(parents=True)
    files = {
        "apiary": b"\x7fELF program",
        "_internal/libpython3.11.so.1.0": b"library",
        "_internal/pyarrow/__init__.pyc": b"bytecode",
        "_internal/base_library.zip": b"zip",
    }
    for name, data in files.items():
        path = tree / name
        path.write_bytes(data)
        path.chmod(exec_mode if name == "apiary" else file_mode)
    (tree / "_internal" / "libz.so").symlink_to("libpython3.11.so.1.0")
    for path in [tree, *tree.rglob("*")]:
        os.utime(path, (mtime, mtime), follow_symlinks=False)
    return tree


def test_same_tree_same_bytes_whatever_the_file_times_and_umask(tmp_path: Path) -> None:
    one = _tree(tmp_path / "one", mtime=1_000_000, exec_mode=0o700, file_mode=0o600)
    two = _tree(tmp_path / "two", mtime=2_000_000, exec_mode=0o775, file_mode=0o664)
    digest_one = write_tarball(one, tmp_path / "one.tar.gz", mtime=1_700_000_000)
    digest_two = write_tarball(two, tmp_path / "two.tar.gz", mtime=1_700_000_000)
    assert digest_one == digest_two
    assert (tmp_path / "one.tar.gz").read_bytes() == (tmp_path / "two.tar.gz").read_bytes()

    with tarfile.open(tmp_path / "one.tar.gz") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names) and names[0] == "apiary"
    modes = {m.name: m.mode for m in members if not m.issym()}
    assert modes["apiary/apiary"] == 0o755
    assert modes["apiary/_internal/base_library.zip"] == 0o644
    link = next(m for m in members if m.issym())
    assert (link.name, link.linkname) == ("apiary/_internal/libz.so", "libpython3.11.so.1.0")
    assert {m.mtime for m in members} == {1_700_000_000}
    # The gzip header carries no file name and no time either.
    header = (tmp_path / "one.tar.gz").read_bytes()[:10]
    assert header[3] & 0x08 == 0 and header[4:8] == b"\0\0\0\0"
    assert gzip.decompress((tmp_path / "one.tar.gz").read_bytes())


def test_source_date_epoch_wins_over_the_commit_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1234567890")
    assert source_date_epoch() == 1234567890
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert source_date_epoch() > 1_600_000_000  # the last commit's time


def test_the_build_venv_gets_runtime_dependencies_and_pyinstaller_only() -> None:
    names = {re.split(r"[<>=\[ ]", req)[0].lower() for req in runtime_requirements()}
    assert {"pyarrow", "datafusion", "obstore", "textual", "pyinstaller"} <= names
    assert names.isdisjoint({"pytest", "moto", "boto3", "pandas", "polars", "duckdb", "ruff"})
