"""Row-level changes racing appends and each other, in real separate processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from apiary import Apiary
from tests.support.processes import child_env, finish, release, spawn_writer, wait_for_line
from tests.support.writer_process import FRAME, SCHEMA, batch

CHANGER = Path(__file__).resolve().parents[1] / "support" / "changer_process.py"
OLD_ROWS = 200  # writer 99's rows, there before the race: two cells


def _changer(storage: str, mode: str, times: int, name: str) -> subprocess.Popen[str]:
    env = child_env()
    env["PYTHONPATH"] = f"{CHANGER.parent}:{env['PYTHONPATH']}"
    return subprocess.Popen(
        [
            sys.executable,
            str(CHANGER),
            "--storage",
            storage,
            "--mode",
            mode,
            "--times",
            str(times),
            "--name",
            name,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.fixture
def storage(tmp_path) -> str:
    root = str(tmp_path / "root")
    with Apiary("test", root, join_swarm=False) as ap:
        ap.create_hive(FRAME[0])
        ap.create_box(*FRAME[:2])
        ap.create_frame(*FRAME, SCHEMA)
        for half in (0, 1):
            ap.write_to_frame(*FRAME, batch(99, half, OLD_ROWS // 2))
    return root


def _read(storage: str) -> pa.Table:
    with Apiary("test", storage, join_swarm=False) as ap:
        return ap.read_from_frame(*FRAME)


def _start(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        wait_for_line(proc, "READY")
    for proc in procs:
        release(proc)


def test_a_delete_racing_four_appending_processes(storage: str) -> None:
    writers = [spawn_writer(storage, w, commits=8, rows=25, wait_go=True) for w in range(4)]
    deleter = _changer(storage, "delete", 4, "deleter")
    _start([*writers, deleter])
    acked = [ack for proc in writers for ack in finish(proc, timeout=120)]
    deletes = finish(deleter, timeout=120)
    print("\ndelete attempts:", [d["attempts"] for d in deletes])
    assert len(acked) == 32 and len(deletes) == 4
    assert sum(d["rows_deleted"] for d in deletes) == OLD_ROWS
    rows = _read(storage)
    ids = rows.column("id").to_pylist()
    expected = {a["writer"] * 1_000_000 + a["commit"] * 1_000 + i for a in acked for i in range(25)}
    assert sorted(ids) == sorted(expected)  # every appended row, once; every deleted row gone
    assert 99 not in set(rows.column("writer").to_pylist())


def test_two_processes_updating_the_same_cells_lose_no_update(storage: str) -> None:
    changers = [_changer(storage, "increment", 3, f"updater-{n}") for n in range(2)]
    writer = spawn_writer(storage, 1, commits=5, rows=10, wait_go=True)
    _start([*changers, writer])
    updates = [u for proc in changers for u in finish(proc, timeout=120)]
    finish(writer, timeout=120)
    print("\nupdate attempts:", [u["attempts"] for u in updates])
    assert len(updates) == 6 and all(u["rows_updated"] == OLD_ROWS for u in updates)
    rows = _read(storage).to_pylist()
    old = [r for r in rows if r["writer"] == 99]
    assert len(old) == OLD_ROWS and len(rows) == OLD_ROWS + 50
    # each row started at commit 0 or 1 (its half) and got every one of the six updates
    assert sorted({r["commit"] - (r["id"] // 1_000) % 1_000 for r in old}) == [6]
