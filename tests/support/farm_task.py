"""One task handed to a real worker by hand: two frames of a farm (temps joined to sites on
``v``) and a manifest whose one task reads cells of temps, with sites narrowed to the cells
(and, given one, the key range) a coordinator would send."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa

from apiary import Apiary
from apiary.swarm.manifest import error_path, manifest_path, result_path
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
COUNT_SITES = "SELECT count(*) AS q0 FROM farm.sensors.sites"
JOINED = (
    "SELECT count(*) AS q0, sum(s.w) AS q1 FROM farm.sensors.temps t "
    "JOIN farm.sensors.sites s ON s.v = t.v"
)


def make_farm(root: Path) -> Apiary:
    """temps: cells with v 0..9 and 100..109; sites: cells with v 0..99 and 100..199, w = 1."""
    ap = Apiary("test", str(root), join_swarm=False).start()
    ap.create_hive("farm")
    ap.create_box("farm", "sensors")
    ap.create_frame("farm", "sensors", "temps", {"region": "string", "v": "int64"})
    ap.create_frame("farm", "sensors", "sites", {"v": "int64", "w": "int64"})
    for start in (0, 100):
        temps = pa.table({"region": ["north"] * 10, "v": range(start, start + 10)})
        ap.write_to_frame("farm", "sensors", "temps", temps)
        sites = pa.table({"v": range(start, start + 100), "w": [1] * 100})
        ap.write_to_frame("farm", "sensors", "sites", sites)
    return ap


def cells(ap: Apiary, frame: str) -> list[dict[str, Any]]:
    """The frame's live cells as a manifest names them, in order of their lowest ``v``."""
    snapshot = ap.frame("farm", "sensors", frame).snapshot()
    found = sorted(snapshot.cells.values(), key=lambda c: c.stats["v"].min)
    return [{"path": c.path, "rows": c.rows, "bytes": c.bytes} for c in found]


def task_manifest(
    ap: Apiary,
    sql: str,
    key_range: dict[str, Any] | None = None,
    temps: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One task over ``temps`` (cells of temps; its first by default), with sites narrowed to
    both its cells (as a coordinator would where the cells' bounds overlap the range) and,
    given ``key_range``, the range."""
    task: dict[str, Any] = {
        "task_id": "t0000",
        "cells": cells(ap, "temps")[:1] if temps is None else temps,
        "frame_cells": {"1": cells(ap, "sites")},
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


def run_task(ap: Apiary, worker: Worker, body: dict[str, Any]) -> list[dict[str, Any]] | str:
    """The task's answer as rows, or its error text."""
    qid = body["query_id"]
    ap.storage.put(manifest_path(qid), json.dumps(body).encode())
    worker.poll()
    if ap.storage.exists(error_path(qid, "t0000", NODE)):
        return ap.storage.get(error_path(qid, "t0000", NODE)).decode()
    answer = pa.ipc.open_stream(ap.storage.get(result_path(qid, "t0000", NODE))).read_all()
    return answer.to_pylist()
