"""Shared queries stay inside each node's limits: cancel reaches remote tasks, and a fragment
larger than its bee fails cleanly while the other bee's work completes.

Real ``apiary node`` processes on one local root; heartbeats tell what their bees are doing.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest
from support.nodes import start_apiary_node, stop_all, use_short_timings
from support.waiting import wait_until

from apiary import Apiary, QueryCancelledError, TaskAbandonedError
from apiary.swarm.manifest import QUERIES

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]
ROWS = 4_000_000
CELLS = 8


@pytest.fixture
def numbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A local root with two frames of 4M rows in 8 cells each, and an observer client."""
    use_short_timings(monkeypatch)
    root = str(tmp_path / "root")
    ap = Apiary("limits", root, join_swarm=False).start()
    ap.create_hive("lab")
    ap.create_box("lab", "n")
    for name in ("a", "b"):
        ap.create_frame("lab", "n", name, {"k": "int64", "v": "int64"})
        per = ROWS // CELLS
        for c in range(CELLS):
            keys = pa.array(range(c * per, (c + 1) * per), pa.int64())
            ap.write_to_frame("lab", "n", name, pa.table({"k": keys, "v": keys}))
    ap.settings.distribute_min_cells = 2
    ap.settings.distribute_min_gain = 0  # these tests are about shared tasks, not when to share
    procs: list = []
    yield ap, root, procs
    stop_all(procs)
    ap.shutdown()


def busy(ap: Apiary) -> dict[str, int]:
    return {n["node_id"]: n["bees_busy"] for n in ap.swarm_status()["nodes"]}


def test_cancel_reaches_the_tasks_on_other_nodes(numbers) -> None:
    ap, root, procs = numbers
    procs += [start_apiary_node(root, f"node-{i}", quiet=True, APIARY_CORES="1") for i in (1, 2)]
    wait_until(lambda: ap.swarm_status()["alive"] == 2, 60, "two nodes")
    # Seconds of hashing per task: it is still running when the cancel comes.
    slow = "SELECT max(sha512(sha256(md5(CAST(v AS VARCHAR))))) AS h FROM lab.n.a"
    cancel = threading.Event()
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            ap.sql(slow, cancel=cancel)
        except BaseException as exc:
            outcome["error"] = exc

    runner = threading.Thread(target=run)
    runner.start()
    wait_until(lambda: all(busy(ap).get(f"node-{i}") for i in (1, 2)), 30, "both nodes busy")
    cancel.set()
    runner.join(timeout=10)
    assert not runner.is_alive()
    assert isinstance(outcome.get("error"), QueryCancelledError), outcome
    # Heartbeats come every 0.5 s: 2 s for the bees plus one beat to tell.
    cancelled = time.monotonic()
    wait_until(lambda: not any(busy(ap).values()), 2.5, "the remote bees to idle")
    print(f"remote bees idle {time.monotonic() - cancelled:.2f} s after the cancel")
    assert ap.storage.list(QUERIES) == []
    assert all(p.poll() is None for p in procs)  # the nodes themselves carry on


def test_a_join_larger_than_its_bee_fails_cleanly_while_the_other_bee_works(numbers) -> None:
    ap, root, procs = numbers
    tight = {"APIARY_CORES": "2", "APIARY_MEMORY_PER_BEE": str(16 * 2**20)}
    procs += [start_apiary_node(root, f"node-{i}", quiet=True, **tight) for i in (1, 2)]
    wait_until(lambda: ap.swarm_status()["alive"] == 2, 60, "two nodes")
    ap.settings.task_attempts = 2
    # Each task joins its quarter of a (a million rows) with all of b: the hash table
    # alone is several times a 16 MiB bee.
    join = "SELECT count(*) AS n, sum(b.v) AS s FROM lab.n.a a JOIN lab.n.b b ON a.k = b.k"
    small = "SELECT count(*) AS n, sum(v) AS s FROM lab.n.b WHERE k < 1000"
    outcome: dict[str, object] = {}

    def run_join() -> None:
        try:
            outcome["join"] = ap.sql(join)
        except BaseException as exc:
            outcome["join"] = exc

    runner = threading.Thread(target=run_join)
    runner.start()
    with Apiary("limits", root, join_swarm=False) as other:  # a second client, same swarm
        other.settings.distribute_min_cells = 1
        other.settings.distribute_min_gain = 0  # one cell: shared although it cannot gain
        answer = other.sql(small)
        assert other.last_query.distribution.get("tasks"), other.last_query.distribution
    runner.join(timeout=240)
    assert not runner.is_alive()
    assert answer.to_pylist() == [{"n": 1000, "s": sum(range(1000))}]
    result = outcome["join"]
    print(f"the join in 16 MiB bees: {str(result)[:300]}")
    if isinstance(result, pa.Table):  # spilled and finished: then it must be exact
        assert result.to_pylist() == [{"n": ROWS, "s": sum(range(ROWS))}]
    else:
        assert isinstance(result, TaskAbandonedError), result
        assert "MemoryExceeded" in str(result) or "memory" in str(result).lower(), result
    assert all(p.poll() is None for p in procs)  # no node went down with it
    assert ap.swarm_status()["alive"] == 2
