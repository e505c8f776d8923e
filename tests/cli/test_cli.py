"""The `apiary` command as a user runs it: a real separate process per call."""

from __future__ import annotations

import subprocess

import pytest
from support.processes import run_apiary


def apiary(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = run_apiary(*args, columns=120)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_version() -> None:
    from apiary import __version__

    assert apiary("--version").stdout.strip() == f"apiary, version {__version__}"


def test_demo_on_the_embedded_default(isolated_home) -> None:
    out = apiary("demo", "--rows", "2000", "--batches", "2").stdout
    assert str(isolated_home / "data" / "default") in out
    assert "Read back 4,000 rows: all present" in out
    for region in ("north", "south", "east", "west"):
        assert region in out
    log = isolated_home / "data/default/demo/sensors/readings/_delta_log"
    assert (log / "00000000000000000002.json").is_file()
    again = apiary("demo", "--rows", "2000", "--batches", "2").stdout  # repeatable
    assert "version 4, 4,000 rows" in again


def test_housekeeping_commands(tmp_path) -> None:
    root = str(tmp_path / "root")
    apiary("demo", "--storage", root, "--rows", "1000", "--batches", "3")
    history = apiary("history", "demo.sensors.readings", "--storage", root).stdout
    assert "create_frame" in history and "rewrite_cells" in history and "add_cells" in history
    compacted = apiary("compact", "demo.sensors.readings", "--storage", root).stdout
    assert "12 cells → 4" in compacted
    dry = apiary("vacuum", "demo.sensors.readings", "--storage", root, "--dry-run").stdout
    assert "would delete 0 cells" in dry and "12 unreferenced cells kept" in dry
    done = apiary(
        "vacuum", "demo.sensors.readings", "--storage", root, "--retention-hours", "0", "--force"
    ).stdout
    assert "deleted 12 cells" in done


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["history", "nope.sensors.readings"], "hive nope does not exist"),
        (["history", "not-a-frame"], "hive.box.frame"),
        (["vacuum", "demo.sensors.readings", "--retention-hours", "0"], "--force"),
        (["demo", "--storage", "gs://bucket"], "not supported"),
    ],
)
def test_errors_are_one_clear_line_without_traceback(tmp_path, args, message) -> None:
    root = str(tmp_path / "root")
    apiary("demo", "--storage", root, "--rows", "100", "--batches", "1")
    if "--storage" not in args:
        args = [*args, "--storage", root]
    proc = apiary(*args, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
