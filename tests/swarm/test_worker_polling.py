"""An idle worker looks for tasks rarely (each look is a LIST request on S3); one that has seen
a query lately looks often, so distributed queries are not slowed by the idle pace."""

from __future__ import annotations

import json
import os
import threading
import time

from apiary.storage import open_storage
from apiary.swarm.manifest import QUERIES, Manifest
from apiary.swarm.worker import BUSY_POLL, Worker


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


def _one_task_manifest(storage, qid: str, node: str) -> None:
    """A manifest whose one task for ``node`` names no cells (the task fails fast; these tests
    are about when it is taken, not what it answers)."""
    body = {
        "query_id": qid,
        "coordinator": "c1",
        "frames": [{"hive": "h", "box": "b", "frame": "f", "columns": []}],
        "fragment_sql": "SELECT 1 AS x",
        "tasks": [{"task_id": "t0000", "cells": [], "node": node, "attempts": [{"node": node}]}],
    }
    storage.put(f"{QUERIES}/{qid}/manifest.json", json.dumps(body).encode())


def test_while_every_bee_is_busy_the_worker_looks_only_for_cancels(tmp_path) -> None:
    storage = open_storage(str(tmp_path / "root"))
    release = threading.Event()
    worker = Worker(storage, "n1", poll_interval=0.01, before_task=lambda task: release.wait(30))
    _one_task_manifest(storage, "q1", "n1")
    assert worker.poll(wait=False) == 1
    assert worker.interval() == BUSY_POLL  # its one bee has a task: a new one could only wait
    release.set()
    deadline = time.monotonic() + 30
    while worker.interval() != 0.01:
        assert time.monotonic() < deadline, "the task never ended"
        time.sleep(0.01)
    worker.stop()


def test_the_coordinator_gets_its_task_even_when_its_own_poll_runs_first(tmp_path) -> None:
    """The coordinator writes the manifest, then hands its node's task to its worker; the
    worker's loop may look in between. While the node coordinates the query its worker leaves
    the manifest unread, so the coordinator still gets the running task (to wake on its end)
    instead of nothing; a manifest of any other query is read as before."""
    storage = open_storage(str(tmp_path / "root"))
    release = threading.Event()
    worker = Worker(storage, "n1", before_task=lambda task: release.wait(30))
    with worker.own("q1"):
        _one_task_manifest(storage, "q1", "n1")
        assert worker.poll(wait=False) == 0  # the loop looked first, and left it
        manifest = Manifest.model_validate_json(storage.get(f"{QUERIES}/q1/manifest.json"))
        running = worker.take(manifest, manifest.tasks[0])
        assert running is not None and not running.done()
        release.set()
        running.result(timeout=30)
    _one_task_manifest(storage, "q2", "n1")
    assert worker.poll() == 1
    worker.stop()


def test_on_a_local_root_a_new_manifest_wakes_an_idle_worker_at_once(tmp_path) -> None:
    """With an hour between looks, the worker still takes a task as its manifest appears:
    the kernel says when a file appears under _queries/ (inotify)."""
    storage = open_storage(str(tmp_path / "root"))
    worker = Worker(storage, "n1", poll_interval=3600, idle_poll_interval=3600)
    worker.start()
    try:
        time.sleep(0.2)  # the loop is now in its hour-long wait
        _one_task_manifest(storage, "q1", "n1")
        deadline = time.monotonic() + 30
        answered = f"{QUERIES}/q1/t0000.n1."  # its answer (here an error object)
        while not any(o.path.startswith(answered) for o in storage.list(f"{QUERIES}/q1")):
            assert time.monotonic() < deadline, "the worker slept through the new manifest"
            time.sleep(0.02)
    finally:
        worker.stop()
