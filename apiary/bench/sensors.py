"""``apiary bench sensors``: the workload Apiary exists for, against DuckDB and DataFusion.

A fleet of devices reporting every ``interval`` seconds for ``days`` days, partitioned by day and
written the way a fleet writes — many small commits, one per device group every few hours — then
compacted and vacuumed, so the frame's folder holds exactly its live cells. The queries are a
dashboard's: the last hour of one device, one day per device, a week of daily aggregates, the
hottest readings in a window, and a full-table aggregate. DuckDB (``read_parquet`` with hive
partitioning) and DataFusion (a listing table with the day as partition column) read the same
folder in the same run; each figure is the median of ``repeats`` interleaved runs.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.compute as pc

from apiary.bench.compare import result_difference
from apiary.bench.tpch import _geomean, run_duckdb
from apiary.runtime.bees import META_FETCH, TUNED
from apiary.sdk import Apiary

Progress = Callable[[str], None]
SORT_BY = ("device", "ts")
START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
SCHEMA = pa.schema(
    [
        ("device", pa.int32()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("day", pa.date32()),
        ("temp", pa.float64()),
        ("humidity", pa.float64()),
        ("battery", pa.float32()),
    ]
)


def queries(days: int) -> dict[str, tuple[str, bool]]:
    """name -> (SQL over a table named ``readings``, whether it is selective)."""
    end = START + dt.timedelta(days=days)
    last_day = (end - dt.timedelta(days=1)).date()
    week = (end - dt.timedelta(days=7)).date()
    hour = (end - dt.timedelta(hours=1)).isoformat()
    window = (end - dt.timedelta(days=2)).isoformat(), (end - dt.timedelta(days=1)).isoformat()
    return {
        "last hour of one device": (
            f"SELECT ts, temp, humidity FROM readings WHERE device = 42 "
            f"AND ts >= TIMESTAMP '{hour}' ORDER BY ts",
            True,
        ),
        "one day per device": (
            f"SELECT device, avg(temp) AS t, max(temp) AS hi, min(battery) AS b FROM readings "
            f"WHERE day = DATE '{last_day}' GROUP BY device ORDER BY device",
            True,
        ),
        "a week of daily aggregates": (
            f"SELECT day, avg(temp) AS t, min(temp) AS lo, max(temp) AS hi, count(*) AS n "
            f"FROM readings WHERE day >= DATE '{week}' GROUP BY day ORDER BY day",
            True,
        ),
        "hottest in a window": (
            f"SELECT device, ts, temp FROM readings WHERE ts >= TIMESTAMP '{window[0]}' "
            f"AND ts < TIMESTAMP '{window[1]}' ORDER BY temp DESC, device, ts LIMIT 10",
            True,
        ),
        "full-table aggregate": (
            "SELECT device, count(*) AS n, avg(temp) AS t, max(humidity) AS h FROM readings "
            "GROUP BY device ORDER BY device",
            False,
        ),
    }


def batch(
    devices: range, day: int, hour: int, interval: int, seed: int, hours: int = 1
) -> pa.Table:
    """One commit's worth: ``devices`` reporting every ``interval`` s for ``hours`` hours."""
    per_device = hours * 3600 // interval
    start = START + dt.timedelta(days=day, hours=hour)
    base = int(start.timestamp() * 1_000_000)
    offsets = [i * interval for i in range(per_device)]
    device = pa.array([d for d in devices for _ in range(per_device)], pa.int32())
    ts = pa.array(
        [base + o * 1_000_000 for _ in devices for o in offsets], pa.timestamp("us", tz="UTC")
    )
    hour_of = pa.array([hour + o // 3600 for _ in devices for o in offsets], pa.float64())
    n = len(device)
    noise = pc.subtract(pc.random(n, initializer=seed), 0.5)
    phase = pc.multiply(pc.add(pc.cast(pc.bit_wise_and(device, 23), pa.float64()), hour_of), 0.2618)
    temp = pc.add(pc.add(pc.multiply(pc.sin(phase), 6.0), 18.0), pc.multiply(noise, 4.0))
    humidity = pc.add(pc.multiply(pc.random(n, initializer=seed + 1), 70.0), 20.0)
    battery = pc.add(pc.multiply(pc.random(n, initializer=seed + 2), 0.9), 3.3)
    return pa.table(
        {
            "device": device,
            "ts": ts,
            "day": pa.array([start.date()] * n, pa.date32()),
            "temp": temp,
            "humidity": humidity,
            "battery": pc.cast(battery, pa.float32()),
        },
        schema=SCHEMA,
    )


def run(
    devices: int = 200,
    days: int = 540,
    interval: int = 450,
    groups: int = 1,
    repeats: int = 3,
    compact: bool = True,
    progress: Progress = lambda _: None,
    sort_by: tuple[str, ...] = SORT_BY,
    hours: int = 6,
) -> dict[str, Any]:
    """Write the fleet's readings, then time the dashboard queries on each engine.

    The defaults are 200 devices reporting every 7.5 minutes for a year and a half (20.7 M
    readings), each device group committing every ``hours`` hours: a long history of small
    day partitions, which dashboards query a recent slice of. The frame is sorted by
    ``sort_by`` (device, then time: what a dashboard filters on), so its cells and row groups
    have tight min/max ranges; ``()`` writes it unsorted.
    """
    if hours < 1 or 24 % hours:
        raise ValueError(
            f"hours per commit must divide a day (1, 2, 3, 4, 6, 8, 12 or 24), got {hours}"
        )
    work = Path(tempfile.mkdtemp(prefix="apiary-bench-sensors-"))
    try:
        return _run(
            work, devices, days, interval, groups, repeats, compact, progress, sort_by, hours
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(
    work: Path,
    devices: int,
    days: int,
    interval: int,
    groups: int,
    repeats: int,
    compact: bool,
    progress: Progress,
    sort_by: tuple[str, ...] = SORT_BY,
    hours: int = 6,
) -> dict[str, Any]:
    with Apiary("bench", str(work / "root"), join_swarm=False) as ap:
        ap.create_hive("fleet")
        ap.create_box("fleet", "iot")
        ap.create_frame(
            "fleet", "iot", "readings", SCHEMA, partition_by=["day"], sort_by=list(sort_by)
        )
        started = time.perf_counter()
        rows = commits = 0
        size = -(-devices // groups)
        for day in range(days):
            progress(f"writing day {day + 1}/{days}")
            for hour in range(0, 24, hours):
                for g in range(groups):
                    chunk = range(g * size, min(devices, (g + 1) * size))
                    seed = day * 1000 + hour * 10 + g
                    data = batch(chunk, day, hour, interval, seed, hours)
                    ap.write_to_frame("fleet", "iot", "readings", data)
                    rows += data.num_rows
                    commits += 1
        write_s = time.perf_counter() - started
        cells_written = ap.get_frame("fleet", "iot", "readings")["cells"]
        compaction: dict[str, Any] = {}
        if compact:
            progress("compacting")
            started = time.perf_counter()
            compaction = dict(ap.compact_frame("fleet", "iot", "readings"))
            compaction["seconds"] = round(time.perf_counter() - started, 2)
            ap.vacuum_frame("fleet", "iot", "readings", retention_hours=0, force=True)
        frame = ap.get_frame("fleet", "iot", "readings")
        folder = work / "root" / "fleet" / "iot" / "readings"
        # Compaction just wrote the whole frame again: let the kernel write it out before the
        # timing starts, or the first engine timed pays for the flush (measured: 0.7 s instead
        # of 0.17 s for the full-table aggregate).
        os.sync()
        ap.sql("USE fleet.iot")
        engines: dict[str, Callable[[str], pa.Table]] = {"apiary": ap.sql}
        engines["datafusion"] = _datafusion(folder)
        if importlib.util.find_spec("duckdb") is not None:
            engines["duckdb"] = _duckdb(folder)
        results = []
        for name, (sql, selective) in queries(days).items():
            progress(name)
            results.append(_time(name, sql, selective, engines, repeats, ap))
        process = _process()
    ratios: dict[str, Any] = {}
    for other in ("duckdb", "datafusion"):
        if other in engines:
            ratios[other] = {
                "selective_geomean": _geomean(
                    r[other] / r["apiary"] for r in results if r["selective"] and r.get(other)
                ),
                "full_table": next(
                    (round(r[other] / r["apiary"], 3) for r in results if not r["selective"]),
                    None,
                ),
            }
    return {
        "devices": devices,
        "days": days,
        "interval": interval,
        "hours_per_commit": hours,
        "sort_by": list(sort_by),
        "rows": rows,
        "commits": commits,
        "write_seconds": round(write_s, 2),
        "cells_written": cells_written,
        "cells": frame["cells"],
        "bytes": frame["bytes"],
        "compaction": compaction,
        "queries": results,
        "speedup_over": ratios,  # other engine's time / Apiary's: above 1, Apiary is faster
        "process": process,
    }


def _process() -> dict[str, int]:
    """This process's private memory and threads after the queries, every engine's together:
    a regression guard for memory the readers keep (runtime.bees.TUNED)."""
    me = psutil.Process()
    return {"private_mb": round(me.memory_full_info().uss / 1e6), "threads": me.num_threads()}


def _time(
    name: str,
    sql: str,
    selective: bool,
    engines: dict[str, Callable[[str], pa.Table]],
    repeats: int,
    ap: Apiary,
) -> dict[str, Any]:
    answers = {engine: run(sql) for engine, run in engines.items()}  # warm, and compare
    scanned = ap.last_query.frames[0] if ap.last_query.frames else None
    ordered = "ORDER BY" in sql
    times: dict[str, list[float]] = {engine: [] for engine in engines}
    order = list(engines)
    for round_ in range(repeats):
        # Each round starts with another engine: an engine's threads may still be winding down
        # when the next one starts (DuckDB's), and that must not always cost the same engine.
        for engine in order[round_ % len(order) :] + order[: round_ % len(order)]:
            started = time.perf_counter()
            engines[engine](sql)
            times[engine].append(time.perf_counter() - started)
    row: dict[str, Any] = {"query": name, "selective": selective, "sql": sql}
    for engine in engines:
        row[engine] = round(statistics.median(times[engine]), 4)
    row["same_answers"] = all(
        result_difference(answers["apiary"], answers[e], ordered) is None for e in engines
    )
    if scanned is not None:
        row["cells_scanned"] = scanned.scanned
        row["cells_considered"] = scanned.considered
    row["bytes_scanned"] = bytes_scanned(ap.sql("EXPLAIN ANALYZE " + sql))
    return row


_BYTES = re.compile(r"bytes_scanned=([0-9.]+)\s*([KMGT]?)")
_UNITS = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def bytes_scanned(plan: pa.Table) -> int:
    """Bytes DataFusion read from the cells (its scans' ``bytes_scanned`` metrics, summed)."""
    total = 0.0
    for line in plan.column("plan").to_pylist():
        for number, unit in _BYTES.findall(line):
            total += float(number) * _UNITS[unit]
    return round(total)


def _datafusion(folder: Path) -> Callable[[str], pa.Table]:
    from datafusion import SessionConfig, SessionContext

    # Footers two at a time, as Apiary's bees read them (runtime.bees.TUNED): at DataFusion's
    # default of 32 its blocking threads keep ~the bytes each scan read, and in this shared
    # process the other engines then ran 10-40 % slower (full-table aggregate, paired runs).
    config = SessionConfig().set(META_FETCH, TUNED[META_FETCH])
    ctx = SessionContext(config)
    schema = pa.schema([f for f in SCHEMA if f.name != "day"])
    ctx.register_listing_table(
        "readings", str(folder), table_partition_cols=[("day", pa.date32())], schema=schema
    )
    return lambda sql: ctx.sql(sql).to_arrow_table()


def _duckdb(folder: Path) -> Callable[[str], pa.Table]:
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        "CREATE VIEW readings AS SELECT * FROM read_parquet("
        f"'{folder}/day=*/*.parquet', hive_partitioning = true, hive_types = {{'day': DATE}})"
    )
    return lambda sql: run_duckdb(con, sql)
