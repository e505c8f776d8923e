"""A started node is a swarm of one: it heartbeats, runs its worker and lists itself.

No separate solo mode (SPEC §10): the same ``start()`` a fleet node runs, on a local root as on S3.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pytest
from support.nodes import use_short_timings
from support.processes import child_env
from support.waiting import wait_until

from apiary import Apiary
from apiary.swarm.world import heartbeat_path, read_world

NODE_KEYS = {"node_id", "state", "bees", "idle_bees", "memory_pressure", "colony_temperature"}


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "local":
        return str(tmp_path / "root")
    return request.getfixturevalue("s3_bucket").uri


def test_a_started_node_is_alive_in_its_own_swarm_status(root: str) -> None:
    with Apiary("test", root, node_id="solo") as ap:
        swarm = ap.swarm_status()
        assert swarm["alive"] == 1
        (node,) = swarm["nodes"]
        assert set(node) >= NODE_KEYS
        assert node["node_id"] == "solo" and node["state"] == "alive"
        assert node["bees"] == ap.pool.size == swarm["total_bees"]
        assert node["idle_bees"] == ap.pool.size == swarm["total_idle_bees"]
        assert node["memory_pressure"] >= 0.0 and 0.0 <= node["colony_temperature"] <= 1.0
        assert ap.status()["joined_swarm"] is True
        # Another process on the root sees it too: it is on the bucket, not only in memory.
        assert [v.node_id for v in read_world(ap.storage, ap.timings)] == ["solo"]
        storage = ap.storage
    # shutdown() removed its heartbeat: gone at once, not left to age into "dead"
    assert not storage.exists(heartbeat_path("solo"))
    with Apiary("test", root, join_swarm=False) as observer:
        assert observer.swarm_status()["nodes"] == []


def test_opting_out_keeps_a_client_out_of_the_swarm(tmp_path) -> None:
    root = str(tmp_path / "root")
    with Apiary("test", root, node_id="watcher", join_swarm=False) as ap:
        assert ap.status()["joined_swarm"] is False
        assert ap.swarm_status()["alive"] == 0
        assert ap.storage.list("_heartbeats") == []


def test_two_plain_clients_share_a_query_through_their_own_workers(tmp_path, monkeypatch) -> None:
    """Nothing but ``Apiary(...)`` on both sides: each runs the worker loop a node runs."""
    use_short_timings(monkeypatch)
    monkeypatch.setenv("APIARY_DISTRIBUTE_MIN_CELLS", "2")
    monkeypatch.setenv("APIARY_DISTRIBUTE_TRIP_MB", "0")  # a few kB: shared all the same
    root = str(tmp_path / "root")
    with Apiary("test", root, node_id="a") as a, Apiary("test", root, node_id="b") as b:
        a.create_hive("h")
        a.create_box("h", "b")
        a.create_frame("h", "b", "f", {"k": "string", "v": "int64"}, partition_by=["k"])
        for k in "wxyz":
            a.write_to_frame("h", "b", "f", pa.table({"k": [k] * 10, "v": range(10)}))
        wait_until(lambda: a.swarm_status()["alive"] == 2 and b.swarm_status()["alive"] == 2)
        result = a.sql("SELECT k, sum(v) AS s FROM h.b.f GROUP BY k ORDER BY k")
        assert result.to_pylist() == [{"k": k, "s": 45} for k in "wxyz"]
        assert set(a.last_query.distribution["tasks_per_node"]) == {"a", "b"}


def test_a_script_that_never_calls_shutdown_still_leaves_the_swarm(tmp_path) -> None:
    root = tmp_path / "root"
    script = (
        "from apiary import Apiary\n"
        f"ap = Apiary('test', {str(root)!r}, node_id='forgetful').start()\n"
        "print(ap.swarm_status()['alive'])\n"  # ...and no shutdown()
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=child_env(), timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1"]  # it was alive in its own swarm
    assert not (root / heartbeat_path("forgetful")).exists()


def test_an_older_nodes_regulation_is_read_as_its_action(tmp_path) -> None:
    """Older heartbeats named the action "regulation", which now names the band."""
    with Apiary("test", str(tmp_path / "root"), join_swarm=False) as ap:
        old = {"node_id": "old", "band": "hot", "regulation": "throttling writes"}
        ap.storage.put(heartbeat_path("old"), json.dumps(old).encode())
        (node,) = ap.swarm_status()["nodes"]
        assert (node["band"], node["action"]) == ("hot", "throttling writes")
