"""``apiary upgrade``: a root written by Apiary 0.1 (``_ledger/``) becomes Delta tables.

History is kept (time travel to every version reads what it read before), the command is
idempotent, and SIGKILL at random points leaves a root that opens and reads whole.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import deltalake
import pyarrow as pa
import pytest
from support.legacy_root import FRAME, make_legacy_root, rows

from apiary import Apiary
from apiary.errors import UpgradeNeededError
from apiary.upgrade import upgrade_root

VERSIONS = 150
OVERWRITE_AT = 75


def canonical(table: pa.Table) -> list[tuple]:
    return sorted(zip(*(table[c].to_pylist() for c in ("n", "region", "label")), strict=True))


def upgrade(root: Path, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "apiary", "-v", "upgrade", "--storage", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        **kwargs,
    )


def wait_until_upgrading(proc: subprocess.Popen) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        if "upgrading" in line:
            return
    raise AssertionError(f"apiary upgrade never started (exit {proc.wait()})")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> tuple[Path, dict[int, list[tuple]]]:
    """An old root, and what every version of its frame reads (through the old-format reader)."""
    root = tmp_path_factory.mktemp("legacy") / "root"
    make_legacy_root(root, VERSIONS, OVERWRITE_AT)
    with Apiary("test", str(root), join_swarm=False) as ap:
        seen = {v: canonical(ap.read_from_frame(*FRAME, version=v)) for v in range(VERSIONS + 1)}
    assert len(seen[VERSIONS]) == 2 * (VERSIONS - OVERWRITE_AT + 1)  # the overwrite dropped rows
    return root, seen


def test_an_old_root_reads_but_refuses_writes_until_upgraded(pristine, tmp_path) -> None:
    root = tmp_path / "root"
    shutil.copytree(pristine[0], root)
    with Apiary("test", str(root), join_swarm=False) as ap:
        assert ap.get_frame(*FRAME)["version"] == VERSIONS
        with pytest.raises(UpgradeNeededError, match="apiary upgrade"):
            ap.write_to_frame(*FRAME, rows(9999))


def test_upgrade_keeps_every_version_and_is_idempotent(pristine, tmp_path) -> None:
    root = tmp_path / "root"
    shutil.copytree(pristine[0], root)
    done = upgrade(root)
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    assert f"{'.'.join(FRAME)}: upgraded, {VERSIONS + 1} versions" in out
    folder = root.joinpath(*FRAME)
    assert not (folder / "_ledger").exists()
    assert (folder / "_delta_log/00000000000000000100.checkpoint.parquet").is_file()
    with Apiary("test", str(root), join_swarm=False) as ap:
        for version, expected in pristine[1].items():
            assert canonical(ap.read_from_frame(*FRAME, version=version)) == expected, version
        history = ap.frame_history(*FRAME)
        assert [h["writer"] for h in history] == ["old-node"] * (VERSIONS + 1)
        ap.write_to_frame(*FRAME, rows(9999))  # a Delta table now: writes go through
        assert ap.get_frame(*FRAME)["version"] == VERSIONS + 1
        uri = ap.get_frame(*FRAME)["uri"]
    assert canonical(deltalake.DeltaTable(uri).to_pyarrow_table()) == sorted(
        pristine[1][VERSIONS] + canonical(rows(9999))
    )
    assert (
        canonical(deltalake.DeltaTable(uri, version=OVERWRITE_AT - 1).to_pyarrow_table())
        == (pristine[1][OVERWRITE_AT - 1])
    )
    again = upgrade(root)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert "0 frame(s) upgraded, 1 already Delta tables" in out


@pytest.mark.multiprocess
def test_twenty_kills_at_random_points_each_leave_a_root_that_opens(pristine, tmp_path) -> None:
    timing = tmp_path / "timing"
    shutil.copytree(pristine[0], timing)
    proc = upgrade(timing)
    wait_until_upgrading(proc)
    start = time.monotonic()
    assert proc.wait(timeout=120) == 0
    full = time.monotonic() - start  # the upgrade's own work, after the program started
    rng = random.Random(13)
    mid_upgrade = 0
    for kill in range(20):
        root = tmp_path / f"kill{kill}"
        shutil.copytree(pristine[0], root)
        proc = upgrade(root)
        wait_until_upgrading(proc)
        time.sleep(rng.uniform(0, full))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        folder = root.joinpath(*FRAME)
        if (folder / "_delta_log").exists() and (folder / "_ledger").exists():
            mid_upgrade += 1
        with Apiary("test", str(root), join_swarm=False) as ap:  # opens, old or new
            assert canonical(ap.read_from_frame(*FRAME)) == pristine[1][VERSIONS]
            for version in (0, OVERWRITE_AT - 1, OVERWRITE_AT, 120):
                assert (
                    canonical(ap.read_from_frame(*FRAME, version=version)) == (pristine[1][version])
                )
            # Running it again finishes the job. In this process: the command's own run is
            # tested above, and a second interpreter per kill doubled this test's time.
            report = upgrade_root(ap.storage, ap.registry)
            assert not report.refused, report.refused
        with Apiary("test", str(root), join_swarm=False) as ap:
            assert canonical(ap.read_from_frame(*FRAME)) == pristine[1][VERSIONS]
            assert canonical(ap.read_from_frame(*FRAME, version=37)) == pristine[1][37]
        shutil.rmtree(root)
    assert mid_upgrade >= 5, f"only {mid_upgrade} of 20 kills landed during the upgrade"
