"""A program written for the original Apiary SDK runs here unchanged (but for ``sql()``'s result).

The script below is in the original SDK's style: a ``local://`` root, the JSON schema form, Arrow
IPC bytes as the written data, and the original status dict keys. It runs in its own process,
as a user's program would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.processes import child_env

from apiary import Apiary

SCRIPT = """
import json
import sys

import pyarrow as pa

from apiary import Apiary

ap = Apiary("test", storage=sys.argv[1])
ap.start()
ap.create_hive("analytics")
ap.create_box("analytics", "sensors")
schema = {
    "fields": [
        {"name": "region", "type": {"name": "utf8"}, "nullable": False},
        {"name": "sensor", "type": {"name": "int", "bitWidth": 32, "isSigned": True},
         "nullable": True},
        {"name": "temp", "type": {"name": "floatingpoint", "precision": "DOUBLE"},
         "nullable": True},
    ]
}
ap.create_frame("analytics", "sensors", "temperature", schema, partition_by=["region"])

table = pa.table({
    "region": ["north", "north", "south"],
    "sensor": pa.array([1, 2, 3], pa.int32()),
    "temp": [20.5, 21.0, 25.25],
})
sink = pa.BufferOutputStream()
writer = pa.ipc.new_stream(sink, table.schema)
writer.write_table(table)
writer.close()
written = ap.write_to_frame("analytics", "sensors", "temperature", sink.getvalue().to_pybytes())

# The one line that changes: the original sql() returned Arrow IPC bytes, here a pyarrow.Table.
#   rows = pa.ipc.open_stream(ap.sql(query)).read_all()
rows = ap.sql(
    "SELECT region, avg(temp) AS mean FROM analytics.sensors.temperature "
    "GROUP BY region ORDER BY region"
)
out = {
    "written": written,
    "rows": rows.to_pylist(),
    "frame": ap.get_frame("analytics", "sensors", "temperature"),
    "status": ap.status(),
    "bees": ap.bee_status(),
    "swarm": ap.swarm_status(),
    "colony": ap.colony_status(),
}
ap.shutdown()
print(json.dumps(out, default=str))
"""

BANDS = {"cold", "ideal", "warm", "hot", "critical"}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The script's output, run once for the module's tests."""
    tmp_path = tmp_path_factory.mktemp("original")
    # Module-scoped, so isolated_home has not run yet: keep the script away from ~/.apiary here.
    env = {k: v for k, v in child_env().items() if not k.startswith("APIARY_")}
    env.update(APIARY_HOME=str(tmp_path / "home"), APIARY_CONFIG=str(tmp_path / "absent.toml"))
    script = tmp_path / "original.py"
    script.write_text(SCRIPT)
    root = tmp_path / "srv" / "apiary"
    done = subprocess.run(
        [sys.executable, str(script), f"local://{root}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (root / "_registry").is_dir()  # local:///abs/path is that directory
    return json.loads(done.stdout.splitlines()[-1])


def test_the_original_script_writes_and_queries(run: dict) -> None:
    assert run["written"]["rows_written"] == 3 and run["written"]["version"] >= 1
    assert run["rows"] == [{"region": "north", "mean": 20.75}, {"region": "south", "mean": 25.25}]


def test_get_frame_has_the_original_keys_and_its_schema_as_created(run: dict) -> None:
    frame = run["frame"]
    assert frame["name"] == "temperature"
    assert frame["schema"]["fields"][0] == {
        "name": "region",
        "type": {"name": "utf8"},
        "nullable": False,
    }
    assert [f["name"] for f in frame["schema"]["fields"]] == ["region", "sensor", "temp"]
    assert frame["partition_by"] == ["region"]
    assert frame["max_partitions"] >= 1
    assert frame["cell_count"] == 2 and frame["row_count"] == 3 and frame["total_bytes"] > 0
    assert frame["created_at"]
    # today's keys stay
    assert (frame["cells"], frame["rows"], frame["bytes"]) == (2, 3, frame["total_bytes"])


def test_status_has_the_original_keys(run: dict) -> None:
    status = run["status"]
    assert status["name"] == "test"
    assert status["storage"] == "local"
    assert status["state"] == "running"
    assert status["node_id"] and status["cores"] >= 1 and status["bees"] >= 1
    assert status["memory_gb"] > 0 and status["memory_per_bee_mb"] > 0
    assert status["target_cell_size_mb"] > 0


def test_bee_status_has_the_original_keys(run: dict) -> None:
    bees = run["bees"]
    assert [b["bee_id"] for b in bees] == [f"bee-{i}" for i in range(len(bees))]
    for bee in bees:
        assert bee["state"] in {"idle", "busy"}
        assert bee["memory_budget"] > 0 and bee["memory_used"] >= 0
        assert bee["memory_budget_mb"] == pytest.approx(bee["memory_budget"] / 2**20, abs=0.05)
        assert bee["memory_used_mb"] >= 0


def test_swarm_status_lists_the_script_itself(run: dict) -> None:
    swarm = run["swarm"]
    assert swarm["alive"] == 1
    (node,) = swarm["nodes"]
    assert node["node_id"] == run["status"]["node_id"] and node["state"] == "alive"
    assert node["bees"] == len(run["bees"]) == swarm["total_bees"]
    assert node["idle_bees"] == swarm["total_idle_bees"]
    assert node["memory_pressure"] >= 0 and node["colony_temperature"] >= 0


def test_colony_status_names_the_band(run: dict) -> None:
    colony = run["colony"]
    assert colony["regulation"] in BANDS and colony["regulation"] == colony["band"]
    assert 0.0 < colony["setpoint"] < 1.0 and 0.0 <= colony["temperature"] <= 1.0
    assert colony["action"] in {"normal", "throttling writes", "refusing queries"}


def test_a_draining_bee_shows_as_busy_and_draining(tmp_path: Path) -> None:
    with Apiary("test", str(tmp_path / "root"), join_swarm=False) as ap:
        assert all(b["state"] == "idle" and not b["draining"] for b in ap.bee_status())
        ap.pool.shutdown()  # every bee drains: it takes no new task
        assert all(b["state"] == "busy" and b["draining"] for b in ap.bee_status())
