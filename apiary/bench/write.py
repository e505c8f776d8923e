"""``apiary bench write``: write throughput against bare pyarrow, and commits/s under contention.

Both sides write the same table with the same compression and row-group size in the same run, so
the ratio says what Apiary's validation, partitioning, statistics and commit cost on top of the
Parquet encoding itself.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from apiary.cells.writer import COMPRESSION, ROW_GROUP_ROWS
from apiary.sample_data import SCHEMA, sensor_readings
from apiary.sdk import Apiary

Progress = Callable[[str], None]


def write_throughput(
    rows: int, repeats: int, workdir: Path, progress: Progress = lambda _: None
) -> dict[str, Any]:
    """Each side writes the same table ``repeats`` times, the sides taking turns in rotating
    order (this machine's speed drifts from minute to minute; see README "Performance")."""
    table = sensor_readings(rows)
    megabytes = table.nbytes / 1e6
    bare_dir = workdir / "bare"
    bare_dir.mkdir()

    def bare(i: int) -> None:
        pq.write_table(
            table, bare_dir / f"{i}.parquet", compression=COMPRESSION, row_group_size=ROW_GROUP_ROWS
        )

    sides: dict[str, Callable[[int], Any]] = {"bare": bare}
    variants: tuple[tuple[str, list[str], list[str]], ...] = (
        ("apiary", [], []),
        ("apiary_partitioned", ["region"], []),
        # sort_by: every cell sorted by sensor and time before it is written
        ("apiary_sorted", ["region"], ["sensor_id", "ts"]),
    )
    with contextlib.ExitStack() as stack:
        for label, partition_by, sort_by in variants:
            ap = stack.enter_context(Apiary("bench", str(workdir / label)))
            ap.create_hive("bench")
            ap.create_box("bench", "write")
            ap.create_frame(
                "bench", "write", "readings", SCHEMA, partition_by=partition_by, sort_by=sort_by
            )
            sides[label] = lambda _, ap=ap: ap.write_to_frame("bench", "write", "readings", table)
        times: dict[str, list[float]] = {label: [] for label in sides}
        order = list(sides)
        for round_ in range(repeats):
            progress(f"round {round_ + 1}/{repeats}")
            for label in order[round_ % len(order) :] + order[: round_ % len(order)]:
                started = time.perf_counter()
                sides[label](round_)
                times[label].append(time.perf_counter() - started)
    bare_s = statistics.median(times["bare"])
    results: dict[str, Any] = {"rows": rows, "megabytes": round(megabytes, 1), "repeats": repeats}
    results["bare"] = _rates(rows, megabytes, bare_s)
    for label, _, _ in variants:
        seconds = statistics.median(times[label])
        results[label] = _rates(rows, megabytes, seconds)
        results[label]["ratio_vs_bare"] = round(bare_s / seconds, 3)
    return results


def _rates(rows: int, megabytes: float, seconds: float) -> dict[str, Any]:
    return {
        "seconds": round(seconds, 4),
        "rows_per_s": round(rows / seconds),
        "mb_per_s": round(megabytes / seconds, 1),
    }


def _commit_worker(root: str, commits: int, barrier: Any, out: Any) -> None:
    with Apiary("bench", root) as ap:
        frame = ap.frame("bench", "write", "commits")
        frame.ledger.latest()
        batch = pa.table({"writer": pa.array([0] * 10, pa.int64()), "n": pa.array(range(10))})
        barrier.wait()
        started = time.time()
        for _ in range(commits):
            ap.write_to_frame("bench", "write", "commits", batch)
        out.put((started, time.time()))


def commit_rate(
    writers: int, commits: int, workdir: Path, progress: Progress = lambda _: None
) -> dict[str, Any]:
    """``writers`` separate processes each committing ``commits`` small appends to one frame."""
    progress(f"{writers} concurrent writer(s)")
    root = str(workdir / f"commits-{writers}")
    with Apiary("bench", root) as ap:
        ap.create_hive("bench")
        ap.create_box("bench", "write")
        ap.create_frame("bench", "write", "commits", {"writer": "int64", "n": "int64"})
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(writers), ctx.Queue()
    procs = [
        ctx.Process(target=_commit_worker, args=(root, commits, barrier, out))
        for _ in range(writers)
    ]
    for proc in procs:
        proc.start()
    spans = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    wall = max(end for _, end in spans) - min(start for start, _ in spans)
    with Apiary("bench", root) as ap:
        version = ap.get_frame("bench", "write", "commits")["version"]
    total = writers * commits
    if version != total:  # version 0 is create_frame, so N commits end at version N
        raise RuntimeError(f"expected version {total} after {total} commits, found {version}")
    return {
        "writers": writers,
        "commits": total,
        "seconds": round(wall, 3),
        "commits_per_s": round(total / wall, 1),
    }


def run(
    rows: int = 2_000_000,
    repeats: int = 3,
    writers: tuple[int, ...] = (1, 4, 8),
    commits: int = 50,
    progress: Progress = lambda _: None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="apiary-bench-") as tmp:
        workdir = Path(tmp)
        return {
            "write": write_throughput(rows, repeats, workdir, progress),
            "commits": [commit_rate(n, commits, workdir, progress) for n in writers],
        }
