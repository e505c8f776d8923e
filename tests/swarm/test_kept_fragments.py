"""A bee that runs a fragment again over the very same tables (a repeated query on a local
root) runs the plan it made the first time; any change to the cells, the key range or the SQL
gets a plan of its own, so answers never come from a stale one."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from apiary import Apiary
from apiary.runtime.bees import BeePool
from apiary.swarm.manifest import error_path, manifest_path, result_path
from apiary.swarm.worker import Worker

NODE = "node-x"
MiB = 1 << 20
TEMPS = [{"name": "v", "type": "int64", "nullable": True}]
SITES = [
    {"name": "v", "type": "int64", "nullable": True},
    {"name": "w", "type": "int64", "nullable": True},
]
JOINED = (
    "SELECT count(*) AS q0, sum(s.w) AS q1 FROM farm.sensors.temps t "
    "JOIN farm.sensors.sites s ON s.v = t.v"
)


@pytest.fixture
def farm(tmp_path: Path):
    """temps: cells with v 0..9 and 100..109; sites: cells with v 0..99 and 100..199 (w = 1);
    a real worker for ``node-x`` with one bee."""
    ap = Apiary("test", str(tmp_path / "root"), join_swarm=False).start()
    ap.create_hive("farm")
    ap.create_box("farm", "sensors")
    ap.create_frame("farm", "sensors", "temps", {"v": "int64"})
    ap.create_frame("farm", "sensors", "sites", {"v": "int64", "w": "int64"})
    for start in (0, 100):
        ap.write_to_frame("farm", "sensors", "temps", pa.table({"v": range(start, start + 10)}))
        sites = pa.table({"v": range(start, start + 100), "w": [1] * 100})
        ap.write_to_frame("farm", "sensors", "sites", sites)
    with BeePool(1, 256 * MiB, tmp_path / "scratch", task_timeout=30.0) as pool:
        yield ap, Worker(ap.storage, NODE, pool=pool), pool
    ap.shutdown()


def _cells(ap: Apiary, frame: str) -> list[dict[str, Any]]:
    snapshot = ap.frame("farm", "sensors", frame).snapshot()
    cells = sorted(snapshot.cells.values(), key=lambda c: c.stats["v"].min)
    return [{"path": c.path, "rows": c.rows, "bytes": c.bytes} for c in cells]


def _run(ap: Apiary, worker: Worker, cells: list[dict], key_range: dict | None = None) -> Any:
    """One task over ``cells`` of temps joined to both cells of sites; its answer as rows."""
    qid = uuid.uuid4().hex
    task: dict[str, Any] = {
        "task_id": "t0000",
        "cells": cells,
        "frame_cells": {"1": _cells(ap, "sites")},
        "node": NODE,
        "attempts": [{"node": NODE}],
    }
    if key_range is not None:
        task["frame_ranges"] = {"1": key_range}
    body = {
        "query_id": qid,
        "coordinator": "coordinator-1",
        "frames": [
            {"hive": "farm", "box": "sensors", "frame": "temps", "columns": TEMPS},
            {"hive": "farm", "box": "sensors", "frame": "sites", "columns": SITES},
        ],
        "driving": 0,
        "fragment_sql": JOINED,
        "tasks": [task],
    }
    ap.storage.put(manifest_path(qid), json.dumps(body).encode())
    worker.poll()
    assert not ap.storage.exists(error_path(qid, "t0000", NODE))
    answer = ap.storage.get(result_path(qid, "t0000", NODE))
    return pa.ipc.open_stream(answer).read_all().to_pylist()


def _kept(pool: BeePool) -> int:
    """How many values the bee keeps with its session (fragments planned, ranges applied)."""
    kept = pool.bees[0]._kept
    return len(kept.values) if kept is not None else 0


def test_a_repeated_task_runs_the_plan_it_made_before(farm) -> None:
    ap, worker, pool = farm
    first = _cells(ap, "temps")[:1]
    assert _run(ap, worker, first) == [{"q0": 10, "q1": 10}]
    planned = _kept(pool)
    assert planned == 1
    assert _run(ap, worker, first) == [{"q0": 10, "q1": 10}]
    assert _kept(pool) == planned  # met again: nothing planned anew


def test_other_cells_or_another_range_get_a_plan_of_their_own(farm) -> None:
    ap, worker, pool = farm
    cells = _cells(ap, "temps")
    assert _run(ap, worker, cells[:1]) == [{"q0": 10, "q1": 10}]
    assert _run(ap, worker, cells) == [{"q0": 20, "q1": 20}]
    assert _kept(pool) == 2
    # the sites rows within 0..4 only: a range of its own, and a plan over that view
    narrowed = _run(ap, worker, cells[:1], {"column": "v", "low": 0, "high": 4})
    assert narrowed == [{"q0": 5, "q1": 5}]
    assert _run(ap, worker, cells[:1], {"column": "v", "low": 0, "high": 9}) == [
        {"q0": 10, "q1": 10}
    ]


def test_new_cells_of_a_frame_are_read_not_the_kept_plan(farm) -> None:
    ap, worker, _ = farm
    cells = _cells(ap, "temps")
    assert _run(ap, worker, cells[:1]) == [{"q0": 10, "q1": 10}]
    ap.overwrite_frame("farm", "sensors", "sites", pa.table({"v": range(0, 10), "w": [7] * 10}))
    assert _run(ap, worker, cells[:1]) == [{"q0": 10, "q1": 70}]
