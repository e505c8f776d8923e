"""Vacuum removes the temporary files of writers killed mid-upload, by the same retention rule.

On a local root obstore stages every put as ``<name>#<n>`` and renames it when complete; a
writer killed in between leaves the staged file, which listings never show.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

from apiary import Apiary
from apiary.cli import cli

FRAME = ("farm", "sensors", "temps")


def make_frame(root: Path) -> Path:
    with Apiary("test", root) as ap:
        ap.create_hive(FRAME[0])
        ap.create_box(*FRAME[:2])
        ap.create_frame(*FRAME, {"region": "string", "v": "int64"}, partition_by=["region"])
        ap.write_to_frame(*FRAME, pa.table({"region": ["eu", "us"], "v": [1, 2]}))
    return root.joinpath(*FRAME)


def leftover(folder: Path, name: str, age_hours: float, size: int = 1000) -> Path:
    """A staged upload as a killed writer leaves it, last written ``age_hours`` ago."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"P" * size)
    then = time.time() - age_hours * 3600
    os.utime(path, (then, then))
    return path


def test_vacuum_deletes_old_staged_uploads_and_keeps_young_ones(tmp_path) -> None:
    folder = make_frame(tmp_path / "root")
    old_cell = leftover(folder / "region=eu", f"cell_{uuid.uuid4().hex}.parquet#1", 3)
    old_entry = leftover(folder / "_delta_log", "00000000000000000009.json#2", 3, size=200)
    young = leftover(folder, f"cell_{uuid.uuid4().hex}.parquet#1", 0)
    cells = sorted(folder.rglob("*.parquet"))

    with Apiary("test", tmp_path / "root") as ap:
        dry = ap.vacuum_frame(*FRAME, retention_hours=1, dry_run=True)
        assert dry["temp_files_deleted"] == 2 and dry["bytes_freed"] == 1200
        assert sorted(dry["deleted_paths"]) == [
            "_delta_log/00000000000000000009.json#2",
            f"region=eu/{old_cell.name}",
        ]
        assert dry["kept_within_retention"] == 1
        assert old_cell.exists() and old_entry.exists()

        report = ap.vacuum_frame(*FRAME, retention_hours=1)
        assert report["temp_files_deleted"] == 2 and report["cells_deleted"] == 0
        assert not old_cell.exists() and not old_entry.exists()
        assert young.exists()
        assert sorted(folder.rglob("*.parquet")) == cells  # committed cells untouched
        assert ap.read_from_frame(*FRAME).num_rows == 2
        assert ap.write_to_frame(*FRAME, pa.table({"region": ["eu"], "v": [3]}))["version"] == 2


def test_cli_dry_run_lists_staged_uploads(tmp_path) -> None:
    folder = make_frame(tmp_path / "root")
    stale = leftover(folder / "region=us", f"cell_{uuid.uuid4().hex}.parquet#1", 200)
    args = ["vacuum", ".".join(FRAME), "--storage", str(tmp_path / "root"), "--dry-run"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "1 temporary file" in result.output
    assert f"region=us/{stale.name}" in result.output
    assert stale.exists()


KILLED_WRITER = """
import sys
from apiary.storage import open_storage
storage = open_storage(sys.argv[1])
print("uploading", flush=True)
storage.put(sys.argv[2], bytes(256 << 20))  # big enough to catch while it is being written
"""


@pytest.mark.multiprocess
def test_a_writer_killed_mid_upload_leaves_a_file_vacuum_removes(tmp_path) -> None:
    root = tmp_path / "root"
    folder = make_frame(root)
    key = "/".join(FRAME) + f"/region=eu/cell_{uuid.uuid4().hex}.parquet"
    for _ in range(5):  # the kill may land after the rename; then try again
        proc = subprocess.Popen(
            [sys.executable, "-c", KILLED_WRITER, str(root), key], stdout=subprocess.PIPE
        )
        assert proc.stdout is not None and proc.stdout.readline() == b"uploading\n"
        while proc.poll() is None and not list(folder.rglob("*.parquet#*")):
            pass  # no sleep: the window between the staged write and the rename is short
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        staged = list(folder.rglob("*.parquet#*"))
        if staged:
            break
        (root / key).unlink(missing_ok=True)
    else:
        pytest.skip("the writer always finished before it could be killed")

    with Apiary("test", root) as ap:
        assert ap.read_from_frame(*FRAME).num_rows == 2  # invisible to readers
        report = ap.vacuum_frame(*FRAME, retention_hours=0, force=True)
    assert report["temp_files_deleted"] == 1
    assert report["deleted_paths"] == [staged[0].relative_to(folder).as_posix()]
    assert not staged[0].exists()
