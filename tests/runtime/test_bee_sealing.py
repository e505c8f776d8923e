"""A stopped task really stops: after a timeout or cancel the process's CPU goes quiet, and a bee
reports idle only once DataFusion has let go of its work (issue item 5).

CPU is the process's own (psutil), so other programs' load does not count.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from support.waiting import wait_until

from apiary.errors import QueryCancelledError, TaskTimeoutError
from apiary.runtime.bees import Bee, BeePool

MiB = 1 << 20
QUIET = 25.0  # % of one core: an idle interpreter with a few waiting threads stays far below
# A GROUP BY over a long generated series: DataFusion yields between batches, so it can stop.
LONG_GROUP_BY = (
    "SELECT value % 3000000 AS g, count(*) AS c FROM range(2000000000) "
    "GROUP BY 1 ORDER BY 2 LIMIT 3"
)
# A nested-loop join with a selective filter over in-memory inputs does all its work in one poll
# of the stream (~3 s here): DataFusion 55 cannot stop it before that poll ends. Over Parquet it
# can stop between row groups of its probe side, each joined with the whole build side first.
NESTED_LOOP = "SELECT count(*) FROM range(60000) a, range(60000) b WHERE a.value + b.value = 7"


def query(sql: str, partitions: int = 1):
    return lambda bee: bee.collect(bee.context(partitions=partitions).sql(sql))


def cpu_percent(window: float = 1.0) -> float:
    process = psutil.Process()
    process.cpu_percent()
    time.sleep(window)
    return process.cpu_percent()


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[BeePool]:
    with BeePool(2, 64 * MiB, tmp_path / "scratch", task_timeout=1.0) as p:
        yield p


def all_idle(pool: BeePool) -> bool:
    return all(row["state"] == "idle" for row in pool.status())


@pytest.mark.parametrize("partitions", [1, 2])
def test_cpu_is_quiet_within_2s_of_a_timeout(pool: BeePool, partitions: int) -> None:
    with pytest.raises(TaskTimeoutError, match="was stopped"):
        pool.run(query(LONG_GROUP_BY, partitions), name="long")
    stopped = time.monotonic()
    assert wait_until(lambda: all_idle(pool), timeout=2.0)
    assert time.monotonic() - stopped < 2.0
    assert cpu_percent() < QUIET
    # The chamber is usable again at once.
    assert pool.run(query("SELECT 41 + 1 AS n"), name="next")["n"].to_pylist() == [42]


def test_cpu_is_quiet_within_2s_of_a_cancel(pool: BeePool) -> None:
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    with pytest.raises(QueryCancelledError):
        pool.run(query(LONG_GROUP_BY, 2), name="long", cancel=cancel, timeout=30)
    assert wait_until(lambda: all_idle(pool), timeout=2.0)
    assert cpu_percent() < QUIET


def test_a_bee_drains_until_datafusion_has_really_stopped(pool: BeePool) -> None:
    """The nested-loop join goes on after the timeout: its bee must say so, not 'idle'."""
    with pytest.raises(TaskTimeoutError):
        pool.run(query(NESTED_LOOP), name="nested loop")
    row = pool.status()[0]
    assert row["state"] == "draining" and row["task"] == "nested loop" and row["overdue"]
    assert pool.idle == 1  # the other bee takes new work meanwhile
    assert pool.run(query("SELECT 1 AS one"), name="meanwhile")["one"].to_pylist() == [1]
    # Whenever the bee reports idle again, the process is quiet: its work has really ended.
    assert wait_until(lambda: all_idle(pool), timeout=60.0)
    assert cpu_percent() < QUIET
    assert not pool.bees[0].holds_runtime()


def test_a_bee_is_not_idle_while_its_context_is_alive(tmp_path: Path) -> None:
    """A task that leaves its DataFusion context behind keeps its bee draining until it goes."""
    kept: list[object] = []

    def leaky(bee: Bee) -> int:
        kept.append(bee.context())
        return 1

    with BeePool(1, 64 * MiB, tmp_path / "scratch", task_timeout=5.0) as pool:
        assert pool.run(leaky, name="leaky") == 1  # the answer does not wait for the drain
        assert pool.status()[0]["state"] == "draining" and pool.idle == 0
        kept.clear()  # the context is dropped: DataFusion removes its runtime folder
        assert wait_until(lambda: all_idle(pool), timeout=5.0)


def test_a_runtime_that_outlives_its_task_neither_delays_the_answer_nor_loses_the_bee(
    pool: BeePool, caplog: pytest.LogCaptureFixture
) -> None:
    """The runtime's folder is only a sign: a runtime kept alive after its task ran to its end
    (here a context the task leaks on purpose) must not hold the answer back, and the bee
    comes back into service after a bounded drain, with a warning."""
    leaked = []

    def leaky(bee: Bee) -> int:
        ctx = bee.context()
        leaked.append(ctx)  # DataFusion's folder for it stays until this list is cleared
        return ctx.sql("SELECT 41 + 1 AS n").to_pydict()["n"][0]

    assert pool.run(leaky, name="leaky") == 42
    # the answer came while the bee still waits for its runtime
    assert any(row["state"] == "draining" for row in pool.status())
    assert wait_until(lambda: all_idle(pool), timeout=20)
    assert "still holds the runtime of task 'leaky'" in caplog.text
    assert pool.run(lambda bee: 7, name="next") == 7
    leaked.clear()
