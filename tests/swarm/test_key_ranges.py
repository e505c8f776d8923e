"""A task reads only the rows of a narrowed frame within its own key range.

The coordinator narrows another frame of a join to the cells that may hold keys of the task's
own cells, and sends the key range too, so the scan skips the row groups of a cell that only
straddles the range. The range comes from the manifest, which is untrusted input: a bad one
is refused or fails the task, and never reads more than the cells it names.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from apiary import Apiary
from apiary.swarm.manifest import Manifest, error_path, manifest_path, result_path
from apiary.swarm.worker import Worker

NODE = "node-x"
TEMPS = [
    {"name": "region", "type": "utf8", "nullable": True},
    {"name": "v", "type": "int64", "nullable": True},
]
SITES = [
    {"name": "v", "type": "int64", "nullable": True},
    {"name": "w", "type": "int64", "nullable": True},
]


def _cells(ap: Apiary, frame: str) -> list[dict[str, Any]]:
    snapshot = ap.frame("farm", "sensors", frame).snapshot()
    cells = sorted(snapshot.cells.values(), key=lambda c: c.stats["v"].min)
    return [{"path": c.path, "rows": c.rows, "bytes": c.bytes} for c in cells]


@pytest.fixture
def farm(tmp_path: Path):
    """temps: cells with v 0..9 and 100..109; sites: cells with v 0..99 and 100..199; and a
    real worker for ``node-x``."""
    ap = Apiary("test", str(tmp_path / "root"), join_swarm=False).start()
    ap.create_hive("farm")
    ap.create_box("farm", "sensors")
    ap.create_frame("farm", "sensors", "temps", {"region": "string", "v": "int64"})
    ap.create_frame("farm", "sensors", "sites", {"v": "int64", "w": "int64"})
    for start in (0, 100):
        temps = pa.table({"region": ["north"] * 10, "v": range(start, start + 10)})
        ap.write_to_frame("farm", "sensors", "temps", temps)
        ap.write_to_frame(
            "farm", "sensors", "sites", pa.table({"v": range(start, start + 100), "w": [1] * 100})
        )
    yield ap, Worker(ap.storage, NODE)
    ap.shutdown()


def _manifest(ap: Apiary, sql: str, key_range: dict[str, Any] | None) -> dict[str, Any]:
    """One task over temps' first cell, with sites narrowed to both its cells (as a coordinator
    would where the cells' bounds overlap the range) and, given ``key_range``, the range."""
    task: dict[str, Any] = {
        "task_id": "t0000",
        "cells": _cells(ap, "temps")[:1],
        "frame_cells": {"1": _cells(ap, "sites")},
        "node": NODE,
        "attempts": [{"node": NODE}],
    }
    if key_range is not None:
        task["frame_ranges"] = {"1": key_range}
    return {
        "query_id": uuid.uuid4().hex,
        "coordinator": "coordinator-1",
        "frames": [
            {"hive": "farm", "box": "sensors", "frame": "temps", "columns": TEMPS},
            {"hive": "farm", "box": "sensors", "frame": "sites", "columns": SITES},
        ],
        "driving": 0,
        "fragment_sql": sql,
        "tasks": [task],
    }


def _run(ap: Apiary, worker: Worker, body: dict[str, Any]) -> list[dict[str, Any]] | str:
    """The task's answer as rows, or its error text."""
    qid = body["query_id"]
    ap.storage.put(manifest_path(qid), json.dumps(body).encode())
    worker.poll()
    if ap.storage.exists(error_path(qid, "t0000", NODE)):
        return ap.storage.get(error_path(qid, "t0000", NODE)).decode()
    answer = pa.ipc.open_stream(ap.storage.get(result_path(qid, "t0000", NODE))).read_all()
    return answer.to_pylist()


COUNT_SITES = "SELECT count(*) AS q0 FROM farm.sensors.sites"
JOINED = (
    "SELECT count(*) AS q0, sum(s.w) AS q1 FROM farm.sensors.temps t "
    "JOIN farm.sensors.sites s ON s.v = t.v"
)


def test_the_task_reads_only_the_rows_within_its_range(farm) -> None:
    ap, worker = farm
    assert _run(ap, worker, _manifest(ap, COUNT_SITES, None)) == [{"q0": 200}]
    ranged = _manifest(ap, COUNT_SITES, {"column": "v", "low": 0, "high": 9})
    assert _run(ap, worker, ranged) == [{"q0": 10}]


def test_a_join_under_the_range_answers_as_without_it(farm) -> None:
    ap, worker = farm
    plain = _run(ap, worker, _manifest(ap, JOINED, None))
    ranged = _run(ap, worker, _manifest(ap, JOINED, {"column": "v", "low": 0, "high": 9}))
    assert plain == ranged == [{"q0": 10, "q1": 10}]


@pytest.mark.parametrize(
    ("key_range", "reason"),
    [
        ({"column": "nope", "low": 0, "high": 9}, "which its frame does not have"),
        ({"column": "v", "low": "zero", "high": 9}, "is not a int64 value"),
    ],
)
def test_a_range_that_does_not_fit_the_frame_fails_the_task(farm, key_range, reason) -> None:
    ap, worker = farm
    error = _run(ap, worker, _manifest(ap, COUNT_SITES, key_range))
    assert isinstance(error, str) and reason in error, error
    assert worker.tasks_run == 0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"column": "v; DROP", "low": 0, "high": 9}, "column"),
        ({"column": "v", "low": "x" * 1000, "high": 9}, "at most 256 characters"),
        ({"column": "v", "low": [1], "high": 9}, "low"),
    ],
)
def test_a_malformed_range_is_refused(farm, change, reason) -> None:
    ap, worker = farm
    error = _run(ap, worker, _manifest(ap, COUNT_SITES, change))
    assert isinstance(error, str) and "refused" in error and reason in error, error


def test_a_range_on_the_driving_frame_is_refused(farm) -> None:
    ap, _ = farm
    body = _manifest(ap, COUNT_SITES, None)
    body["tasks"][0]["frame_ranges"] = {"0": {"column": "v", "low": 0, "high": 9}}
    with pytest.raises(ValueError, match="other than the driving one"):
        Manifest.model_validate(body)
