"""Bees and the bee pool, against real DataFusion: budgets, spills, deadlines, retries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from datafusion import RuntimeEnvBuilder, SessionConfig, SessionContext
from support.waiting import wait_until

from apiary.errors import (
    ApiaryError,
    ConfigError,
    EntityNotFoundError,
    MemoryExceededError,
    SchemaError,
    SqlError,
    TaskAbandonedError,
    TaskTimeoutError,
)
from apiary.runtime.bees import ABANDONED_KEPT, Bee, BeePool

MiB = 1 << 20
BUDGET = 16 * MiB
# 4 M rows (32 MB of Int64 input) into 2 M groups: a hash table far above a 16 MiB budget.
BIG_GROUP_BY = (
    "SELECT count(*) AS groups, max(c) AS most FROM "
    "(SELECT value % 2000000 AS k, count(*) AS c FROM generate_series(1, 4000000) GROUP BY 1)"
)
# A hash join cannot spill its build side: it must fail, and fail cleanly.
BIG_JOIN = (
    "SELECT count(*) FROM generate_series(1, 3000000) a "
    "JOIN generate_series(1, 3000000) b ON a.value = b.value"
)

# Sorting 1 M md5 strings: DataFusion's default sort settings cannot merge this in 16 or 32 MiB.
STRING_SORT = (
    "SELECT h FROM (SELECT md5(CAST(value AS VARCHAR)) AS h FROM generate_series(1, 1000000)) "
    "ORDER BY h"
)


def sql(query: str):
    return lambda bee: bee.collect(bee.context().sql(query))


def spill_files(pool: BeePool) -> list[str]:
    return [name for bee in pool.bees for _, _, files in os.walk(bee.spill_dir) for name in files]


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[BeePool]:
    with BeePool(2, BUDGET, tmp_path / "scratch", task_timeout=20, retry_delay=0) as pool:
        yield pool


# -- memory budgets ------------------------------------------------------------------------------


def test_over_budget_group_by_spills_while_another_bee_answers(pool: BeePool) -> None:
    seen: set[str] = set()
    finished: dict[str, float] = {}
    results: dict[str, object] = {}

    def big() -> None:
        results["big"] = pool.run(sql(BIG_GROUP_BY), name="big group by")
        finished["big"] = time.monotonic()

    worker = threading.Thread(target=big)
    worker.start()
    wait_until(lambda: pool.busy == 1)
    results["small"] = pool.run(sql("SELECT 41 + 1 AS answer"), name="small")
    finished["small"] = time.monotonic()
    while worker.is_alive():  # watch the spill folders while the big query runs
        seen.update(spill_files(pool))
        time.sleep(0.005)
    worker.join()

    assert results["small"].to_pylist() == [{"answer": 42}]
    assert results["big"].to_pylist() == [{"groups": 2_000_000, "most": 2}]
    assert finished["small"] < finished["big"], "the small query waited for the big one"
    assert seen, "a 2 M-group GROUP BY in 16 MiB finished without spilling"
    # The caller has its answer once the task ends; the bee may drain a moment longer.
    assert wait_until(lambda: pool.idle == 2, timeout=5.0)
    assert spill_files(pool) == [], "spill files left behind after the task"
    assert pool.run(sql("SELECT 1 AS one"), name="after").to_pylist() == [{"one": 1}]


def test_unspillable_query_fails_with_memory_exceeded_and_pool_survives(pool: BeePool) -> None:
    with pytest.raises(MemoryExceededError, match=r"16 MiB.*memory_per_bee") as caught:
        pool.run(sql(BIG_JOIN), name="big join")
    assert "big join" in str(caught.value)
    assert pool.abandoned == []  # a budget that is too small is not retried
    wait_until(lambda: pool.idle == 2, timeout=5.0, what="the failed query's bee idle again")
    assert spill_files(pool) == []
    assert pool.run(sql("SELECT 2 AS two"), name="after").to_pylist() == [{"two": 2}]


def test_memory_error_keeps_the_cause_not_datafusion_advice(pool: BeePool) -> None:
    def default_settings(bee: Bee) -> object:
        # A context without the bee's sort settings: its external sort cannot merge in 16 MiB.
        runtime = RuntimeEnvBuilder().with_fair_spill_pool(BUDGET)
        ctx = SessionContext(SessionConfig(), runtime.with_disk_manager_specified(bee.spill_dir))
        return bee.collect(ctx.sql(STRING_SORT), limit_result=False)

    with pytest.raises(MemoryExceededError, match="Resources exhausted") as caught:
        pool.run(default_settings, name="string sort")
    assert "datafusion.runtime" not in str(caught.value)
    # The bee's own context sorts the same rows by spilling.
    table = pool.run(
        lambda bee: bee.collect(bee.context().sql(STRING_SORT), limit_result=False), name="ok"
    )
    assert table.num_rows == 1_000_000


def test_result_larger_than_budget_is_memory_exceeded(tmp_path: Path) -> None:
    with BeePool(1, 1 * MiB, tmp_path, retry_delay=0) as pool:
        query = "SELECT value FROM generate_series(1, 1000000)"  # 8 MB of Int64
        with pytest.raises(MemoryExceededError, match="result.*LIMIT"):
            pool.run(sql(query), name="select everything")
        assert pool.run(sql(f"{query} LIMIT 3"), name="limited").num_rows == 3


def test_empty_result_keeps_its_schema(pool: BeePool) -> None:
    table = pool.run(sql("SELECT value AS v FROM generate_series(1, 3) WHERE value > 5"), name="e")
    assert table.num_rows == 0
    assert table.column_names == ["v"]


_RSS_CHILD = """
import json, sys, threading, time
from pathlib import Path
import psutil

