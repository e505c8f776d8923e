"""Real `apiary node` processes on one moto S3 bucket: membership, failure, clock skew."""

from __future__ import annotations

import signal
from datetime import datetime

import pyarrow as pa
import pytest
from support.nodes import start_apiary_node, start_test_node, stop_all, use_short_timings
from support.waiting import wait_until

from apiary import Apiary
from apiary.swarm.world import Heartbeat, NodeView

pytestmark = [pytest.mark.multiprocess, pytest.mark.s3]


def observer(uri: str, monkeypatch) -> Apiary:
    use_short_timings(monkeypatch)
    return Apiary("test", uri, join_swarm=False).start()  # watches: not a node itself


def world(ap: Apiary) -> dict[str, NodeView]:
    from apiary.swarm.world import read_world

    return {view.node_id: view for view in read_world(ap.storage, ap.timings)}


def test_three_nodes_see_each_other_and_totals_add_up(s3_bucket, monkeypatch) -> None:
    names = ["bee-a", "bee-b", "bee-c"]
    procs = [start_apiary_node(s3_bucket.uri, n) for n in names]
    try:
        ap = observer(s3_bucket.uri, monkeypatch)
        present = wait_until(lambda: w if len(w := world(ap)) == 3 else None, what="3 nodes")
        beats_at_start = {n: v.heartbeat.beats for n, v in present.items()}

        def full_views() -> dict[str, Heartbeat] | None:
            beats = {n: v.heartbeat for n, v in world(ap).items()}
            complete = all(
                sum(state == "alive" for other, state in hb.sees.items() if other != n) == 2
                for n, hb in beats.items()
            )
            return beats if complete and len(beats) == 3 else None

        seen = wait_until(full_views, what="every node seeing the other two alive")
        for name, beat in seen.items():
            # The first heartbeat after both others exist lists them: within two intervals.
            assert beat.beats - beats_at_start[name] <= 2 + 1, (name, beat.beats)

        swarm = ap.swarm_status()
        assert swarm["alive"] == 3 and (swarm["suspect"], swarm["dead"]) == (0, 0)
        assert swarm["cores"] == sum(n["cores"] for n in swarm["nodes"]) > 0
        assert swarm["bees_idle"] + swarm["bees_busy"] == sum(
            n["bees_idle"] + n["bees_busy"] for n in swarm["nodes"]
        )
        assert swarm["memory_budget"] == sum(n["memory_budget"] for n in swarm["nodes"])

        # The same `apiary node` processes answer a distributed query.
        ap.create_hive("h")
        ap.create_box("h", "b")
        ap.create_frame("h", "b", "f", {"k": "int64", "v": "int64"}, partition_by=["k"])
        ap.write_to_frame(
            "h", "b", "f", pa.table({"k": [i % 9 for i in range(900)], "v": range(900)})
        )
        ap.settings.distribute_min_cells = 2
        ap.settings.distribute_trip_mb = 0  # a few kB: shared although the trip outweighs them
        total = ap.sql("SELECT k, sum(v) AS s FROM h.b.f GROUP BY k ORDER BY k")
        assert set(ap.last_query.distribution["tasks_per_node"]) == set(names)
        assert total["s"].to_pylist() == [sum(range(k, 900, 9)) for k in range(9)]
        # An operator asks a node what it is doing: every thread's stack, and it runs on.
        procs[0].send_signal(signal.SIGUSR1)
        wait_until(lambda: world(ap)["bee-a"].heartbeat.beats > seen["bee-a"].beats + 2)
    finally:
        stop_all(procs)
    assert [p.returncode for p in procs] == [0, 0, 0]
    errors = [p.stderr.read() for p in procs]
    assert all("stopped cleanly" in e for e in errors)
    assert "most recent call first" in errors[0] and "apiary/" in errors[0], errors[0][-3000:]
    assert "most recent call first" not in errors[1]
    assert world(ap) == {}  # graceful stops remove their heartbeats


def test_a_stopped_node_turns_suspect_then_dead_and_recovers(s3_bucket, monkeypatch) -> None:
    procs = [start_apiary_node(s3_bucket.uri, n) for n in ("steady", "frozen")]
    try:
        ap = observer(s3_bucket.uri, monkeypatch)
        wait_until(lambda: len(world(ap)) == 2, what="2 nodes")
        procs[1].send_signal(signal.SIGSTOP)
        wait_until(lambda: world(ap)["frozen"].state == "suspect", what="suspect")
        assert world(ap)["steady"].state == "alive"
        wait_until(lambda: world(ap)["frozen"].state == "dead", what="dead")
        # The other node judges it the same way from its own heartbeats.
        wait_until(
            lambda: world(ap)["steady"].heartbeat.sees.get("frozen") == "dead",
            what="steady seeing frozen dead",
        )
        procs[1].send_signal(signal.SIGCONT)
        wait_until(lambda: world(ap)["frozen"].state == "alive", what="alive again")
    finally:
        stop_all(procs)


def test_a_node_whose_clock_is_an_hour_off_is_judged_the_same(s3_bucket, monkeypatch) -> None:
    procs = [
        start_test_node(s3_bucket.uri, "on-time", clock_offset_s=0),
        start_test_node(s3_bucket.uri, "an-hour-ahead", clock_offset_s=3600),
        start_test_node(s3_bucket.uri, "an-hour-behind", clock_offset_s=-3600),
    ]
    try:
        ap = observer(s3_bucket.uri, monkeypatch)

        def all_alive_everywhere() -> dict[str, NodeView] | None:
            w = world(ap)
            ok = (
                len(w) == 3
                and all(v.state == "alive" for v in w.values())
                and all(
                    set(v.heartbeat.sees.values()) == {"alive"} and len(v.heartbeat.sees) == 3
                    for v in w.values()
                )
            )
            return w if ok else None

        w = wait_until(all_alive_everywhere, what="all three alive in every view")
        sent = {n: datetime.fromisoformat(v.heartbeat.sent_at) for n, v in w.items()}
        ahead = (sent["an-hour-ahead"] - sent["on-time"]).total_seconds()
        behind = (sent["on-time"] - sent["an-hour-behind"]).total_seconds()
        assert 3500 < ahead < 3700 and 3500 < behind < 3700  # the clocks really were off
        assert max(v.age for v in w.values()) < 2  # ...and ages did not notice
    finally:
        stop_all(procs)
