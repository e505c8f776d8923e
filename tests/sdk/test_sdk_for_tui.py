"""What the terminal UI needs from the SDK: cancellable SQL, observer-ready heartbeats, history."""

from __future__ import annotations

import threading
import time

import pytest

from apiary import Apiary, QueryCancelledError
from apiary.sql import history
from apiary.swarm.world import read_world

# Long enough (seconds of CPU) that only a cancel ends it within the test.
SLOW = (
    "SELECT count(*) FROM (SELECT unnest(range(40000)) AS a) x "
    "CROSS JOIN (SELECT unnest(range(400000)) AS b) y WHERE (a * b) % 7 = 3"
)


@pytest.fixture
def ap(tmp_path):
    with Apiary("test", str(tmp_path / "root"), join_swarm=True) as client:
        yield client


def test_a_cancelled_query_stops_and_frees_its_bee(ap: Apiary) -> None:
    cancel = threading.Event()
    started = time.monotonic()

    def cancel_once_running() -> None:  # cancel mid-run, however slowly planning went
        while not ap.pool.busy and time.monotonic() - started < 60:
            time.sleep(0.01)
        cancel.set()

    threading.Thread(target=cancel_once_running, daemon=True).start()
    with pytest.raises(QueryCancelledError, match="cancelled by its caller"):
        ap.sql(SLOW, cancel=cancel)
    assert time.monotonic() - started < 30  # far less than the query's own run time
    deadline = time.monotonic() + 10
    while ap.pool.busy and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ap.pool.busy == 0, "the cancelled task kept its bee"
    assert ap.sql("SELECT 41 + 1 AS answer").column("answer").to_pylist() == [42]


def test_a_query_cancelled_before_it_starts_never_runs(ap: Apiary) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(QueryCancelledError):
        ap.sql("SELECT 1 AS one", cancel=cancel)
    assert ap.pool.abandoned == []  # a cancel is not a failure worth retrying or recording


def test_heartbeats_carry_each_bee_and_regulation_for_observers(ap: Apiary) -> None:
    ap._heartbeat.beat()  # type: ignore[union-attr]
    (view,) = read_world(ap.storage, ap.timings)
    beat = view.heartbeat
    assert len(beat.bees) == ap.pool.size
    assert {"id", "state", "task", "elapsed_s", "memory_used", "memory_budget"} == set(beat.bees[0])
    assert beat.bees[0]["memory_budget"] == ap.pool.memory_per_bee
    assert beat.action == "normal" or beat.band in ("hot", "critical")
    assert beat.abandoned == []


def test_history_keeps_one_statement_per_line_in_the_shared_file(isolated_home) -> None:
    assert history.history_path() == isolated_home / "sql_history"
    assert history.load() == []
    assert history.remember("SELECT 1\nFROM  t;") == "SELECT 1 FROM  t;"
    assert history.remember("   \n ") is None
    history.remember("SHOW HIVES")
    assert history.load() == ["SELECT 1 FROM  t;", "SHOW HIVES"]
    assert history.load(kept=1) == ["SHOW HIVES"]
