"""Joins DataFusion cannot stop in-process run in a sealed child the bee kills (issue 11 item 5).

A nested-loop or cross join works through its whole build side in one poll; in-process it went
on burning a core for tens of seconds after a timeout. Over real Parquet its plan goes to an
``apiary _sealed`` child: a timeout, a cancel or a memory stop kills it, and the answers and
errors are the in-process ones.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.waiting import wait_until

from apiary.errors import MemoryExceededError, QueryCancelledError, TaskTimeoutError
from apiary.runtime.bees import Bee, BeePool
from apiary.runtime.sealed import UNSTOPPABLE, plan_bytes, unstoppable

MiB = 1 << 20
QUIET = 25.0  # % of one core, this process and its children
ROWS = 120_000
# ~1.4e10 pairs: minutes of work, stopped after a second or two.
CROSS = "SELECT count(*) AS c FROM t a CROSS JOIN t b WHERE (a.x * b.x) % 7 = 3"
SMALL = "(SELECT x FROM t WHERE x < 20000)"
NON_EQUI = f"SELECT count(*) AS c FROM {SMALL} a JOIN {SMALL} b ON a.x + b.x = 7"


@pytest.fixture(scope="module")
def cells(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cells")
    pq.write_table(
        pa.table({"x": pa.array(range(ROWS), pa.int64())}),
        folder / "a.parquet",
        row_group_size=ROWS,
    )
    return folder


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[BeePool]:
    with BeePool(2, 64 * MiB, tmp_path / "scratch", task_timeout=30.0) as p:
        yield p


def over(cells: Path, sql: str) -> Callable[[Bee], pa.Table]:
    def task(bee: Bee) -> pa.Table:
        ctx = bee.context()
        ctx.register_parquet("t", str(cells))
        return bee.collect(ctx.sql(sql))

    return task


def busy_cpu(window: float = 1.0) -> float:
    """CPU % of this process and every child it has, over ``window`` seconds."""
    processes = [psutil.Process(), *children()]
    for p in processes:
        p.cpu_percent()
    time.sleep(window)
    total = 0.0
    for p in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.cpu_percent()
    return total


def children() -> list[psutil.Process]:
    """The sealed children still alive (other children, such as a moto server, do not count)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "_sealed" in child.cmdline():
                found.append(child)
    return found


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM t a JOIN t b ON a.x = b.x",
        "SELECT * FROM t a JOIN t b ON a.x < b.x",
        "SELECT * FROM t a, t b",
        "SELECT * FROM t a, t b WHERE a.x = b.x",
        "SELECT * FROM t a CROSS JOIN t b WHERE a.x > b.x",
        "SELECT * FROM t a LEFT JOIN t b ON a.x > b.x OR a.x = b.x",
        "SELECT * FROM t a LEFT JOIN t b ON true",
        "SELECT * FROM t WHERE x IN (SELECT x FROM t WHERE x > 3)",
        "SELECT * FROM t a WHERE EXISTS (SELECT 1 FROM t b WHERE b.x > a.x)",
    ],
)
def test_the_logical_plan_names_the_operator_physical_planning_picks(
    cells: Path, tmp_path: Path, query: str
) -> None:
    ctx = Bee(0, 64 * MiB, tmp_path / "bee").context()
    ctx.register_parquet("t", str(cells))
    df = ctx.sql(query)
    physical = [
        line.split(":")[0].strip()
        for line in df.execution_plan().display_indent().splitlines()
        if "Join" in line
    ]
    found = unstoppable(df)
    assert found == next((op for op in physical if op in UNSTOPPABLE), None)


