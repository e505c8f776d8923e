"""Distributed aggregates over real node processes on one moto bucket."""

from __future__ import annotations

import math
import signal
import subprocess
import threading
import time

import pyarrow as pa
import pytest
from support.nodes import start_test_node, stop_all, use_short_timings
from support.processes import run_apiary

from apiary import Apiary, TaskAbandonedError
from apiary.swarm.manifest import QUERIES, Manifest

QUERY = (
    "SELECT region, sum(v) AS s, avg(v) AS a, count(*) AS n, min(v) AS mn, max(v) AS mx "
    "FROM farm.sensors.temps WHERE v >= 10 GROUP BY region ORDER BY s DESC LIMIT 3"
)
# A join: every task reads all of sites, its own share of temps.
JOIN_QUERY = (
    "SELECT s.site, sum(t.v) AS s, count(*) AS n FROM farm.sensors.temps t "
    "JOIN farm.sensors.sites s ON t.region = s.region WHERE t.v >= 10 GROUP BY s.site "
    "ORDER BY s.site"
)
pytestmark = [pytest.mark.multiprocess, pytest.mark.s3]


@pytest.fixture
def swarm(s3_bucket, monkeypatch):
    use_short_timings(monkeypatch)
    monkeypatch.setenv("APIARY_DISTRIBUTE_MIN_CELLS", "2")
    monkeypatch.setenv("APIARY_DISTRIBUTE_MIN_GAIN", "0")  # how tasks run, not when to share
    # The coordinating client stays out of the swarm: the tasks go to the node processes.
    ap = Apiary("test", s3_bucket.uri, join_swarm=False).start()
    ap.create_hive("farm")
    ap.create_box("farm", "sensors")
    ap.create_frame(
        "farm", "sensors", "temps", {"region": "string", "v": "int64"}, partition_by=["region"]
    )
    for batch in range(4):
        for i, region in enumerate(("north", "south", "east", "west")):
            start = 1000 * batch + 100 * i
            ap.write_to_frame(
                "farm",
                "sensors",
                "temps",
                pa.table({"region": [region] * 50, "v": range(start, start + 50)}),
            )
    ap.create_frame("farm", "sensors", "sites", {"region": "string", "site": "string"})
    sites = {"north": "hill", "south": "coast", "east": "hill", "west": "valley"}
    ap.write_to_frame(
        "farm", "sensors", "sites", pa.table({"region": list(sites), "site": list(sites.values())})
    )
    procs: list[subprocess.Popen[str]] = []
    yield ap, s3_bucket.uri, procs
    stop_all(procs)
    ap.shutdown()


def wait_alive(ap: Apiary, count: int) -> None:
    deadline = time.monotonic() + 60
    while ap.swarm_status()["alive"] < count:
        assert time.monotonic() < deadline, "nodes did not come up"
        time.sleep(0.1)


def single_node(ap: Apiary, sql: str) -> pa.Table:
    ap.settings.distribute_min_cells = 0
    try:
        return ap.sql(sql)
    finally:
        ap.settings.distribute_min_cells = 2


def assert_same(a: pa.Table, b: pa.Table) -> None:
    assert a.column_names == b.column_names and a.num_rows == b.num_rows
    for x, y in zip(a.to_pylist(), b.to_pylist(), strict=True):
        for key in x:
            if isinstance(x[key], float):
                assert math.isclose(x[key], y[key], rel_tol=1e-12), key
            else:
                assert x[key] == y[key], key


def test_distributed_aggregate_equals_single_node_and_spreads_tasks(swarm) -> None:
    ap, uri, procs = swarm
    procs += [start_test_node(uri, name) for name in ("node-a", "node-b", "node-c")]
    wait_alive(ap, 3)
    shared = ap.sql(QUERY)
    info = ap.last_query.distribution
    assert set(info["tasks_per_node"]) == {"node-a", "node-b", "node-c"}, info
    assert info["reassigned"] == 0
    assert_same(shared, single_node(ap, QUERY))
    assert shared["region"].to_pylist() == ["west", "east", "south"]
    assert ap.storage.list(QUERIES) == []  # the query folder is cleaned up
    # The nodes now cache the cells they read and say so in their heartbeats; the same query
    # again goes to the nodes holding its cells.
    deadline = time.monotonic() + 30
    while sum(len(n["cached_cells"]) for n in ap.swarm_status()["nodes"]) < 16:
        assert time.monotonic() < deadline, "heartbeats never listed the cached cells"
        time.sleep(0.1)
    assert_same(ap.sql(QUERY), shared)
    again = ap.last_query.distribution
    assert again["tasks_on_caching_nodes"] == again["tasks"] > 0, again
    other = (
        "SELECT count(*) AS n, max(v) AS top FROM farm.sensors.temps "
        "WHERE region IN ('north', 'east')"
    )
    assert_same(ap.sql(other), single_node(ap, other))
    assert ap.last_query.distribution == {}  # single node this time: it was forced local
    # `apiary sql` says how its query ran.
    done = run_apiary("sql", QUERY, "--storage", uri, env={"APIARY_DISTRIBUTE_MIN_CELLS": "2"})
    assert done.returncode == 0, done.stderr
    assert "shared: " in done.stdout and "tasks over farm.sensors.temps" in done.stdout


