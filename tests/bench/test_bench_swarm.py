"""``apiary bench swarm --no-s3`` on a tiny scale: two real nodes, shared answers checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from apiary.bench import tpch

pytestmark = [pytest.mark.multiprocess]


@pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2 and os.environ.get("CI") != "true",
    reason="the swarm benchmark pins each node to a core of its own",
)
def test_bench_swarm_shares_what_pays_and_says_why_not(tmp_path) -> None:
    tpch.tpchgen_executable()  # a test dependency: fails loudly when missing
    options = ["--no-s3", "--sf", "0.01", "--repeats", "1", "--query", "1", "--query", "17"]
    done = subprocess.run(
        [sys.executable, "-m", "apiary", "bench", "swarm", *options, "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        # At SF 0.01 a task reads kilobytes and the trip rule would keep Q1 local: count it free.
        env={**os.environ, "APIARY_HOME": str(tmp_path / "home"), "APIARY_DISTRIBUTE_TRIP_MB": "0"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    local = json.loads(done.stdout)["tpch"]
    rows = {r["query"]: r for r in local["queries"]}
    assert set(rows) == {1, 17}
    assert all(r["same_answer"] for r in rows.values()), rows
    # Q1 splits lineitem over both nodes; Q17 would read all of lineitem on each.
    assert rows[1]["distributed"] and len(rows[1]["tasks_per_node"]) == 2, rows[1]
    assert "bench-2" in rows[1]["tasks_per_node"]  # the node process took its share
    assert not rows[17]["distributed"]
    assert rows[17]["why_not"].startswith("sharing would not pay"), rows[17]
    assert local["distributed"] == 1 and local["geomean_speedup"] == rows[1]["speedup"] > 0
    assert local["overhead"]["distributed"] is True and local["overhead"]["runs"] == 20