def test_only_plans_datafusion_cannot_stop_are_sealed(cells: Path, tmp_path: Path) -> None:
    bee = Bee(0, 64 * MiB, tmp_path / "bee")
    ctx = bee.context()
    ctx.register_parquet("t", str(cells))
    assert unstoppable(ctx.sql(NON_EQUI)) == "NestedLoopJoinExec"
    assert unstoppable(ctx.sql(CROSS)) in ("CrossJoinExec", "NestedLoopJoinExec")
    assert unstoppable(ctx.sql("SELECT count(*) FROM t a JOIN t b ON a.x = b.x")) is None
    assert unstoppable(ctx.sql("SELECT sum(x) FROM t")) is None
    assert plan_bytes(ctx.sql(NON_EQUI))
    # A table held in memory has no plan bytes: such a plan stays in-process.
    ctx.register_record_batches("m", [[pa.record_batch({"y": [1, 2]})]])
    assert plan_bytes(ctx.sql("SELECT * FROM m a JOIN m b ON a.y < b.y")) is None


def test_a_sealed_join_gives_the_in_process_answer(pool: BeePool, cells: Path) -> None:
    sealed = pool.run(over(cells, NON_EQUI), name="sealed")
    for bee in pool.bees:
        bee.seal = False
    in_process = pool.run(over(cells, NON_EQUI), name="in process")
    assert sealed.to_pylist() == in_process.to_pylist() == [{"c": 8}]
    assert not children()


def test_a_timed_out_join_stops_within_2s(pool: BeePool, cells: Path) -> None:
    with pytest.raises(TaskTimeoutError, match="was stopped"):
        pool.run(over(cells, CROSS), name="cross", timeout=1.5)
    stopped = time.monotonic()
    assert wait_until(lambda: all(b["state"] == "idle" for b in pool.status()), timeout=2.0)
    assert time.monotonic() - stopped < 2.0
    assert not children()  # the child that did the work is gone
    assert busy_cpu() < QUIET
    assert pool.run(over(cells, NON_EQUI), name="next").to_pylist() == [{"c": 8}]


def test_a_cancelled_join_stops_within_2s(pool: BeePool, cells: Path) -> None:
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    with pytest.raises(QueryCancelledError):
        pool.run(over(cells, CROSS), name="cross", cancel=cancel)
    assert wait_until(lambda: all(b["state"] == "idle" for b in pool.status()), timeout=2.0)
    assert not children()
    assert busy_cpu() < QUIET


def test_errors_in_the_child_are_the_in_process_errors(pool: BeePool, cells: Path) -> None:
    with pytest.raises(Exception, match="Cast error|Can't cast|cast"):
        pool.run(
            over(
                cells,
                f"SELECT count(*) FROM {SMALL} a JOIN t b ON a.x < b.x "
                "WHERE CAST(b.x AS VARCHAR)::INT < CAST('x' || a.x AS INT)",
            ),
            name="bad",
            retry=False,
        )
    assert not children()


def test_a_child_out_of_memory_is_a_memory_error(tmp_path: Path, cells: Path) -> None:
    """The child runs within the bee's pool: an aggregate larger than it stops cleanly."""
    scratch = tmp_path / "scratch"
    with (
        BeePool(1, 256 * 1024, scratch, task_timeout=60.0) as small,
        pytest.raises(MemoryExceededError, match="memory budget"),
    ):
        small.run(
            over(
                cells,
                "SELECT string_agg(CAST(b.x AS VARCHAR), ',') FROM "
                "(SELECT x FROM t WHERE x < 2000) a JOIN t b ON a.x + b.x < 100000",
            ),
            name="big",
        )
    assert not children()


def test_the_node_ceiling_counts_the_sealed_child(tmp_path: Path, cells: Path) -> None:
    """A child's memory is the node's memory: above the ceiling its task is stopped, and the
    child killed, like any task of this process."""
    me = psutil.Process().memory_info()
    ceiling = me.rss - getattr(me, "shared", 0) + 24 * MiB  # less than a second interpreter
    scratch = tmp_path / "scratch"
    with (
        BeePool(1, 64 * MiB, scratch, task_timeout=60.0, memory_limit=ceiling) as pool,
        pytest.raises(MemoryExceededError, match="grew to"),
    ):
        pool.run(over(cells, CROSS), name="cross")
    assert not children()
