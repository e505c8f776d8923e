"""Repeated scans of a frame of many cells do not pile up memory (TUNED's meta_fetch_concurrency).

DataFusion reads local files on tokio's blocking threads, one per concurrent read, and each
keeps its own allocator heap; at DataFusion's default of 32 concurrent footer reads a node grew
by about the bytes every query scanned. Measured in fresh processes (memory and threads are
the whole process's), with DataFusion's default as the control.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from apiary.runtime.bees import META_FETCH, TUNED
from apiary.sdk import Apiary

DAYS, ROWS_PER_DAY = 300, 20_000  # 300 cells, ~100 MB of floats read per query
QUERIES = 12

_CHILD = """
import json, sys, psutil
from apiary.sdk import Apiary
root, key, fetch, queries = sys.argv[1:]
with Apiary("t", root, join_swarm=False) as ap:
    if fetch:
        ap.settings.datafusion[key] = fetch
    process, seen = psutil.Process(), []
    for _ in range(int(queries)):
        ap.sql("SELECT day % 7 AS k, sum(v) AS s, max(w) AS m FROM h.b.f GROUP BY day % 7")
        seen.append([process.memory_full_info().uss, process.num_threads()])
print(json.dumps(seen))
"""


def _scans(root: Path, fetch: str) -> list[list[int]]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(root), META_FETCH, fetch, str(QUERIES)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.multiprocess
def test_repeated_scans_of_many_cells_keep_memory_flat(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with Apiary("t", str(root), join_swarm=False) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        schema = {"day": "int64", "v": "float64", "w": "float64"}
        ap.create_frame("h", "b", "f", schema, partition_by=["day"])
        rng = np.random.default_rng(0)
        for first in range(0, DAYS, 30):
            n = 30 * ROWS_PER_DAY
            days = np.repeat(np.arange(first, first + 30), ROWS_PER_DAY)
            ap.write_to_frame(
                "h", "b", "f", pa.table({"day": days, "v": rng.random(n), "w": rng.random(n)})
            )
        assert ap.get_frame("h", "b", "f")["cells"] == DAYS
    assert TUNED[META_FETCH] == "2"

    def growth(seen: list[list[int]]) -> int:
        # The most it held above the second query (the first sets up caches once); at the
        # default it also drops now and then, when idle blocking threads exit.
        return (max(uss for uss, _ in seen) - seen[1][0]) >> 20

    tuned = _scans(root, "")
    control = _scans(root, "32")  # DataFusion's own default
    # ~100 MB read per query: at the default a node kept 160-1,000 MiB more over these scans
    # (36-138 threads); with two footers at a time 100-170 MiB, levelling off (18-24 threads).
    assert growth(tuned) < 250, f"grew {growth(tuned)} MiB over {QUERIES - 2} scans: {tuned}"
    assert max(t for _, t in tuned) < max(t for _, t in control), (tuned, control)
