"""A manifest in ``_queries/`` is untrusted input: a worker runs read-only fragments only.

Anyone who can write one object into the bucket can write a manifest. These tests hand-write
hostile manifests and check that a real worker refuses each one with an error object for the
coordinator, runs nothing, and writes nothing except that error object inside the query folder.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from datafusion import SessionContext
from support.nodes import start_apiary_node, stop_all, use_short_timings

from apiary import Apiary
from apiary.errors import SqlError
from apiary.runtime.sealed import unstoppable
from apiary.sql.readonly import check_read_only
from apiary.sql.tuning import PUSHDOWN
from apiary.swarm.manifest import QUERIES, Manifest, error_path, manifest_path, result_path
from apiary.swarm.worker import Worker, check_fragment

NODE = "node-x"
COLUMNS = [
    {"name": "region", "type": "utf8", "nullable": True},
    {"name": "v", "type": "int64", "nullable": True},
]


def manifest(qid: str, cells: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    """A manifest as a coordinator writes it, with ``changes`` applied (``task`` for the task)."""
    task = {"task_id": "t0000", "cells": cells, "node": NODE, "attempts": [{"node": NODE}]}
    task.update(changes.pop("task", {}))
    frame = {"hive": "farm", "box": "sensors", "frame": "temps", "columns": COLUMNS}
    frame.update(changes.pop("frame", {}))
    body = {
        "query_id": qid,
        "coordinator": "coordinator-1",
        "frames": [frame],
        "driving": 0,
        "fragment_sql": "SELECT count(*) AS q0, sum(v) AS q1 FROM farm.sensors.temps",
        "tasks": [task],
    }
    body.update(changes)
    return body


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def farm(tmp_path: Path):
    """A local root with one frame of two cells, and a real worker for ``node-x``."""
    ap = Apiary("test", str(tmp_path / "root"), join_swarm=False).start()  # node-x's worker only
    ap.create_hive("farm")
    ap.create_box("farm", "sensors")
    ap.create_frame("farm", "sensors", "temps", {"region": "string", "v": "int64"})
    for start in (0, 100):
        table = pa.table({"region": ["north"] * 10, "v": range(start, start + 10)})
        ap.write_to_frame("farm", "sensors", "temps", table)
    snapshot = ap.frame("farm", "sensors", "temps").snapshot()
    cells = [{"path": c.path, "rows": c.rows, "bytes": c.bytes} for c in snapshot.cells.values()]
    yield ap, Worker(ap.storage, NODE), cells
    ap.shutdown()


def test_a_valid_manifest_still_runs(farm) -> None:
    ap, worker, cells = farm
    qid = uuid.uuid4().hex
    ap.storage.put(manifest_path(qid), json.dumps(manifest(qid, cells)).encode())
    assert worker.poll() == 1
    result = pa.ipc.open_stream(ap.storage.get(result_path(qid, "t0000", NODE))).read_all()
    assert result.to_pylist() == [{"q0": 20, "q1": sum(range(10)) + sum(range(100, 110))}]


OUTSIDE = "__OUTSIDE__"  # replaced by a file path outside the root, unique to the test

HOSTILE = {
    "copy": ({"fragment_sql": f"COPY (SELECT 1 AS x) TO '{OUTSIDE}'"}, "read-only"),
    "copy-from-cells": (
        {"fragment_sql": f"COPY (SELECT * FROM farm.sensors.temps) TO '{OUTSIDE}' STORED AS CSV"},
        "read-only",
    ),
    "create-external-table": (
        {"fragment_sql": "CREATE EXTERNAL TABLE e STORED AS CSV LOCATION '/etc/hostname'"},
        "read-only",
    ),
    "insert": (
        {"fragment_sql": "INSERT INTO farm.sensors.temps SELECT * FROM farm.sensors.temps"},
        "read-only",
    ),
    "set": ({"fragment_sql": "SET datafusion.execution.batch_size = 1"}, "read-only"),
    "explain": ({"fragment_sql": "EXPLAIN SELECT count(*) FROM farm.sensors.temps"}, "read-only"),
    "url-table": ({"fragment_sql": "SELECT * FROM '/etc/hostname'"}, "read-only"),
    "read-csv": ({"fragment_sql": "SELECT * FROM read_csv('/etc/hostname')"}, "read-only"),
    "table-function": (
        {"fragment_sql": "SELECT * FROM generate_series(1, 3)"},
        "farm.sensors.temps",
    ),
    "information-schema": (
        {"fragment_sql": "SELECT * FROM information_schema.tables"},
        "read-only",
    ),
    "subquery-elsewhere": (
        {
            "fragment_sql": "SELECT count(*) FROM farm.sensors.temps "
            "WHERE v > (SELECT count(*) FROM information_schema.columns)"
        },
        "read-only",
    ),
    "two-statements": (
        {"fragment_sql": f"SELECT 1; COPY (SELECT 1 AS x) TO '{OUTSIDE}'"},
        "read-only",
    ),
    "huge-fragment": ({"fragment_sql": "SELECT 1" + " " * 2_000_000}, "fragment_sql"),
    "cell-climbs-out": (
        {"task": {"cells": [{"path": "../../other/frame/cell.parquet", "rows": 1, "bytes": 1}]}},
        "inside the frame",
    ),
    "cell-absolute": (
        {"task": {"cells": [{"path": "/etc/passwd.parquet", "rows": 1, "bytes": 1}]}},
        "inside the frame",
    ),
    "cell-into-registry": (
        {
            "task": {
                "cells": [{"path": "region=x/../../../_registry/x.json", "rows": 1, "bytes": 1}]
            }
        },
        "inside the frame",
    ),
    "cell-backslash": (
        {"task": {"cells": [{"path": "region=x\\..\\..\\cell.parquet", "rows": 1, "bytes": 1}]}},
        "inside the frame",
    ),
    "cell-control-character": (
        {"task": {"cells": [{"path": "cell\u0000.parquet", "rows": 1, "bytes": 1}]}},
        "inside the frame",
    ),
    "cell-not-parquet": (
        {"task": {"cells": [{"path": "region=x/notes.json", "rows": 1, "bytes": 1}]}},
        "inside the frame",
    ),
    "frame-climbs-out": ({"frame": {"box": ".."}}, "frames.0.box"),
    "frame-internal": ({"frame": {"hive": "_registry"}}, "frames.0.hive"),
    "frame-repeated": (
        {"frames": [{"hive": "farm", "box": "sensors", "frame": "temps", "columns": COLUMNS}] * 2},
        "repeat",
    ),
    "driving-elsewhere": ({"driving": 3}, "driving"),
    "default-box-climbs-out": ({"default_box": "../x"}, "default_box"),
    "query-id-elsewhere": ({"query_id": "../../farm/sensors/temps"}, "query_id"),
    "columns-malformed": (
        {"frame": {"columns": [{"name": "v; DROP", "type": "int64"}]}},
        "frames.0.columns",
    ),
    "negative-rows": (
        {"task": {"cells": [{"path": "cell_x.parquet", "rows": -1, "bytes": 1}]}},
        "rows",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_manifest_is_refused_and_nothing_is_written(farm, tmp_path, case) -> None:
    ap, worker, cells = farm
    changes, reason = HOSTILE[case]
    target = tmp_path / "outside" / f"{uuid.uuid4().hex}.csv"
    target.parent.mkdir()
    changes = json.loads(json.dumps(changes).replace(OUTSIDE, str(target)))
    qid = uuid.uuid4().hex
    ap.storage.put(manifest_path(qid), json.dumps(manifest(qid, cells, **changes)).encode())
    before = files_under(tmp_path)

    worker.poll()
    assert worker.poll() == 0  # refused once, not again on every poll

    assert not target.exists()
    assert worker.tasks_run == 0
    error = ap.storage.get(error_path(qid, "t0000", NODE)).decode()
    assert reason in error, error
    assert "refused" in error
    new = files_under(tmp_path) - before
    query_folder = tmp_path / "root" / QUERIES / qid
    assert new == {query_folder / f"t0000.{NODE}.error.json"}, new


@pytest.mark.parametrize(
    "sql",
    [
        "COPY (SELECT 1 AS x) TO '/nonexistent/x.csv'",
        "INSERT INTO task_cells VALUES (1)",
        "EXPLAIN SELECT v FROM task_cells",
        "DESCRIBE task_cells",
    ],
)
def test_a_plan_that_is_not_a_query_is_refused_however_it_was_made(sql: str) -> None:
    """The check is on the plan, so it still holds when fragments travel as plan bytes."""
    ctx = SessionContext()
    ctx.register_record_batches("task_cells", [[pa.record_batch({"v": [1, 2]})]])
    plan = ctx.sql(sql).logical_plan()  # planned without the read-only options; never run
    with pytest.raises(SqlError, match="read-only"):
        check_read_only(plan, {"task_cells"})
    check_read_only(ctx.sql("SELECT sum(v) FROM task_cells").logical_plan(), {"task_cells"})


@pytest.mark.parametrize(
    "task_id", ["../../../escape", "a/b", "..", "t 1", "x" * 300], ids=lambda t: t[:12]
)
def test_an_unsafe_task_id_gets_no_object_at_all(farm, tmp_path, task_id, caplog) -> None:
    """No error object can be named safely, so the refusal is only logged."""
    ap, worker, cells = farm
    qid = uuid.uuid4().hex
    body = manifest(qid, cells, task={"task_id": task_id})
    ap.storage.put(manifest_path(qid), json.dumps(body).encode())
    before = files_under(tmp_path)
    with caplog.at_level(logging.WARNING, logger="apiary.worker"):
        assert worker.poll() == 0
    assert files_under(tmp_path) == before
    assert "refused" in caplog.text and qid in caplog.text


def test_a_manifest_in_an_unsafe_folder_is_ignored(farm, tmp_path, caplog) -> None:
    ap, worker, cells = farm
    ap.storage.put(f"{QUERIES}/a b/manifest.json", json.dumps(manifest("a b", cells)).encode())
    ap.storage.put(f"{QUERIES}/x/y/manifest.json", json.dumps(manifest("x", cells)).encode())
    ap.storage.put(f"{QUERIES}/{uuid.uuid4().hex}/manifest.json", b"{not json")
    before = files_under(tmp_path)
    with caplog.at_level(logging.WARNING, logger="apiary.worker"):
        assert worker.poll() == 0
        assert worker.poll() == 0
    assert files_under(tmp_path) == before
    assert caplog.text.count("refused") == 3  # each once, not once per poll


@pytest.mark.s3
@pytest.mark.multiprocess
def test_a_running_node_refuses_a_copy_manifest(s3_bucket, tmp_path, monkeypatch) -> None:
    """The attack from the issue against ``apiary node``: nothing appears outside the root."""
    use_short_timings(monkeypatch)
    target = tmp_path / "outside" / f"{uuid.uuid4().hex}.csv"
    target.parent.mkdir()
    procs = [start_apiary_node(s3_bucket.uri, NODE, quiet=True)]
    try:
        with Apiary("test", s3_bucket.uri, join_swarm=False) as ap:  # waits for the node alone
            deadline = time.monotonic() + 60
            while ap.swarm_status()["alive"] < 1:
                assert time.monotonic() < deadline, "the node did not come up"
                time.sleep(0.1)
            qid = uuid.uuid4().hex
            fragment = f"COPY (SELECT 1 AS x) TO '{target}'"
            body = manifest(qid, [], fragment_sql=fragment)
            sent = time.monotonic()
            ap.storage.put(manifest_path(qid), json.dumps(body).encode())
            answers = {error_path(qid, "t0000", NODE), result_path(qid, "t0000", NODE)}
            while not answers & {o.path for o in ap.storage.list(f"{QUERIES}/{qid}")}:
                assert time.monotonic() < sent + 60, "the node never answered"
                time.sleep(0.1)
            print(f"node answered the hostile manifest in {time.monotonic() - sent:.2f} s")
            assert not ap.storage.exists(result_path(qid, "t0000", NODE))
            error = ap.storage.get(error_path(qid, "t0000", NODE)).decode()
            assert "read-only" in error and "refused" in error
            # A COPY would have run before any answer was written.
            assert not target.exists()
            assert not target.parent.exists() or not any(target.parent.iterdir())
    finally:
        stop_all(procs)


GROUPED_JOIN = (  # a join on the GROUP BY key of an aggregate over the whole frame, narrowed
    "SELECT t.v, g.n FROM farm.sensors.temps t JOIN "
    "(SELECT v, count(*) AS n FROM farm.sensors.temps GROUP BY v) g ON g.v = t.v "
    "WHERE t.region = 'north'"  # (a WHERE on the key would reach the aggregate's scan too)
)


def test_a_fragment_gets_the_options_its_shape_suits_as_on_one_node(farm) -> None:
    ap, worker, cells = farm
    plain = Manifest.model_validate(manifest("q" * 32, cells))
    assert check_fragment(plain).suited.options == {}
    qid = uuid.uuid4().hex
    body = manifest(qid, cells, fragment_sql=GROUPED_JOIN)
    assert check_fragment(Manifest.model_validate(body)).suited.options == {PUSHDOWN: "true"}
    ap.storage.put(manifest_path(qid), json.dumps(body).encode())
    assert worker.poll() == 1
    result = pa.ipc.open_stream(ap.storage.get(result_path(qid, "t0000", NODE))).read_all()
    assert sorted(result.to_pylist(), key=lambda r: r["v"]) == [
        {"v": v, "n": 1} for v in [*range(10), *range(100, 110)]
    ]


def test_a_task_with_a_join_no_equality_can_stop_runs_sealed(farm, caplog) -> None:
    """A bee runs a join DataFusion cannot stop in a killable child. It tells one from the
    plan checked against stand-ins (not by optimising the fragment again for each task)."""
    ap, _, cells = farm
    worker = Worker(ap.storage, NODE, pool=ap.pool)
    cross = (
        "SELECT count(*) AS q0 FROM farm.sensors.temps a "
        "JOIN farm.sensors.temps b ON a.v < b.v"  # no equality: a nested-loop join
    )
    body = manifest(uuid.uuid4().hex, cells, fragment_sql=cross)
    checked = check_fragment(Manifest.model_validate(body))
    assert unstoppable(None, checked.plan) == "NestedLoopJoinExec"  # type: ignore[arg-type]
    caplog.set_level(logging.INFO, logger="apiary.bees")
    ap.storage.put(manifest_path(body["query_id"]), json.dumps(body).encode())
    assert worker.poll() == 1
    result = ap.storage.get(result_path(body["query_id"], "t0000", NODE))
    # The driving frame's two cells (all 20 rows) against the whole frame: 20 * 19 / 2 pairs.
    assert pa.ipc.open_stream(result).read_all().to_pylist() == [{"q0": 190}]
    assert "runs in a sealed child" in caplog.text
