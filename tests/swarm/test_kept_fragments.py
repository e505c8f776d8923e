"""A bee that runs a fragment again over the very same tables (a repeated query on a local
root) runs the plan it made the first time; any change to the cells, the key range or the SQL
gets a plan of its own, so answers never come from a stale one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from support.farm_task import JOINED, NODE, cells, make_farm, run_task, task_manifest

from apiary import Apiary
from apiary.runtime.bees import BeePool
from apiary.swarm.worker import Worker

MiB = 1 << 20


@pytest.fixture
def farm(tmp_path: Path):
    """The farm's frames and a real worker for ``node-x`` with one bee."""
    ap = make_farm(tmp_path / "root")
    with BeePool(1, 256 * MiB, tmp_path / "scratch", task_timeout=30.0) as pool:
        yield ap, Worker(ap.storage, NODE, pool=pool), pool
    ap.shutdown()


def _run(ap: Apiary, worker: Worker, temps: list[dict], key_range: dict | None = None) -> Any:
    """One task of the join over ``temps`` (cells of temps): its answer as rows."""
    answer = run_task(ap, worker, task_manifest(ap, JOINED, key_range, temps))
    assert not isinstance(answer, str), answer
    return answer


def _kept(pool: BeePool) -> int:
    """How many values the bee keeps with its session (fragments planned, ranges applied)."""
    kept = pool.bees[0]._kept
    return len(kept.values) if kept is not None else 0


def test_a_repeated_task_runs_the_plan_it_made_before(farm) -> None:
    ap, worker, pool = farm
    first = cells(ap, "temps")[:1]
    assert _run(ap, worker, first) == [{"q0": 10, "q1": 10}]
    planned = _kept(pool)
    assert planned == 1
    assert _run(ap, worker, first) == [{"q0": 10, "q1": 10}]
    assert _kept(pool) == planned  # met again: nothing planned anew


def test_other_cells_or_another_range_get_a_plan_of_their_own(farm) -> None:
    ap, worker, pool = farm
    temps = cells(ap, "temps")
    assert _run(ap, worker, temps[:1]) == [{"q0": 10, "q1": 10}]
    assert _run(ap, worker, temps) == [{"q0": 20, "q1": 20}]
    assert _kept(pool) == 2
    # the sites rows within 0..4 only: a range of its own, and a plan over that view
    narrowed = _run(ap, worker, temps[:1], {"column": "v", "low": 0, "high": 4})
    assert narrowed == [{"q0": 5, "q1": 5}]
    wider = _run(ap, worker, temps[:1], {"column": "v", "low": 0, "high": 9})
    assert wider == [{"q0": 10, "q1": 10}]


def test_new_cells_of_a_frame_are_read_not_the_kept_plan(farm) -> None:
    ap, worker, _ = farm
    first = cells(ap, "temps")[:1]
    assert _run(ap, worker, first) == [{"q0": 10, "q1": 10}]
    ap.overwrite_frame("farm", "sensors", "sites", pa.table({"v": range(0, 10), "w": [7] * 10}))
    assert _run(ap, worker, first) == [{"q0": 10, "q1": 70}]
