"""All 22 TPC-H queries on a swarm of three real ``apiary node`` processes, exactly.

Every frame has at least four cells, ``distribute_min_cells`` is 1 and the gain rule is off,
so every query that can be split is shared; each answer must equal the single-node answer, at
least 16 queries must run on at least two nodes, and the rest must say why they ran on one.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from support.compare import assert_same_result
from support.nodes import start_apiary_node, stop_all, use_short_timings
from support.tpch import tpch_files

from apiary import Apiary
from apiary.bench.tpch import TABLES, load, use_box
from apiary.bench.tpch_queries import QUERIES, has_order_by
from apiary.swarm.manifest import QUERIES as QUERY_FOLDER

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]
NODES = ("node-1", "node-2", "node-3")


@pytest.fixture
def tpch_swarm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    files = tpch_files(0.01, tmp_path / "parquet")
    use_short_timings(monkeypatch)
    root = str(tmp_path / "root")
    ap = Apiary("tpch", root, join_swarm=False).start()  # coordinates; the nodes do the work
    load(ap, files, "tpch", "sf0_01", cells_per_frame=5)  # region: 5 rows
    use_box(ap, "tpch", "sf0_01")
    procs = [start_apiary_node(root, node, quiet=True) for node in NODES]
    try:
        deadline = time.monotonic() + 60
        while ap.swarm_status()["alive"] < len(NODES):
            assert time.monotonic() < deadline, "the nodes did not come up"
            time.sleep(0.1)
        yield ap
    finally:
        stop_all(procs)
        ap.shutdown()


def test_every_tpch_query_answers_exactly_and_most_are_shared(tpch_swarm: Apiary) -> None:
    ap = tpch_swarm
    for table in TABLES:
        assert ap.get_frame("tpch", "sf0_01", table)["cells"] >= 4, table
    shared, local = {}, {}
    # Every query that splits exactly is shared, whether or not it pays (the default
    # distribute_min_gain keeps some on one node: see the EXPLAIN test).
    ap.settings.distribute_min_gain = 0
    for number, query in sorted(QUERIES.items()):
        ap.settings.distribute_min_cells = 0
        expected = ap.sql(query)
        ap.settings.distribute_min_cells = 1
        got = ap.sql(query)
        info = ap.last_query.distribution
        assert_same_result(got, expected, ordered=has_order_by(query))
        if info.get("tasks"):
            shared[number] = info
        else:
            assert info.get("ran_locally"), f"Q{number} ran on one node without a reason: {info}"
            local[number] = info["ran_locally"]
    spread = {n for n, info in shared.items() if len(info["tasks_per_node"]) >= 2}
    print(f"shared on 2+ nodes: {sorted(spread)}; on one node: {local}")
    assert len(spread) >= 16, (sorted(spread), local)
    # Joins scale: a task reads only the orders (Q3) or lineitem (Q18) cells whose order keys
    # fall within its own cells' range, not the whole other frame. Tasks are cut in key order,
    # so a task over about a fifth of one frame reads about a fifth of the other (plus a cell
    # where the two frames' cell boundaries do not line up).
    for number, frame in ((3, "tpch.sf0_01.orders"), (18, "tpch.sf0_01.lineitem")):
        narrowed = shared[number]["narrowed_by_key"][frame]
        tasks = shared[number]["tasks"]
        print(f"Q{number}: {tasks} tasks, {frame}: {narrowed}")
        assert narrowed["cells_per_task"] <= narrowed["cells"] / tasks + 1, (number, narrowed)
        # ...and of the cell that straddles its edge, only the rows within its key range.
        assert narrowed["tasks_with_key_range"] == tasks, (number, narrowed)
    ap.flush()  # each answered query's folder is deleted behind its answer
    assert ap.storage.list(QUERY_FOLDER) == []


def test_explain_says_whether_and_how_a_query_is_shared(tpch_swarm: Apiary) -> None:
    ap = tpch_swarm
    ap.settings.distribute_min_cells = 1

    def distribution(number: int) -> str:
        plan = ap.sql("EXPLAIN " + QUERIES[number]).to_pylist()
        (row,) = [r["plan"] for r in plan if r["plan_type"] == "apiary distribution"]
        return row

    # At this scale a task reads well under a megabyte: the trip through the bucket outweighs it.
    assert ap.settings.distribute_trip_mb == 16
    short = distribution(1)
    assert short.startswith("runs on this node: sharing would not pay: "), short
    assert "the trip through the bucket counts as 16.0 MB" in short
    ap.settings.distribute_trip_mb = 0  # the shapes below are what this test is about
    assert distribution(1).startswith("shared with 3 nodes: split by the cells of lineitem")
    assert distribution(11) == "runs on this node: every frame it reads is read more than once"
    # Q17 splits by part, but every task would read the whole of lineitem (twice): with the
    # default distribute_min_gain it stays on one node and says so; without, it is shared.
    assert ap.settings.distribute_min_gain == 1.3
    reason = distribution(17)
    assert reason.startswith("runs on this node: sharing would not pay: each of "), reason
    assert "below distribute_min_gain (1.3)" in reason
    ap.settings.distribute_min_gain = 0
    assert distribution(17).startswith("shared with 3 nodes: split by the cells of part")
    assert ap.storage.list(QUERY_FOLDER) == []  # EXPLAIN ran nothing on the swarm
