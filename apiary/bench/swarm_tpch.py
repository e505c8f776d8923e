"""``apiary bench swarm``, local part: the 22 TPC-H queries on one node and on two.

One local root, TPC-H at scale ``sf`` loaded into frames. This process is the coordinator, pinned
to one core with one bee; the single-node time is this process alone, the two-node time adds one
``apiary node`` process pinned to another core (one bee too), so the speedup t1 / t2 says what a
second machine's worth of cores buys. Caches are warm (every query runs once on each setting
before timing). The timed runs go in rounds over all the queries, each query on one node and then
on two: a stall of this shared machine lasting a few seconds then slows one run of a few queries,
not every run of one. Each figure is a median. The overhead figure is the median extra time of a
shared trivial aggregate over the same query run locally.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apiary.bench.compare import result_difference
from apiary.bench.nodes import pin, start_node
from apiary.bench.tpch import _geomean, box_name, generate, load, tpchgen_executable, use_box
from apiary.bench.tpch_queries import QUERIES, has_order_by
from apiary.sdk import Apiary

Progress = Callable[[str], None]
TRIVIAL = "SELECT count(*) AS n, max(n_nationkey) AS k FROM nation"
TIMINGS = {"APIARY_HEARTBEAT_INTERVAL": "1", "APIARY_SUSPECT_AFTER": "3", "APIARY_DEAD_AFTER": "6"}


def _cores() -> tuple[int, int]:
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        raise RuntimeError("the swarm benchmark needs two cores, one per node")
    return usable[0], usable[1]


def _seconds(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def run(
    sf: float = 1.0,
    repeats: int = 3,
    progress: Progress = lambda _: None,
    *,
    queries: Sequence[int] | None = None,
    overhead_runs: int = 20,
) -> dict[str, Any]:
    tpchgen_executable()  # before anything starts: a clear error if the generator is missing
    mine, other = _cores()
    previous = os.sched_getaffinity(0)
    work = Path(tempfile.mkdtemp(prefix="apiary-bench-swarm-"))
    env = {**os.environ, **TIMINGS, "APIARY_CORES": "1", "APIARY_HOME": str(work / "home")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    node: subprocess.Popen[bytes] | None = None
    try:
        pin(os.getpid(), {mine})
        progress(f"generating TPC-H SF {sf}")
        files = generate(sf, work / "parquet")
        root = str(work / "root")
        box = box_name(sf)
        with Apiary("bench", root) as ap:  # a node of the swarm: its own bee takes tasks
            progress("loading frames")
            load(ap, files, "tpch", box, cells_per_frame=8, sf=sf)
            use_box(ap, "tpch", box)
            node = start_node(root, "bench-2", dict(os.environ))
            pin(node.pid, {other})
            deadline = time.monotonic() + 120
            while ap.swarm_status()["alive"] < 2:
                if time.monotonic() > deadline:
                    raise TimeoutError("the second node did not come up")
                time.sleep(0.1)
            pin(node.pid, {other})  # any thread a not yet pinned one started meanwhile
            chosen = list(queries or sorted(QUERIES))
            runs = {}
            for i, number in enumerate(chosen):
                progress(f"warming Q{number} ({i + 1}/{len(chosen)})")
                runs[number] = _warm(ap, number)
            for round_ in range(repeats):
                progress(f"round {round_ + 1}/{repeats} of {len(chosen)} queries")
                for number in chosen:
                    runs[number].time(ap)
            rows = [runs[number].row() for number in chosen]
            progress("overhead of sharing a trivial aggregate")
            overhead = _overhead(ap, overhead_runs)
    finally:
        if node is not None:
            node.terminate()
            node.wait(timeout=60)
        pin(os.getpid(), previous)
        shutil.rmtree(work, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    shared = [r for r in rows if r["distributed"]]
    by_number = {r["query"]: r for r in rows}
    return {
        "sf": sf,
        "repeats": repeats,
        "queries": rows,
        "distributed": len(shared),
        "geomean_speedup": _geomean(r["speedup"] for r in shared),
        "geomean_speedup_all": _geomean(r["speedup"] for r in rows),
        "q1_speedup": by_number.get(1, {}).get("speedup"),
        "q6_speedup": by_number.get(6, {}).get("speedup"),
        "overhead": overhead,
    }


def _on(ap: Apiary, query: str, nodes: int) -> Any:
    ap.settings.distribute_min_cells = 0 if nodes == 1 else 1
    return ap.sql(query)


@dataclass
class _Runs:
    """One query's timed runs on one node and on two, and what its warm-up found."""

    number: int
    info: dict[str, Any]
    difference: str | None
    one: list[float] = field(default_factory=list)
    two: list[float] = field(default_factory=list)

    def time(self, ap: Apiary) -> None:
        query = QUERIES[self.number]
        self.one.append(_seconds(lambda: _on(ap, query, 1)))
        self.two.append(_seconds(lambda: _on(ap, query, 2)))

    def row(self) -> dict[str, Any]:
        m1, m2 = statistics.median(self.one), statistics.median(self.two)
        return {
            "query": self.number,
            "one_node_s": round(m1, 4),
            "two_nodes_s": round(m2, 4),
            "speedup": round(m1 / m2, 3) if m2 else None,
            "distributed": bool(self.info.get("tasks")),
            "tasks_per_node": self.info.get("tasks_per_node", {}),
            "why_not": self.info.get("ran_locally"),
            "same_answer": self.difference is None,
            "difference": self.difference,
        }


def _warm(ap: Apiary, number: int) -> _Runs:
    """Run query ``number`` once on each setting (caches warm) and check the shared answer."""
    query = QUERIES[number]
    one, two = _on(ap, query, 1), _on(ap, query, 2)
    info = dict(ap.last_query.distribution)
    return _Runs(number, info, result_difference(two, one, has_order_by(query)))


def _overhead(ap: Apiary, runs: int) -> dict[str, Any]:
    local, shared = [], []
    gain = ap.settings.distribute_min_gain
    ap.settings.distribute_min_gain = 0  # one cell cannot gain: shared to measure the trip
    try:
        for _ in range(runs):
            ap.settings.distribute_min_cells = 0
            local.append(_seconds(lambda: ap.sql(TRIVIAL)))
            ap.settings.distribute_min_cells = 1
            shared.append(_seconds(lambda: ap.sql(TRIVIAL)))
    finally:
        ap.settings.distribute_min_gain = gain
    distributed = bool(ap.last_query.distribution.get("tasks"))
    return {
        "query": TRIVIAL,
        "runs": runs,
        "local_median_ms": round(statistics.median(local) * 1000, 1),
        "shared_median_ms": round(statistics.median(shared) * 1000, 1),
        "overhead_ms": round((statistics.median(shared) - statistics.median(local)) * 1000, 1),
        "distributed": distributed,
    }