def test_tasks_read_each_version_with_its_own_schema(swarm) -> None:
    """After add_columns, the manifest carries the pinned version's schema: old cells read as
    nulls in the tasks, and a task of a query at an older version has no new column."""
    ap, uri, procs = swarm
    ap.add_columns("farm", "sensors", "temps", {"note": "string"})  # version 17
    for region in ("north", "south"):
        ap.write_to_frame(
            "farm",
            "sensors",
            "temps",
            pa.table({"region": [region] * 5, "v": range(5), "note": ["new"] * 5}),
        )
    procs += [start_test_node(uri, name) for name in ("node-a", "node-b")]
    wait_alive(ap, 2)
    sql = (
        "SELECT region, count(note) AS notes, count(*) AS n FROM farm.sensors.temps "
        "GROUP BY region ORDER BY region"
    )
    shared = ap.sql(sql)
    assert ap.last_query.distribution["tasks"] >= 2, ap.last_query.distribution
    assert_same(shared, single_node(ap, sql))
    assert shared.to_pylist()[1] == {"region": "north", "notes": 5, "n": 205}
    old = 'SELECT count(*) AS n, max(v) AS top FROM farm.sensors."temps@v16" WHERE v >= 10'
    shared_old = ap.sql(old)
    assert ap.last_query.distribution["tasks"] >= 2, ap.last_query.distribution
    assert_same(shared_old, single_node(ap, old))
    with pytest.raises(Exception, match="note"):
        ap.sql('SELECT count(note) FROM farm.sensors."temps@v16"')


def test_not_decomposable_queries_run_on_one_node(swarm) -> None:
    ap, uri, procs = swarm
    procs += [start_test_node(uri, name) for name in ("node-a", "node-b")]
    wait_alive(ap, 2)
    # DataFusion plans COUNT(DISTINCT v) as a GROUP BY v under a count: the GROUP BY splits.
    sql = "SELECT count(DISTINCT v) AS d FROM farm.sensors.temps"
    assert ap.sql(sql)["d"].to_pylist() == [800]
    assert ap.last_query.distribution["tasks"] >= 2
    median = "SELECT region, median(v) AS m FROM farm.sensors.temps GROUP BY region"
    assert ap.sql(median).num_rows == 4
    assert "cannot be split exactly" in ap.last_query.distribution["ran_locally"]


@pytest.mark.parametrize("query", [QUERY, JOIN_QUERY], ids=["aggregate", "join"])
def test_a_worker_killed_mid_query_has_its_tasks_reassigned(swarm, query) -> None:
    ap, uri, procs = swarm
    procs += [
        start_test_node(uri, "steady-1"),
        start_test_node(uri, "steady-2"),
        start_test_node(uri, "doomed", task_delay_s=120),
    ]
    wait_alive(ap, 3)
    ap.settings.task_timeout = 120  # reassignment must come from the death, not a timeout
    result: dict[str, object] = {}
    runner = threading.Thread(target=lambda: result.update(table=ap.sql(query)))
    runner.start()
    deadline = time.monotonic() + 60
    while True:  # wait until the doomed node holds a task, then kill it
        manifests = [o for o in ap.storage.list(QUERIES) if o.path.endswith("manifest.json")]
        if manifests:
            manifest = Manifest.model_validate_json(ap.storage.get(manifests[0].path))
            if any(t.node == "doomed" for t in manifest.tasks):
                break
        assert time.monotonic() < deadline, "no task went to the doomed node"
        time.sleep(0.05)
    procs[2].send_signal(signal.SIGKILL)
    runner.join(timeout=120)
    assert not runner.is_alive()
    assert ap.last_query.distribution["reassigned"] >= 1
    assert_same(result["table"], single_node(ap, query))
    assert result["table"].num_rows > 0
    assert ap.storage.list(QUERIES) == []


def test_a_task_failing_everywhere_is_abandoned_with_its_causes(swarm) -> None:
    ap, uri, procs = swarm
    procs += [start_test_node(uri, name) for name in ("node-a", "node-b", "node-c")]
    wait_alive(ap, 3)
    frame = ap.frame("farm", "sensors", "temps")
    victim = next(c for c in frame.snapshot().cells.values() if c.partition["region"] == "south")
    ap.storage.delete(f"{frame.prefix}/{victim.path}")
    with pytest.raises(TaskAbandonedError) as info:
        ap.sql(QUERY)
    message = str(info.value)
    assert message.count("missing from storage") == 3  # one cause per attempt, three nodes
    assert "Nothing partial was returned" in message
    assert ap.storage.list(QUERIES) == []
