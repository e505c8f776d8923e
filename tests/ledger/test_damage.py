"""Damaged newest objects: older versions stay readable, errors name the object and the way out,
and ``apiary doctor`` finds the damage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from support.processes import child_env

from apiary import Apiary
from apiary.errors import SerializationError

FRAME = ("h", "b", "f")
ENTRY = "h/b/f/_delta_log/{:020d}.json"


@pytest.fixture
def root(tmp_path) -> Path:
    """A frame at version 3 (three one-row appends) on a local root."""
    path = tmp_path / "root"
    with Apiary("test", str(path)) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        ap.create_frame(*FRAME, {"n": "int64"})
        for n in range(3):
            ap.write_to_frame(*FRAME, pa.table({"n": [n]}))
    return path


def damage(root: Path, relative: str, text: str = '{"version": "garbage') -> None:
    (root / relative).write_text(text)


@pytest.mark.parametrize("text", ['{"version": "trunc', '{"version": 3}'], ids=["json", "fields"])
def test_a_damaged_newest_entry_leaves_older_versions_readable(root, text) -> None:
    damage(root, ENTRY.format(3), text)
    with Apiary("test", str(root)) as ap:  # a fresh client: nothing cached
        assert ap.read_from_frame(*FRAME, version=2)["n"].to_pylist() == [0, 1]
        assert ap.read_from_frame(*FRAME, version=1)["n"].to_pylist() == [0]
        with pytest.raises(SerializationError) as info:
            ap.read_from_frame(*FRAME)
    message = str(info.value)
    assert ENTRY.format(3) in message  # names the object
    assert "versions 0..2 are intact" in message and "version=" in message
    assert "backup" in message and "newest entry, delete it" in message


def test_deleting_the_damaged_newest_entry_recovers_the_frame(root) -> None:
    damage(root, ENTRY.format(3))
    (root / ENTRY.format(3)).unlink()  # the recovery the error describes
    with Apiary("test", str(root)) as ap:
        assert ap.get_frame(*FRAME)["version"] == 2
        assert ap.write_to_frame(*FRAME, pa.table({"n": [9]}))["version"] == 3
        assert sorted(ap.read_from_frame(*FRAME)["n"].to_pylist()) == [0, 1, 9]


def test_a_damaged_middle_entry_blocks_only_the_versions_after_it(root) -> None:
    damage(root, ENTRY.format(2))
    with Apiary("test", str(root)) as ap:
        assert ap.read_from_frame(*FRAME, version=1)["n"].to_pylist() == [0]
        with pytest.raises(SerializationError, match="later versions cannot be read") as info:
            ap.read_from_frame(*FRAME, version=3)
    assert ENTRY.format(2) in str(info.value)
    assert "delete it" not in str(info.value)  # deleting a middle entry would leave a gap


def test_a_damaged_newest_catalog_version_leaves_frames_readable(root) -> None:
    with Apiary("test", str(root)) as ap:
        ap.create_hive("later")  # the newest catalog change, made after the frame
    newest = sorted((root / "_registry").glob("*.json"))[-1]
    damage(root, f"_registry/{newest.name}")
    with Apiary("test", str(root)) as ap:
        assert sorted(ap.read_from_frame(*FRAME)["n"].to_pylist()) == [0, 1, 2]
        assert ap.list_frames("h", "b") == ["f"]
        with pytest.raises(SerializationError) as info:
            ap.create_hive("other")  # a change on top of an unknown state would lose it
    message = str(info.value)
    assert f"_registry/{newest.name}" in message
    assert "backup" in message and "delete it" in message


def doctor(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "apiary", "doctor", "--storage", str(root)],
        capture_output=True,
        text=True,
        env=child_env({"COLUMNS": "400"}),
        timeout=120,
    )


def test_doctor_names_damaged_objects(root) -> None:
    healthy = doctor(root)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "1 frame read back intact" in healthy.stdout

    with Apiary("test", str(root)) as ap:
        ap.create_hive("later")  # so the frame is still in the catalog state read past the damage
    damage(root, ENTRY.format(3))
    newest = sorted((root / "_registry").glob("*.json"))[-1]
    damage(root, f"_registry/{newest.name}")
    found = doctor(root)
    assert found.returncode == 1
    assert ENTRY.format(3) in found.stdout
    assert f"_registry/{newest.name}" in found.stdout