from apiary.runtime.bees import BeePool

scratch, budget, n = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
query = (f"SELECT count(*) AS groups FROM (SELECT value % {n // 2} AS k, count(*) AS c "
         f"FROM generate_series(1, {n}) GROUP BY 1)")
process = psutil.Process()
pool = BeePool(2, budget, scratch, task_timeout=60)
baseline = process.memory_info().rss
peak, spilled, done = baseline, 0, threading.Event()

def watch():
    global peak, spilled
    while not done.is_set():
        peak = max(peak, process.memory_info().rss)
        spilled = max(spilled, sum(bee.spilled_bytes() for bee in pool.bees))
        time.sleep(0.005)

def one():
    pool.run(lambda bee: bee.collect(bee.context().sql(query)), name="big")

watcher = threading.Thread(target=watch)
watcher.start()
queries = [threading.Thread(target=one) for _ in pool.bees]  # every bee over budget at once
for thread in queries:
    thread.start()
for thread in queries:
    thread.join()
done.set()
watcher.join()
pool.shutdown()
print(json.dumps({"baseline": baseline, "peak": peak, "spilled": spilled}))
"""

# Measured here (Python 3.11, datafusion 55, x86-64), two bees each running a 4 M-group GROUP BY:
# - the interpreter with pyarrow, datafusion and the pool loaded: ~146 MiB RSS;
# - DataFusion memory outside its pool (batches in flight, spill merge buffers, allocator
#   slack): ~60-80 MiB per busy bee. Peak: ~300 MiB with 16 MiB bees; ~690 MiB unbounded.
INTERPRETER_OVERHEAD = 176 * MiB
UNTRACKED_PER_BEE = 96 * MiB


def _rss_run(scratch: Path, budget: int) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", _RSS_CHILD, str(scratch), str(budget), "8000000"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.multiprocess
def test_node_rss_stays_within_bee_budgets_plus_overhead(tmp_path: Path) -> None:
    bees = 2
    limit = bees * BUDGET + INTERPRETER_OVERHEAD + bees * UNTRACKED_PER_BEE
    budgeted = _rss_run(tmp_path / "budgeted", BUDGET)
    assert budgeted["spilled"] > 0
    assert budgeted["baseline"] < INTERPRETER_OVERHEAD
    assert budgeted["peak"] <= limit, (
        f"peak RSS {budgeted['peak'] / MiB:.0f} MiB over {limit / MiB:.0f} MiB "
        f"(baseline {budgeted['baseline'] / MiB:.0f} MiB)"
    )
    # The same work without a real budget goes well past the limit: the budget is what holds.
    unbounded = _rss_run(tmp_path / "unbounded", 1 << 40)
    assert unbounded["spilled"] == 0
    assert unbounded["peak"] > limit


# -- deadlines -----------------------------------------------------------------------------------


def test_slow_datafusion_query_times_out_and_stops(pool: BeePool) -> None:
    slow = BIG_GROUP_BY.replace("4000000", "40000000")  # seconds of work
    started = time.monotonic()
    with pytest.raises(TaskTimeoutError, match=r"0\.3 s timeout"):
        pool.run(sql(slow), name="slow", timeout=0.3)
    assert time.monotonic() - started < 2.0
    # The caller is answered at once; the bee drains until DataFusion drops the query's runtime,
    # which on a loaded host can take longer than the caller's short wait (QUICK_RELEASE).
    wait_until(lambda: pool.idle == 2, timeout=5.0, what="the timed-out query's bee idle again")
    # DataFusion's own threads finish winding down and delete their temp files themselves.
    wait_until(lambda: spill_files(pool) == [])
    before = psutil.Process().cpu_times()
    time.sleep(0.5)
    after = psutil.Process().cpu_times()
    busy = (after.user - before.user) + (after.system - before.system)
    assert busy < 0.25, f"the cancelled query kept working ({busy:.2f} s of CPU in 0.5 s)"


def test_python_task_checking_its_deadline_times_out(pool: BeePool) -> None:
    calls = []

    def spin(bee: Bee) -> None:
        while True:
            calls.append(bee.remaining())
            bee.check_deadline()
            time.sleep(0.01)

    with pytest.raises(TaskTimeoutError, match="'spin'"):
        pool.run(spin, name="spin", timeout=0.2)
    assert len(calls) > 3
    assert pool.idle == 2
    assert pool.abandoned == []  # a timeout is not retried


def test_task_ignoring_its_deadline_keeps_its_bee_until_it_ends(pool: BeePool) -> None:
    release = threading.Event()
    started = time.monotonic()
    with pytest.raises(TaskTimeoutError):
        pool.run(lambda bee: release.wait(10), name="stubborn", timeout=0.2)
    assert time.monotonic() - started < 2.0  # the caller is answered near the deadline
    [row] = [row for row in pool.status() if row["task"] == "stubborn"]
    assert row["overdue"] and row["state"] == "busy"
    assert pool.idle == 1  # never handed to another task while the thread still runs
    release.set()
    wait_until(lambda: pool.idle == 2)


def test_deadline_follows_the_injected_clock(tmp_path: Path) -> None:
    now = [100.0]
    with BeePool(1, BUDGET, tmp_path, clock=lambda: now[0], retry_delay=0) as pool:

        def task(bee: Bee) -> str:
            assert bee.remaining() == 5.0
            bee.check_deadline()
            now[0] += 6.0
            bee.check_deadline()
            return "unreachable"

        with pytest.raises(TaskTimeoutError, match="5 s timeout"):
            pool.run(task, name="clocked", timeout=5.0)


# -- retries and abandonment ---------------------------------------------------------------------


def test_transient_failures_are_retried(pool: BeePool) -> None:
    calls = []

    def flaky(bee: Bee) -> str:
        calls.append(bee.id)
        if len(calls) < 3:
            raise OSError("storage hiccup")
        return "done"

    assert pool.run(flaky, name="flaky") == "done"
    assert len(calls) == 3
    assert pool.abandoned == []
    assert pool.idle == 2


def test_task_failing_every_attempt_is_abandoned_and_recorded(pool: BeePool) -> None:
    calls = []

    def broken(bee: Bee) -> None:
        calls.append(bee.id)
        raise OSError(f"disk gone #{len(calls)}")

    with pytest.raises(TaskAbandonedError) as caught:
        pool.run(broken, name="broken task")
    message = str(caught.value)
    assert len(calls) == 3
    for n in (1, 2, 3):
        assert f"attempt {n} on bee" in message and f"disk gone #{n}" in message
    assert len(caught.value.attempts) == 3
    [record] = pool.abandoned
    assert record.task == "broken task"
    assert [a["error"] for a in record.attempts] == [f"OSError: disk gone #{n}" for n in (1, 2, 3)]
    assert abs(record.at - time.time()) < 60
    assert pool.idle == 2
    assert pool.run(lambda bee: "fine", name="next") == "fine"


@pytest.mark.parametrize(
    "error",
    [
        SqlError("no such column"),
        SchemaError("bad type"),
        EntityNotFoundError("no frame"),
        ConfigError("bad setting"),
    ],
)
def test_user_errors_are_not_retried(pool: BeePool, error: Exception) -> None:
    calls = []

    def wrong(bee: Bee) -> None:
        calls.append(1)
        raise error

    with pytest.raises(type(error)):
        pool.run(wrong, name="wrong")
    assert calls == [1]
    assert pool.abandoned == []


def test_no_retry_raises_the_error_itself(pool: BeePool) -> None:
    calls = []

    def once(bee: Bee) -> None:
        calls.append(1)
        raise OSError("once")

    with pytest.raises(OSError, match="once"):
        pool.run(once, name="once", retry=False)
    assert calls == [1]


def test_abandoned_list_is_bounded_newest_last(tmp_path: Path) -> None:
    with BeePool(1, BUDGET, tmp_path, max_attempts=1, retry_delay=0) as pool:
        for n in range(ABANDONED_KEPT + 5):
            with pytest.raises(TaskAbandonedError):
                pool.run(lambda bee: 1 / 0, name=f"task {n}")
        names = [a.task for a in pool.abandoned]
        assert len(names) == ABANDONED_KEPT
        assert names[-1] == f"task {ABANDONED_KEPT + 4}" and names[0] == "task 5"


# -- the pool ------------------------------------------------------------------------------------


def test_two_callers_run_on_two_bees_in_parallel(pool: BeePool) -> None:
    both = threading.Barrier(2, timeout=5)  # breaks unless both tasks run at the same time
    ids: list[int] = []

    def meet(bee: Bee) -> None:
        ids.append(bee.id)
        both.wait()

    other = threading.Thread(target=pool.run, args=(meet,), kwargs={"name": "a"})
    other.start()
    pool.run(meet, name="b")
    other.join()
    assert sorted(ids) == [0, 1]


def test_callers_queue_for_a_busy_bee(tmp_path: Path) -> None:
    release = threading.Event()
    with BeePool(1, BUDGET, tmp_path, retry_delay=0) as pool:
        first = threading.Thread(
            target=pool.run, args=(lambda bee: release.wait(5),), kwargs={"name": "a"}
        )
        first.start()
        wait_until(lambda: pool.busy == 1)
        second = threading.Thread(target=pool.run, args=(lambda bee: None,), kwargs={"name": "b"})
        second.start()
        wait_until(lambda: pool.queue_depth == 1)
        assert pool.idle == 0
        release.set()
        first.join()
        second.join()
        assert pool.queue_depth == 0 and pool.idle == 1


def test_status_describes_each_bee(pool: BeePool) -> None:
    inside = threading.Event()
    release = threading.Event()

    def task(bee: Bee) -> None:
        inside.set()
        release.wait(5)

    worker = threading.Thread(target=pool.run, args=(task,), kwargs={"name": "reporting"})
    worker.start()
    inside.wait(5)
    rows = pool.status()
    release.set()
    worker.join()
    assert [row["id"] for row in rows] == [0, 1]
    [busy] = [row for row in rows if row["task"] == "reporting"]
    assert busy["state"] == "busy" and busy["elapsed_s"] >= 0
    assert busy["memory_budget"] == BUDGET and busy["memory_used"] >= 0
    assert busy["spilled_bytes"] == 0 and Path(busy["spill_dir"]).is_dir()
    [idle] = [row for row in rows if row["task"] is None]
    assert idle["state"] == "idle" and idle["elapsed_s"] is None and idle["memory_used"] == 0


def test_spill_dir_is_emptied_after_every_task(pool: BeePool) -> None:
    def litter(bee: Bee) -> str:
        (bee.spill_dir / ".tmp-leftover").write_bytes(b"x" * 100)
        (bee.spill_dir / "datafusion-x").mkdir()
        assert bee.spilled_bytes() == 100
        raise SqlError("and then fail")

    with pytest.raises(SqlError):
        pool.run(litter, name="litter")
    assert all(not any(bee.spill_dir.iterdir()) for bee in pool.bees)


def test_context_applies_the_bee_settings(pool: BeePool) -> None:
    def settings(bee: Bee) -> dict[str, str]:
        rows = bee.collect(
            bee.context(SessionConfig().with_information_schema(True)).sql(
                "SELECT name, value FROM information_schema.df_settings WHERE name IN "
                "('datafusion.execution.target_partitions', "
                "'datafusion.execution.sort_spill_reservation_bytes')"
            )
        ).to_pylist()
        return {row["name"].rsplit(".", 1)[1]: row["value"] for row in rows}

    assert pool.run(settings, name="settings") == {
        "target_partitions": "1",
        "sort_spill_reservation_bytes": str(BUDGET // 16),
    }


def test_external_sort_spills_in_a_small_budget(pool: BeePool) -> None:
    query = (
        "SELECT max(rn) AS rows FROM (SELECT row_number() OVER (ORDER BY value * 7919 % 3000000)"
        " AS rn FROM generate_series(1, 3000000))"
    )
    assert pool.run(sql(query), name="sort").to_pylist() == [{"rows": 3_000_000}]


def test_shutdown_waits_for_running_tasks_and_removes_scratch(tmp_path: Path) -> None:
    pool = BeePool(1, BUDGET, tmp_path, retry_delay=0)
    release = threading.Event()
    results: list[object] = []
    inside = threading.Event()

    def task(bee: Bee) -> str:
        inside.set()
        release.wait(5)
        return "finished"

    def waiter() -> None:
        try:
            pool.run(lambda bee: "never", name="queued")
        except ApiaryError as exc:
            results.append(exc)

    running = threading.Thread(target=lambda: results.append(pool.run(task, name="running")))
    running.start()
    inside.wait(5)
    queued = threading.Thread(target=waiter)
    queued.start()
    wait_until(lambda: pool.queue_depth == 1)
    threading.Timer(0.2, release.set).start()
    pool.shutdown(timeout=5)
    running.join()
    queued.join()
    assert "finished" in results
    assert any(isinstance(r, ApiaryError) and "shut down" in str(r) for r in results)
    assert not pool.root.exists()
    assert [b.state for b in pool.bees] == ["draining"]
    with pytest.raises(ApiaryError, match="shut down"):
        pool.run(lambda bee: None, name="late")


def test_shutdown_is_bounded(tmp_path: Path) -> None:
    pool = BeePool(1, BUDGET, tmp_path, retry_delay=0)
    release = threading.Event()
    errors: list[BaseException] = []

    def caller() -> None:
        try:
            pool.run(lambda bee: release.wait(5), name="stuck")
        except TaskTimeoutError as exc:
            errors.append(exc)

    worker = threading.Thread(target=caller)
    worker.start()
    wait_until(lambda: pool.busy == 1)
    started = time.monotonic()
    pool.shutdown(timeout=0.2)
    assert time.monotonic() - started < 1.0
    assert not pool.root.exists()
    worker.join(2)  # the caller is answered without waiting for the stuck task
    assert [str(e) for e in errors] == ["task 'stuck' was cancelled: the bee pool shut down"]
    release.set()


def test_stale_pool_folders_of_dead_processes_are_removed(tmp_path: Path) -> None:
    stale = tmp_path / "pool-999999999-deadbeef" / "bee-0"
    stale.mkdir(parents=True)
    (stale / ".tmpSpill").write_bytes(b"old")
    unrelated = tmp_path / "keep-me"
    unrelated.mkdir()
    with BeePool(1, BUDGET, tmp_path):
        assert not stale.parent.exists()
        assert unrelated.exists()


def test_invalid_pool_settings_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        BeePool(0, BUDGET, tmp_path)
    with pytest.raises(ConfigError):
        BeePool(1, BUDGET, tmp_path, max_attempts=0)
