"""``apiary bench swarm``: one aggregate over S3 with 1, 2 and 3 node processes on this machine.

moto's S3 server runs on loopback behind a counting proxy; real ``apiary node`` processes join
the swarm; an observer client coordinates. Reported per swarm size: wall time, tasks per node,
S3 requests; and at the end, how long the swarm took to notice a SIGKILLed node.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

from apiary.bench.nodes import need_moto, start_node
from apiary.bench.s3 import aws_env
from apiary.sample_data import SCHEMA, sensor_readings
from apiary.sdk import Apiary
from apiary.swarm.worker import ACTIVE_FOR

Progress = Callable[[str], None]
TIMINGS = {
    "APIARY_HEARTBEAT_INTERVAL": "1",
    "APIARY_SUSPECT_AFTER": "3",
    "APIARY_DEAD_AFTER": "6",
    "APIARY_FORGET_AFTER": "60",
}
QUERY = (
    "SELECT region, count(*) AS n, avg(humidity) AS h, min(sensor_id) AS lo, "
    "max(sensor_id) AS hi FROM bench.swarm.readings GROUP BY region ORDER BY region"
)


def _start_node(uri: str, node_id: str) -> subprocess.Popen[bytes]:
    return start_node(uri, node_id, {**os.environ, **TIMINGS})


def _wait(check: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def run(
    rows: int = 1_000_000, sizes: tuple[int, ...] = (1, 2, 3), progress: Progress = lambda _: None
) -> dict[str, Any]:
    need_moto("swarm")
    from apiary.testing.fault_proxy import FaultProxy
    from apiary.testing.moto_server import MotoServer

    os.environ.update(TIMINGS)
    runs: list[dict[str, Any]] = []
    detection: dict[str, Any] = {}
    progress("starting S3 (moto) and the counting proxy")
    with MotoServer() as moto, FaultProxy(moto.endpoint) as proxy, aws_env(proxy.endpoint):
        uri = f"s3://{moto.create_bucket()}/bench?endpoint={proxy.endpoint}"
        # The coordinator only observes: the figures are those of the `apiary node` processes.
        with Apiary("bench", uri, join_swarm=False) as ap:
            ap.settings.distribute_min_cells = 2
            # This measures sharing itself, even where the trip would keep the query local.
            ap.settings.distribute_trip_mb = 0
            ap.create_hive("bench")
            ap.create_box("bench", "swarm")
            ap.create_frame("bench", "swarm", "readings", SCHEMA, partition_by=["region"])
            for batch in range(6):
                progress(f"writing batch {batch + 1}/6")
                ap.write_to_frame(
                    "bench", "swarm", "readings", sensor_readings(rows // 6, seed=batch)
                )
            cells = ap.get_frame("bench", "swarm", "readings")["cells"]
            nodes: list[subprocess.Popen[bytes]] = []
            try:
                for size in sizes:
                    while len(nodes) < size:
                        nodes.append(_start_node(uri, f"bench-{len(nodes) + 1}"))
                    progress(f"{size} node(s): waiting for heartbeats")
                    _wait(lambda n=size: ap.swarm_status()["alive"] >= n, 120, f"{size} nodes")
                    progress(f"{size} node(s): running the query")
                    ap.sql(QUERY)  # warm the nodes' caches, as a running swarm would be
                    ap.flush()  # its folder's deletion is not the next query's requests
                    proxy.clear_requests()
                    started = time.perf_counter()
                    result = ap.sql(QUERY)
                    seconds = time.perf_counter() - started
                    ap.flush()  # ...but is this one's
                    info = ap.last_query.distribution
                    runs.append(
                        {
                            "nodes": size,
                            "seconds": round(seconds, 3),
                            "rows": result.num_rows,
                            "distributed": "tasks" in info,
                            "tasks_per_node": info.get("tasks_per_node", {"(coordinator)": 1}),
                            "s3_requests": len(proxy.requests),
                            "s3_bytes": sum(r.response_bytes for r in proxy.requests),
                        }
                    )
                progress(
                    f"{ACTIVE_FOR + 1 + IDLE_WINDOW:g} s with {len(nodes)} idle nodes: "
                    "counting requests"
                )
                idle = _idle_requests(proxy, len(nodes))
                progress("killing one node to time its detection")
                victim = nodes[-1]
                victim.send_signal(signal.SIGKILL)
                killed = f"bench-{len(nodes)}"

                def state() -> str:
                    views = {n["node_id"]: n["state"] for n in ap.swarm_status()["nodes"]}
                    return views.get(killed, "gone")

                suspect = _wait(lambda: state() != "alive", 120, "suspect")
                dead = suspect + _wait(lambda: state() in ("dead", "gone"), 120, "dead")
                detection = {
                    "node": killed,
                    "suspect_after_s": round(suspect, 2),
                    "dead_after_s": round(dead, 2),
                    "settings": {
                        k.removeprefix("APIARY_").lower(): float(v) for k, v in TIMINGS.items()
                    },
                }
            finally:
                for proc in nodes:
                    if proc.poll() is None:
                        proc.terminate()
                for proc in nodes:
                    proc.wait(timeout=30)
    return {
        "rows": rows,
        "cells": cells,
        "query": QUERY,
        "runs": runs,
        "idle": idle,
        "kill_detection": detection,
    }


IDLE_WINDOW = 30.0


def _idle_requests(proxy: Any, nodes: int) -> dict[str, Any]:
    """S3 requests per idle node per hour, by kind, measured over IDLE_WINDOW seconds.

    The nodes run with this benchmark's short heartbeat interval (TIMINGS), so heartbeat
    traffic is five times the default's; the worker's idle looks for tasks are as by default.
    """
    time.sleep(ACTIVE_FOR + 1)  # workers look often for a minute after the last query
    proxy.clear_requests()
    time.sleep(IDLE_WINDOW)
    kinds: dict[str, int] = {}
    for request in proxy.requests:
        kind = "LIST" if "list-type" in request.query else request.method
        seen = request.path + "?" + request.query
        where = next((a for a in ("_heartbeats", "_queries") if a in seen), "other")
        key = f"{kind} {where}"
        kinds[key] = kinds.get(key, 0) + 1
    scale = 3600 / IDLE_WINDOW / nodes
    return {
        "seconds": IDLE_WINDOW,
        "nodes": nodes,
        "per_node_hour": round(len(proxy.requests) * scale),
        "by_kind_per_node_hour": {k: round(v * scale) for k, v in sorted(kinds.items())},
        "heartbeat_interval_s": float(TIMINGS["APIARY_HEARTBEAT_INTERVAL"]),
    }
