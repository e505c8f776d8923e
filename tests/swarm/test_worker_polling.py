"""An idle worker looks for tasks rarely (each look is a LIST request on S3); one that has seen
a query lately looks often, so distributed queries are not slowed by the idle pace."""

from __future__ import annotations

import os
import time

from apiary.storage import open_storage
from apiary.swarm.manifest import QUERIES
from apiary.swarm.worker import Worker


def test_the_pace_follows_what_was_seen_lately(tmp_path) -> None:
    worker = Worker(
        open_storage(str(tmp_path / "root")),
        "n1",
        poll_interval=0.2,
        idle_poll_interval=5.0,
        active_for=60.0,
    )
    assert worker.interval() == 5.0  # nothing seen yet
    worker.storage.put(f"{QUERIES}/q1/manifest.json", b"{}")
    worker.poll()
    seen = time.monotonic()
    assert worker.interval(seen + 1) == 0.2
    assert worker.interval(seen + 59) == 0.2
    assert worker.interval(seen + 61) == 5.0


def test_an_idle_worker_lists_at_the_idle_pace(tmp_path) -> None:
    storage = open_storage(str(tmp_path / "root"))
    worker = Worker(storage, "n1", poll_interval=0.02, idle_poll_interval=1.0, active_for=0.5)
    worker.start()
    try:
        time.sleep(2.5)
        idle_lists = storage.counters["list"]
        # at the busy pace this would be ~125 looks; at the idle pace 2
        assert idle_lists <= 4
        storage.put(f"{QUERIES}/q1/manifest.json", b"{}")  # a query appears...
        time.sleep(1.5)  # ...is noticed within the idle interval, then looked at often
        assert storage.counters["list"] - idle_lists >= 5
    finally:
        worker.stop()


def test_answers_of_finished_queries_are_forgotten(tmp_path) -> None:
    storage = open_storage(str(tmp_path / "root"))
    worker = Worker(storage, "n1")
    worker.answered.add(("gone", "t0000", 0))
    storage.put(f"{QUERIES}/live/manifest.json", b"{}")
    worker.answered.add(("live", "t0000", 0))
    worker.poll()
    assert worker.answered == {("live", "t0000", 0)}


def test_a_folder_its_coordinator_left_behind_is_swept(tmp_path) -> None:
    """A coordinator that died mid-query leaves its folder; nodes delete it once nothing in it
    changed for longer than any live coordinator waits, and leave a fresh one alone."""
    root = tmp_path / "root"
    storage = open_storage(str(root))
    for query in ("abandoned", "fresh"):
        storage.put(f"{QUERIES}/{query}/manifest.json", b"{}")
        storage.put(f"{QUERIES}/{query}/t0000.n2.arrow", b"partial")
    hour_ago = time.time() - 3600
    for path in (root / QUERIES / "abandoned").iterdir():
        os.utime(path, (hour_ago, hour_ago))
    worker = Worker(storage, "n1", stale_after=150)
    worker.poll()
    left = sorted(info.path for info in storage.list(QUERIES))
    assert left == [f"{QUERIES}/fresh/manifest.json", f"{QUERIES}/fresh/t0000.n2.arrow"]
