"""``apiary bench s3``: a selective query on an S3 root, with and without ledger pruning.

moto's S3 server runs on loopback behind a counting proxy. The same query runs through Apiary
(cells pruned from the ledger before any request) and through raw DataFusion over the frame's
whole folder in the bucket (which must at least read every cell's footer to prune row groups),
and the proxy counts the requests and bytes each one caused.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from apiary.bench.compare import result_difference
from apiary.sample_data import SCHEMA, sensor_readings
from apiary.sdk import Apiary

Progress = Callable[[str], None]
BATCHES = 8
START = datetime(2026, 1, 1, tzinfo=UTC)


@contextlib.contextmanager
def aws_env(endpoint: str) -> Iterator[None]:
    """moto accepts any key; the benchmark sets its own for the duration of the run only."""
    wanted = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }
    saved = {key: os.environ.get(key) for key in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _traffic(proxy: Any) -> dict[str, int]:
    cells = [r for r in proxy.requests if ".parquet" in r.path]
    return {
        "requests": len(proxy.requests),
        "cell_requests": len(cells),
        "cells_touched": len({r.path for r in cells}),
        "bytes": sum(r.response_bytes for r in proxy.requests),
    }


def run(rows: int = 2_000_000, progress: Progress = lambda _: None) -> dict[str, Any]:
    if importlib.util.find_spec("moto") is None:
        raise ModuleNotFoundError("the S3 benchmark needs moto: pip install 'apiary[bench]'")
    from datafusion import SessionContext

    from apiary.sql.sources import register_object_store
    from apiary.testing.fault_proxy import FaultProxy
    from apiary.testing.moto_server import MotoServer

    notes: list[str] = []
    progress("starting S3 (moto) and the counting proxy")
    with MotoServer() as moto, FaultProxy(moto.endpoint) as proxy, aws_env(proxy.endpoint):
        bucket = moto.create_bucket()
        uri = f"s3://{bucket}/bench?endpoint={proxy.endpoint}"
        per_batch = max(rows // BATCHES, 1)
        with Apiary("bench", uri) as ap:
            ap.create_hive("bench")
            ap.create_box("bench", "s3")
            ap.create_frame("bench", "s3", "readings", SCHEMA, partition_by=["region"])
            for batch in range(BATCHES):
                progress(f"writing batch {batch + 1}/{BATCHES}")
                start = START + timedelta(days=7 * batch)
                ap.write_to_frame(
                    "bench", "s3", "readings", sensor_readings(per_batch, seed=batch, start=start)
                )
            info = ap.get_frame("bench", "s3", "readings")
            window = (START + timedelta(days=7 * 6), START + timedelta(days=7 * 7))
            where = (
                f"region = 'north' AND ts >= TIMESTAMP '{window[0]:%Y-%m-%d %H:%M:%S}Z' "
                f"AND ts < TIMESTAMP '{window[1]:%Y-%m-%d %H:%M:%S}Z'"
            )
            select = "SELECT count(*) AS n, avg(temperature) AS t, max(humidity) AS h"

            progress("Apiary: pruned by the ledger")
            proxy.clear_requests()
            started = time.perf_counter()
            ours = ap.sql(f"{select} FROM bench.s3.readings WHERE {where}")
            apiary_s = time.perf_counter() - started
            apiary_traffic = _traffic(proxy)
            pruning = ap.last_query.frames[0]

            progress("raw DataFusion over the whole folder")
            ctx = SessionContext()
            register_object_store(ctx, ap.storage.location, None)
            folder = f"s3://{bucket}/bench/bench/s3/readings/"
            proxy.clear_requests()
            started = time.perf_counter()
            ctx.register_parquet("readings", folder)
            theirs = ctx.sql(f"{select} FROM readings WHERE {where}").to_arrow_table()
            raw_s = time.perf_counter() - started
            raw_traffic = _traffic(proxy)

            duckdb_result = _duckdb(proxy, bucket, f"{select} FROM {{table}} WHERE {where}", notes)

    same = result_difference(pa.table(ours), theirs, ordered=True)
    return {
        "rows": per_batch * BATCHES,
        "cells": info["cells"],
        "query": f"{select} FROM bench.s3.readings WHERE {where}",
        "result": ours.to_pylist()[0],
        "results_match": same is None,
        "apiary": {
            "seconds": round(apiary_s, 4),
            **apiary_traffic,
            "cells_scanned": pruning.scanned,
            "pruned_by_partition": pruning.by_partition,
            "pruned_by_stats": pruning.by_stats,
        },
        "datafusion_whole_folder": {"seconds": round(raw_s, 4), **raw_traffic},
        "duckdb_whole_folder": duckdb_result,
        "avoided": {
            "cell_requests": raw_traffic["cell_requests"] - apiary_traffic["cell_requests"],
            "bytes": raw_traffic["bytes"] - apiary_traffic["bytes"],
        },
        "notes": notes,
    }


def _duckdb(proxy: Any, bucket: str, query: str, notes: list[str]) -> dict[str, Any] | None:
    """DuckDB over the same folder through its httpfs extension, where it can be loaded.

    DuckDB downloads httpfs on first use; without that (an offline machine) it is skipped.
    """
    if importlib.util.find_spec("duckdb") is None:
        notes.append("DuckDB skipped: duckdb is not installed.")
        return None
    import duckdb

    con = duckdb.connect()
    try:
        try:
            con.execute("LOAD httpfs")
        except duckdb.Error:
            con.execute("INSTALL httpfs")
            con.execute("LOAD httpfs")
        host = proxy.endpoint.removeprefix("http://")
        con.execute(
            "CREATE SECRET bench (TYPE S3, KEY_ID 'bench', SECRET 'bench', REGION 'us-east-1', "
            f"ENDPOINT '{host}', URL_STYLE 'path', USE_SSL false)"
        )
        table = f"read_parquet('s3://{bucket}/bench/bench/s3/readings/**/*.parquet')"
        proxy.clear_requests()
        started = time.perf_counter()
        con.execute(query.format(table=table)).fetchall()
        return {"seconds": round(time.perf_counter() - started, 4), **_traffic(proxy)}
    except duckdb.Error as exc:
        notes.append(f"DuckDB over S3 skipped: {str(exc).splitlines()[0][:200]}")
        return None
    finally:
        con.close()
