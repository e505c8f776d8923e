"""A runaway query never takes the process past the node's memory budget (issue item 6).

Each query runs in a fresh process with a 256 MB node budget; its peak RSS (getrusage) must stay
near that budget, or the query must fail with MemoryExceededError. Dying is never acceptable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from apiary import Apiary

BUDGET_MB = 256
# The pool samples RSS every POLL (50 ms): allow what a fast allocation adds in that time.
BOUND_MB = BUDGET_MB * 1.25
ROWS = 4_000_000

CHILD = """
import json, resource, sys
from apiary import Apiary, MemoryExceededError
out = {}
try:
    with Apiary("m", sys.argv[1]) as ap:
        out["rows"] = ap.sql(sys.argv[2]).num_rows
        out["outcome"] = "ok"
except MemoryExceededError as exc:
    out["outcome"] = "MemoryExceededError"
    out["message"] = str(exc)
out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("memory") / "root")
    with Apiary("m", path) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        ap.create_frame("h", "b", "t", {"k": "int64", "g": "int64", "s": "string"})
        step = 500_000
        for low in range(0, ROWS, step):
            k = pa.array(range(low, low + step), pa.int64())
            text = pc.cast(pc.multiply(k, 7919), pa.string())
            s = pc.binary_join_element_wise(pa.scalar("row-"), text, "")
            ap.write_to_frame(
                "h", "b", "t", pa.table({"k": k, "g": pc.bit_wise_and(k, (1 << 20) - 1), "s": s})
            )
    return path


def run_child(root: str, query: str) -> dict:
    env = {**os.environ, "APIARY_MEMORY_MB": str(BUDGET_MB)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, root, query],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"the query process died: {done.returncode} {done.stderr[-2000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "query",
    [
        "SELECT s FROM h.b.t ORDER BY s",
        "SELECT g, count(*) AS c, max(s) AS m FROM h.b.t GROUP BY g ORDER BY c DESC LIMIT 5",
        "SELECT count(*) AS n FROM (SELECT DISTINCT s FROM h.b.t)",
        "SELECT g % 10 AS b, array_length(array_agg(s)) AS n FROM h.b.t GROUP BY 1 LIMIT 3",
        "SELECT k, s FROM h.b.t",
    ],
    ids=["sort", "group_by", "distinct", "array_agg", "whole_frame"],
)
def test_peak_rss_stays_near_the_node_budget(root: str, query: str) -> None:
    out = run_child(root, query)
    assert out["peak_mb"] <= BOUND_MB, out
    assert out["outcome"] in ("ok", "MemoryExceededError"), out
    if out["outcome"] == "MemoryExceededError":
        assert "MiB" in out["message"] and "memory" in out["message"]  # names the budget
